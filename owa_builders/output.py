"""THE layout of a build and its record, at any fsspec destination: what every driver writes and
every reader reads.

A build at ``DEST`` (a local folder or any fsspec URL: ``s3://bucket/prefix``, ``gs://...``,
``hf://datasets/org/name``, ``memory://...``) holds::

    DEST/owa_build.json                                    the build record (BuildRecord), written last
    DEST/<config_name>/<split>-{i:05d}-of-{n:05d}.parquet  recording i of the n of split (discovery order)
    DEST/<artifacts>                                       the stage's (FSL: tokenizer/)

- **one shard per recording**, named by the publish layout (:mod:`owa_builders.publish.layout`), so
  sorted names give the rows in the build's order and ``load_dataset("parquet", data_dir=DEST/<config>)``
  reads it; a recording without rows still has its (empty) shard, so the numbering has no holes;
- **each shard's footer** holds :data:`SHARD_META_KEY`: JSON with the split, index, count, episode
  path, input path, the input's fingerprint (size + mtime, or the remote file's identity), the
  config's fingerprint and the recording's report: what makes a build resumable (by any driver);
- **atomic**: a shard is written to a local temporary file, then renamed into place (local) or
  uploaded in one put (remote: an object appears only once complete), so a final name always holds
  a complete shard; local temporary names are hidden (``.<name>.<hex>.tmp``) and never taken for
  shards;
- **the record last**: :data:`RECORD_NAME` is removed when a build starts and written (atomically)
  when every shard is in place: a destination without it is an unfinished build.

Storage options (credentials, endpoint) go to fsspec only: never into the record, a footer or a
log line (:func:`redact` strips credentials from a URL before it is shown or recorded).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from owa_event.account import RecordingReport
from owa_event.pipeline import Stage, config_dict

from .discovery import is_url, split_order
from .errors import BuildFolderError
from .publish import layout as publish_layout

#: The build record at the root of a build.
RECORD_NAME = publish_layout.RECORD_NAME
#: Footer key of each shard's own record (JSON).
SHARD_META_KEY = "owa_shard"
#: The layout this module writes (in the record, for readers to check).
LAYOUT = "owa-parquet/1"
#: Rows gathered before a Parquet row group is written (fewer, larger row groups read faster).
ROW_GROUP_ROWS = 8192
ROW_GROUP_BYTES = 64 * 2**20
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")


# ------------------------------------------------------------------------------------------
# The record
# ------------------------------------------------------------------------------------------
@dataclass
class BuildRecord:
    """What a build made: written as :data:`RECORD_NAME` at the build's root, last."""

    #: The stage's name (``event``, ``binned``, ``fsl``).
    stage: str
    #: The config's name (a preset, e.g. ``fsl-smolvlm``); also the shards' folder.
    config_name: str
    #: Every field of the stage's config (JSON values), as the rows were made with.
    config: dict[str, Any]
    #: The stage's own description of its rows (``Stage.describe()``: period_ns, tokenizer_dir, ...).
    describe: dict[str, Any]
    #: The owa-builders version that built it.
    version: str
    #: The recordings' root as given (credentials removed), None when built from data_files only.
    data_root: str | None
    #: Rows per split, splits in order.
    splits: dict[str, int]
    #: Shard paths per split relative to the build's root (POSIX), in row order.
    shards: dict[str, list[str]]
    #: One report per recording (``RecordingReport.to_dict()``), split after split, in row order.
    reports: list[dict[str, Any]] = field(default_factory=list)
    #: The config's fingerprint (:func:`config_fingerprint`), also in every shard's footer.
    config_fingerprint: str = ""
    #: The driver that wrote it: ``local`` (through `datasets`) or ``ray``.
    engine: str = "local"
    #: The registered builder name (``owa_builders/<stage>``).
    builder: str | None = None
    #: The layout (:data:`LAYOUT`).
    layout: str = LAYOUT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, default=list).encode()

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = RECORD_NAME) -> BuildRecord:
        """The record of a parsed JSON object; :class:`BuildFolderError` naming ``where`` when it is not one."""
        names = {f.name for f in fields(cls)}
        required = ("stage", "config_name", "splits", "shards")
        if not isinstance(d, dict) or any(k not in d for k in required):
            missing = [k for k in required if not isinstance(d, dict) or k not in d]
            raise BuildFolderError(f"{where}: not a build record of this layout (missing {missing})")
        d = {k: v for k, v in d.items() if k in names}
        d.setdefault("config", {})
        d.setdefault("describe", {})
        d.setdefault("version", "?")
        d.setdefault("data_root", None)
        d["splits"] = {
            s: d["splits"][s] for s in sorted(d["splits"], key=split_order)
        }  # JSON keys are sorted
        d["shards"] = {s: list(d["shards"][s]) for s in sorted(d["shards"], key=split_order)}
        return cls(**d)

    def recording_reports(self) -> list[RecordingReport]:
        return [RecordingReport.from_dict(r) for r in self.reports]


