"""Conversion on a Ray cluster: ``owa-builders build STAGE DATA -o OUT --engine ray`` / :func:`build_on_ray`.

One Ray actor task per recording: ``owa_event.pipeline.convert(stage, recording)`` written as one
Parquet shard of THE layout of a build (:mod:`owa_builders.output`, the local build's too), at any
destination: a local or shared folder, or an fsspec URL (``s3://``, ``gs://``, ``hf://datasets/...``,
``memory://``): every worker writes its shards there itself. Guarantees:

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
- **timeouts** (``task_timeout_s``): a task running longer is stopped (its worker replaced) and
  given again, up to ``max_retries`` times, then reported by name; the other recordings go on, and
  the build ends with :class:`ShardFailedError` naming every recording that did not finish, why,
  and what was converted / already done (nothing half-written: the record is not written);
- **resumable**: a shard is written to a temporary file and renamed or uploaded when complete; its footer
  records the input's fingerprint (size + mtime, or the remote file's identity) and the config's
  (config fields, stage extras such as the tokenizer's contents, the package's code). A rerun keeps
  every shard whose fingerprints still match and converts only the rest; shards of another config
  or of recordings no longer there are removed. What is read is what is at the destination, so a
  build into ``s3://...`` resumes from any machine;
- **the driver writes no rows**: only the stage's artifacts first (which checks the tokenizer
  before any work is sent out) and the build record (``owa_build.json``) last, atomically, once
  every shard is in place. A folder without the record is an unfinished build.

``storage_options`` (credentials, ``endpoint_url``, ...) go to fsspec for the recordings and the
output (``output_storage_options`` for the output when they differ); on the workers they are set as
fsspec's defaults for the recordings' protocol (``fsspec.config.conf``) in the worker's process. They
are never written (record, footers) nor shown (progress, errors).
"""

from __future__ import annotations

import os
import pickle
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from owa_event.account import RecordingReport
from owa_event.errors import ConfigError, OwaError, OwaWarning, did_you_mean
from owa_event.pipeline import RecordingRef, Stage, config_problems, convert

from ..build import STAGES
from ..discovery import Recordings, find_recordings, is_url
from ..errors import ShardFailedError
from ..output import (
    BuildFolderError,
    Destination,
    config_fingerprint,
    finish_build,
    input_fingerprint,
    load_build,
    redact,
    shard_name,
    start_build,
    temp_path,
    write_shard,
)
from .cluster import TaskTimeoutError, cluster_cpus, connected, describe_failure, run_on_actors
from .progress import Progress
from .slices import DEFAULT_TASK_MINUTES, merge_reports, plan_windows, slice_ref, task_ns

__all__ = ["RayBuildResult", "ShardFailedError", "build_on_ray", "load_build"]


@dataclass(frozen=True)
class ShardJob:
    """One recording to convert into the shard ``target`` (relative to the destination's root;
    ``meta``: the shard's footer record without its report; ``nbytes``: the input's size, for progress)."""

    ref: RecordingRef
    target: str
    meta: dict[str, Any]
    nbytes: int

    def __str__(self) -> str:
        return redact(self.ref.path) or self.ref.path


@dataclass
class RayBuildResult:
    """What :func:`build_on_ray` made. ``reports`` are in row order (split after split);
    ``converted`` / ``reused`` list the episode paths converted in this run / kept from an earlier one;
    ``seconds``: the whole build; ``convert_seconds``: the Ray part (workers started, recordings converted);
    ``tasks_seconds``: from the first conversion task's start to the last one's end (wall clock);
    ``tasks_cpu_seconds``: the CPU time the conversion tasks used, all workers together;
    ``messages``: messages read by the recordings converted in this run; ``storage_options``: those
    of the output, to read it back (never written anywhere)."""

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
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)

    def load(self, cache_dir: str | None = None) -> Any:
        """The built dataset as a ``datasets.DatasetDict`` (:func:`owa_builders.output.load_build`)."""
        return load_build(self.output, storage_options=self.storage_options, cache_dir=cache_dir)

    def summary(self) -> str:
        """One line: recordings converted / already done, rows per split, where."""
        rows = ", ".join(f"{split}: {n} rows" for split, n in self.rows.items())
        return (
            f"ray build {self.stage} ({self.config_name}): {len(self.converted)} converted, "
            f"{len(self.reused)} already done, 0 failed; {rows}; in {redact(self.output)}"
        )


