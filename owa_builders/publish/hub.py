"""Publish a built folder to a Hugging Face Hub dataset repo: ``owa-builders push`` and :func:`push`.

What goes up (paths from :mod:`.layout`): the rows as Parquet shards in ``<config>/``, the card
(``README.md``, :mod:`.card`) with its plots in ``<config>/plots/``, the build record
(``<config>/owa_build.json``, as :func:`.redact.public_record` makes it), the expanded tokenizer of an FSL
config (``<config>/tokenizer/``) and, unless ``media=False``, every video the rows reference, at the
repo root under the same relative path as under the recordings' root (so
``FrameLoader("hf://datasets/<repo>")`` resolves the rows' uris unchanged).

Nothing uploaded names the publisher's machine (:mod:`.redact`): the record, card and plots are made
from :func:`.redact.public_record`, and every file but the Parquet shards (the rows are the user's
data) is checked for the local roots, the home directory and the user name before anything is
uploaded (a leak is a :class:`PublishError`).

The target is ``revision`` (a branch, created from ``main`` when absent; default ``main``). The push
moves it from its previous state to the new one in one step, whatever the size:

- up to ``max_commit_files`` files (and ``max_commit_bytes`` bytes): one commit on the target, naming
  its parent (a target that changed meanwhile refuses it: HTTP 412);
- more (the Hub advises fewer than ~100 files per commit): the files go up in several commits of at
  most that size into a pull request against the target (``refs/pr/N``, opened by the first commit
  from the target's head), then the PR is merged, which is one commit on the target. Until the merge
  the target shows its previous state; if a commit fails the PR is closed (the uploaded content stays
  in LFS storage, so pushing again does not upload it again) and the target is unchanged; if the
  process dies midway the open PR is left behind and the target is still unchanged.
- ``create_pr=True``: the same commits go into a PR that is left open for review (``PushResult.pr_url``).

The card (``README.md``) is in the last commit. Media already in the target with the same content is
skipped. Pushes to one repo must be sequential: a target that moved during a staged push is not merged.
Other configs of the repo keep their files, card sections and metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import PublishError
from . import layout, redact
from .card import (
    CARD_FILE,
    card_metadata,
    card_plots,
    compose_card,
    config_names,
    existing_metadata,
    header_markdown,
    render_section,
)
from .media import MediaFile, locate_media, referenced_uris
from .source import BuiltFolder, open_built
from .stats import Stats, measure

logger = logging.getLogger(__name__)

#: Files per commit (the Hub recommends fewer than 100 per commit); more are staged in a PR.
DEFAULT_MAX_COMMIT_FILES = 50
#: Bytes of uploaded content per commit.
DEFAULT_MAX_COMMIT_BYTES = 4 * 2**30
#: Arrow bytes per Parquet row group.
ROW_GROUP_BYTES = 32 * 2**20


@dataclass
class PushResult:
    """What :func:`push` did."""

    repo_id: str
    config_name: str
    url: str
    commit: str  # the target's new head (the merge commit of a staged push); the PR's head with create_pr
    commits: list[str] = field(default_factory=list)  # every commit made (PR commits, then the merge)
    revision: str = "main"  # the branch pushed to
    pr_url: str | None = None  # the PR left open (create_pr=True)
    staged_pr: int | None = None  # the PR a large push was staged in and merged from
    shards: dict[str, list[str]] = field(default_factory=dict)  # split -> shard paths in the repo
    media_uploaded: list[str] = field(default_factory=list)
    media_present: list[str] = field(default_factory=list)  # already in the repo with the same content
    deleted: list[str] = field(default_factory=list)  # stale files of this config removed
    stats: Stats | None = None


def push(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    config_name: str | None = None,
    num_shards: int | dict[str, int] | None = None,
    max_shard_bytes: int = layout.DEFAULT_MAX_SHARD_BYTES,
    media: bool = True,
    replace_media: bool = False,
    private: bool | None = None,
    license: str | None = None,
    pretty_name: str | None = None,
    token: str | bool | None = None,
    max_commit_files: int = DEFAULT_MAX_COMMIT_FILES,
    max_commit_bytes: int = DEFAULT_MAX_COMMIT_BYTES,
    work_dir: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> PushResult:
    """Publish the built ``folder`` as config ``config_name`` (default: the build's) of dataset ``repo_id``.

    ``num_shards``: shards per split (an int, or ``{split: n}``); default from the data size
    (:func:`.layout.default_num_shards` with ``max_shard_bytes``); a Parquet-layout folder is
    uploaded as it is sharded unless ``num_shards`` is given. ``media=False`` publishes rows
    without videos (the card says so). ``replace_media=True`` allows overwriting a video already
    in the repo at the same path with different content (it would change the frames other
    configs' rows point to). ``revision``: the branch to push to (created from ``main`` when absent);
    ``create_pr``: open a PR against it instead of changing it. ``max_commit_files`` /
    ``max_commit_bytes``: the largest commit; a larger push is staged in a PR and merged (module
    docstring). Raises :class:`PublishError` (and the errors of :func:`.open_built`, :mod:`.media`)
    naming the problem; see the module docstring for what the repo shows then.
    """
    from huggingface_hub import HfApi

    from .. import __version__

    if max_commit_files < 1 or max_commit_bytes < 1:
        raise PublishError(
            f"max_commit_files and max_commit_bytes must be >= 1, got {max_commit_files}, {max_commit_bytes}"
        )
    source = open_built(folder, storage_options)  # a local folder or a remote build (s3://...)
    name = layout.check_config_name(config_name or source.config_name)
    files = _media_files(source) if media else []
    record = redact.public_record(source.record, source.path, redact.tokenizer_meta(source.tokenizer_dir()))
    built = replace(source, record=record)  # what the card, plots and record are made from
    markers = redact.private_markers(source.path, source.data_root)
    target = revision or "main"
    stats = measure(built)
    stats.media_files, stats.media_bytes = len(files), sum(f.size for f in files)
    api = HfApi(token=token)
    try:
        url = str(api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private))
        if target != "main":
            api.create_branch(repo_id, branch=target, repo_type="dataset", exist_ok=True)
        info = api.dataset_info(repo_id, revision=target, files_metadata=True)
    except Exception as exc:
        raise PublishError(
            f"{repo_id}: cannot create or read the dataset repo (revision {target}): {exc}"
        ) from exc
    head = info.sha
    present = {s.rfilename: s for s in (info.siblings or [])}
    readme = _read_card(api, repo_id, head) if CARD_FILE in present else None
    existing = existing_metadata(readme)
    others = [c for c in config_names(existing) if c != name]
    _check_config_folder(name, present, others)
    to_upload, same = _plan_media(files, present, [name, *others], replace_media)
    result = PushResult(repo_id, name, url, commit="", media_present=[f.uri for f in same], revision=target)
    result.stats = stats
    with tempfile.TemporaryDirectory(prefix="owa-push-", dir=work_dir) as tmp:
        shards = _shard_files(built, name, num_shards, max_shard_bytes, tmp)
        result.shards = {split: [p for p, _ in items] for split, items in shards.items()}
        adds = [(p, local) for items in shards.values() for p, local in items]
        download_size = sum(os.path.getsize(local) for _, local in adds)
        adds += _artifact_files(built, name, tmp, repo_id if media else None)
        plots = card_plots(stats)
        for plot, png in plots.items():
            adds.append((layout.plot_path(name, plot), png))
        section = render_section(
            built,
            stats,
            repo_id=repo_id,
            config_name=name,
            shards={split: len(items) for split, items in shards.items()},
            media=(len(files), stats.media_bytes) if media else None,
            publisher_version=__version__,
        )
        metadata = card_metadata(
            existing,
            built,
            stats,
            config_name=name,
            download_size=download_size,
            license=license,
            pretty_name=pretty_name
            or (None if existing is not None and existing.get("pretty_name") else repo_id.split("/")[-1]),
        )
        card = compose_card(readme, metadata, section, name, header_markdown(repo_id))
        adds.append((CARD_FILE, card.encode("utf-8")))
        _check_no_leaks(adds, markers)
        new_paths = {p for p, _ in adds}
        stale = sorted(p for p in present if p.startswith(name + "/") and p not in new_paths)
        result.deleted = stale
        uploads = [(f.uri, f.local_path) for f in to_upload] + adds  # media first, the card last
        rows = sum(s.num_rows for s in built.splits.values())
        title = f"owa-builders: publish config {name} ({built.stage} stage, {rows} rows)"
        _commit(api, repo_id, target, head, uploads, stale, title, max_commit_files, max_commit_bytes,
                create_pr, result)  # fmt: skip
        result.media_uploaded = [f.uri for f in to_upload]
    logger.info(
        "published %s as config %r of %s@%s (commit %s)", source.path, name, repo_id, target, result.commit
    )
    return result


# ------------------------------------------------------------------------------------------
# Planning
# ------------------------------------------------------------------------------------------
def _media_files(built: BuiltFolder) -> list[MediaFile]:
    uris = referenced_uris(built)
    if not uris:
        return []
    if built.data_root is None:
        raise PublishError(
            f"{built.path}: the build record has no data_root, so the {len(uris)} referenced video(s) cannot be "
            "found; publish with media=False (--no-media)"
        )
    return locate_media(built.data_root, uris)


def _read_card(api: Any, repo_id: str, revision: str) -> str:
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo_id, CARD_FILE, repo_type="dataset", revision=revision, token=api.token)
        with open(path, encoding="utf-8") as f:
            return f.read()
    except Exception as exc:
        raise PublishError(f"{repo_id}: cannot read the existing {CARD_FILE}: {exc}") from exc


def _ours(path: str, name: str) -> bool:
    """Whether ``path`` (under ``name/``) is a file this module writes for config ``name``."""
    shard = layout.parse_shard_path(path)
    if shard is not None:
        return shard.config == name
    rest = path[len(name) + 1 :]
    return rest == layout.RECORD_NAME or rest.startswith(
        (layout.TOKENIZER_FOLDER + "/", layout.PLOTS_FOLDER + "/")
    )


def _check_config_folder(name: str, present: dict[str, Any], others: list[str]) -> None:
    foreign = sorted(p for p in present if p.startswith(name + "/") and not _ours(p, name))
    if foreign:
        raise PublishError(
            f"the repo's folder {name}/ holds files owa-builders did not write ({', '.join(foreign[:5])}): publishing "
            f"config {name!r} would delete them; choose another config name"
        )


def _plan_media(
    files: list[MediaFile], present: dict[str, Any], configs: list[str], replace: bool
) -> tuple[list[MediaFile], list[MediaFile]]:
    """Media to upload, and media already in the repo with the same content."""
    upload: list[MediaFile] = []
    same: list[MediaFile] = []
    conflicts: list[str] = []
    for f in files:
        top = f.uri.split("/", 1)[0]
        if top in configs or f.uri in (CARD_FILE,):
            raise PublishError(
                f"media {f.uri!r} would land in the folder of config {top!r}; move the recordings into another folder"
            )
        sibling = present.get(f.uri)
        if sibling is None:
            upload.append(f)
        elif _same_content(f, sibling):
            same.append(f)
        elif replace:
            upload.append(f)
        else:
            conflicts.append(f.uri)
    if conflicts:
        raise PublishError(
            f"{len(conflicts)} video(s) are already in the repo with different content ({', '.join(conflicts[:5])}): "
            "other configs' rows may point at their frames; rename the recordings, or pass replace_media=True "
            "(--replace-media) to overwrite them"
        )
    return upload, same


def _same_content(f: MediaFile, sibling: Any) -> bool:
    if sibling.size is not None and sibling.size != f.size:
        return False
    if sibling.lfs is not None:
        return _file_digest(f.local_path, "sha256") == sibling.lfs.sha256
    with open(f.local_path, "rb") as fh:
        data = fh.read()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == sibling.blob_id


def _file_digest(path: str, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _shard_files(
    built: BuiltFolder, name: str, num_shards: int | dict[str, int] | None, max_shard_bytes: int, tmp: str
) -> dict[str, list[tuple[str, str]]]:
    """``{split: [(repo path, local Parquet file), ...]}``; writes the shards into ``tmp`` when needed."""
    out: dict[str, list[tuple[str, str]]] = {}
    for split_name, split in built.splits.items():
        # A build's shards are rewritten, never uploaded as they are: their footers hold the local
        # build's own record (input paths, reports), which must not leave the machine.
        if num_shards is None and split.files:  # same sharding (a remote build: streamed shard by shard)
            count = max(1, min(len(split.files), split.num_rows))
        elif isinstance(num_shards, dict):
            count = num_shards.get(split_name) or layout.default_num_shards(
                split.num_bytes, split.num_rows, max_shard_bytes=max_shard_bytes
            )
        elif num_shards is not None:
            count = num_shards
        else:
            count = layout.default_num_shards(
                split.num_bytes, split.num_rows, max_shard_bytes=max_shard_bytes
            )
        if not 1 <= count <= split.num_rows:
            raise PublishError(
                f"split {split_name!r}: {count} shards for {split.num_rows} rows (need 1..rows)"
            )
        out[split_name] = list(write_shards(built, split_name, name, count, tmp))
    return out


def write_shards(
    built: BuiltFolder, split_name: str, name: str, count: int, folder: str
) -> Iterator[tuple[str, str]]:
    """Write split ``split_name`` as ``count`` contiguous Parquet shards under ``folder`` (the layout's
    paths); yield ``(repo path, local path)``. The `datasets` features go in the schema metadata."""
    split = built.splits[split_name]
    meta = {b"huggingface": json.dumps({"info": {"features": built.features.to_dict()}}).encode()}
    schema = split.schema.with_metadata(meta)
    bytes_per_row = max(1, split.num_bytes // max(1, split.num_rows))
    row_group = max(1, min(100_000, ROW_GROUP_BYTES // bytes_per_row))
    for i, (start, stop) in enumerate(layout.row_ranges(split.num_rows, count)):
        path = layout.shard_path(name, split_name, i, count)
        local = os.path.join(folder, *path.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        table = split.read(start, stop).replace_schema_metadata(meta)
        pq.write_table(
            pa.Table.from_batches(table.to_batches(), schema=schema), local, row_group_size=row_group
        )
        yield path, local


def _artifact_files(built: BuiltFolder, name: str, tmp: str, repo_id: str | None) -> list[tuple[str, Any]]:
    """The build record (``built`` holds the public one, :func:`.redact.public_record`: no local data
    root) and the stage's artifacts (FSL tokenizer)."""
    record = dict(built.record)
    record["config_name"] = name
    record["media_root"] = f"hf://datasets/{repo_id}" if repo_id else None
    adds: list[tuple[str, Any]] = [
        (layout.record_path(name), json.dumps(record, indent=1, sort_keys=True, default=list).encode())
    ]
    tokenizer = built.tokenizer_dir()
    if tokenizer:
        for root, dirs, names in os.walk(tokenizer):
            dirs.sort()
            for file in sorted(names):
                local = os.path.join(root, file)
                rel = os.path.relpath(local, tokenizer).replace(os.sep, "/")
                adds.append((f"{layout.tokenizer_path(name)}/{rel}", local))
    return adds


# ------------------------------------------------------------------------------------------
# Commits
# ------------------------------------------------------------------------------------------
def _size_of(content: Any) -> int:
    return len(content) if isinstance(content, bytes) else os.path.getsize(content)


def _chunks(
    uploads: Sequence[tuple[str, Any]], deletes: Sequence[str], max_files: int, max_bytes: int
) -> list[list[tuple[str, Any]]]:
    """``(path, content or None for a deletion)`` in order, cut into commits of at most ``max_files``
    operations and ``max_bytes`` bytes (a larger file gets a commit of its own)."""
    ops: list[tuple[str, Any]] = [*uploads[:-1], *((p, None) for p in deletes), *uploads[-1:]]
    chunks: list[list[tuple[str, Any]]] = []
    size = 0
    for path, content in ops:
        n = 0 if content is None else _size_of(content)
        if not chunks or len(chunks[-1]) >= max_files or (chunks[-1] and size + n > max_bytes):
            chunks.append([])
            size = 0
        chunks[-1].append((path, content))
        size += n
    return chunks


def _operations(chunk: list[tuple[str, Any]]) -> list[Any]:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    return [
        CommitOperationDelete(path_in_repo=path)
        if content is None
        else CommitOperationAdd(path_in_repo=path, path_or_fileobj=content)
        for path, content in chunk
    ]


def _hub_error(exc: Exception, repo_id: str, what: str, shows: str) -> PublishError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 412:
        return PublishError(
            f"{repo_id}: the repo changed while publishing (another push?): {what} was refused; {shows}. "
            "Pushes to one repo must be sequential: push again"
        )
    detail = " ".join(str(exc).split())  # one line
    return PublishError(f"{repo_id}: {what} failed ({type(exc).__name__}: {detail}); {shows}")


def _commit(
    api: Any,
    repo_id: str,
    target: str,
    head: str,
    uploads: list[tuple[str, Any]],
    deletes: list[str],
    title: str,
    max_files: int,
    max_bytes: int,
    create_pr: bool,
    result: PushResult,
) -> None:
    """Move ``target`` from ``head`` to the new state in one step (module docstring); fills ``result``."""
    chunks = _chunks(uploads, deletes, max_files, max_bytes)
    shows = f"{target} still shows its previous state (nothing of this push is visible)"
    if len(chunks) == 1 and not create_pr:
        try:
            info = api.create_commit(repo_id, _operations(chunks[0]), commit_message=title, repo_type="dataset",
                                     revision=target, parent_commit=head)  # fmt: skip
        except Exception as exc:
            raise _hub_error(exc, repo_id, "the commit (data files and card)", shows) from exc
        result.commit = str(info.oid)
        result.commits.append(result.commit)
        return
    pr: int | None = None
    step = "opening the pull request (commit 1)"
    try:
        for i, chunk in enumerate(chunks, 1):
            step = f"commit {i} of {len(chunks)}" + (
                " (opening the pull request)" if i == 1 else f" to PR #{pr}"
            )
            message = f"{title} [{i}/{len(chunks)}]" if len(chunks) > 1 else title
            if pr is None:
                info = api.create_commit(repo_id, _operations(chunk), commit_message=message, repo_type="dataset",
                                         revision=target, parent_commit=head, create_pr=True,
                                         commit_description="Staged by owa-builders push.")  # fmt: skip
                pr = int(info.pr_num)
                result.pr_url = str(info.pr_url)
            else:
                info = api.create_commit(repo_id, _operations(chunk), commit_message=message, repo_type="dataset",
                                         revision=f"refs/pr/{pr}", parent_commit=result.commits[-1])  # fmt: skip
            result.commits.append(str(info.oid))
            logger.info("%s: %d operation(s)", step, len(chunk))
        result.commit = result.commits[-1]
        if create_pr:
            return
        step = f"merging PR #{pr} into {target}"
        now = api.dataset_info(repo_id, revision=target).sha
        if now != head:
            raise PublishError(
                f"{repo_id}: {target} moved from {head[:12]} to {now[:12]} during the push (another push?); "
                f"PR #{pr} was not merged; {shows}. Pushes to one repo must be sequential: push again"
            )
        api.merge_pull_request(repo_id, pr, repo_type="dataset", comment="Merged by owa-builders push.")
    except Exception as exc:
        closed = pr is not None and _close(api, repo_id, pr)
        where = (
            ""
            if pr is None
            else f" (the partial upload is in PR #{pr}, {'closed' if closed else 'left open'})"
        )
        if isinstance(exc, PublishError):
            raise PublishError(f"{exc}{where}") from exc
        raise _hub_error(exc, repo_id, step, shows + where) from exc
    result.staged_pr, result.pr_url = pr, None
    try:
        result.commit = str(api.dataset_info(repo_id, revision=target).sha)
    except Exception as exc:
        raise PublishError(
            f"{repo_id}: PR #{pr} was merged into {target}, but reading its head failed: {exc}"
        ) from exc
    result.commits.append(result.commit)


def _close(api: Any, repo_id: str, pr: int) -> bool:
    """Close a staging PR after a failure (best effort: it may be what failed)."""
    try:
        api.change_discussion_status(repo_id, pr, "closed", repo_type="dataset",
                                     comment="owa-builders push failed; this partial upload is not merged.")  # fmt: skip
        return True
    except Exception:
        logger.warning("%s: could not close the staging PR #%d", repo_id, pr)
        return False


def _check_no_leaks(adds: list[tuple[str, Any]], markers: list[str]) -> None:
    """Refuse to upload a file (other than a Parquet shard: rows are the user's data) naming a local root,
    the home directory or the user name."""
    found: dict[str, list[str]] = {}
    for path, content in adds:
        if layout.parse_shard_path(path) is not None:
            continue
        if not isinstance(content, bytes):
            with open(content, "rb") as f:
                content = f.read()
        hits = redact.leaks(content, markers)
        if hits:
            found[path] = hits
    if found:
        listed = "; ".join(f"{p} ({', '.join(h)})" for p, h in sorted(found.items()))
        raise PublishError(f"refusing to upload local paths (nothing was uploaded): {listed}")


# ------------------------------------------------------------------------------------------
# Command line: owa-builders push
# ------------------------------------------------------------------------------------------
def _size(text: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 256MB, 1G, 1000000)") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``owa-builders push``."""
    parser.add_argument("folder", help="a built folder (`owa-builders build STAGE DATA -o DIR`)")
    parser.add_argument(
        "repo_id", help="the Hub dataset repo, e.g. org/desktop-agent-data (created if absent)"
    )
    parser.add_argument("--config-name", help="publish under this config name (default: the build's)")
    parser.add_argument(
        "--num-shards", type=int, help="Parquet shards per split (default: from the data size)"
    )
    parser.add_argument("--max-shard-size", type=_size, default=layout.DEFAULT_MAX_SHARD_BYTES,
                        help="largest shard by default sharding (default: 256MB)")  # fmt: skip
    parser.add_argument("--no-media", action="store_true", help="do not upload the videos the rows reference")
    parser.add_argument("--replace-media", action="store_true",
                        help="overwrite videos already in the repo with different content")  # fmt: skip
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument(
        "--license", help="license id for the card (default: keep the card's, else 'unknown')"
    )
    parser.add_argument("--max-commit-files", type=int, default=DEFAULT_MAX_COMMIT_FILES,
                        help="files per commit; a larger push is staged in a pull request and merged at once "
                             "(default: 50)")  # fmt: skip
    from ..output import add_storage_option_argument

    add_storage_option_argument(parser)  # the build may be remote: s3://bucket/prefix
    parser.add_argument(
        "--revision", help="the branch to push to (created from main when absent; default: main)"
    )
    parser.add_argument("--create-pr", action="store_true",
                        help="open a pull request against the branch instead of changing it")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """``owa-builders push``; errors propagate as :class:`OwaError` (the CLI prints them, exit 2)."""
    from ..output import parse_storage_options

    result = push(
        args.folder,
        args.repo_id,
        config_name=args.config_name,
        num_shards=args.num_shards,
        max_shard_bytes=args.max_shard_size,
        media=not args.no_media,
        replace_media=args.replace_media,
        private=True if args.private else None,
        license=args.license,
        max_commit_files=args.max_commit_files,
        revision=args.revision,
        create_pr=args.create_pr,
        storage_options=parse_storage_options(args.storage_option),
    )
    shards = ", ".join(f"{split}: {len(paths)}" for split, paths in result.shards.items())
    print(
        f"published {args.folder} as config {result.config_name!r} of {result.repo_id} ({result.url}); "
        f"shards {shards}; media: {len(result.media_uploaded)} uploaded, {len(result.media_present)} already there; "
        f"{len(result.commits)} commit(s)"
        + (f" staged in PR #{result.staged_pr} and merged" if result.staged_pr else "")
        + (
            f", the PR at {result.commit[:12]}"
            if result.pr_url
            else f", {result.revision} now at {result.commit[:12]}"
        )
    )
    if result.pr_url:
        print(f"opened a pull request against {result.revision}: {result.pr_url} (merge it to publish)")
        return 0
    rev = "" if result.revision == "main" else f', revision="{result.revision}"'
    print(f'load it with: datasets.load_dataset("{result.repo_id}", "{result.config_name}"{rev})')
    return 0
