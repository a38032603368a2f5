"""``create_recordings_from_source``: a source -> OWAMcap recordings, episodes written in parallel on Ray.

The driver reads the items (``get_data_items``, shuffled when asked), groups them into episodes,
names them, and hands batches of episodes to Ray actors (each holding the source and the config,
unpickled once per worker); a worker loads, validates and transforms each item and writes the
episode (:class:`~owa_builders.ingest.writer.EpisodeWriter`). ``num_workers=0`` does the same in
this process, without Ray.

Bad items: an item whose ``validate`` says no is *skipped*; one whose loading, validation,
transform or conversion raises has *failed*. With ``on_bad_item="skip"`` both are left out and
listed (:class:`ItemProblem`: index, episode, reason); with ``"error"`` (the default) the first one
stops the run with :class:`ItemError` naming the item (episodes in flight finish; the failing
episode leaves no file). An item's index is its position in ``get_data_items()`` (with a source's
own grouping: its position in the order the episodes list the items).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..distributed.cluster import cluster_cpus, connected, describe_failure, run_on_actors
from ..distributed.progress import Progress
from ..errors import EpisodeExistsError, EpisodeNameError, ItemError, OwaError
from ..output import Destination, redact, temp_files
from .config import IngestionConfig, episode_name_problem
from .messages import ValueProblem
from .recordings import MANIFEST, IngestedRecordings
from .source import DataSource, Transform, as_source, groups_items
from .steps import item_writes
from .writer import META_NAME, EpisodeStats, EpisodeWriter, read_episode


@dataclass(frozen=True)
class ItemProblem:
    """An item left out: ``kind`` is ``"skipped"`` (validation said no) or ``"failed"`` (it raised)."""

    index: int
    episode: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to write: its index, name and ``(item index, item)`` pairs."""

    index: int
    name: str
    items: list[tuple[int, Any]]


@dataclass
class EpisodeResult:
    stats: EpisodeStats
    problems: list[ItemProblem] = field(default_factory=list)
    #: The episode was already at the destination (``resume``) and was not written again.
    resumed: bool = False


# ------------------------------------------------------------------------------------------
# The worker side
# ------------------------------------------------------------------------------------------
def write_episode(
    source: DataSource, config: IngestionConfig, job: EpisodeJob, dest: Destination | None = None
) -> EpisodeResult:
    """Write one episode to ``dest`` (default: ``config.output_dir``); raises :class:`ItemError` for a
    bad item unless the config skips them. With ``config.resume``, an episode whose recording is
    already at the destination is read back (its stats and left-out items), not written again."""
    dest = dest if dest is not None else Destination(config.output_dir)
    if config.resume:
        done = read_episode(dest, job.name)
        if done is not None:
            stats, problems = done
            return EpisodeResult(stats, [ItemProblem(**p) for p in problems], resumed=True)
        if not config.overwrite and dest.exists(f"{job.name}.mcap"):
            raise EpisodeExistsError(
                f"{dest.url_of(job.name + '.mcap') if dest.local else dest.shown + '/' + job.name + '.mcap'}: "
                f"a file of episode {job.name!r} is there that this ingestion did not write (no "
                f"{META_NAME!r} metadata): move it away, or pass overwrite=True to replace it"
            )
    writer = EpisodeWriter(dest, job.name, config)
    problems: list[ItemProblem] = []
    step = 0
    try:
        for index, item in job.items:
            writes, problem, steps = _prepare(source, config, job.name, index, item, step)
            if problem is None:
                try:
                    writer.check(writes)
                except ValueProblem as exc:
                    problem = ItemProblem(index, job.name, "failed", str(exc))
            if problem is not None:
                if config.on_bad_item != "skip":
                    raise ItemError(problem)
                problems.append(problem)
                step += 1  # a left-out item keeps its place in time (rate_hz)
                continue
            writer.write(writes)
            step += steps
        writer.problems = [p.to_dict() for p in problems]
        stats = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return EpisodeResult(stats, problems)


def _prepare(
    source: DataSource, config: IngestionConfig, episode: str, index: int, item: Any, step: int
) -> tuple[list[Any], ItemProblem | None, int]:
    try:
        loaded = source.load_item(item)
        verdict = source.validate(loaded)
    except Exception as exc:
        return [], ItemProblem(index, episode, "failed", f"load/validate raised {describe_failure(exc)}"), 0
    if verdict is False or isinstance(verdict, str):
        reason = verdict if isinstance(verdict, str) else "validate() returned False"
        return [], ItemProblem(index, episode, "skipped", f"failed validation: {reason}"), 0
    try:
        writes, steps = item_writes(source.transform_item(loaded), step, config)
        return writes, None, steps
    except ValueProblem as exc:
        return [], ItemProblem(index, episode, "failed", str(exc)), 0
    except Exception as exc:
        return [], ItemProblem(index, episode, "failed", f"transform_item raised {describe_failure(exc)}"), 0


