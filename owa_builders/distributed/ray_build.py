"""Conversion on a Ray cluster: ``owa-builders build STAGE DATA -o OUT --engine ray`` / :func:`build_on_ray`.

One Ray actor task per recording: ``owa_event.pipeline.convert(stage, recording)`` written as one
Parquet shard of the publish layout (:mod:`owa_builders.distributed.layout`). Guarantees:

- **same rows, same order** as the single-machine build (``owa_builders.build.build``): shards are
  numbered in discovery order (splits in order, recordings sorted by ``episode_path``), rows in
  a shard are in stage order;
- **per-worker state built once**: each worker is an actor holding the stage, so the FSL
  tokenizer is built once per worker process, not per recording;
- **retries** are Ray's own: a worker process that dies is restarted and its task retried;
  transient Python errors (``OSError``) are retried; errors of ours (a bad recording) are not:
  ``on_bad_file="skip"`` skips the recording (a counted skip, an empty shard recording why);
  ``"error"`` stops handing out recordings, lets the ones in flight finish (their shards are
  kept), then raises the error naming the file;
- **resumable**: a shard is written under a temporary name and renamed when complete; its footer
  records the input's fingerprint (size + mtime, or the remote file's identity) and the config's
  (config fields, stage extras such as the tokenizer's contents, the package's code). A rerun keeps
  every shard whose fingerprints still match and converts only the rest; shards of another config
  or of recordings no longer there are removed;
- **the driver writes no rows**: only the stage's artifacts first (which checks the tokenizer
  before any work is sent out) and the build record (``owa_build.json``) last, atomically, once
  every shard is in place. A folder without the record is an unfinished build.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from owa_event.account import RecordingReport
from owa_event.errors import ConfigError, OwaError, OwaWarning, did_you_mean
from owa_event.pipeline import RecordingRef, Stage, config_dict, config_problems, convert

from ..build import BUILD_RECORD, STAGES, BuildFolderError, read_record
from ..builder import EmptyDatasetError, empty_message
from ..discovery import find_recordings, is_url, split_order
from .cluster import cluster_cpus, connected, describe_failure, run_on_actors
from .layout import (
    SHARD_META_KEY,
    check_config_folder,
    read_shard_meta,
    shard_files,
    shard_name,
    temp_files,
    temp_path,
)
from .progress import Progress
from .slices import DEFAULT_TASK_MINUTES, merge_reports, plan_windows, slice_ref, task_ns

#: Rows gathered before a Parquet row group is written (fewer, larger row groups read faster).
ROW_GROUP_ROWS = 8192
ROW_GROUP_BYTES = 64 * 2**20


class ShardFailedError(OwaError):
    """A recording whose conversion failed on Ray for a reason that is not its content (a bug, a
    worker lost more often than it may be restarted, an I/O error that persisted through retries)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem))


@dataclass(frozen=True)
class ShardJob:
    """One recording to convert into the shard at ``target`` (``meta``: the shard's footer record
    without its report; ``nbytes``: the input's size, for progress)."""

    ref: RecordingRef
    target: str
    meta: dict[str, Any]
    nbytes: int


@dataclass
class RayBuildResult:
    """What :func:`build_on_ray` made. ``reports`` are in row order (split after split);
    ``converted`` / ``reused`` list the episode paths converted in this run / kept from an earlier one;
    ``seconds``: the whole build; ``convert_seconds``: the Ray part (workers started, recordings converted);
    ``tasks_seconds``: from the first conversion task's start to the last one's end (wall clock);
    ``tasks_cpu_seconds``: the CPU time the conversion tasks used, all workers together;
    ``messages``: messages read by the recordings converted in this run."""

    output: str
    stage: str
    config_name: str
    shards: dict[str, list[str]]
    rows: dict[str, int]
    reports: list[RecordingReport] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: float = 0.0
    convert_seconds: float = 0.0
    tasks_seconds: float = 0.0
    tasks_cpu_seconds: float = 0.0
    messages: int = 0

    def load(self, cache_dir: str | None = None) -> Any:
        """The built dataset as a ``datasets.DatasetDict`` (:func:`load_build`)."""
        return load_build(self.output, cache_dir=cache_dir)


