"""A built folder, opened for publishing and previews, with every check that it is complete.

Two layouts are read (both carry :data:`owa_builders.build.BUILD_RECORD`):

- ``owa-builders build STAGE DATA -o DIR``: ``DatasetDict.save_to_disk`` + artifacts + record;
- the Parquet layout of :mod:`owa_builders.publish.layout` (``DIR/<config>/<split>-i-of-n.parquet``),
  as a distributed build writes it.

A folder is refused (:class:`IncompleteBuildError`, naming the folder and what is wrong) when its
record is missing, when a split of the record is absent or holds a different number of rows,
when a split is empty, when its columns are not the stage's schema for the recorded config, or
when a stage artifact (the FSL tokenizer) is missing. Rows are never loaded whole: splits are
read as memory-mapped Arrow tables or Parquet files, batch by batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from owa_event.errors import OwaError

from ..build import BUILD_RECORD, STAGES, read_record
from ..discovery import split_order
from .layout import LayoutError, check_config_name, check_split_name, find_shards

#: Rows per batch when reading a split.
BATCH_ROWS = 1024


class IncompleteBuildError(OwaError):
    """A built folder that is empty, half written or inconsistent with its record."""


@dataclass
class BuiltSplit:
    """One split of a built folder: its rows as a memory-mapped Arrow table or Parquet files."""

    name: str
    num_rows: int
    num_bytes: int  # Arrow bytes of the rows
    schema: pa.Schema
    table: pa.Table | None = None  # saved-dataset layout
    files: list[str] = field(default_factory=list)  # Parquet layout: absolute paths, in row order

    def batches(
        self, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """The rows in order, ``batch_rows`` at a time (only ``columns`` when given)."""
        if self.table is not None:
            table = self.table.select(columns) if columns is not None else self.table
            yield from table.to_batches(max_chunksize=batch_rows)
            return
        for path in self.files:
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns)

    def read(self, start: int, stop: int) -> pa.Table:
        """Rows ``[start, stop)`` as one table (memory-mapped slices where possible)."""
        if self.table is not None:
            return self.table.slice(start, stop - start)
        parts: list[pa.Table] = []
        offset = 0
        for path in self.files:
            f = pq.ParquetFile(path)
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

    path: str
    record: dict[str, Any]
    splits: dict[str, BuiltSplit]
    layout: str  # "saved" or "parquet"
    features: Any  # datasets.Features of every split

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
        return os.path.join(self.path, name) if name else None

    def reports(self) -> list[dict[str, Any]]:
        """The per-recording reports of the build (plain dicts, see ``RecordingReport.to_dict``)."""
        return list(self.record.get("reports") or [])


def open_built(folder: str | os.PathLike[str]) -> BuiltFolder:
    """Open a built folder and check that it is complete (see the module docstring)."""
    folder = os.fspath(folder)
    record = read_record(folder)
    problems: list[str] = []
    stage = record.get("stage")
    config_name = record.get("config_name")
    if stage not in STAGES:
        raise IncompleteBuildError(f"{folder}: {BUILD_RECORD} names an unknown stage {stage!r}")
    try:
        check_config_name(str(config_name))
    except LayoutError as exc:
        raise IncompleteBuildError(f"{folder}: {BUILD_RECORD}: {exc}") from None
    expected = record.get("splits")
    if not isinstance(expected, dict) or not expected:
        raise IncompleteBuildError(f"{folder}: {BUILD_RECORD} lists no splits: nothing was built")
    if os.path.isfile(os.path.join(folder, "dataset_dict.json")):
        splits, layout = _saved_splits(folder), "saved"
    elif os.path.isdir(os.path.join(folder, str(config_name))):
        splits, layout = _parquet_splits(folder, str(config_name)), "parquet"
    else:
        raise IncompleteBuildError(
            f"{folder}: has {BUILD_RECORD} but no dataset (neither dataset_dict.json nor {config_name}/*.parquet): "
            "the build did not finish"
        )
    for split, rows in expected.items():
        if split not in splits:
            problems.append(f"split {split!r} ({rows} rows in {BUILD_RECORD}) is missing")
        elif splits[split].num_rows != rows:
            problems.append(f"split {split!r} has {splits[split].num_rows} rows, {BUILD_RECORD} says {rows}")
    for split, built in splits.items():
        if split not in expected:
            problems.append(f"split {split!r} is not in {BUILD_RECORD}")
        elif built.num_rows == 0:
            problems.append(f"split {split!r} is empty")
        try:
            check_split_name(split)
        except LayoutError as exc:
            problems.append(str(exc))
    problems += _schema_problems(record, splits)
    problems += _artifact_problems(folder, record)
    if problems:
        raise IncompleteBuildError(
            f"{folder}: not a complete build, refusing to use it:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    ordered = {s: splits[s] for s in sorted(splits, key=split_order)}
    return BuiltFolder(folder, record, ordered, layout, _features(next(iter(ordered.values())).schema))


def stage_class(stage: str) -> type:
    """The :class:`owa_event.pipeline.Stage` subclass of a stage name (``event``, ``binned``, ``fsl``)."""
    from .. import stages

    return stages.stage_class(stage)


def _saved_splits(folder: str) -> dict[str, BuiltSplit]:
    import datasets

    try:
        with open(os.path.join(folder, "dataset_dict.json")) as f:
            names = json.load(f)["splits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IncompleteBuildError(
            f"{folder}/dataset_dict.json: unreadable ({type(exc).__name__}: {exc})"
        ) from None
    out: dict[str, BuiltSplit] = {}
    for name in names:
        empty = _saved_empty_split(os.path.join(folder, name))
        if empty is not None:  # `datasets` saves an empty split without data files (and cannot load it)
            out[name] = BuiltSplit(name, 0, 0, empty, table=empty.empty_table())
            continue
        try:
            ds = datasets.load_from_disk(os.path.join(folder, name))
        except Exception as exc:  # a missing or truncated Arrow file: the save did not finish
            raise IncompleteBuildError(
                f"{folder}/{name}: the saved split cannot be read ({type(exc).__name__}: {exc}): "
                "the build did not finish; build again"
            ) from None
        table = ds.data.table
        out[name] = BuiltSplit(name, ds.num_rows, int(ds.data.nbytes), table.schema, table=table)
    return out


def _saved_empty_split(path: str) -> pa.Schema | None:
    """The schema of a saved split that has no data files (an empty split), else None."""
    import datasets

    try:
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        if state.get("_data_files"):
            return None
        with open(os.path.join(path, "dataset_info.json")) as f:
            features = datasets.Features.from_dict(json.load(f)["features"])
        return features.arrow_schema
    except (OSError, ValueError, KeyError, TypeError):
        return None  # load_from_disk reports what is wrong


def _parquet_splits(folder: str, config: str) -> dict[str, BuiltSplit]:
    try:
        found = find_shards(folder, config)
    except LayoutError as exc:
        raise IncompleteBuildError(str(exc)) from None
    out: dict[str, BuiltSplit] = {}
    for split, paths in found.items():
        files = [os.path.join(folder, p) for p in paths]
        rows = nbytes = 0
        schema = None
        for path in files:
            try:
                meta = pq.ParquetFile(path).metadata
                file_schema = pq.read_schema(path)
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
        out[split] = BuiltSplit(split, rows, nbytes, schema, files=files)
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