class EpisodeWorker:
    """The Ray actor: holds the source and the config for the worker's lifetime."""

    def __init__(self, source: DataSource, config: IngestionConfig, dest: Destination) -> None:
        self.source, self.config, self.dest = source, config, dest

    def ready(self) -> bool:
        """Answers once the worker is up (its state built)."""
        return True

    def write(self, jobs: list[EpisodeJob]) -> list[EpisodeResult] | dict[str, Any]:
        results = []
        for job in jobs:
            try:
                results.append(write_episode(self.source, self.config, job, self.dest))
            except OwaError as exc:
                return {"error": exc, "done": results}
        return results


# ------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------
def create_recordings_from_source(
    source: Any,
    output_dir: str | os.PathLike[str] | None = None,
    transform_fn: Transform | None = None,
    items_per_episode: int | None = None,
    num_workers: int | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
    *,
    config: IngestionConfig | None = None,
    address: str | None = None,
    progress: bool | TextIO = True,
    storage_options: dict[str, Any] | None = None,
    **fields: Any,
) -> IngestedRecordings:
    """Turn ``source`` into OWAMcap recordings in ``output_dir`` (a local folder or any fsspec URL:
    ``s3://bucket/prefix``, ``hf://datasets/org/name``, ``memory://...``), in parallel on Ray.

    ``source``: a :class:`DataSource`, a PyTorch/Hugging Face dataset, a generator function or
    iterator, a list of files, or a callable returning items (:func:`as_source`). ``transform_fn``:
    item -> step(s) (mappings topic -> value). ``items_per_episode`` and ``num_workers`` set those
    config fields; ``fields`` any other :class:`IngestionConfig` field (``rate_hz``, ``time_unit``,
    ``message_types``, ``on_bad_item``, ...); ``config`` a whole config. ``ray_init_kwargs`` /
    ``address``: how to reach Ray when it is not running yet (default: a local Ray).
    ``storage_options`` go to fsspec for a remote ``output_dir`` (credentials, ``endpoint_url``):
    never written into a file or shown.

    Returns :class:`IngestedRecordings` (also saved as ``owa_ingest.json`` in ``output_dir``, last:
    it is removed when the run starts, so a destination without it is an unfinished ingestion;
    ``resume=True`` finishes one, keeping the episodes already there).
    """
    base = config if config is not None else IngestionConfig(output_dir=os.fspath(output_dir or ""))
    unknown = sorted(set(fields) - IngestionConfig.field_names())
    if unknown:
        from ..errors import ConfigError, did_you_mean

        raise ConfigError(
            [f"unknown field {n!r}{did_you_mean(n, IngestionConfig.field_names())}" for n in unknown],
            where="ingestion config",
        )
    overrides = dict(fields)
    if config is not None and output_dir is not None:
        overrides["output_dir"] = os.fspath(output_dir)
    if items_per_episode is not None:
        overrides["max_items_per_episode"] = items_per_episode
    if num_workers is not None:
        overrides["num_workers"] = num_workers
    cfg = dataclasses.replace(base, **overrides).validate()
    dest = Destination(os.fspath(cfg.output_dir), storage_options)
    cfg = dataclasses.replace(cfg, output_dir=dest.url)
    src = as_source(source, transform_fn)
    src.episode_prefix = cfg.episode_prefix
    if dest.local:
        os.makedirs(dest.url, exist_ok=True)
    dest.remove(MANIFEST)
    stream = (sys.stderr if progress else None) if isinstance(progress, bool) else progress
    bar = Progress("ingest", None, unit="episodes", rate_unit="items", stream=stream)
    t0 = time.perf_counter()
    results: list[EpisodeResult] = []
    folders: set[str] = set()

    def record(done: Iterable[EpisodeResult]) -> None:
        for r in done:
            results.append(r)
            bar.update(r.stats.items)

    batches = _batches(_jobs(src, cfg, folders), cfg.batch_size)
    error: BaseException | None = None
    try:
        if cfg.num_workers == 0:
            for batch in batches:
                record(write_episode(src, cfg, job, dest) for job in batch)
        else:
            error = _on_ray(src, cfg, dest, batches, record, address, ray_init_kwargs)
    finally:
        for folder in (
            folders if dest.local else ()
        ):  # files of workers that died mid-episode (Ray retried those episodes)
            for name in temp_files(folder):
                os.remove(os.path.join(folder, name))
    if error is not None:
        raise error
    recordings = IngestedRecordings.from_results(cfg.output_dir, [r.stats for r in results],
                                                 [p for r in results for p in r.problems],
                                                 storage_options=storage_options)  # fmt: skip
    _write_manifest(cfg, recordings, dest)
    counts = recordings.item_counts()
    resumed = sum(r.resumed for r in results)
    bar.print(
        f"ingest: {len(recordings.episodes)} episode(s) in {dest.shown} in {time.perf_counter() - t0:.1f} s"
        f"{f' ({resumed} already there)' if resumed else ''}: "
        f"{counts['written']} items written, {counts['skipped']} skipped, {counts['failed']} failed"
    )
    return recordings


