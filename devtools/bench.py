"""``owa-builders bench``: stage throughput next to baselines measured on the same files in the same run.

Each measurement runs in a fresh process (multiprocessing "spawn"), and the rounds are interleaved
(round 1: every workload, round 2: every workload, ...), so the ratios compare runs made close in time.
For a builder, the **steady rate** is messages per second while rows are made (from the first call
of the builder's table generator to the end of the last, in any process); the **start-up** (imports,
builder and config, tokenizer, worker processes, up to the first table) and the finish (closing the
shards, the reports) are printed apart. Peak memory: the highest resident set size of any one process
of the workload (the child and its worker processes), sampled every 10 ms, and that minus the footprint
of the child before the workload's imports. Absolute rates drift on shared machines: quote the ratio to
the limit probe printed beside them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

NS = 1_000_000_000


def _rss_mib(pid: int | str = "self") -> float:
    """Resident set size of process ``pid`` (MiB), from /proc (this process's peak RSS as a fallback)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 if pid == "self" else 0.0


def _descendants(pid: int) -> list[int]:
    """The process ids below ``pid`` (from /proc/<pid>/task/*/children; empty where the kernel lacks it)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


class _PeakSampler:
    """Samples RSS every ``interval`` s in a thread: ``peak`` is the highest value of this process,
    ``peak_any`` the highest of this process or any process below it (worker processes) (MiB)."""

    def __init__(self, interval: float = 0.01) -> None:
        import threading

        self.peak = self.peak_any = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _sample(self) -> None:
        own = _rss_mib()
        self.peak = max(self.peak, own)
        self.peak_any = max(self.peak_any, own, *(_rss_mib(p) for p in _descendants(os.getpid())))

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# ------------------------------------------------------------------------------------------
# Workloads (each runs in a child process; returns {"messages": <messages read>, ...extra counts})
# ------------------------------------------------------------------------------------------
def limit_probe(files: list[str], root: str, tokenizer: str, num_proc: int = 1) -> dict[str, int]:
    """The read+parse limit of one core: chunk indexes, one decompress per chunk, a record walk,
    ``orjson.loads`` of every payload, file order (:func:`owa_event.mcap_chunks.limit_probe`)."""
    from owa_event.mcap_chunks import limit_probe as probe

    return {"messages": sum(probe(path) for path in files)}


def mcap_ordered(files: list[str], root: str, tokenizer: str, num_proc: int = 1) -> dict[str, int]:
    """The ``mcap`` library's reader in log-time order, ``orjson.loads`` of every payload."""
    import orjson
    from mcap.reader import make_reader

    n = 0
    for path in files:
        with open(path, "rb") as f:
            for _schema, _channel, message in make_reader(f).iter_messages(log_time_order=True):
                orjson.loads(message.data)
                n += 1
    return {"messages": n}


def _run_stage(stage: Any, files: list[str], root: str) -> tuple[int, list[Any]]:
    """Rows and the reports of ``stage`` over ``files`` (batches only, as a builder consumes them)."""
    from owa_builders.discovery import relative_path
    from owa_event.account import RecordingReport
    from owa_event.pipeline import RecordingRef, convert

    rows, reports = 0, []
    for path in files:
        report = RecordingReport(relative_path(path, root))
        for batch in convert(stage, RecordingRef(path, report.episode_path, root), report):
            rows += batch.num_rows
        reports.append(report)
    return rows, reports


def event_stage_rows(files: list[str], root: str, tokenizer: str, num_proc: int = 1) -> dict[str, int]:
    """owa_event: MCAP -> event row batches (McapMessage JSON), lossless default config."""
    from owa_event.stage import EventStage

    n, _ = _run_stage(EventStage(), files, root)
    return {"messages": n, "rows": n}


def _builder(stage: str, files: list[str], tokenizer: str, num_proc: int, **options: Any) -> dict[str, Any]:
    """A builder end to end (MCAP -> Arrow cache through ``download_and_prepare``): messages read, rows,
    and when rows were being made (``spans``: one ``(start, end)`` wall time per call of the table generator,
    written by each process, workers included, see :func:`_record_spans`)."""
    t0, cpu0 = time.time(), time.process_time()
    import datasets

    import owa_builders  # noqa: F401

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        spans_file = os.path.join(cache, "spans.txt")
        _record_spans(spans_file)
        builder = datasets.load_dataset_builder(
            f"owa_builders/{stage}",
            data_files={"train": files},
            cache_dir=os.path.join(cache, "c"),
            **options,
        )
        builder.download_and_prepare(num_proc=num_proc if num_proc > 1 else None)
        done = time.time()
        reports = builder.reports
        with open(spans_file) as f:
            spans = [tuple(map(float, line.split())) for line in f if line.strip()]
        main = [sp for sp in spans if int(sp[4]) == os.getpid()]
        out: dict[str, Any] = {
            "messages": sum(sum(r.account.messages_in.values()) for r in reports),
            "rows": builder.info.splits["train"].num_examples,
            "t0": t0,
            "spans": [sp[:2] for sp in spans],
            "done": done,
            "steady_cpu_seconds": sum(sp[3] - sp[2] for sp in spans),
        }
        if main:  # one process: its CPU before the first row (imports, builder, tokenizer)
            out["startup_cpu_seconds"] = min(sp[2] for sp in main) - cpu0
        if stage == "fsl":
            out["events"] = sum(sum(r.account.out.values()) for r in reports)
            out["tokens"] = sum(r.stats.get("tokens", 0) for r in reports)
    return out


def _record_spans(path: str) -> None:
    """Make every call of the builders' table generator append ``start end cpu_start cpu_end pid`` (wall
    time and this process's CPU time, s) to ``path`` (in this process and in the worker processes it forks)."""
    from owa_builders.builder import StageBuilder

    original = getattr(StageBuilder._generate_tables, "__wrapped__", StageBuilder._generate_tables)

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start, cpu = time.time(), time.process_time()
        yield from original(self, *args, **kwargs)
        with open(path, "a") as f:
            f.write(f"{start} {time.time()} {cpu} {time.process_time()} {os.getpid()}\n")

    timed.__wrapped__ = original  # type: ignore[attr-defined]
    StageBuilder._generate_tables = timed  # type: ignore[method-assign]


def event_builder(files: list[str], root: str, tokenizer: str, num_proc: int = 1) -> dict[str, int]:
    """``owa_builders/event``, default config (lossless)."""
    return _builder("event", files, tokenizer, num_proc)


def binned_builder(files: list[str], root: str, tokenizer: str, num_proc: int = 1) -> dict[str, int]:
    """``owa_builders/binned``, default config (10 fps)."""
    return _builder("binned", files, tokenizer, num_proc)


def fsl_builder(files: list[str], root: str, tokenizer: str, num_proc: int = 1) -> dict[str, int]:
    """``owa_builders/fsl`` config ``fsl-internvl3`` (default rates, 4096 tokens) with a local tokenizer."""
    return _builder("fsl", files, tokenizer, num_proc, name="fsl-internvl3", tokenizer_name=tokenizer)


#: name -> (workload, worker processes). The first is the limit probe every rate is compared with.
WORKLOADS: dict[str, tuple[Callable[..., dict[str, int]], int]] = {
    "limit probe: chunk scan + orjson.loads": (limit_probe, 1),
    "mcap reader, log-time order + orjson": (mcap_ordered, 1),
    "event stage: MCAP -> row batches": (event_stage_rows, 1),
    "event builder: MCAP -> Arrow": (event_builder, 1),
    "binned builder: MCAP -> Arrow": (binned_builder, 1),
    "fsl builder: MCAP -> Arrow": (fsl_builder, 1),
    "fsl builder, num_proc=2": (fsl_builder, 2),
}
#: Targets (steady rate as a ratio to the limit probe, one process) of issue 21, "The lossless event path at the limit".
TARGETS = {
    "event builder: MCAP -> Arrow": 0.3,
    "binned builder: MCAP -> Arrow": 0.3,
    "fsl builder: MCAP -> Arrow": 0.3,
}
#: 300 recorded hours at a typical density of 765k messages per hour.
MESSAGES_300H = 300 * 765_000


def _child(name: str, files: list[str], root: str, tokenizer: str, queue: Any) -> None:
    warnings.simplefilter("ignore")
    base = _rss_mib()  # before the workload's imports: the builders' start-up includes them
    workload, num_proc = WORKLOADS[name]
    if workload in (limit_probe, mcap_ordered, event_stage_rows):  # the read loops alone, imports done before
        import mcap.reader  # noqa: F401
        import numpy  # noqa: F401
        import orjson  # noqa: F401
        import pyarrow.compute  # noqa: F401

        import owa_builders.discovery  # noqa: F401
        import owa_event.stage  # noqa: F401

        base = _rss_mib()
    with _PeakSampler() as sampler:
        t0, cpu0 = time.perf_counter(), time.process_time()
        counts = workload(files, root, tokenizer, num_proc)
        dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    queue.put(
        {
            **counts,
            "seconds": dt,
            "cpu_seconds": cpu,
            "peak_rss_mib": sampler.peak_any,
            "peak_mib": sampler.peak_any - base,
        }
    )


def measure(name: str, files: list[str], root: str, tokenizer: str = "") -> dict[str, Any]:
    """Run workload ``name`` in a fresh process: its counts, ``seconds`` and ``peak_mib``."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, files, root, tokenizer, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def corpus(workdir: Path, minutes: float, episodes: int) -> list[str]:
    """``episodes`` recordings of ``minutes / episodes`` minutes each (cached in ``workdir``)."""
    from owa_builders.demo.recordings import SessionSpec, generate_recording

    folder = workdir / f"corpus-{minutes:g}min-{episodes}ep"
    done = folder / "DONE"
    paths = [folder / f"episode_{i:03d}.mcap" for i in range(episodes)]
    if not done.exists():
        for i, path in enumerate(paths):
            spec = SessionSpec(duration_s=minutes * 60 / episodes, seed=i, raw_mouse_hz=500.0)
            generate_recording(path, spec)
        done.write_text("ok")
    return [str(p) for p in paths]


def steady_seconds(result: dict[str, Any]) -> float:
    """Seconds of the steady part: while rows were being made (builders), else the whole workload."""
    spans = result.get("spans")
    if not spans:
        return float(result["seconds"])
    return max(end for _, end in spans) - min(start for start, _ in spans)


def startup_seconds(result: dict[str, Any]) -> float:
    """Seconds before the first row was being made (imports, builder, tokenizer, workers); 0 for the read loops."""
    spans = result.get("spans")
    return min(start for start, _ in spans) - result["t0"] if spans else 0.0


def finish_seconds(result: dict[str, Any]) -> float:
    """Seconds after the last row was made (closing and renaming shards, reports); 0 for the read loops."""
    spans = result.get("spans")
    return result["done"] - max(end for _, end in spans) if spans else 0.0


def cpu_rate(result: dict[str, Any]) -> float:
    """Steady messages per CPU second of the processes making rows (less sensitive to a shared machine's
    load than :func:`rate`, though not immune: caches and memory bandwidth are shared too)."""
    return result["messages"] / result.get("steady_cpu_seconds", result["cpu_seconds"])


def rate(result: dict[str, Any]) -> float:
    """Steady messages per second (start-up and finish excluded, see :func:`steady_seconds`)."""
    return result["messages"] / steady_seconds(result)


def format_line(name: str, result: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    """One workload: messages, steady msgs/s, ratio to the limit probe (measured in the same rounds), the
    spread of the per-round ratios, start-up and finish, peak RSS."""
    limit = rate(next(iter(results.values())))
    cpu_limit = cpu_rate(next(iter(results.values())))
    extra = ""
    if "spans" in result:
        cpu = result.get("startup_cpu_seconds")
        extra += f"  start-up {startup_seconds(result):.2f} s" + (
            f" ({cpu:.2f} s CPU)" if cpu is not None else ""
        )
        extra += f", finish {finish_seconds(result):.2f} s"
    if "tokens" in result:
        busy = steady_seconds(result)
        extra += f"  ({result['events'] / busy:,.0f} events/s, {result['tokens'] / busy:,.0f} tokens/s)"
    rounds = result.get("round_ratios", [])
    # the per-round ratios (each round's workload against that round's limit probe): range and median
    spread = (
        f"[{min(rounds):.2f}-{max(rounds):.2f}, median {statistics.median(rounds):.2f}]"
        if len(rounds) > 1
        else ""
    )
    return (
        f"  {name:<40} {result['messages']:>9} msgs {rate(result):>10,.0f} msgs/s {rate(result) / limit:>6.3f}"
        f" of the limit {spread:<24} (CPU: {cpu_rate(result) / cpu_limit:.3f})"
        f"  peak {result['peak_rss_mib']:,.0f} MiB (+{result['peak_mib']:,.0f}){extra}"
    )


def format_verdict(results: dict[str, dict[str, Any]]) -> str:
    """The targets, the num_proc=2 speed-up, FSL start-up and memory, and the projected time for 300 h."""
    limit = rate(next(iter(results.values())))
    cpu_limit = cpu_rate(next(iter(results.values())))
    lines = [
        "  targets (steady rate as a ratio to the limit probe, one process; per CPU second in brackets):"
    ]
    for name, target in TARGETS.items():
        if name in results:
            got = rate(results[name]) / limit
            lines.append(
                f"    {name:<38} {got:.3f} [{cpu_rate(results[name]) / cpu_limit:.3f}] (target >= {target}) "
                f"{'ok' if got >= target else 'BELOW'}"
            )
    one, two = results.get("fsl builder: MCAP -> Arrow"), results.get("fsl builder, num_proc=2")
    if one:
        start = startup_seconds(one)
        cpu = one.get("startup_cpu_seconds", float("nan"))
        lines.append(
            f"    fsl start-up (imports, builder, tokenizer): {start:.2f} s, {cpu:.2f} s CPU (target < 1.5) "
            f"{'ok' if start < 1.5 else 'ABOVE'}; peak per process {one['peak_rss_mib']:,.0f} MiB "
            f"(+{one['peak_mib']:,.0f} over the bare interpreter; target < 250)"
        )
    if one and two:
        speedup = rate(two) / rate(one)
        minutes = (MESSAGES_300H / rate(two) + startup_seconds(two)) / 60
        lines.append(f"    fsl num_proc=2 / one process: {speedup:.2f}x (target >= 1.8)")
        lines.append(
            f"    projected 300 h (~{MESSAGES_300H / 1e6:.0f}M messages) -> FSL with num_proc=2: {minutes:.1f} min "
            f"(target < 15); fsl num_proc=2 peak per process {two['peak_rss_mib']:,.0f} MiB"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options (used by ``owa-builders bench`` and ``python -m devtools.bench``)."""
    parser.add_argument(
        "--minutes",
        type=float,
        nargs="+",
        default=[4.0],
        help="corpus sizes in recorded minutes (default: %(default)s)",
    )
    parser.add_argument(
        "--episodes", type=int, default=4, help="recordings per corpus (default: %(default)s)"
    )
    parser.add_argument("--workdir", default=None, help="where corpora are generated and cached")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds, interleaved (best of N per workload; default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="WORD",
        help="run only the workloads whose name contains one of these words (the limit probe always runs)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="owa-builders bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or os.path.join(tempfile.gettempdir(), "owa-bench"))
    workdir.mkdir(parents=True, exist_ok=True)
    from owa_builders.demo.tokenizer import write_example_tokenizer

    tokenizer = str(write_example_tokenizer(workdir / "example-tokenizer"))
    print(
        f"owa-builders bench: best of {args.repeat} interleaved rounds, each run in a fresh process; corpora in "
        f"{workdir}; steady rates as ratios to the limit probe measured in the same rounds (absolute rates drift "
        f"on shared machines), [per-round ratio range]; peak RSS of the busiest process (+ over a bare interpreter)"
    )
    for minutes in args.minutes:
        t0 = time.perf_counter()
        files = corpus(workdir, minutes, args.episodes)
        size = sum(os.path.getsize(f) for f in files) / 2**20
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\nload average {load:.1f} on {os.cpu_count()} cores at the start")
        print(
            f"corpus: {minutes:g} recorded minutes in {args.episodes} recording(s), {size:.1f} MiB of MCAP "
            f"(ready in {time.perf_counter() - t0:.1f} s)"
        )
        names = [
            n for i, n in enumerate(WORKLOADS) if i == 0 or not args.only or any(w in n for w in args.only)
        ]
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for r in range(args.repeat):  # interleaved: round r measures every workload once
            for name in names:
                runs[name].append(measure(name, files, str(Path(files[0]).parent), tokenizer))
            print(f"  (round {r + 1} of {args.repeat} done)", flush=True)
        results: dict[str, dict[str, Any]] = {}
        for name in names:
            best = dict(max(runs[name], key=rate))
            best["peak_mib"] = max(r["peak_mib"] for r in runs[name])
            best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs[name])
            best["round_ratios"] = [
                rate(r) / rate(lim) for r, lim in zip(runs[name], runs[names[0]], strict=True)
            ]
            results[name] = best
            print(format_line(name, best, results), flush=True)
        print(format_verdict(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
