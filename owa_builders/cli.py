"""The ``owa-builders`` command line.

Every command prints errors of ours as one line (``error: ...``, exit code 2); ``--debug`` shows the
traceback. The rule has one place, :func:`main`: commands raise :class:`~owa_event.errors.OwaError` (never
``SystemExit``) and ``main`` turns it into that line and code. ``-v``/``--verbose`` and ``--debug`` work before or after the command.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .command_line import parse_options, print_account

#: ``KEY=VALUE`` options (kept under its old name: tests and scripts import it from here).
_parse_options = parse_options


def build(
    stage: str,
    data_dir: str,
    output: str | None,
    *,
    config_name: str | None = None,
    options: dict[str, Any] | None = None,
    num_proc: int | None = None,
    cache_dir: str | None = None,
    verbose: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    """Build ``stage`` from ``data_dir``; print the per-recording account and warnings; return the dataset."""
    from .build import build as build_stage

    result = build_stage(stage, data_dir, output, config=config_name, options=options, num_proc=num_proc,
                         cache_dir=cache_dir, storage_options=storage_options)  # fmt: skip
    print_account(stage, result.reports, everything=verbose)
    if output is None:
        print(
            f"the dataset is in the datasets cache: {result.builder.cache_dir} (pass -o DIR to save a copy)"
        )
    return result.dataset


def _print_summary(stage: str, dataset: Any) -> None:
    """The stage's own summary of every split of a fresh build."""
    from .stages import spec

    for split, ds in dataset.items():
        print(spec(stage).summary(split, ds))


def _check_corpus_size(args: argparse.Namespace) -> None:
    """``--episodes`` >= 1 and ``--duration`` > 0 (s), else :class:`ConfigError` (exit 2)."""
    problems = [f"--episodes must be >= 1, got {args.episodes}"] if args.episodes < 1 else []
    if not args.duration > 0:
        problems.append(f"--duration must be > 0 seconds, got {args.duration}")
    if problems:
        from owa_event.errors import ConfigError

        raise ConfigError(problems, where="options")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo.recordings import generate_corpus

    _check_corpus_size(args)
    from .demo.tokenizer import write_example_tokenizer

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
    _print_summary("event", dataset)
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
    _print_summary("fsl", fsl)
    from .publish import write_preview

    for stage, what in (("event", "an episode"), ("fsl", "an FSL sequence")):
        page = write_preview(workdir / stage, workdir / f"preview-{stage}.html")
        print(f"wrote a preview of {what} ({page.title}) to {page.path}: open it in a browser")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from .output import parse_storage_options

    if args.engine == "ray":
        from .distributed import command

        return command.run(args)
    options = parse_options(args.option)
    t0 = time.perf_counter()
    dataset = build(
        args.stage,
        args.data_dir,
        args.output,
        config_name=args.config,
        options=options,
        num_proc=args.num_proc,
        cache_dir=args.cache_dir,
        verbose=args.verbose,
        storage_options=parse_storage_options(args.storage_option),
    )
    print(
        f"built {args.stage} in {time.perf_counter() - t0:.1f} s"
        + (f"; saved to {args.output}" if args.output else "")
    )
    _print_summary(args.stage, dataset)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .demo.recordings import generate_corpus

    _check_corpus_size(args)

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
    return 0


DESCRIPTION = "Turn OWAMcap desktop recordings (.mcap + .mkv) into training datasets for desktop agents."

EXAMPLES = """\
examples:
  owa-builders demo
  owa-builders inspect recordings/
  owa-builders build fsl recordings/ -o out/fsl --config fsl-smolvlm --option tokenizer_name=path/to/tokenizer
  owa-builders build event recordings/ --option 'rate_settings={"screen": 20}' -v
  owa-builders decode out/fsl --episode train/episode_000.mcap -o episode_000.decoded.mcap
  owa-builders push out/fsl org/my-dataset
  owa-builders train-check out/fsl -o train-check.png
"""