# ------------------------------------------------------------------------------------------
# The stage, its fingerprints, the inputs'
# ------------------------------------------------------------------------------------------
def stage_class(name: str) -> type[Stage]:
    """The stage class of a stage name (``event``, ``binned``, ``fsl``)."""
    import importlib

    from ..builder import StageBuilder
    from ..registry import BUILDERS

    if name not in STAGES:
        raise BuildFolderError(
            f"unknown stage {name!r}{did_you_mean(name, STAGES)} (stages: {', '.join(STAGES)})"
        )
    module = importlib.import_module(BUILDERS[STAGES[name]])
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, StageBuilder) and value is not StageBuilder:
            return value.STAGE
    raise BuildFolderError(f"no builder for stage {name!r} in {module.__name__}")  # pragma: no cover


def make_stage(
    stage: str | Stage, config: str | None = None, options: dict[str, Any] | None = None
) -> tuple[Stage, str]:
    """``(stage object, config name)``: a stage name is built from its preset ``config`` (default:
    the first) with ``options`` (validated, every problem at once); a :class:`Stage` is used as it is
    (``config`` names its folder, default its class's first preset)."""
    if isinstance(stage, Stage):
        if options:
            raise TypeError("options apply to a stage name; a Stage object already has its config")
        return stage, config or next(iter(type(stage).presets))
    cls = stage_class(stage)
    name = config or next(iter(cls.presets))
    return cls(cls.make_config(name, **(options or {}))), name


def config_fingerprint(stage: Stage) -> str:
    """Changes when anything that decides a shard's rows changes: the stage, its config fields, its
    extra inputs (:meth:`Stage.fingerprint`, e.g. a local tokenizer's contents) and the package's code."""
    from ..registry import code_hash

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


# ------------------------------------------------------------------------------------------
# The worker side: one recording -> one shard
# ------------------------------------------------------------------------------------------
def write_shard(stage: Stage, job: ShardJob) -> dict[str, Any]:
    """Convert ``job.ref`` into ``job.target`` (via a temporary file, renamed when complete).

    Returns ``{"report", "rows", "seconds"}``, or ``{"error": exc}`` for an error of ours (not
    retried). Any other exception propagates (Ray retries the transient ones), leaving no file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0, started, cpu0 = time.perf_counter(), time.time(), time.process_time()
    os.makedirs(os.path.dirname(job.target), exist_ok=True)
    tmp = temp_path(job.target)
    report = RecordingReport(job.ref.episode_path)
    rows = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OwaWarning)  # each is kept in the report
            schema = stage.schema()
            with pq.ParquetWriter(tmp, schema) as writer:
                pending: list[pa.RecordBatch] = []
                pending_rows = pending_bytes = 0
                for batch in convert(stage, job.ref, report):
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    pending_bytes += batch.nbytes
                    if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                        writer.write_table(pa.Table.from_batches(pending, schema=schema))
                        rows += pending_rows
                        pending, pending_rows, pending_bytes = [], 0, 0
                if pending:
                    writer.write_table(pa.Table.from_batches(pending, schema=schema))
                    rows += pending_rows
                record = {**job.meta, "report": report.to_dict()}
                writer.add_key_value_metadata({SHARD_META_KEY: json.dumps(record, sort_keys=True)})
        os.replace(tmp, job.target)
    except OwaError as exc:
        _remove(tmp)
        return {"error": _picklable(exc)}
    except BaseException:
        _remove(tmp)
        raise
    return {
        "report": report.to_dict(),
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "span": (started, time.time()),
        "cpu_seconds": time.process_time() - cpu0,
    }


class ShardWriter:
    """The Ray actor: holds one stage for the worker's lifetime. Per-process state (the FSL stage's
    tokenizer) is built once, when the worker starts, not inside its first recording's task."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        getattr(
            stage, "tokens", None
        )  # FslStage.tokens builds the expanded tokenizer; other stages have none

    def ready(self) -> bool:
        """Answers once the worker is up (its state built)."""
        return True

    def convert(self, job: ShardJob) -> dict[str, Any]:
        return write_shard(self.stage, job)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _picklable(exc: OwaError) -> OwaError:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return OwaError(str(exc))


