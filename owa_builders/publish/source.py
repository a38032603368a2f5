"""A build, opened for publishing and previews, with every check that it is complete.

A build is THE layout of :mod:`owa_builders.output` (what every driver writes: the local build,
``num_proc``, the Ray build), at a local folder or any fsspec URL (``s3://...``): its record, one
Parquet shard per recording under ``<config>/``, the stage's artifacts. A remote build is read
where it is (shards streamed through fsspec, batch by batch); only its small artifacts (the FSL
tokenizer) are fetched into a local temporary folder.

A build is refused (:class:`IncompleteBuildError`, naming it and what is wrong) when its record is
missing, when a split of the record is absent or holds a different number of rows, when a split is
empty, when its columns are not the stage's schema for the recorded config, or when a stage
artifact (the FSL tokenizer) is missing. Rows are never loaded whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..build import STAGES
from ..discovery import split_order
from ..errors import IncompleteBuildError
from ..output import RECORD_NAME as BUILD_RECORD
from ..output import BuildRecord, Destination
from .layout import LayoutError, check_config_name, check_split_name, parse_shard_path

#: Rows per batch when reading a split.
BATCH_ROWS = 1024


@dataclass
class BuiltSplit:
    """One split of a built folder: its rows as a memory-mapped Arrow table or Parquet files."""

    name: str
    num_rows: int
    num_bytes: int  # Arrow bytes of the rows
    schema: pa.Schema
    table: pa.Table | None = None  # rows in memory (tests, previews of a table)
    files: list[str] = field(default_factory=list)  # the shards: local paths or fsspec paths, in row order
    fs: Any = None  # the fsspec filesystem of ``files`` when they are remote (None: local paths)

    def _open(self, path: str) -> pq.ParquetFile:
        return pq.ParquetFile(path if self.fs is None else self.fs.open(path, "rb"))

    def batches(
        self, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """The rows in order, ``batch_rows`` at a time (only ``columns`` when given)."""
        if self.table is not None:
            table = self.table.select(columns) if columns is not None else self.table
            yield from table.to_batches(max_chunksize=batch_rows)
            return
        for path in self.files:
            yield from self._open(path).iter_batches(batch_size=batch_rows, columns=columns)

    def read(self, start: int, stop: int) -> pa.Table:
        """Rows ``[start, stop)`` as one table (memory-mapped slices where possible)."""
        if self.table is not None:
            return self.table.slice(start, stop - start)
        parts: list[pa.Table] = []
        offset = 0
        for path in self.files:
            f = self._open(path)
            n = f.metadata.num_rows
            if offset < stop and offset + n > start:
                table = f.read()
                parts.append(
                    table.slice(max(0, start - offset), min(n, stop - offset) - max(0, start - offset))
                )
            offset += n
        return pa.concat_tables(parts) if parts else self.schema.empty_table()


@dataclass
class BuiltFolder:
    """A complete built folder: its record, splits (in split order) and artifacts."""

    path: str  # as shown (credentials removed)
    record: dict[str, Any]  # the BuildRecord as a dict (BuildRecord.to_dict())
    splits: dict[str, BuiltSplit]
    layout: str  # "parquet": THE layout of owa_builders.output
    features: Any  # datasets.Features of every split
    artifacts: str | None = None  # local folder holding the artifacts (a remote build's are fetched)
    local: bool = True  # whether the shards are local files (else read through fsspec)

    @property
    def stage(self) -> str:
        return str(self.record["stage"])

    @property
    def config_name(self) -> str:
        return str(self.record["config_name"])

    @property
    def data_root(self) -> str | None:
        root = self.record.get("data_root")
        return str(root) if root else None

    @property
    def num_rows(self) -> int:
        return sum(s.num_rows for s in self.splits.values())

    def tokenizer_dir(self) -> str | None:
        """The folder of the expanded tokenizer (FSL), None for stages without one."""
        name = (self.record.get("describe") or {}).get("tokenizer_dir")
        return os.path.join(self.artifacts or self.path, name) if name else None

    def reports(self) -> list[dict[str, Any]]:
        """The per-recording reports of the build (plain dicts, see ``RecordingReport.to_dict``)."""
        return list(self.record.get("reports") or [])


def open_built(folder: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> BuiltFolder:
    """Open a build (local folder or URL; ``storage_options`` for fsspec) and check that it is complete."""
    dest = Destination(folder, storage_options)
    shown = dest.url if dest.local else dest.shown
    rec = dest.read_record()
    record = rec.to_dict()
    problems: list[str] = []
    if rec.stage not in STAGES:
        raise IncompleteBuildError(f"{shown}: {BUILD_RECORD} names an unknown stage {rec.stage!r}")
    try:
        check_config_name(str(rec.config_name))
    except LayoutError as exc:
        raise IncompleteBuildError(f"{shown}: {BUILD_RECORD}: {exc}") from None
    if not isinstance(rec.splits, dict) or not rec.splits:
        raise IncompleteBuildError(f"{shown}: {BUILD_RECORD} lists no splits: nothing was built")
    splits = _parquet_splits(dest, rec)
    for split, rows in rec.splits.items():
        if split not in splits:
            problems.append(f"split {split!r} ({rows} rows in {BUILD_RECORD}) is missing")
        elif splits[split].num_rows != rows:
            problems.append(f"split {split!r} has {splits[split].num_rows} rows, {BUILD_RECORD} says {rows}")
    for split, built in splits.items():
        if split not in rec.splits:
            problems.append(f"split {split!r} is not in {BUILD_RECORD}")
        elif built.num_rows == 0:
            problems.append(f"split {split!r} is empty")
        try:
            check_split_name(split)
        except LayoutError as exc:
            problems.append(str(exc))
    problems += _schema_problems(record, splits)
    artifacts = dest.url if dest.local else _fetch_artifacts(dest, record)
    problems += _artifact_problems(artifacts, record)
    if problems:
        raise IncompleteBuildError(
            f"{shown}: not a complete build, refusing to use it:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    ordered = {s: splits[s] for s in sorted(splits, key=split_order)}
    features = _features(next(iter(ordered.values())).schema)
    return BuiltFolder(shown, record, ordered, "parquet", features, artifacts=artifacts, local=dest.local)


def _fetch_artifacts(dest: Destination, record: dict[str, Any]) -> str:
    """A local temporary folder holding a remote build's artifacts (the FSL tokenizer; small)."""
    tmp = tempfile.mkdtemp(prefix="owa-build-artifacts-")
    name = (record.get("describe") or {}).get("tokenizer_dir")
    if name and dest.isdir(name):
        dest.get_folder(name, os.path.join(tmp, name))
    return tmp


