"""The benchmark runs and reports every workload on the same files (no timing assertions)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from owa_builders.bench import WORKLOADS, corpus, main, measure


def test_every_workload_processes_every_message(tmp_path: Path) -> None:
    files = corpus(tmp_path, minutes=0.1, episodes=1)
    counts = {name: measure(name, files, str(Path(files[0]).parent))["messages"] for name in WORKLOADS}
    assert len(set(counts.values())) == 1 and next(iter(counts.values())) > 1000


def test_bench_prints_rates_next_to_the_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(workdir=str(tmp_path), minutes=[0.05], episodes=1, repeat=1)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1.00x baseline" in out
    for name in WORKLOADS:
        assert name in out
