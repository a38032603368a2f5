"""``owa-builders bench``: stage throughput next to baselines measured on the same files in the same run.

Each measurement runs in a fresh process (multiprocessing "spawn"); its peak memory is the
highest resident set size sampled during the workload minus the footprint after imports. Absolute rates drift
on shared machines: quote the ratio to the baseline printed beside them.
"""

from __future__ import annotations

import argparse
import json
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
def raw_mcap_json(files: list[str], root: str, tokenizer: str) -> dict[str, int]:
    """Baseline: the raw `mcap` reader in log-time order, ``json.loads`` of every message."""
    from mcap.reader import make_reader

    n = 0
    for path in files:
        with open(path, "rb") as f:
            for _schema, _channel, message in make_reader(f).iter_messages(log_time_order=True):
                json.loads(message.data)
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


def event_stage_rows(files: list[str], root: str, tokenizer: str) -> dict[str, int]:
    """owa_event: MCAP -> event row batches (McapMessage JSON), lossless default config."""
    from owa_event.stage import EventStage

    n, _ = _run_stage(EventStage(), files, root)
    return {"messages": n, "rows": n}


def event_builder_arrow(files: list[str], root: str, tokenizer: str) -> dict[str, int]:
    """The `datasets` builder end to end: MCAP -> Arrow cache (download_and_prepare)."""
    import datasets

    import owa_builders  # noqa: F401

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        builder = datasets.load_dataset_builder(
            "owa_builders/event", data_files={"train": files}, cache_dir=cache
        )
        builder.download_and_prepare()
        n = builder.info.splits["train"].num_examples
    return {"messages": n, "rows": n}


def fsl_stage_rows(files: list[str], root: str, tokenizer: str) -> dict[str, int]:
    """owa_fsl: MCAP -> packed token sequences (fsl-internvl3 layout, default rates, 4096 tokens)."""
    from owa_event.account import total
    from owa_fsl.stage import FslStage

    stage = FslStage(FslStage.make_config("fsl-internvl3", tokenizer_name=tokenizer))
    stage.tokens  # noqa: B018 - the tokenizer is built before the clock starts mattering, as in a builder
    rows, reports = _run_stage(stage, files, root)
    account = total(reports)
    return {"messages": sum(account.messages_in.values()), "rows": rows, "events": sum(account.out.values()),
            "tokens": sum(r.stats.get("tokens", 0) for r in reports)}  # fmt: skip


WORKLOADS: dict[str, Callable[[list[str], str, str], dict[str, int]]] = {
    "raw mcap reader + json.loads (baseline)": raw_mcap_json,
    "event stage: MCAP -> rows": event_stage_rows,
    "event builder: MCAP -> Arrow": event_builder_arrow,
    "fsl stage: MCAP -> token sequences": fsl_stage_rows,
}


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
    with _PeakSampler() as sampler:
        t0 = time.perf_counter()
        counts = WORKLOADS[name](files, root, tokenizer)
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
    from .example import SessionSpec, generate_recording

    folder = workdir / f"corpus-{minutes:g}min-{episodes}ep"
    done = folder / "DONE"
    paths = [folder / f"episode_{i:03d}.mcap" for i in range(episodes)]
    if not done.exists():
        for i, path in enumerate(paths):
            spec = SessionSpec(duration_s=minutes * 60 / episodes, seed=i, raw_mouse_hz=500.0)
            generate_recording(path, spec)
        done.write_text("ok")
    return [str(p) for p in paths]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options (used by ``owa-builders bench`` and ``python -m owa_builders.tools.bench``)."""
    parser.add_argument(
        "--minutes", type=float, nargs="+", default=[2.0], help="corpus sizes (recorded minutes)"
    )
    parser.add_argument("--episodes", type=int, default=2, help="recordings per corpus")
    parser.add_argument("--workdir", default=None, help="where corpora are generated and cached")
    parser.add_argument("--repeat", type=int, default=3, help="best of N")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="owa-builders bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or os.path.join(tempfile.gettempdir(), "owa-bench"))
    workdir.mkdir(parents=True, exist_ok=True)
    from .example_tokenizer import write_example_tokenizer

    tokenizer = str(write_example_tokenizer(workdir / "example-tokenizer"))
    print(f"owa-builders bench: best of {args.repeat}, each run in a fresh process; corpora in {workdir}")
    for minutes in args.minutes:
        t0 = time.perf_counter()
        files = corpus(workdir, minutes, args.episodes)
        size = sum(os.path.getsize(f) for f in files) / 2**20
        print(
            f"\ncorpus: {minutes:g} recorded minutes in {args.episodes} recording(s), {size:.1f} MiB of MCAP "
            f"(ready in {time.perf_counter() - t0:.1f} s)"
        )
        baseline = None
        for name in WORKLOADS:
            runs = [measure(name, files, str(Path(files[0]).parent), tokenizer) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            rate = best["messages"] / best["seconds"]
            peak = max(r["peak_mib"] for r in runs)
            if baseline is None:
                baseline = rate
            extra = ""
            if "tokens" in best:
                extra = (
                    f"  ({best['events'] / best['seconds']:,.0f} events/s encoded, "
                    f"{best['tokens'] / best['seconds']:,.0f} tokens/s)"
                )
            print(
                f"  {name:<42} {best['messages']:>9} msgs  {rate:>10,.0f} msgs/s  "
                f"{rate / baseline:>6.2f}x baseline  peak +{peak:,.0f} MiB{extra}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