# ------------------------------------------------------------------------------------------
# Fingerprints (what the footers record)
# ------------------------------------------------------------------------------------------
def config_fingerprint(stage: Stage) -> str:
    """Changes when anything that decides a shard's rows changes: the stage, its config fields, its
    extra inputs (:meth:`Stage.fingerprint`, e.g. a local tokenizer's contents) and the package's code."""
    from .registry import code_hash

    payload = {
        "stage": stage.name,
        "class": f"{type(stage).__module__}.{type(stage).__qualname__}",
        "config": config_dict(stage.config, stage.config_class),
        "extra": stage.fingerprint(),
        "schema": stage.schema().to_string(),
        "code": code_hash(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def input_fingerprint(path: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What identifies the current content of a recording: size and mtime (ns) of a local file; size
    and the filesystem's unique key (ETag, commit, mtime, ... as fsspec reports them) of a URL."""
    if not is_url(path):
        st = os.stat(path)
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    import fsspec

    fs, fpath = fsspec.core.url_to_fs(path, **(storage_options or {}))
    info = fs.info(fpath)
    return {"size": int(info.get("size") or 0), "ukey": str(fs.ukey(fpath))}


def redact(url: str | None) -> str | None:
    """``url`` without credentials in its authority (``s3://key:secret@bucket`` -> ``s3://bucket``)."""
    if url is None or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    authority, sep, path = rest.partition("/")
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    return f"{scheme}://{authority}{sep}{path}"


# ------------------------------------------------------------------------------------------
# Names
# ------------------------------------------------------------------------------------------
def shard_name(split: str, index: int, count: int) -> str:
    """``<split>-{index:05d}-of-{count:05d}.parquet``, named by the publish layout (the one place)."""
    return posixpath.basename(publish_layout.shard_path("x", split, index, count))


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """``(split, index, count)`` of a final shard name; ``None`` for any other file name."""
    parsed = publish_layout.parse_shard_path(f"x/{name}")
    return None if parsed is None else (parsed.split, parsed.index, parsed.count)


def check_config_folder(name: str) -> str:
    """``name`` when it can be the config's folder (:func:`owa_builders.publish.layout.check_config_name`)."""
    return publish_layout.check_config_name(name)


def temp_path(final: str) -> str:
    """A unique temporary name beside ``final`` (hidden, ``.tmp``; a reader never takes it for a shard)."""
    folder, name = os.path.split(final)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file made by :func:`temp_path`."""
    return bool(_TEMP_RE.match(name))


def temp_files(folder: str) -> list[str]:
    """Every temporary file of :func:`temp_path` in local ``folder`` (left by a crashed worker or run)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if is_temp_name(n))


# ------------------------------------------------------------------------------------------
# The destination
# ------------------------------------------------------------------------------------------
class Destination:
    """A build's root: a local folder or an fsspec URL (``storage_options`` go to fsspec only).

    Paths given to the methods are relative to the root (POSIX). Picklable (Ray ships it to workers):
    the filesystem is made again from the URL and options in each process.
    """

    def __init__(self, url: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> None:
        url = os.fspath(url)
        self.local = not is_url(url)
        self.url = os.path.abspath(url) if self.local else url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None}

    def __repr__(self) -> str:  # never shows the storage options
        return f"Destination({redact(self.url)!r})"

    @property
    def shown(self) -> str:
        """The URL to show or record (credentials removed)."""
        return str(redact(self.url))

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            if self.local:
                self._fs = fsspec.filesystem("file")
            else:
                self._fs, _ = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return self._fs

    @property
    def _root(self) -> str:
        if self.local:
            return self.url
        import fsspec

        _, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return root.rstrip("/")

    def path(self, rel: str = "") -> str:
        """The filesystem path of ``rel`` (a local path, or the path inside the fsspec filesystem)."""
        if self.local:
            return os.path.join(self.url, *[p for p in rel.split("/") if p])
        return f"{self._root}/{rel}" if rel else self._root

    def url_of(self, rel: str) -> str:
        """The full URL (or local path) of ``rel``, for `datasets` and fsspec readers."""
        return self.path(rel) if self.local else f"{self.url}/{rel}"

    # -- files ------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def isdir(self, rel: str = "") -> bool:
        return bool(self.fs.isdir(self.path(rel)))

    def names(self, rel: str) -> list[str]:
        """File names directly under folder ``rel`` (empty when it does not exist)."""
        if self.local:
            folder = self.path(rel)
            return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        try:
            entries = self.fs.ls(self.path(rel), detail=False, refresh=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(posixpath.basename(str(e).rstrip("/")) for e in entries)

    def remove(self, rel: str) -> None:
        """Remove file ``rel`` when it exists (asked first on a remote filesystem: some, such as the
        Hub's, answer a deletion of a missing file with their own error, not ``FileNotFoundError``)."""
        if not self.local:
            self.fs.invalidate_cache()
            if not self.fs.exists(self.path(rel)):
                return
        try:
            self.fs.rm_file(self.path(rel))
        except FileNotFoundError:
            pass
        if not self.local:
            self.fs.invalidate_cache()

    def move(self, src: str, dst: str) -> None:
        if self.local:
            os.replace(self.path(src), self.path(dst))
        else:
            self.fs.mv(self.path(src), self.path(dst))
            self.fs.invalidate_cache()

    def open(self, rel: str, mode: str = "rb") -> Any:
        return self.fs.open(self.path(rel), mode)

    def read_bytes(self, rel: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(rel)))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically (temporary file + rename locally, one put remotely)."""
        if self.local:
            final = self.path(rel)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            tmp = temp_path(final)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, final)
        else:
            self.fs.pipe_file(self.path(rel), data)
            self.fs.invalidate_cache()

    def local_temp(self, rel: str) -> str:
        """A temporary local file to write ``rel``'s content into before :meth:`publish`: beside the
        final file for a local destination (so the rename is atomic), else in the system's temp folder."""
        if self.local:
            final = self.path(rel)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            return temp_path(final)
        return os.path.join(tempfile.gettempdir(), f".owa-{uuid.uuid4().hex}.tmp")

    def publish(self, tmp: str, rel: str) -> None:
        """Move the complete local file ``tmp`` to ``rel`` (rename locally, one upload remotely)."""
        if self.local:
            os.replace(tmp, self.path(rel))
            return
        try:
            self.fs.put_file(tmp, self.path(rel))
        finally:
            _remove(tmp)
        self.fs.invalidate_cache()

    def put_folder(self, local_dir: str, rel: str) -> None:
        """Upload a local folder (a stage's artifact) to ``rel`` (a local build writes it in place)."""
        for root, _dirs, files in os.walk(local_dir):
            for name in sorted(files):
                src = os.path.join(root, name)
                sub = os.path.relpath(src, local_dir).replace(os.sep, "/")
                with open(src, "rb") as f:
                    self.write_bytes(f"{rel}/{sub}", f.read())

    def get_folder(self, rel: str, local_dir: str) -> str:
        """Download folder ``rel`` into ``local_dir`` (small artifacts only); returns ``local_dir``."""
        base = self.path(rel)
        for path in sorted(self.fs.find(base)):
            sub = str(path)[len(base) :].lstrip("/")
            target = os.path.join(local_dir, *sub.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(bytes(self.fs.cat_file(path)))
        return local_dir

    # -- the record -------------------------------------------------------------------------
    def has_record(self) -> bool:
        return self.exists(RECORD_NAME)

    def read_record(self) -> BuildRecord:
        """The build record; :class:`BuildFolderError` when the destination is not a complete build."""
        where = f"{self.shown}/{RECORD_NAME}" if not self.local else os.path.join(self.url, RECORD_NAME)
        if self.local and not os.path.isdir(self.url):
            raise BuildFolderError(
                f"{self.url}: no such folder (expected the output of `owa-builders build ... -o DIR`)"
            )
        try:
            raw = self.read_bytes(RECORD_NAME)
        except FileNotFoundError:
            raise BuildFolderError(
                f"{self.shown}: no {RECORD_NAME}: not a build written by `owa-builders build ... -o DEST` "
                "(or one that did not finish)"
            ) from None
        except OSError as exc:
            raise BuildFolderError(f"{where}: unreadable ({type(exc).__name__}: {exc})") from None
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise BuildFolderError(f"{where}: unreadable ({type(exc).__name__}: {exc})") from None
        return BuildRecord.from_dict(parsed, where)

    def write_record(self, record: BuildRecord) -> None:
        self.write_bytes(RECORD_NAME, record.to_json())

    # -- shards -----------------------------------------------------------------------------
    def shard_names(self, config: str) -> list[str]:
        """Every final shard name in ``<config>/``, sorted."""
        return [n for n in self.names(config) if parse_shard_name(n) is not None]

    def remove_temp_files(self, config: str) -> None:
        """Remove the temporary files left in ``<config>/`` by a worker that died mid-write (local only:
        a remote destination never holds one)."""
        if self.local:
            for name in self.names(config):
                if is_temp_name(name):
                    _remove(os.path.join(self.path(config), name))

    def shard_meta(self, rel: str) -> dict[str, Any] | None:
        """The :data:`SHARD_META_KEY` record of a shard, with ``rows``; ``None`` when the file is not a
        readable shard of ours (then it is converted again)."""
        import pyarrow.parquet as pq

        try:
            with self.open(rel) as f:
                meta = pq.read_metadata(f)
            raw = (meta.metadata or {}).get(SHARD_META_KEY.encode())
            if raw is None:
                return None
            record = json.loads(raw)
        except Exception:  # a damaged or foreign file: not a shard we can trust
            return None
        if not isinstance(record, dict):
            return None
        record["rows"] = meta.num_rows
        return record


def write_shard(
    dest: Destination, rel: str, schema: Any, batches: Iterable[Any], meta: Callable[[], dict[str, Any]]
) -> int:
    """Write ``batches`` (record batches or tables of ``schema``) as the shard ``rel`` of ``dest``,
    atomically, with ``meta()`` (called once the batches are exhausted) in its footer. Returns the
    rows written. On any exception nothing is left at ``rel`` nor in a temporary file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = dest.local_temp(rel)
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            pending: list[Any] = []
            pending_rows = pending_bytes = 0
            for batch in batches:
                pending.append(batch)
                pending_rows += batch.num_rows
                pending_bytes += batch.nbytes
                if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                    writer.write_table(_table(pa, pending, schema))
                    rows += pending_rows
                    pending, pending_rows, pending_bytes = [], 0, 0
            if pending:
                writer.write_table(_table(pa, pending, schema))
                rows += pending_rows
            writer.add_key_value_metadata({SHARD_META_KEY: json.dumps(meta(), sort_keys=True)})
        dest.publish(tmp, rel)
    except BaseException:
        _remove(tmp)
        raise
    return rows


def _table(pa: Any, parts: list[Any], schema: Any) -> Any:
    if all(isinstance(p, pa.RecordBatch) for p in parts):
        return pa.Table.from_batches(parts, schema=schema)
    return pa.concat_tables([p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in parts])


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------------------
# Readers
# ------------------------------------------------------------------------------------------
def read_record(
    dest: str | os.PathLike[str] | Destination, storage_options: dict[str, Any] | None = None
) -> BuildRecord:
    """The :class:`BuildRecord` of a build (local folder or URL); :class:`BuildFolderError` when it is not one."""
    d = dest if isinstance(dest, Destination) else Destination(dest, storage_options)
    return d.read_record()


def shard_urls(dest: Destination, record: BuildRecord) -> dict[str, list[str]]:
    """``{split: [URL or local path of each shard]}`` in row order; :class:`BuildFolderError` naming the
    missing shards."""
    out: dict[str, list[str]] = {}
    for split in sorted(record.shards, key=split_order):
        rels = record.shards[split]
        missing = [r for r in rels if not dest.exists(r)]
        if missing:
            raise BuildFolderError(f"{dest.shown}: shard(s) missing: {', '.join(missing[:3])}")
        out[split] = [dest.url_of(r) for r in rels]
    return out


def load_build(
    output: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
    cache_dir: str | None = None,
) -> Any:
    """A build (local folder or URL, any driver) as a ``datasets.DatasetDict``: splits in order, rows
    in the build's order. A local build goes through ``datasets.load_dataset("parquet", ...)``
    (memory-mapped, cached in ``cache_dir``); a remote one is read through fsspec into memory (for a
    large remote build, stream it: ``load_dataset("parquet", data_files=<its shard URLs>,
    streaming=True, storage_options=...)``)."""
    import datasets

    dest = Destination(output, storage_options)
    record = dest.read_record()
    files = shard_urls(dest, record)
    if dest.local:
        return datasets.load_dataset("parquet", data_files=files, cache_dir=cache_dir)
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = {}
    for split, rels in record.shards.items():
        tables = []
        for rel in rels:
            with dest.open(rel) as f:
                tables.append(pq.read_table(f))
        out[split] = datasets.Dataset(pa.concat_tables(tables).replace_schema_metadata(None), split=split)
    return datasets.DatasetDict(out)


def episode_ranges(episode_paths: Any, order: list[str]) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` of each recording of ``order`` in a split's ``episode_path`` column (rows of a
    recording are contiguous, recordings in ``order``; a recording without rows gives an empty range)."""
    import pyarrow.compute as pc

    counts = {str(v["values"]): int(v["counts"]) for v in pc.value_counts(episode_paths).to_pylist()}
    start = 0
    for episode in order:
        n = counts.pop(episode, 0)
        yield start, start + n
        start += n
    if counts:
        raise BuildFolderError(f"rows of recordings without a report: {sorted(counts)[:3]}")


# ------------------------------------------------------------------------------------------
# What every driver does before and after writing shards
# ------------------------------------------------------------------------------------------
def start_build(dest: Destination, stage: Stage, config_name: str) -> None:
    """Make ``dest`` an unfinished build of ``config_name``: its record removed (so it is never
    taken for a finished one), the stage's artifacts written (which checks them before any work)."""
    check_config_folder(config_name)
    if dest.local:
        os.makedirs(dest.path(config_name), exist_ok=True)
    dest.remove(RECORD_NAME)
    if dest.local:
        stage.save_artifacts(dest.url)
        return
    with tempfile.TemporaryDirectory(prefix="owa-artifacts-") as tmp:
        stage.save_artifacts(tmp)
        for name in sorted(os.listdir(tmp)):
            src = os.path.join(tmp, name)
            if os.path.isdir(src):
                dest.put_folder(src, name)
            else:
                with open(src, "rb") as f:
                    dest.write_bytes(name, f.read())


def finish_build(
    dest: Destination,
    stage: Stage,
    config_name: str,
    data_root: Any,
    fingerprint: str,
    metas: dict[str, list[dict[str, Any]]],
    engine: str,
    reports: list[dict[str, Any]] | None = None,
) -> BuildRecord:
    """Check that no split is empty, remove shards no longer listed (an earlier build's) and write the
    record (last). ``metas``: per split, each shard's footer record (with ``rows`` and ``report``) in row
    order. ``reports``: one per recording, when a recording spans several shards (time slices); by
    default each shard's report."""
    from . import __version__
    from .builder import EmptyDatasetError, empty_message
    from .registry import PREFIX

    rows = {split: sum(int(m["rows"]) for m in ms) for split, ms in metas.items()}
    for split, n in rows.items():
        if n == 0:
            reports = [RecordingReport.from_dict(m["report"]) for m in metas[split]]
            raise EmptyDatasetError(empty_message(stage.name, split, reports))
    record = BuildRecord(
        stage=stage.name,
        config_name=config_name,
        config=config_dict(stage.config, stage.config_class),
        describe=stage.describe(),
        version=__version__,
        data_root=redact(os.fspath(data_root)) if data_root is not None else None,
        splits=rows,
        shards={
            split: [f"{config_name}/{shard_name(split, i, len(ms))}" for i in range(len(ms))]
            for split, ms in metas.items()
        },
        reports=reports if reports is not None else [m["report"] for ms in metas.values() for m in ms],
        config_fingerprint=fingerprint,
        engine=engine,
        builder=PREFIX + stage.name,
    )
    listed = {rel for rels in record.shards.values() for rel in rels}
    for name in dest.shard_names(config_name):  # of an earlier build with other recordings
        if f"{config_name}/{name}" not in listed:
            dest.remove(f"{config_name}/{name}")
    dest.write_record(record)
    return record


def parse_storage_options(pairs: list[str] | None) -> dict[str, Any]:
    """``--storage-option KEY=VALUE`` pairs as fsspec storage options (VALUE is JSON when it parses:
    ``client_kwargs={"endpoint_url": "http://..."}``). Errors name the pair by position, never its value
    (it may be a secret)."""
    options: dict[str, Any] = {}
    for i, pair in enumerate(pairs or [], 1):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BuildFolderError(f"--storage-option #{i} is not KEY=VALUE")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


def add_storage_option_argument(parser: Any) -> None:
    """``--storage-option KEY=VALUE`` (repeatable), for commands reading or writing a build or recordings."""
    parser.add_argument(
        "--storage-option", action="append", default=[], metavar="KEY=VALUE", dest="storage_option",
        help="an fsspec storage option for remote recordings / output (e.g. key=..., secret=..., "
        "client_kwargs='{\"endpoint_url\": \"http://host:9000\"}'); repeatable; never written or shown",
    )  # fmt: skip
