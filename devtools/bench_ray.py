"""``owa-builders bench-ray``: FSL conversion throughput on Ray with 1, 2, ... workers, same files, same run.

Generates ``--episodes`` recordings of ``--minutes`` each (cached in ``--workdir``), starts one local
Ray with as many CPUs as the most workers asked for, and builds the FSL dataset (``fsl-internvl3``
layout, the local example tokenizer) into a fresh folder per worker count (``--repeat``: best of N,
interleaved). Reported per worker count: conversion (first task's start to last task's end) and
messages/s over it, the same with the workers' start (process, imports, each worker's tokenizer),
and the whole build, and how much of the conversion the workers spent on a CPU (the rest they
waited for one); then the speedups over the first worker count, next to what the machine gives
at that moment (the same pure-Python work in 2 processes vs 1: other processes on a shared machine
lower both). Every run must give the same rows (checked). Quote the ratios: absolute rates drift.

``--output URL`` also builds with the most workers into ``URL`` (an fsspec destination every Ray
worker reaches: ``s3://bucket/prefix`` with ``--storage-option``; ``s3-stand-in`` starts moto's S3
server on 127.0.0.1, as the tests do) and prints its rate beside the local folder's (same rows,
checked). ``memory://`` is refused: each Ray worker process has its own memory file system.

``--straggler``: the straggler effect instead -- ``--episodes`` recordings of ``--minutes`` plus one
8x longer, the event stage on 2 workers, built with the long recording as one task and split into
``--minutes`` slices (``task_minutes``); prints both conversion times next to the ideal (the tasks'
CPU time over 2 workers) and checks the two builds give the same rows and accounts.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from owa_event.errors import OwaError


def corpus(workdir: Path, episodes: int, minutes: float) -> Path:
    """``episodes`` current-format recordings of ``minutes`` each (+ video) under ``workdir`` (cached)."""
    from owa_builders.demo.recordings import DEFAULT_START_NS, NS, SessionSpec, generate_recording

    root = workdir / f"ray-corpus-{episodes}x{minutes:g}min"
    done = root / "DONE"
    if not done.exists():
        for i in range(episodes):
            spec = SessionSpec(duration_s=minutes * 60, seed=i, start_ns=DEFAULT_START_NS + i * 3600 * NS)
            generate_recording(root / "train" / f"episode_{i:03d}.mcap", spec)
        done.write_text("ok")
    return root


def measure(
    root: Path, out: Path | str, workers: int, tokenizer: str, config: str,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One FSL build on the running Ray with ``workers`` workers into ``out`` (a folder or a URL)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from owa_builders.distributed import build_on_ray
    from owa_builders.output import Destination

    dest = Destination(out, storage_options)
    if dest.local:
        shutil.rmtree(out, ignore_errors=True)
    elif dest.fs.exists(dest.path()):
        dest.fs.rm(dest.path(), recursive=True)
    result = build_on_ray("fsl", root, out, config=config, options={"tokenizer_name": tokenizer},
                          num_workers=workers, storage_options=storage_options, progress=False)  # fmt: skip
    digest, rows = hashlib.sha256(), 0
    for rels in dest.read_record().shards.values():
        for rel in rels:
            with dest.open(rel) as f:
                table = pq.read_table(f).combine_chunks()
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            digest.update(sink.getvalue())
            rows += table.num_rows
    return {"seconds": result.seconds, "convert_seconds": result.convert_seconds, "tasks_seconds": result.tasks_seconds,
            "cpu": result.tasks_cpu_seconds,
            "messages": result.messages, "rows": rows, "fingerprint": digest.hexdigest()}  # fmt: skip


def _spin(n: int) -> float:
    """CPU-bound pure-Python work (``n`` loop steps); its wall time."""
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x ^= i * i
    return time.perf_counter() - t0


def parallel_capacity(n: int = 16_000_000) -> float:
    """How many CPUs this machine gives right now: the same work in 1 and in 2 processes at once;
    ``2 * t1 / t2`` (2.0 = two free cores, 1.0 = one). Other processes on the machine lower it."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # processes started before the clock
        t1 = max(pool.map(_spin, [n]))
        t2 = max(pool.map(_spin, [n, n]))
    return 2 * t1 / t2


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options (``owa-builders bench-ray``, ``python -m devtools.bench_ray``)."""
    parser.add_argument("--episodes", type=int, default=4, help="recordings (one Ray task each; default 4)")
    parser.add_argument("--minutes", type=float, default=1.0, help="recorded minutes per recording")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to compare")
    parser.add_argument("--config", default="fsl-internvl3", help="FSL config (image token layout)")
    parser.add_argument("--workdir", default=None, help="where recordings, tokenizer and outputs go")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per worker count (interleaved)")
    parser.add_argument("--output", default=None, metavar="URL",
                        help="also build into this fsspec URL with the most workers (s3://..., or s3-stand-in: "
                        "moto's S3 server on 127.0.0.1) and print its rate beside the local one")  # fmt: skip
    from owa_builders.output import add_storage_option_argument

    add_storage_option_argument(parser)
    parser.add_argument(
        "--straggler",
        action="store_true",
        help="instead: the straggler effect -- --episodes recordings of --minutes plus one 8x longer, "
        "event stage on 2 workers, the long one split into --minutes slices vs one task",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="owa-builders bench-ray", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from owa_builders.demo.tokenizer import write_example_tokenizer
    from owa_builders.distributed.cluster import connected
    from owa_builders.output import parse_storage_options

    if args.episodes < 1 or args.repeat < 1 or not args.workers or min(args.workers) < 1:
        raise OwaError("--episodes, --repeat and every --workers must be >= 1")
    if args.output and args.output.startswith("memory://"):
        raise OwaError("--output memory:// cannot work on Ray (each worker process has its own memory)")
    storage_options = parse_storage_options(args.storage_option)
    if args.straggler:
        return run_straggler(args)
    workdir = Path(args.workdir or os.path.join(tempfile.gettempdir(), "owa-bench-ray"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    root = corpus(workdir, args.episodes, args.minutes)
    size = sum(p.stat().st_size for p in root.rglob("*.mcap")) / 2**20
    tokenizer = str(write_example_tokenizer(workdir / "example-tokenizer"))
    print(
        f"owa-builders bench-ray: FSL ({args.config}, local example tokenizer) on {args.episodes} recording(s) of "
        f"{args.minutes:g} min, {size:.1f} MiB of MCAP (ready in {time.perf_counter() - t0:.1f} s); "
        f"{os.cpu_count()} CPU(s) on this machine, load average {_load()}"
    )
    results = []
    with connected(None, {"num_cpus": max(args.workers)}) as ray:
        print(f"Ray {ray.__version__}, local, {int(ray.cluster_resources().get('CPU', 0))} CPU(s)")
        runs: dict[int, list[dict[str, Any]]] = {w: [] for w in args.workers}
        for _ in range(args.repeat):  # interleaved, so a busy spell on the machine hits every count alike
            for workers in args.workers:
                runs[workers].append(
                    measure(root, workdir / f"out-{workers}w", workers, tokenizer, args.config)
                )
        for workers in args.workers:
            r = min(runs[workers], key=lambda run: run["tasks_seconds"])
            results.append((workers, r))
            print(
                f"  {workers} worker(s): {r['messages']:,} messages -> {r['rows']:,} sequences; "
                f"conversion {r['tasks_seconds']:.1f} s = {r['messages'] / r['tasks_seconds']:,.0f} messages/s; "
                f"with worker start {r['convert_seconds']:.1f} s; whole build {r['seconds']:.1f} s"
                + (f" (best of {args.repeat})" if args.repeat > 1 else "")
                + f"; workers on a CPU {r['cpu'] / (workers * r['tasks_seconds']):.0%} of the conversion"
            )
    print(
        f"  load average after: {_load()}; this machine's CPUs right now: {parallel_capacity():.2f}x "
        "(pure-Python work in 2 processes vs 1: the best speedup 2 workers can get)"
    )
    if args.output:
        with _destination(args.output, storage_options) as (url, options):
            workers = max(args.workers)
            with connected(None, {"num_cpus": workers}):
                remote = measure(root, url, workers, tokenizer, args.config, options)
            local = runs[workers][-1]
            if (remote["rows"], remote["fingerprint"]) != (local["rows"], local["fingerprint"]):
                raise OwaError(f"the build into {args.output} made different rows")
            print(
                f"  into {args.output} ({workers} worker(s)): conversion {remote['tasks_seconds']:.1f} s = "
                f"{remote['messages'] / remote['tasks_seconds']:,.0f} messages/s, whole build {remote['seconds']:.1f} s; "
                f"local folder: {local['messages'] / local['tasks_seconds']:,.0f} messages/s, whole build "
                f"{local['seconds']:.1f} s ({remote['seconds'] / local['seconds']:.2f}x the local wall time); same rows"
            )
    base_workers, base = results[0]
    every = [run for workers in args.workers for run in runs[workers]]
    if len({(run["rows"], run["fingerprint"]) for run in every}) != 1:
        raise OwaError("the runs made different rows")
    for workers, r in results[1:]:
        print(
            f"  {workers} vs {base_workers} worker(s): {base['tasks_seconds'] / r['tasks_seconds']:.2f}x conversion, "
            f"{base['convert_seconds'] / r['convert_seconds']:.2f}x with worker start, "
            f"{base['seconds'] / r['seconds']:.2f}x whole build; same rows"
        )
    return 0


@contextlib.contextmanager
def _destination(output: str, storage_options: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(url, storage options)`` of ``--output``; ``s3-stand-in`` runs moto's S3 server on 127.0.0.1."""
    if output != "s3-stand-in":
        yield output, storage_options
        return
    import socket

    try:
        import s3fs
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise OwaError(f"--output s3-stand-in needs moto[server] and s3fs ({exc})") from None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        options = {"key": "bench", "secret": "bench",
                   "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"}}  # fmt: skip
        s3fs.S3FileSystem(**options).call_s3("create_bucket", Bucket="owa-bench")
        yield "s3://owa-bench/fsl", options
    finally:
        server.stop()