# ------------------------------------------------------------------------------------------
# The stage, its fingerprints, the inputs'
# ------------------------------------------------------------------------------------------
def stage_class(name: str) -> type[Stage]:
    """The stage class of a stage name (``event``, ``binned``, ``fsl``)."""
    from .. import stages

    if name not in STAGES:
        raise BuildFolderError(
            f"unknown stage {name!r}{did_you_mean(name, STAGES)} (stages: {', '.join(STAGES)})"
        )
    return stages.stage_class(name)


def make_stage(
    stage: str | Stage,
    config: str | None = None,
    options: dict[str, Any] | None = None,
    recordings: Callable[[], Iterable[RecordingRef]] | None = None,
) -> tuple[Stage, str]:
    """``(stage object, config name)``: a stage name is built from its preset ``config`` (default:
    the first) with ``options``, validated once by the stage (``Stage.config_of``: every problem at
    once, topic names against the topics of ``recordings()``); a :class:`Stage` is used as it is
    (``config`` names its folder, default its class's first preset; only its topic names are checked
    against the inputs)."""
    if isinstance(stage, Stage):
        if options:
            raise TypeError("options apply to a stage name; a Stage object already has its config")
        name = config or next(iter(type(stage).presets))
        problems = config_problems(stage.config, recordings)
        if problems:
            raise ConfigError(problems, where=f"{stage.name} config {name!r}")
        return stage, name
    cls = stage_class(stage)
    name = config or next(iter(cls.presets))
    return cls(cls.config_of(name, options or {}, recordings)), name


# ------------------------------------------------------------------------------------------
# The worker side: one recording -> one shard
# ------------------------------------------------------------------------------------------
def convert_recording(stage: Stage, dest: Destination, job: ShardJob) -> dict[str, Any]:
    """Convert ``job.ref`` into the shard ``job.target`` of ``dest`` (written atomically, the footer last).

    Returns ``{"report", "rows", "seconds", ...}``, or ``{"error": exc}`` for an error of ours (not
    retried). Any other exception propagates (Ray retries the transient ones), leaving no file.
    """
    t0, started, cpu0 = time.perf_counter(), time.time(), time.process_time()
    report = RecordingReport(job.ref.episode_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OwaWarning)  # each is kept in the report
            rows = write_shard(
                dest, job.target, stage.schema(), convert(stage, job.ref, report),
                lambda: {**job.meta, "report": report.to_dict()},
            )  # fmt: skip
    except OwaError as exc:
        return {"error": _picklable(exc)}
    return {
        "report": report.to_dict(),
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "span": (started, time.time()),
        "cpu_seconds": time.process_time() - cpu0,
    }


