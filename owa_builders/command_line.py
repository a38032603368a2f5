"""Helpers shared by the command line (:mod:`owa_builders.cli`) and the Ray build command
(:mod:`owa_builders.distributed.command`): ``--option KEY=VALUE`` parsing and the per-recording account.

Both commands import this module; neither imports the other's module (no import cycle).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
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
        from .errors import ConfigError

        raise ConfigError(problems, where="--option")
    return options


def print_account(stage: str, reports: list[Any], everything: bool = False) -> None:
    """The account of every recording that dropped, skipped or warned (all of them with ``everything``),
    with its warnings."""
    shown = [
        r for r in reports if everything or r.account.dropped or r.warnings or r.unknown_types or r.skipped
    ]
    if shown:
        print(f"{stage}: per-recording account (messages in, events out, dropped by rule):")
    for report in shown:
        print(f"  {report.summary_line()}")
        for warning in report.warnings:
            print(f"  warning: {warning}")
    n = sum(len(r.warnings) for r in reports)
    if n:
        print(f"warnings: {n}")
