"""Publish a built folder to a Hugging Face Hub dataset repo: ``owa-builders push`` and :func:`push`.

What goes up (paths from :mod:`.layout`): the rows as Parquet shards in ``<config>/``, the card
(``README.md``, :mod:`.card`) with its plots in ``<config>/plots/``, the build record
(``<config>/owa_build.json``, without the local ``data_root``), the expanded tokenizer of an FSL
config (``<config>/tokenizer/``) and, unless ``media=False``, every video the rows reference, at the
repo root under the same relative path as under the recordings' root (so
``FrameLoader("hf://datasets/<repo>")`` resolves the rows' uris unchanged).

Order, so that a consumer never sees a half-published config:

1. media, in commits of at most ``max_commit_files`` files / ``max_commit_bytes`` bytes (a video
   already in the repo with the same content is skipped; LFS stores each content once). Media is
   referenced by no config until step 3, so these commits change nothing a consumer loads;
2. every other file's bytes are pre-uploaded to LFS storage, without a commit;
3. one last commit adds the shards, plots, tokenizer and record, deletes this config's stale files
   and writes the card. Until it lands the repo shows its previous state; if it fails nothing
   of this push is visible (uploaded media stays and is skipped next time).

Every commit names its parent: a repo that changed meanwhile (another push) refuses the commit
(HTTP 412) and the push stops with :class:`PublishError`; pushes to one repo must be sequential.
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
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from owa_event.errors import OwaError

from . import layout
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

#: Files per media commit (the Hub recommends fewer than 100 per commit).
DEFAULT_MAX_COMMIT_FILES = 50
#: Bytes per media commit.
DEFAULT_MAX_COMMIT_BYTES = 4 * 2**30
#: Arrow bytes per Parquet row group.
ROW_GROUP_BYTES = 32 * 2**20


class PublishError(OwaError):
    """A push that was refused or failed; the message says what the repo shows now."""


@dataclass
class PushResult:
    """What :func:`push` did."""

    repo_id: str
    config_name: str
    url: str
    commit: str  # the final commit (card + data)
    commits: list[str] = field(default_factory=list)  # every commit made, in order
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
    storage_options: dict[str, Any] | None = None,
) -> PushResult:
    """Publish the built ``folder`` as config ``config_name`` (default: the build's) of dataset ``repo_id``.

    ``num_shards``: shards per split (an int, or ``{split: n}``); default from the data size
    (:func:`.layout.default_num_shards` with ``max_shard_bytes``); a Parquet-layout folder is
    uploaded as it is sharded unless ``num_shards`` is given. ``media=False`` publishes rows
    without videos (the card says so). ``replace_media=True`` allows overwriting a video already
    in the repo at the same path with different content (it would change the frames other
    configs' rows point to). Raises :class:`PublishError` (and the errors of :func:`.open_built`,
    :mod:`.media`) naming the problem; see the module docstring for what the repo shows then.
    """
    from huggingface_hub import HfApi

    from .. import __version__

    built = open_built(
        folder, storage_options
    )  # a local folder or a remote build (s3://..., storage_options)
    name = layout.check_config_name(config_name or built.config_name)
    files = _media_files(built) if media else []
    stats = measure(built)
    stats.media_files, stats.media_bytes = len(files), sum(f.size for f in files)
    api = HfApi(token=token)
    try:
        url = str(api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private))
        info = api.dataset_info(repo_id, files_metadata=True)
    except Exception as exc:
        raise PublishError(f"{repo_id}: cannot create or read the dataset repo: {exc}") from exc
    head = info.sha
    present = {s.rfilename: s for s in (info.siblings or [])}
    readme = _read_card(api, repo_id, head) if CARD_FILE in present else None
    existing = existing_metadata(readme)
    others = [c for c in config_names(existing) if c != name]
    _check_config_folder(name, present, others)
    to_upload, same = _plan_media(files, present, [name, *others], replace_media)
    result = PushResult(repo_id, name, url, commit="", media_present=[f.uri for f in same])
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
        new_paths = {p for p, _ in adds}
        stale = sorted(p for p in present if p.startswith(name + "/") and p not in new_paths)
        result.deleted = stale
        head = _commit_media(api, repo_id, to_upload, head, max_commit_files, max_commit_bytes, result)
        result.media_uploaded = [f.uri for f in to_upload]
        result.commit = _commit_final(api, repo_id, name, adds, stale, head, built, max_commit_files)
        result.commits.append(result.commit)
    logger.info("published %s as config %r of %s (commit %s)", built.path, name, repo_id, result.commit)
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
        if num_shards is None and split.files and built.local:  # Parquet layout: as it is
            count = len(split.files)
            out[split_name] = [
                (layout.shard_path(name, split_name, i, count), path) for i, path in enumerate(split.files)
            ]
            continue
        if num_shards is None and split.files:  # a remote build: streamed shard by shard, same sharding
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
    """The build record (without the local data root) and the stage's artifacts (FSL tokenizer)."""
    record = dict(built.record)
    record.pop("data_root", None)
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
def _batches(files: Sequence[MediaFile], max_files: int, max_bytes: int) -> Iterator[list[MediaFile]]:
    batch: list[MediaFile] = []
    size = 0
    for f in files:
        if batch and (len(batch) >= max_files or size + f.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += f.size
    if batch:
        yield batch


def _hub_error(exc: Exception, repo_id: str, what: str, shows: str) -> PublishError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 412:
        return PublishError(
            f"{repo_id}: the repo changed while publishing (another push?): {what} was refused; {shows}. "
            "Pushes to one repo must be sequential: push again"
        )
    detail = " ".join(str(exc).split())  # one line
    return PublishError(f"{repo_id}: {what} failed ({type(exc).__name__}: {detail}); {shows}")


def _commit_media(
    api: Any,
    repo_id: str,
    files: list[MediaFile],
    head: str,
    max_files: int,
    max_bytes: int,
    result: PushResult,
) -> str:
    from huggingface_hub import CommitOperationAdd

    batches = list(_batches(files, max_files, max_bytes))
    for i, batch in enumerate(batches, 1):
        ops = [CommitOperationAdd(path_in_repo=f.uri, path_or_fileobj=f.local_path) for f in batch]
        try:
            info = api.create_commit(
                repo_id,
                ops,
                commit_message=f"owa-builders: add media for config {result.config_name} ({i}/{len(batches)})",
                repo_type="dataset",
                parent_commit=head,
            )
        except Exception as exc:
            raise _hub_error(
                exc, repo_id, f"uploading media (commit {i} of {len(batches)})",
                "no config changed (media committed before stays and is skipped next time)",
            ) from exc  # fmt: skip
        head = info.oid
        result.commits.append(head)
        logger.info("media commit %d/%d: %d file(s)", i, len(batches), len(batch))
    return head


def _commit_final(
    api: Any,
    repo_id: str,
    name: str,
    adds: list[tuple[str, Any]],
    stale: list[str],
    head: str,
    built: BuiltFolder,
    max_files: int,
) -> str:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    ops = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=content) for path, content in adds]
    shows = "the repo still shows its previous state (nothing of this config was published)"
    try:
        for start in range(0, len(ops), max_files):
            api.preupload_lfs_files(repo_id, ops[start : start + max_files], repo_type="dataset")
    except Exception as exc:
        raise _hub_error(exc, repo_id, "uploading the data files", shows) from exc
    deletes = [CommitOperationDelete(path_in_repo=path) for path in stale]
    rows = sum(s.num_rows for s in built.splits.values())
    try:
        info = api.create_commit(
            repo_id,
            [*ops, *deletes],
            commit_message=f"owa-builders: publish config {name} ({built.stage} stage, {rows} rows)",
            repo_type="dataset",
            parent_commit=head,
        )
    except Exception as exc:
        raise _hub_error(exc, repo_id, "the final commit (data files and card)", shows) from exc
    return str(info.oid)


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
                        help="files per media commit (default: 50)")  # fmt: skip
    from ..output import add_storage_option_argument

    add_storage_option_argument(parser)  # the build may be remote: s3://bucket/prefix


def run(args: argparse.Namespace) -> int:
    from ..output import parse_storage_options

    try:
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
            storage_options=parse_storage_options(args.storage_option),
        )
    except OwaError as exc:
        raise SystemExit(f"error: {exc}") from None
    shards = ", ".join(f"{split}: {len(paths)}" for split, paths in result.shards.items())
    print(
        f"published {args.folder} as config {result.config_name!r} of {result.repo_id} ({result.url}); "
        f"shards {shards}; media: {len(result.media_uploaded)} uploaded, {len(result.media_present)} already there; "
        f"{len(result.commits)} commit(s), last {result.commit[:12]}"
    )
    print(f'load it with: datasets.load_dataset("{result.repo_id}", "{result.config_name}")')
    return 0