class ShardWriter:
    """The Ray actor: holds one stage and the destination for the worker's lifetime. Per-process
    state (the FSL stage's tokenizer) is built once, when the worker starts, not inside its first
    recording's task; the recordings' storage options become fsspec's defaults in this process."""

    def __init__(self, stage: Stage, dest: Destination, inputs: dict[str, dict[str, Any]]) -> None:
        import fsspec.config

        for protocol, options in inputs.items():
            fsspec.config.conf[protocol] = {**fsspec.config.conf.get(protocol, {}), **options}
        self.stage = stage
        self.dest = dest
        getattr(
            stage, "tokens", None
        )  # FslStage.tokens builds the expanded tokenizer; other stages have none

    def ready(self) -> bool:
        """Answers once the worker is up (its state built)."""
        return True

    def convert(self, job: ShardJob) -> dict[str, Any]:
        return convert_recording(self.stage, self.dest, job)


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
    output_storage_options: dict[str, Any] | None = None,
    address: str | None = None,
    num_workers: int | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
    max_retries: int = 3,
    task_timeout_s: float | None = None,
    progress: bool | TextIO = True,
    task_minutes: float | None = DEFAULT_TASK_MINUTES,
    runtime_env: dict[str, Any] | None = None,
) -> RayBuildResult:
    """Build ``stage`` from ``data_dir`` / ``data_files`` into ``output`` on Ray (see the module docstring).

    ``output``: a folder every Ray node can write (a shared file system), or an fsspec URL every
    node can reach (``s3://bucket/prefix``, ...). ``storage_options``: fsspec options of the
    recordings and (unless ``output_storage_options``) of the output. ``address``: the cluster
    (default: the Ray running in this process, else a new local one with ``ray_init_kwargs``).
    ``num_workers``: actors converting in parallel (default: the cluster's CPUs). ``task_timeout_s``:
    the longest one recording may take (default: no limit). ``progress``: ``True`` prints progress
    lines and the summary to stderr; a stream prints them there.
    ``task_minutes``: a recording longer than this is converted as several time-slice tasks, one shard
    each, with exactly the rows and account of one task (:mod:`owa_builders.distributed.slices`;
    ``None``: never split). ``runtime_env``: Ray's runtime environment of the converting actors
    (e.g. ``{"env_vars": {"HF_HUB_OFFLINE": "0"}}`` when the workers' own environment keeps them off
    the Hub). Returns a :class:`RayBuildResult`; ``result.load()`` gives the ``DatasetDict``.
    """
    t0 = time.perf_counter()
    if output is None:
        raise BuildFolderError("the Ray build needs an output (output=..., -o DEST: a folder or a URL)")
    if num_workers is not None and num_workers < 1:
        raise BuildFolderError(f"num_workers must be >= 1, got {num_workers}")
    if task_timeout_s is not None and task_timeout_s <= 0:
        raise BuildFolderError(f"task_timeout_s must be > 0, got {task_timeout_s}")
    out_options = storage_options if output_storage_options is None else output_storage_options
    dest = Destination(output, out_options)
    try:
        slice_ns = task_ns(task_minutes)
    except ValueError as exc:
        raise BuildFolderError(str(exc)) from None
    found: list[Recordings] = []

    def discovered() -> Recordings:  # once, and only when needed by the check (or below)
        if not found:
            found.append(find_recordings(data_dir, data_files, storage_options=storage_options))
        return found[0]

    the_stage, config_name = make_stage(stage, config, options, lambda: discovered().all())
    recordings = discovered()
    start_build(dest, the_stage, config_name)

    fingerprint = config_fingerprint(the_stage)
    jobs: list[ShardJob] = []
    for split, refs in recordings.splits.items():
        # One shard per recording, or per slice of a long one (in order): see slices.py.
        parts = [(ref, w, n) for ref in refs for n, w in _windows(the_stage, ref, slice_ns)]
        for index, (ref, window, n) in enumerate(parts):
            key = input_fingerprint(ref.path, storage_options)
            meta = {"split": split, "index": index, "count": len(parts), "episode_path": ref.episode_path,
                    "path": redact(ref.path), "input": key, "config": fingerprint,
                    "slice": None if window is None else list(window)}  # fmt: skip
            target = f"{config_name}/{shard_name(split, index, len(parts))}"
            jobs.append(ShardJob(slice_ref(ref, window), target, meta, int(key.get("size", 0)) // n))
    done = _reuse(dest, config_name, jobs, fingerprint)
    todo = [job for job in jobs if job.target not in done]

    stream = (sys.stderr if progress else None) if isinstance(progress, bool) else progress
    bar = Progress(
        "ray build", len(jobs), total_bytes=sum(j.nbytes for j in jobs), reused=len(done),
        reused_bytes=sum(j.nbytes for j in jobs if j.target in done), stream=stream,
    )  # fmt: skip
    if todo:
        bar.print(
            f"ray build: {len(todo)} of {len(jobs)} recordings to convert ({len(done)} already done) "
            f"into {redact(dest.url_of(config_name))}"
        )
    spans: list[tuple[float, float, float]] = []
    failures: list[tuple[ShardJob, BaseException]] = []
    t_run = time.perf_counter()
    if todo:
        inputs = _input_options(recordings.all(), storage_options)
        actor_args = (the_stage, dest, inputs)
        run = _run(todo, actor_args, bar, address, num_workers, ray_init_kwargs, max_retries, task_timeout_s,
                   spans, failures, runtime_env)  # fmt: skip
        done.update(run)
    convert_seconds = time.perf_counter() - t_run if todo else 0.0
    dest.remove_temp_files(config_name)  # left by workers that died mid-write
    converted = [j.ref.episode_path for j in todo if j.target in done]
    reused = [j.ref.episode_path for j in jobs if j not in todo]
    if failures:
        bar.print(_failure_summary(failures, converted, reused, max_retries))
        _raise(failures, converted, reused, max_retries, {j.target: i for i, j in enumerate(jobs)})

    metas = {split: [done[j.target] for j in jobs if j.meta["split"] == split] for split in recordings.splits}
    reports = _recording_reports(the_stage, jobs, done)  # a split recording's slices merged into one
    record = finish_build(dest, the_stage, config_name, data_dir, fingerprint, metas, "ray", reports=reports)
    converted = list(dict.fromkeys(converted))
    result = RayBuildResult(
        output=dest.url,
        stage=the_stage.name,
        config_name=config_name,
        shards={split: [dest.url_of(rel) for rel in rels] for split, rels in record.shards.items()},
        rows=record.splits,
        reports=record.recording_reports(),
        converted=converted,
        reused=list(dict.fromkeys(r for r in reused if r not in converted)),
        seconds=time.perf_counter() - t0,
        convert_seconds=convert_seconds,
        tasks_seconds=max(e for _, e, _ in spans) - min(s for s, _, _ in spans) if spans else 0.0,
        tasks_cpu_seconds=sum(c for _, _, c in spans),
        messages=bar.events,
        storage_options=dict(out_options or {}),
    )
    bar.print(result.summary())
    return result


def _input_options(
    refs: list[RecordingRef], storage_options: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """``{protocol: storage_options}`` for the recordings' URL protocols (none for local files)."""
    if not storage_options:
        return {}
    protocols = {ref.path.split("://", 1)[0] for ref in refs if is_url(ref.path)}
    return {p: dict(storage_options) for p in sorted(protocols)}


def _windows(stage: Stage, ref: RecordingRef, slice_ns: int | None) -> list[tuple[int, Any]]:
    """``(slice count, window)`` per task of ``ref``: one ``(1, None)`` unless it is split."""
    windows = plan_windows(stage, ref, slice_ns)
    return [(1, None)] if windows is None else [(len(windows), w) for w in windows]


def _recording_reports(
    stage: Stage, jobs: list[ShardJob], done: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One report per recording (a split one's slices merged), in row order, as dicts."""
    reports: list[dict[str, Any]] = []
    i = 0
    while i < len(jobs):
        j = i + 1
        while j < len(jobs) and jobs[j].meta["slice"] is not None and jobs[j].meta["slice"][0] is not None:
            j += 1  # the recording's next slices (a first slice starts at None)
        if j == i + 1:
            reports.append(done[jobs[i].target]["report"])
        else:
            parts = [RecordingReport.from_dict(done[job.target]["report"]) for job in jobs[i:j]]
            reports.append(merge_reports(parts, stage, jobs[i].meta["path"]).to_dict())
        i = j
    return reports


def _reuse(
    dest: Destination, config: str, jobs: list[ShardJob], fingerprint: str
) -> dict[str, dict[str, Any]]:
    """Keep the shards already at the destination that are still valid (moved to their new name when
    the numbering changed); remove every other shard and temporary file. ``{target: shard record}``."""
    dest.remove_temp_files(config)
    found: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    names = dest.shard_names(config)
    for name in names:
        rel = f"{config}/{name}"
        meta = dest.shard_meta(rel)
        if meta is not None and meta.get("config") == fingerprint and isinstance(meta.get("report"), dict):
            found[(str(meta.get("split")), str(meta.get("episode_path")), str(meta.get("slice")))] = (
                rel,
                meta,
            )
    keep: dict[str, tuple[str, dict[str, Any]]] = {}
    for job in jobs:
        hit = found.get((job.meta["split"], job.meta["episode_path"], str(job.meta.get("slice"))))
        if hit is not None and hit[1].get("input") == job.meta["input"]:
            keep[job.target] = hit
    kept = {rel for rel, _ in keep.values()}
    for name in names:
        if f"{config}/{name}" not in kept:
            dest.remove(f"{config}/{name}")
    # Two phases, so a shard moving to a name another kept shard still holds never overwrites it.
    moving = {target: rel for target, (rel, _) in keep.items() if rel != target}
    parked = {target: temp_path(target).replace(os.sep, "/") for target in moving}
    for target, rel in moving.items():
        dest.move(rel, parked[target])
    for target, tmp in parked.items():
        dest.move(tmp, target)
    by_target = {job.target: job for job in jobs}
    return {
        target: {**by_target[target].meta, "report": meta["report"], "rows": meta["rows"]}
        for target, (_, meta) in keep.items()
    }


def _run(
    todo: list[ShardJob],
    actor_args: tuple[Any, ...],
    bar: Progress,
    address: str | None,
    num_workers: int | None,
    ray_init_kwargs: dict[str, Any] | None,
    max_retries: int,
    task_timeout_s: float | None,
    spans: list[tuple[float, float, float]],
    failures: list[tuple[ShardJob, BaseException]],
    runtime_env: dict[str, Any] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Convert ``todo`` on Ray: ``(target, shard record)`` per shard written (each task's wall-clock
    ``(start, end)`` and CPU seconds appended to ``spans``). A failed recording goes to ``failures``;
    an error of ours (a bad recording, ``on_bad_file="error"``) stops handing out recordings (those in
    flight finish), any other failure (timeouts, workers lost) lets the others go on."""
    with connected(address, ray_init_kwargs) as ray:
        workers = min(num_workers or cluster_cpus(ray), len(todo))
        run = run_on_actors(ray, ShardWriter, actor_args, "convert", todo, num_workers=workers,
                            max_retries=max_retries, task_timeout_s=task_timeout_s,
                            runtime_env=runtime_env)  # fmt: skip
        for outcome in run:
            if outcome is None:
                continue
            job: ShardJob = outcome.job
            value = outcome.value
            error = outcome.error if outcome.error is not None else (value or {}).get("error")
            if error is not None:
                failures.append((job, error))
                if isinstance(error, OwaError) and not isinstance(error, TaskTimeoutError):
                    run.stop()
                continue
            report = value["report"]
            bar.update(sum(report["account"]["messages_in"].values()), job.nbytes)
            spans.append((*value["span"], value["cpu_seconds"]))
            yield job.target, {**job.meta, "report": report, "rows": value["rows"]}


def _why(error: BaseException, max_retries: int) -> str:
    if isinstance(error, OwaError):
        return str(error)
    return f"conversion failed on Ray ({describe_failure(error)}), retried up to {max_retries} times"


def _failure_summary(
    failures: list[tuple[ShardJob, BaseException]], converted: list[str], reused: list[str], max_retries: int
) -> str:
    lines = [
        f"ray build: {len(converted)} converted, {len(reused)} already done, {len(failures)} failed "
        "(no build record written; run again to convert only what is missing):"
    ]
    lines += [f"  - {job}: {_why(error, max_retries)}" for job, error in failures]
    return "\n".join(lines)


def _raise(
    failures: list[tuple[ShardJob, BaseException]],
    converted: list[str],
    reused: list[str],
    max_retries: int,
    order: dict[str, int],
) -> None:
    """Raise for the failed recordings: the error of ours of the first in row order when there is one
    (a bad recording), else :class:`ShardFailedError` naming every recording that did not finish."""
    failures = sorted(failures, key=lambda f: order[f[0].target])
    ours = [(j, e) for j, e in failures if isinstance(e, OwaError) and not isinstance(e, TaskTimeoutError)]
    if ours:
        raise ours[0][1]
    job, error = failures[0]
    problem = _why(error, max_retries)
    if len(failures) > 1:
        others = "; ".join(f"{j}: {_why(e, max_retries)}" for j, e in failures[1:])
        problem += f"; also did not finish: {others}"
    problem += f" ({len(converted)} converted, {len(reused)} already done, {len(failures)} failed)"
    raise ShardFailedError(str(job), problem) from error
