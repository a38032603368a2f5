"""The ``owa-builders`` command: ``demo``, ``build``, ``generate``, ``bench``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is JSON when it parses as JSON, else a plain string."""
    options: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            problems.append(f"--option {pair!r} is not KEY=VALUE")
            continue
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if problems:
        raise SystemExit("error: " + "; ".join(problems))
    return options


def build(
    stage: str,
    data_dir: str,
    output: str | None,
    *,
    config_name: str | None = None,
    options: dict[str, Any] | None = None,
    num_proc: int | None = None,
    cache_dir: str | None = None,
) -> Any:
    """Build ``stage`` from ``data_dir``; print the per-recording account and warnings; return the dataset."""
    from .build import build as build_stage

    result = build_stage(stage, data_dir, output, config=config_name, options=options, num_proc=num_proc,
                         cache_dir=cache_dir)  # fmt: skip
    print_account(stage, result.reports)
    return result.dataset


def print_account(stage: str, reports: list[Any]) -> None:
    """The account of every recording that dropped, skipped or warned, and its warnings."""
    shown = [r for r in reports if r.account.dropped or r.warnings or r.unknown_types or r.skipped]
    if shown:
        print(f"{stage}: per-recording account (messages in, events out, dropped by rule):")
    for report in shown:
        print(f"  {report.summary_line()}")
        for warning in report.warnings:
            print(f"  warning: {warning}")
    n = sum(len(r.warnings) for r in reports)
    if n:
        print(f"warnings: {n}")


def _print_event_summary(dataset: Any) -> None:
    from .summary import event_summary, format_event_summary

    for split, ds in dataset.items():
        print(format_event_summary(event_summary(ds.data.table), title=f"[{split}] event dataset"))


