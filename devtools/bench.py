"""``owa-builders bench``: stage throughput next to baselines measured on the same files in the same run.

Each measurement runs in a fresh process (multiprocessing "spawn"); its peak memory is the
highest resident set size sampled during the workload minus the footprint after imports. Absolute rates drift
on shared machines: quote the ratio to the baseline printed beside them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

NS = 1_000_000_000


def _rss_mib() -> float:
    """Current resident set size of this process (MiB), from /proc (peak RSS as a fallback)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _PeakSampler:
    """Samples RSS every ``interval`` s in a thread; ``peak`` is the highest value seen (MiB)."""

    def __init__(self, interval: float = 0.01) -> None:
        import threading

        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, _rss_mib())

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


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


def _builder(stage: str, files: list[str], tokenizer: str, num_proc: int, **options: Any) -> dict[str, int]:
    """A builder end to end (MCAP -> Arrow cache through ``download_and_prepare``): messages read and rows."""
    import datasets

    import owa_builders  # noqa: F401

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        builder = datasets.load_dataset_builder(
            f"owa_builders/{stage}", data_files={"train": files}, cache_dir=cache, **options
        )
        t0 = time.perf_counter()
        if stage == "fsl":  # a fixed start-up cost: loading the tokenizer library and the tokenizer
            builder.stage.tokens  # noqa: B018
        setup = time.perf_counter() - t0
        builder.download_and_prepare(num_proc=num_proc if num_proc > 1 else None)
        reports = builder.reports
        out = {
            "messages": sum(sum(r.account.messages_in.values()) for r in reports),
            "rows": builder.info.splits["train"].num_examples,
            "setup_seconds": setup,
        }
        if stage == "fsl":
            out["events"] = sum(sum(r.account.out.values()) for r in reports)
            out["tokens"] = sum(r.stats.get("tokens", 0) for r in reports)
    return out


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
#: Targets (ratio to the limit probe, one process) of the issue "Conversion at the speed of the data".
TARGETS = {
    "event builder: MCAP -> Arrow": 0.3,
    "binned builder: MCAP -> Arrow": 0.25,
    "fsl builder: MCAP -> Arrow": 0.2,
}
#: 300 recorded hours at a typical density of 765k messages per hour.
MESSAGES_300H = 300 * 765_000


def _child(name: str, files: list[str], root: str, tokenizer: str, queue: Any) -> None:
    warnings.simplefilter("ignore")
    # Import everything the workload needs before taking the baseline footprint.
    import datasets  # noqa: F401
    import mcap.reader  # noqa: F401
    import transformers  # noqa: F401

    import owa_builders  # noqa: F401
    import owa_event.stage  # noqa: F401
    import owa_fsl.stage  # noqa: F401

    base = _rss_mib()
    workload, num_proc = WORKLOADS[name]
    with _PeakSampler() as sampler:
        t0 = time.perf_counter()
        counts = workload(files, root, tokenizer, num_proc)
        dt = time.perf_counter() - t0
    queue.put({**counts, "seconds": dt, "peak_mib": sampler.peak - base})


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


def rate(result: dict[str, Any]) -> float:
    """Messages per second of conversion (a fixed start-up cost, such as loading a tokenizer, excluded)."""
    return result["messages"] / (result["seconds"] - result.get("setup_seconds", 0.0))


def format_line(name: str, result: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    """One workload: messages, msgs/s, ratio to the limit probe (measured first, in the same run), peak RSS."""
    limit = rate(next(iter(results.values())))
    extra = ""
    if "tokens" in result:
        busy = result["seconds"] - result.get("setup_seconds", 0.0)
        extra = (
            f"  ({result['events'] / busy:,.0f} events/s, {result['tokens'] / busy:,.0f} tokens/s; "
            f"start-up {result.get('setup_seconds', 0.0):.1f} s)"
        )
    return (
        f"  {name:<40} {result['messages']:>9} msgs {rate(result):>10,.0f} msgs/s {rate(result) / limit:>6.3f} of the limit"
        f"  peak +{result['peak_mib']:,.0f} MiB{extra}"
    )


def format_verdict(results: dict[str, dict[str, Any]]) -> str:
    """The targets, the num_proc=2 speed-up and the projected time for 300 recorded hours."""
    limit = rate(next(iter(results.values())))
    lines = ["  targets (ratio to the limit probe, one process):"]
    for name, target in TARGETS.items():
        if name in results:
            got = rate(results[name]) / limit
            lines.append(
                f"    {name:<38} {got:.3f} (target >= {target}) {'ok' if got >= target else 'BELOW'}"
            )
    one, two = results.get("fsl builder: MCAP -> Arrow"), results.get("fsl builder, num_proc=2")
    if one and two:
        speedup = rate(two) / rate(one)
        minutes = (MESSAGES_300H / rate(two) + two.get("setup_seconds", 0.0)) / 60
        lines.append(f"    fsl num_proc=2 / one process: {speedup:.2f}x (target >= 1.8)")
        lines.append(
            f"    projected 300 h (~{MESSAGES_300H / 1e6:.0f}M messages) -> FSL with num_proc=2: {minutes:.1f} min "
            f"(target < 15); fsl peak per process +{one['peak_mib']:,.0f} MiB (target < 400)"
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
    parser.add_argument("--repeat", type=int, default=3, help="best of N")
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
        f"owa-builders bench: best of {args.repeat}, each run in a fresh process; corpora in {workdir}; "
        f"rates are ratios to the limit probe measured in the same run (absolute rates drift on shared machines)"
    )
    for minutes in args.minutes:
        t0 = time.perf_counter()
        files = corpus(workdir, minutes, args.episodes)
        size = sum(os.path.getsize(f) for f in files) / 2**20
        print(
            f"\ncorpus: {minutes:g} recorded minutes in {args.episodes} recording(s), {size:.1f} MiB of MCAP "
            f"(ready in {time.perf_counter() - t0:.1f} s)"
        )
        results: dict[str, dict[str, Any]] = {}
        names = [
            n for i, n in enumerate(WORKLOADS) if i == 0 or not args.only or any(w in n for w in args.only)
        ]
        for name in names:
            runs = [measure(name, files, str(Path(files[0]).parent), tokenizer) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            best["peak_mib"] = max(r["peak_mib"] for r in runs)
            results[name] = best
            print(format_line(name, best, results), flush=True)
        print(format_verdict(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