def straggler_corpus(workdir: Path, episodes: int, minutes: float) -> Path:
    """``episodes`` recordings of ``minutes`` and one of ``8 * minutes`` (no video: the event stage
    never opens it), cached in ``workdir``."""
    from owa_builders.demo.recordings import DEFAULT_START_NS, NS, SessionSpec, generate_recording

    root = workdir / f"ray-straggler-{episodes}x{minutes:g}min+8x"
    done = root / "DONE"
    if not done.exists():
        for i in range(episodes + 1):
            length = minutes * (8 if i == 0 else 1)
            spec = SessionSpec(
                duration_s=length * 60, seed=100 + i, start_ns=DEFAULT_START_NS + i * 24 * 3600 * NS
            )
            generate_recording(root / "train" / f"episode_{i:03d}.mcap", spec, video=False)
        done.write_text("ok")
    return root


def straggler_run(root: Path, out: Path, task_minutes: float | None, workers: int = 2) -> dict[str, Any]:
    """One event-stage build on the running Ray (``task_minutes``: None = never split)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from owa_builders.distributed import build_on_ray

    shutil.rmtree(out, ignore_errors=True)
    result = build_on_ray("event", root, out, num_workers=workers, progress=False, task_minutes=task_minutes)
    table = pa.concat_tables(pq.read_table(p) for p in result.shards["train"]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    digest = hashlib.sha256(sink.getvalue())
    return {"tasks_seconds": result.tasks_seconds, "cpu": result.tasks_cpu_seconds,
            "shards": len(result.shards["train"]), "fingerprint": digest.hexdigest(),
            "reports": [r.to_dict() for r in result.reports]}  # fmt: skip


def run_straggler(args: argparse.Namespace) -> int:
    """``--straggler``: wall time of the conversion, the long recording split vs one task, 2 workers."""
    from owa_builders.distributed.cluster import connected

    workdir = Path(args.workdir or os.path.join(tempfile.gettempdir(), "owa-bench-ray"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    root = straggler_corpus(workdir, args.episodes, args.minutes)
    print(
        f"owa-builders bench-ray --straggler: event stage, {args.episodes} recording(s) of {args.minutes:g} min "
        f"+ one of {8 * args.minutes:g} min (ready in {time.perf_counter() - t0:.1f} s), 2 workers; "
        f"{os.cpu_count()} CPU(s) on this machine, load average {_load()}"
    )
    names = {"1 worker (the total)": (None, 1), "2 workers, one task per recording": (None, 2),
             "2 workers, long one split": (args.minutes, 2)}  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with connected(None, {"num_cpus": 2}):
        for _ in range(args.repeat):  # interleaved, so a busy spell on the machine hits every run alike
            for i, (name, (task_minutes, workers)) in enumerate(names.items()):
                runs[name].append(straggler_run(root, workdir / f"out-straggler-{i}", task_minutes, workers))
    every = [r for rs in runs.values() for r in rs]
    if len({(r["fingerprint"], repr(r["reports"])) for r in every}) != 1:
        raise OwaError("the split build made different rows or accounts than the unsplit one")
    best = {name: min(rs, key=lambda r: r["tasks_seconds"]) for name, rs in runs.items()}
    for name, r in best.items():
        print(
            f"  {name}: {r['shards']} tasks, conversion {r['tasks_seconds']:.1f} s (first task's start to last "
            f"one's end; tasks on a CPU {r['cpu']:.1f} s)"
            + (f" (best of {args.repeat})" if args.repeat > 1 else "")
        )
    total, one, split = (r["tasks_seconds"] for r in best.values())
    print(
        f"  ideal on 2 workers = total/2 = {total / 2:.1f} s; one task per recording {one:.1f} s = "
        f"{one / (total / 2):.2f}x the ideal; split {split:.1f} s = {split / (total / 2):.2f}x the ideal; "
        f"split {one / split:.2f}x faster; same rows, same accounts; load average after {_load()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