def _jobs(src: DataSource, cfg: IngestionConfig, folders: set[str]) -> Iterator[EpisodeJob]:
    """The episodes, lazily (a generator source is read as the workers need work)."""
    items: Iterable[tuple[int, Any]] = enumerate(src.get_data_items())
    if cfg.shuffle:
        pairs = list(items)
        random.Random(cfg.seed).shuffle(pairs)
        items = pairs
    groups: Iterable[list[tuple[int, Any]]]
    if groups_items(src):
        groups = _numbered(src.group_items_into_episodes(item for _, item in items))
    else:
        groups = _chunks(items, cfg.max_items_per_episode)
    names: set[str] = set()
    for index, group in enumerate(groups):
        if not group:
            continue
        name = src.episode_name(index, [item for _, item in group])
        problem = episode_name_problem(name)
        if problem:
            raise EpisodeNameError(f"episode {index}: {problem}")
        if name in names:
            raise EpisodeNameError(f"episode {index}: the name {name!r} is already used by another episode")
        names.add(name)
        folders.add(os.path.dirname(os.path.join(cfg.output_dir, *f"{name}.mcap".split("/"))))
        yield EpisodeJob(index, name, group)


def _numbered(groups: Iterable[Iterable[Any]]) -> Iterator[list[tuple[int, Any]]]:
    """A source's own groups, each item numbered by its position in the order the groups list them."""
    position = 0
    for group in groups:
        numbered = [(position + i, item) for i, item in enumerate(group)]
        position += len(numbered)
        yield numbered


def _chunks(items: Iterable[tuple[int, Any]], size: int | None) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for pair in items:
        chunk.append(pair)
        if size is not None and len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _batches(jobs: Iterable[EpisodeJob], size: int) -> Iterator[list[EpisodeJob]]:
    batch: list[EpisodeJob] = []
    for job in jobs:
        batch.append(job)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _on_ray(
    src: DataSource,
    cfg: IngestionConfig,
    dest: Destination,
    batches: Iterator[list[EpisodeJob]],
    record: Any,
    address: str | None,
    ray_init_kwargs: dict[str, Any] | None,
) -> BaseException | None:
    """Write the batches on Ray; the error to raise (the first), once the batches in flight are done."""
    failures: list[tuple[int, BaseException]] = []
    with connected(address, ray_init_kwargs) as ray:
        workers = cfg.num_workers or cluster_cpus(ray)
        run = run_on_actors(ray, EpisodeWorker, (src, cfg, dest), "write", batches, num_workers=workers)
        for outcome in run:
            if outcome is None:
                continue
            first = outcome.job[0].index
            if outcome.error is not None:
                failures.append((first, outcome.error))
                run.stop()
            elif isinstance(outcome.value, dict):
                record(outcome.value["done"])
                failures.append((first, outcome.value["error"]))
                run.stop()
            else:
                record(outcome.value)
    if not failures:
        return None
    _, error = min(failures, key=lambda f: f[0])
    if isinstance(error, OwaError):
        return error
    return OwaError(f"ingestion failed on Ray ({describe_failure(error)})")


def _write_manifest(cfg: IngestionConfig, recordings: IngestedRecordings, dest: Destination) -> None:
    """The manifest, last and atomically (the storage options are not in ``cfg``: never written)."""
    config = {**dataclasses.asdict(cfg), "output_dir": redact(cfg.output_dir)}
    data = {"config": config, **recordings.to_dict()}
    dest.write_bytes(MANIFEST, json.dumps(data, indent=1, sort_keys=True).encode())