def stage_class(stage: str) -> type:
    """The :class:`owa_event.pipeline.Stage` subclass of a stage name (``event``, ``binned``, ``fsl``)."""
    from .. import stages

    return stages.stage_class(stage)


def _parquet_splits(dest: Destination, record: BuildRecord) -> dict[str, BuiltSplit]:
    """The splits of the record's shards, each checked readable and of one schema."""
    out: dict[str, BuiltSplit] = {}
    fs = None if dest.local else dest.fs
    for split, rels in record.shards.items():
        bad = [r for r in rels if parse_shard_path(r) is None or parse_shard_path(r).split != split]
        if bad or not rels:
            raise IncompleteBuildError(
                f"{dest.shown}: {BUILD_RECORD}: split {split!r} lists bad shard paths {bad[:3]}"
            )
        files = [dest.path(r) for r in rels]
        rows = nbytes = 0
        schema = None
        for path in files:
            try:
                f = pq.ParquetFile(path if fs is None else fs.open(path, "rb"))
                meta, file_schema = f.metadata, f.schema_arrow
            except FileNotFoundError:
                raise IncompleteBuildError(
                    f"{path}: missing ({BUILD_RECORD} lists it): the build did not finish; build again"
                ) from None
            except Exception as exc:
                raise IncompleteBuildError(
                    f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})"
                ) from None
            if schema is not None and not file_schema.equals(schema, check_metadata=False):
                raise IncompleteBuildError(f"{path}: its columns differ from the split's first shard")
            schema = schema or file_schema
            rows += meta.num_rows
            nbytes += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        assert schema is not None
        out[split] = BuiltSplit(split, rows, nbytes, schema, files=files, fs=fs)
    return out


def _schema_problems(record: dict[str, Any], splits: dict[str, BuiltSplit]) -> list[str]:
    try:
        cls = stage_class(str(record["stage"]))
        expected = cls(cls.make_config(None, **(record.get("config") or {}))).schema()
    except Exception as exc:
        return [f"the recorded config cannot be used ({type(exc).__name__}: {exc})"]
    problems = []
    for name, split in splits.items():
        if not split.schema.remove_metadata().equals(expected):
            problems.append(
                f"split {name!r}: columns {split.schema.names} do not match the {record['stage']} stage's schema "
                f"{expected.names} (or their types differ)"
            )
    return problems


def _artifact_problems(folder: str, record: dict[str, Any]) -> list[str]:
    name = (record.get("describe") or {}).get("tokenizer_dir")
    if not name:
        return []
    from owa_fsl.tokenizer import FSL_META

    path = os.path.join(folder, name)
    if not os.path.isfile(os.path.join(path, FSL_META)):
        return [f"the expanded tokenizer is missing ({path}/{FSL_META} not found)"]
    return []


def _features(schema: pa.Schema) -> Any:
    """The `datasets` features of a split (from the schema's metadata when present)."""
    import datasets

    meta = schema.metadata or {}
    if b"huggingface" in meta:
        try:
            info = json.loads(meta[b"huggingface"])
            return datasets.Features.from_dict(info["info"]["features"])
        except (ValueError, KeyError, TypeError):
            pass
    return datasets.Features.from_arrow_schema(schema)
