"""``owa-builders build STAGE DATA -o OUT --engine ray [--address ADDR]``: the build command on Ray.

The ``build`` command's parser (owa_builders/cli.py) owns the shared options (parsed by
:mod:`owa_builders.command_line`, which both import); this module adds
the two of the engine (:func:`add_engine_arguments`) and runs a build on Ray (:func:`run`).
``--num-proc`` is the number of Ray workers (default: the cluster's CPUs).
"""

from __future__ import annotations

import argparse


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine {local,ray}`` and ``--address``, added to the ``build`` command."""
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this machine, through `datasets` (default); ray: one task per recording on a Ray "
        "cluster, Parquet shards in -o (resumable; --num-proc = Ray workers)",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to use with --engine ray (e.g. auto, ray://host:10001); default: a new local Ray",
    )
    parser.add_argument(
        "--task-timeout", type=float, default=None, metavar="SECONDS",
        help="with --engine ray: the longest one recording may take; a task past it is retried, then "
        "reported by name (default: no limit)",
    )  # fmt: skip
    parser.add_argument(
        "--task-minutes",
        type=float,
        default=None,
        help="with --engine ray: convert a recording longer than this (recorded minutes) as several "
        "time-slice tasks with exactly the same rows (default 30; 0 = never split)",
    )
    from ..output import add_storage_option_argument

    add_storage_option_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Build on Ray with the ``build`` command's arguments; print the account and where the shards are."""
    from owa_event.errors import OwaError

    from ..command_line import parse_options, print_account
    from ..output import parse_storage_options, redact
    from .ray_build import build_on_ray

    if not args.output:
        raise OwaError(
            "--engine ray needs -o/--output (a folder or URL every Ray node can write: s3://bucket/prefix)"
        )
    result = build_on_ray(
        args.stage,
        args.data_dir,
        args.output,
        config=args.config,
        options=parse_options(args.option),
        address=args.address,
        num_workers=args.num_proc,
        task_timeout_s=args.task_timeout,
        storage_options=parse_storage_options(args.storage_option),
        **({} if args.task_minutes is None else {"task_minutes": args.task_minutes}),
    )
    print_account(args.stage, result.reports)
    print(
        f"built {args.stage} ({result.config_name}) on Ray in {result.seconds:.1f} s: "
        f"{len(result.converted)} recording(s) converted, {len(result.reused)} already done; "
        f"saved to {redact(result.output)}"
    )
    for split, paths in result.shards.items():
        print(f"[{split}] {result.rows[split]} rows in {len(paths)} shard(s) under {result.config_name}/")
    return 0