#: Developer commands: the benchmarks live in the checkout's top-level ``devtools/`` (not in the wheel);
#: these thin commands import them only when run.
DEV_COMMANDS = (
    ("bench", "bench", "throughput of the stages next to baselines, same files, same run (from a checkout)"),
    ("bench-frames", "bench_frames", "frame loading next to PyAV's sequential decode (from a checkout)"),
    (
        "bench-train",
        "bench_train",
        "the training data path: frames, image processors, DataLoader workers (from a checkout)",
    ),
    ("bench-ray", "bench_ray", "FSL conversion throughput on Ray with 1 and 2 workers (from a checkout)"),
)


def import_devtool(module: str) -> Any:
    """``devtools.<module>`` from the checkout this package runs from (editable install or source tree)."""
    import importlib

    from .errors import OwaError

    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "devtools" / "__init__.py").is_file() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module(f"devtools.{module}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("devtools", f"devtools.{module}"):
            raise
        raise OwaError(
            f"the benchmarks run from a checkout of owa-builders (devtools/{module}.py), "
            "not from an installed wheel"
        ) from None


def _dev_command(module: str, name: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        tool = import_devtool(module)
        sub = argparse.ArgumentParser(prog=f"owa-builders {name}", description=tool.__doc__.split("\n\n")[0])
        tool.add_arguments(sub)
        return int(tool.run(sub.parse_args(args.args)) or 0)

    return run


def _common() -> argparse.ArgumentParser:
    """The flags every command takes, before or after it (SUPPRESS: a subcommand does not reset them)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show every recording's account and progress logs")  # fmt: skip
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error instead of one line")  # fmt: skip
    return common


def parser() -> argparse.ArgumentParser:
    common = _common()
    p = argparse.ArgumentParser(
        prog="owa-builders",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description or help, parents=[common],
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip

    d = command(
        "demo",
        "generate example recordings, build the event and FSL (fixed sequence length) datasets from them, "
        "write preview pages",
        "Generate example recordings (current and legacy layouts, H.264 video), build the event dataset and an "
        "FSL dataset (with a small tokenizer trained on the spot) through load_dataset, save them, and write "
        "HTML preview pages. Everything goes to --workdir.",
    )
    d.add_argument("--workdir", default="owa-demo",
                   help="where to put recordings, tokenizer, datasets and pages (default: %(default)s)")  # fmt: skip
    d.add_argument("--episodes", type=int, default=4, help="recordings to generate (default: %(default)s)")
    d.add_argument(
        "--duration", type=float, default=30.0, help="seconds per recording (default: %(default)s)"
    )
    d.set_defaults(func=cmd_demo)

    b = command(
        "build",
        "build a stage's dataset from a folder of recordings",
        "Build a stage's dataset through datasets.load_dataset; print the per-recording account (messages in, "
        "events out, dropped by rule) and every warning.\n\n"
        "example: owa-builders build fsl recordings/ -o out/fsl --config fsl-smolvlm "
        "--option tokenizer_name=path/to/tokenizer",
    )
    from .stages import names, specs

    stages_help = "; ".join(f"{s.name}: {s.description}" for s in specs())
    b.add_argument("stage", choices=names(), help=f"the stage to build ({stages_help})")
    b.add_argument(
        "data_dir",
        help="folder (or fsspec URL) of .mcap recordings; train/ test/ ... subfolders become splits",
    )
    b.add_argument(
        "-o",
        "--output",
        help="write the build (Parquet shards, build record, FSL tokenizer) to this folder "
        "or fsspec URL (s3://bucket/prefix, ...)",
    )
    presets = "; ".join(f"{s.name}: {', '.join(s.presets)}" for s in specs())
    b.add_argument("--config", help=f"named config ({presets})")
    b.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a config field; VALUE is JSON when it parses, e.g. --option 'rate_settings={\"mouse/raw\": 60}'")  # fmt: skip
    b.add_argument("--num-proc", type=int, default=None, help="worker processes (one recording per task)")
    b.add_argument("--cache-dir", default=None, help="the datasets cache folder (default: datasets' own)")
    from .distributed import command as distributed_command

    distributed_command.add_engine_arguments(b)
    b.set_defaults(func=cmd_build)

    from . import survey

    i = command(
        "inspect", "what recordings or a built dataset hold, and what each stage would keep; builds nothing"
    )
    survey.add_arguments(i)
    i.set_defaults(func=survey.run)

    dec = command("decode", "write FSL rows back to an .mcap (token ids -> events)")
    dec.add_argument("dataset_dir", help="an FSL dataset saved by `owa-builders build fsl ... -o DIR`")
    dec.add_argument("-o", "--output", required=True, help="the .mcap to write")
    dec.add_argument("--split", default="train", help="the split to read (default: %(default)s)")
    which = dec.add_mutually_exclusive_group(required=True)
    which.add_argument("--row", type=int, help="decode this one row")
    which.add_argument("--episode", help="decode every row of this episode_path, in order")
    dec.add_argument(
        "--tokenizer", default=None, help="expanded tokenizer folder (default: DATASET_DIR/tokenizer)"
    )
    dec.set_defaults(func=cmd_decode)

    from .publish import hub, preview

    u = command("push", "publish a built folder to a Hub dataset repo (Parquet, card, media)")
    hub.add_arguments(u)
    u.set_defaults(func=hub.run)
    w = command("preview", "one episode or FSL row of a built folder as a self-contained HTML page")
    preview.add_arguments(w)
    w.set_defaults(func=preview.run)

    from .training import check as train_check

    tc = command(
        "train-check",
        "train a tiny VLA on CPU on an FSL build; the held-out loss must fall (prints the curve, writes a PNG)",
        "Train a tiny vision-language-action model (random init, CPU) for a fixed number of steps on batches of a "
        "built FSL folder, through the training path (make_dataloader, FslTransform with frames decoded by the "
        "FrameLoader, the collator), and evaluate it on sequences of recordings it never trains on, also with "
        "their frames shuffled (control). Exit code 1 when the held-out loss does not come down. Needs torch.",
    )
    train_check.add_arguments(tc)
    tc.set_defaults(func=train_check.run)

    g = command("generate", "write synthetic example recordings (real writer, H.264 video)")
    g.add_argument("output", help="folder to write the recordings to")
    g.add_argument("--episodes", type=int, default=4, help="recordings (default: %(default)s)")
    g.add_argument(
        "--duration", type=float, default=30.0, help="seconds per recording (default: %(default)s)"
    )
    g.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    g.add_argument("--splits", default="train", help="comma-separated split folders, e.g. train,test")
    g.add_argument("--no-legacy", action="store_true", help="only current-format recordings")
    g.set_defaults(func=cmd_generate)

    for name, module, text in DEV_COMMANDS:
        b = sub.add_parser(name, help=text, description=text, add_help=False)
        b.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's options (--help lists them)")
        b.set_defaults(func=_dev_command(module, name))
    return p


def _warning_line(
    message: Any, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """Warnings on their own line, without the source line that raised them."""
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; errors of ours are one line on stderr and exit code 2 (``--debug``: traceback)."""
    import warnings

    from .errors import OwaError

    cli = parser()
    args, extra = cli.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if extra and not hasattr(args, "args"):
        cli.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.args = [*extra, *args.args]  # a developer command's own options, parsed by its own parser
    verbose, debug = getattr(args, "verbose", False), getattr(args, "debug", False)
    args.verbose = verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    warnings.formatwarning = _warning_line  # type: ignore[assignment]  # this program's own output format
    try:
        return int(args.func(args) or 0)
    except OwaError as exc:
        if debug:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2


def one_line(exc: Exception) -> str:
    """An error of ours as one line (a config's problems joined with "; ")."""
    from .errors import ConfigError

    if isinstance(exc, ConfigError):
        return f"invalid {exc.where}: " + "; ".join(exc.problems)
    first, _, rest = str(exc).partition("\n")
    return first + (" " + " ".join(line.strip() for line in rest.splitlines()) if rest else "")


if __name__ == "__main__":
    sys.exit(main())