# ------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------
def build_on_ray(
    stage: str | Stage,
    data_dir: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    *,
    config: str | None = None,
    options: dict[str, Any] | None = None,
    data_files: Any = None,
    storage_options: dict[str, Any] | None = None,
    address: str | None = None,
    num_workers: int | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
    max_retries: int = 3,
    progress: bool | TextIO = True,
    task_minutes: float | None = DEFAULT_TASK_MINUTES,
) -> RayBuildResult:
    """Build ``stage`` from ``data_dir`` / ``data_files`` into ``output`` on Ray (see the module docstring).

    ``output`` is a local folder every Ray node can write (a shared file system on a cluster).
    ``address``: the cluster (default: the Ray running in this process, else a new local one with
    ``ray_init_kwargs``). ``num_workers``: actors converting in parallel (default: the cluster's
    CPUs). ``progress``: ``True`` prints progress lines to stderr; a stream prints them there.
    ``task_minutes``: a recording longer than this is converted as several time-slice tasks, one shard
    each, with exactly the rows and account of one task (:mod:`owa_builders.distributed.slices`;
    ``None``: never split).
    Returns a :class:`RayBuildResult`; ``result.load()`` gives the ``DatasetDict``.
    """
    t0 = time.perf_counter()
    if output is None:
        raise BuildFolderError("the Ray build needs an output folder (output=..., -o DIR)")
    output = os.fspath(output)
    if is_url(output):
        raise BuildFolderError(
            f"output {output!r}: the Ray build writes to a folder on a (shared) file system, not a URL; "
            "build into a folder, then publish it"
        )
    if num_workers is not None and num_workers < 1:
        raise BuildFolderError(f"num_workers must be >= 1, got {num_workers}")
    try:
        slice_ns = task_ns(task_minutes)
    except ValueError as exc:
        raise BuildFolderError(str(exc)) from None
    the_stage, config_name = make_stage(stage, config, options)
    check_config_folder(config_name)
    recordings = find_recordings(data_dir, data_files, storage_options=storage_options)
    problems = config_problems(the_stage.config, recordings.all)  # topics named by the config vs the inputs'
    if problems:
        raise ConfigError(problems, where=f"{stage} config {config_name!r}")
    output = os.path.abspath(output)
    config_dir = os.path.join(output, config_name)
    os.makedirs(config_dir, exist_ok=True)
    _remove(os.path.join(output, BUILD_RECORD))  # the folder is an unfinished build until the end
    the_stage.save_artifacts(output)

    fingerprint = config_fingerprint(the_stage)
    jobs: list[ShardJob] = []
    for split, refs in recordings.splits.items():
        # One shard per recording, or per slice of a long one (in order): see slices.py.
        parts = [(ref, w, n) for ref in refs for n, w in _windows(the_stage, ref, slice_ns)]
        for index, (ref, window, n) in enumerate(parts):
            key = input_fingerprint(ref.path, storage_options)
            meta = {"split": split, "index": index, "count": len(parts), "episode_path": ref.episode_path,
                    "path": ref.path, "input": key, "config": fingerprint,
                    "slice": None if window is None else list(window)}  # fmt: skip
            target = os.path.join(config_dir, shard_name(split, index, len(parts)))
            jobs.append(ShardJob(slice_ref(ref, window), target, meta, int(key.get("size", 0)) // n))
    done = _reuse(config_dir, jobs, fingerprint)
    todo = [job for job in jobs if job.target not in done]

    stream = (sys.stderr if progress else None) if isinstance(progress, bool) else progress
    bar = Progress(
        "ray build", len(jobs), total_bytes=sum(j.nbytes for j in jobs), reused=len(done),
        reused_bytes=sum(j.nbytes for j in jobs if j.target in done), stream=stream,
    )  # fmt: skip
    if todo:
        bar.print(
            f"ray build: {len(todo)} of {len(jobs)} recordings to convert ({len(done)} already done) "
            f"into {config_dir}"
        )
    spans: list[tuple[float, float, float]] = []
    t_run = time.perf_counter()
    if todo:
        done.update(_run(todo, the_stage, bar, address, num_workers, ray_init_kwargs, max_retries, spans))
    convert_seconds = time.perf_counter() - t_run if todo else 0.0
    for name in temp_files(config_dir):  # left by workers that died mid-write
        _remove(os.path.join(config_dir, name))

    reports, report_splits = _recording_reports(the_stage, jobs, done)
    rows: dict[str, int] = {}
    for job in jobs:
        split = job.meta["split"]
        rows[split] = rows.get(split, 0) + int(done[job.target]["rows"])
    for split, n in rows.items():
        if n == 0:
            split_reports = [r for r, s in zip(reports, report_splits) if s == split]
            raise EmptyDatasetError(empty_message(the_stage.name, split, split_reports))
    shards = {split: [j.target for j in jobs if j.meta["split"] == split] for split in recordings.splits}
    _write_record(output, the_stage, config_name, data_dir, fingerprint, shards, rows, reports)
    converted = list(dict.fromkeys(j.ref.episode_path for j in todo))
    converted_targets = {j.target for j in todo}
    return RayBuildResult(
        output=output,
        stage=the_stage.name,
        config_name=config_name,
        shards=shards,
        rows=rows,
        reports=reports,
        converted=converted,
        reused=list(dict.fromkeys(j.ref.episode_path for j in jobs if j.target not in converted_targets)),
        seconds=time.perf_counter() - t0,
        convert_seconds=convert_seconds,
        tasks_seconds=max(e for _, e, _ in spans) - min(s for s, _, _ in spans) if spans else 0.0,
        tasks_cpu_seconds=sum(c for _, _, c in spans),
        messages=bar.events,
    )


def _windows(stage: Stage, ref: RecordingRef, slice_ns: int | None) -> list[tuple[int, Any]]:
    """``(slice count, window)`` per task of ``ref``: one ``(1, None)`` unless it is split."""
    windows = plan_windows(stage, ref, slice_ns)
    return [(1, None)] if windows is None else [(len(windows), w) for w in windows]


def _recording_reports(
    stage: Stage, jobs: list[ShardJob], done: dict[str, dict[str, Any]]
) -> tuple[list[RecordingReport], list[str]]:
    """One report per recording (a split one's slices merged), in row order, and each one's split."""
    reports: list[RecordingReport] = []
    splits: list[str] = []
    i = 0
    while i < len(jobs):
        j = i + 1
        while j < len(jobs) and jobs[j].meta["slice"] is not None and jobs[j].meta["slice"][0] is not None:
            j += 1  # the recording's next slices (a first slice starts at None)
        parts = [RecordingReport.from_dict(done[job.target]["report"]) for job in jobs[i:j]]
        reports.append(merge_reports(parts, stage, jobs[i].meta["path"]))
        splits.append(jobs[i].meta["split"])
        i = j
    return reports, splits


def _reuse(config_dir: str, jobs: list[ShardJob], fingerprint: str) -> dict[str, dict[str, Any]]:
    """Keep the shards of an earlier run that are still valid (moved to their new name when the
    numbering changed); remove every other shard and temporary file. ``{target: shard record}``."""
    for name in temp_files(config_dir):
        _remove(os.path.join(config_dir, name))
    found: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for name in shard_files(config_dir):
        path = os.path.join(config_dir, name)
        meta = read_shard_meta(path)
        if meta is not None and meta.get("config") == fingerprint and isinstance(meta.get("report"), dict):
            found[(str(meta.get("split")), str(meta.get("episode_path")), str(meta.get("slice")))] = (
                path,
                meta,
            )
    keep: dict[str, tuple[str, dict[str, Any]]] = {}
    for job in jobs:
        hit = found.get((job.meta["split"], job.meta["episode_path"], str(job.meta.get("slice"))))
        if hit is not None and hit[1].get("input") == job.meta["input"]:
            keep[job.target] = hit
    kept_paths = {path for path, _ in keep.values()}
    for name in shard_files(config_dir):
        path = os.path.join(config_dir, name)
        if path not in kept_paths:
            _remove(path)
    # Two phases, so a shard moving to a name another kept shard still holds never overwrites it.
    moving = {target: (path, meta) for target, (path, meta) in keep.items() if path != target}
    parked = {}
    for target, (path, _) in moving.items():
        parked[target] = temp_path(target)
        os.replace(path, parked[target])
    for target, tmp in parked.items():
        os.replace(tmp, target)
    return {target: meta for target, (_, meta) in keep.items()}


def _run(
    todo: list[ShardJob],
    stage: Stage,
    bar: Progress,
    address: str | None,
    num_workers: int | None,
    ray_init_kwargs: dict[str, Any] | None,
    max_retries: int,
    spans: list[tuple[float, float, float]],
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Convert ``todo`` on Ray: ``(target, shard record)`` per shard written (each task's wall-clock
    ``(start, end)`` and CPU seconds appended to ``spans``); raises after the jobs in flight finish when one fails
    (the error of the first failed recording in row order)."""
    order = {job.target: i for i, job in enumerate(todo)}
    failures: list[tuple[ShardJob, BaseException]] = []
    with connected(address, ray_init_kwargs) as ray:
        workers = min(num_workers or cluster_cpus(ray), len(todo))
        run = run_on_actors(ray, ShardWriter, (stage,), "convert", todo, num_workers=workers,
                            max_retries=max_retries)  # fmt: skip
        for outcome in run:
            if outcome is None:
                continue
            job: ShardJob = outcome.job
            value = outcome.value
            error = outcome.error if outcome.error is not None else (value or {}).get("error")
            if error is not None:
                failures.append((job, error))
                run.stop()
                continue
            report = value["report"]
            bar.update(sum(report["account"]["messages_in"].values()), job.nbytes)
            spans.append((*value["span"], value["cpu_seconds"]))
            yield job.target, {**job.meta, "report": report, "rows": value["rows"]}
    if failures:
        job, error = min(failures, key=lambda f: order[f[0].target])
        if isinstance(error, OwaError):
            raise error
        raise ShardFailedError(
            job.ref.path,
            f"conversion failed on Ray ({describe_failure(error)}), retried up to {max_retries} times",
        ) from error


def _write_record(
    output: str,
    stage: Stage,
    config_name: str,
    data_dir: Any,
    fingerprint: str,
    shards: dict[str, list[str]],
    rows: dict[str, int],
    reports: list[RecordingReport],
) -> None:
    from .. import __version__

    record = {
        "stage": stage.name,
        "builder": STAGES.get(stage.name),
        "config_name": config_name,
        "config": config_dict(stage.config, stage.config_class),
        "describe": stage.describe(),
        "version": __version__,
        "data_root": os.fspath(data_dir) if data_dir is not None else None,
        "splits": rows,
        "reports": [r.to_dict() for r in reports],
        "engine": "ray",
        "format": "parquet",
        "config_fingerprint": fingerprint,
        "shards": {
            split: [os.path.relpath(p, output).replace(os.sep, "/") for p in paths]
            for split, paths in shards.items()
        },  # fmt: skip
    }
    path = os.path.join(output, BUILD_RECORD)
    tmp = temp_path(path)
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True, default=list)
    os.replace(tmp, path)


def load_build(output: str | os.PathLike[str], *, cache_dir: str | None = None) -> Any:
    """A Ray build's folder as a ``datasets.DatasetDict`` (splits in order, rows in the local build's
    order), through ``datasets.load_dataset("parquet", data_files=...)``."""
    import datasets

    output = os.fspath(output)
    record = read_record(output)
    if record.get("format") != "parquet" or "shards" not in record:
        raise BuildFolderError(
            f"{output}: not a Ray build (use datasets.load_from_disk for `owa-builders build`)"
        )
    data_files: dict[str, list[str]] = {}
    for split in sorted(record["shards"], key=split_order):  # the record's keys are sorted by name
        names = record["shards"][split]
        paths = [os.path.join(output, *name.split("/")) for name in names]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise BuildFolderError(f"{output}: shard(s) missing: {', '.join(missing[:3])}")
        data_files[split] = paths
    return datasets.load_dataset("parquet", data_files=data_files, cache_dir=cache_dir)