def _print_fsl_summary(dataset: Any) -> None:
    for split, ds in dataset.items():
        table = ds.data.table
        import pyarrow.compute as pc

        tokens = pc.sum(pc.list_value_length(table["input_ids"])).as_py() or 0
        real = sum(sum(mask) for mask in ds["attention_mask"])
        frames = pc.sum(pc.list_value_length(table["images"])).as_py() or 0
        events = pc.sum(table["n_events"]).as_py() or 0
        fill = real / tokens if tokens else 0.0
        print(
            f"[{split}] fsl dataset: {ds.num_rows} sequences, {events} events, {frames} frame references, "
            f"{real} real tokens ({fill:.0%} of {tokens} slots)"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    from .tools.example import generate_corpus
    from .tools.example_tokenizer import write_example_tokenizer

    workdir = Path(args.workdir)
    recordings = workdir / "recordings"
    t0 = time.perf_counter()
    paths = generate_corpus(
        recordings, episodes=args.episodes, duration_s=args.duration, splits=("train", "test")
    )
    print(
        f"generated {len(paths)} recordings ({args.duration:.0f} s each, current and legacy layouts, "
        f"H.264 video) in {recordings} ({time.perf_counter() - t0:.1f} s)"
    )
    t0 = time.perf_counter()
    dataset = build("event", str(recordings), str(workdir / "event"), cache_dir=str(workdir / "cache"))
    print(
        f"built the event dataset with load_dataset('owa_builders/event', data_dir=...) in "
        f"{time.perf_counter() - t0:.1f} s; saved to {workdir / 'event'}"
    )
    _print_event_summary(dataset)
    tokenizer = write_example_tokenizer(workdir / "example-tokenizer")
    t0 = time.perf_counter()
    fsl = build(
        "fsl",
        str(recordings),
        str(workdir / "fsl"),
        config_name="fsl-smolvlm",
        options={"tokenizer_name": str(tokenizer), "max_sequence_length": 1024},
        cache_dir=str(workdir / "cache"),
    )
    print(
        f"\nbuilt the FSL dataset (config fsl-smolvlm, a locally trained example tokenizer, 1024-token "
        f"sequences) in {time.perf_counter() - t0:.1f} s; saved with its tokenizer to {workdir / 'fsl'}"
    )
    _print_fsl_summary(fsl)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from .distributed import command

        return command.run(args)
    options = _parse_options(args.option)
    t0 = time.perf_counter()
    dataset = build(
        args.stage,
        args.data_dir,
        args.output,
        config_name=args.config,
        options=options,
        num_proc=args.num_proc,
        cache_dir=args.cache_dir,
    )
    print(
        f"built {args.stage} in {time.perf_counter() - t0:.1f} s"
        + (f"; saved to {args.output}" if args.output else "")
    )
    if args.stage == "event":
        _print_event_summary(dataset)
    elif args.stage == "fsl":
        _print_fsl_summary(dataset)
    else:
        for split, ds in dataset.items():
            print(
                f"[{split}] {args.stage} dataset: {ds.num_rows} rows, {len(set(ds['episode_path']))} recordings"
            )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .tools.example import generate_corpus

    paths = generate_corpus(
        args.output,
        episodes=args.episodes,
        duration_s=args.duration,
        seed=args.seed,
        legacy=not args.no_legacy,
        splits=tuple(args.splits.split(",")),
    )
    print(f"wrote {len(paths)} recordings to {args.output}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from .decode import decode_command

    try:
        print(
            decode_command(
                args.dataset_dir,
                args.output,
                split=args.split,
                row=args.row,
                episode=args.episode,
                tokenizer_dir=args.tokenizer,
            )
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    return 0


def cmd_bench_frames(args: argparse.Namespace) -> int:
    from .tools.frames_bench import main as frames_bench_main

    frames_bench_main(args.args)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="owa-builders", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log per-recording accounts")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate example recordings and build the event dataset from them")
    d.add_argument(
        "--workdir",
        default="owa-demo",
        help="where to put recordings, tokenizer and datasets (default: ./owa-demo)",
    )
    d.add_argument("--episodes", type=int, default=4)
    d.add_argument("--duration", type=float, default=30.0, help="seconds per recording")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("build", help="build a stage's dataset from a folder of recordings")
    b.add_argument("stage", choices=["event", "binned", "fsl"])
    b.add_argument("data_dir", help="folder of .mcap recordings (train/ test/ subfolders become splits)")
    b.add_argument("-o", "--output", help="save the dataset here (Dataset.save_to_disk)")
    b.add_argument("--config", help="config name (default: the stage's default)")
    b.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config field, VALUE as JSON, e.g. --option rate_settings='{\"mouse/raw\": 60}'",
    )
    b.add_argument("--num-proc", type=int, default=None)
    b.add_argument("--cache-dir", default=None)
    from .distributed import command as distributed_command

    distributed_command.add_engine_arguments(b)
    b.set_defaults(func=cmd_build)

    g = sub.add_parser("generate", help="write synthetic example recordings")
    g.add_argument("output")
    g.add_argument("--episodes", type=int, default=4)
    g.add_argument("--duration", type=float, default=30.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--splits", default="train")
    g.add_argument("--no-legacy", action="store_true", help="only current-format recordings")
    g.set_defaults(func=cmd_generate)

    dec = sub.add_parser("decode", help="write FSL rows back to an .mcap (token ids -> events)")
    dec.add_argument("dataset_dir", help="an FSL dataset saved by `owa-builders build fsl ... -o DIR`")
    dec.add_argument("-o", "--output", required=True, help="the .mcap to write")
    dec.add_argument("--split", default="train")
    which = dec.add_mutually_exclusive_group(required=True)
    which.add_argument("--row", type=int, help="decode this one row")
    which.add_argument("--episode", help="decode every row of this episode_path, in order")
    dec.add_argument(
        "--tokenizer", default=None, help="expanded tokenizer dir (default: DATASET_DIR/tokenizer)"
    )
    dec.set_defaults(func=cmd_decode)

    from .tools import bench

    n = sub.add_parser("bench", help="throughput of the stages next to baselines, same files, same run")
    bench.add_arguments(n)
    n.set_defaults(func=bench.run)

    from .tools import bench_ray

    r = sub.add_parser("bench-ray", help="FSL conversion throughput on Ray with 1 and 2 workers, same files")
    bench_ray.add_arguments(r)
    r.set_defaults(func=bench_ray.run)

    f = sub.add_parser(
        "bench-frames",
        add_help=False,
        help="frame loading (FSL-like samples, 1080p) next to PyAV's sequential decode; "
        "options: owa-builders bench-frames --help",
    )
    f.add_argument("args", nargs=argparse.REMAINDER)
    f.set_defaults(func=cmd_bench_frames)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench-frames"]:  # its options belong to owa_builders.tools.frames_bench
        return cmd_bench_frames(argparse.Namespace(args=argv[1:]))
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
