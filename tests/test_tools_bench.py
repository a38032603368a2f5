"""The benchmark runs and reports every workload on the same files (no timing assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from owa_builders.tools.bench import WORKLOADS, corpus, main, measure


def test_every_workload_processes_every_message(tmp_path: Path) -> None:
    from owa_builders.tools.example_tokenizer import write_example_tokenizer

    files = corpus(tmp_path, minutes=0.1, episodes=1)
    tokenizer = str(write_example_tokenizer(tmp_path / "tok"))
    results = {name: measure(name, files, str(Path(files[0]).parent), tokenizer) for name in WORKLOADS}
    counts = {name: r["messages"] for name, r in results.items()}
    assert len(set(counts.values())) == 1 and next(iter(counts.values())) > 1000
    fsl = results["fsl stage: MCAP -> token sequences"]
    assert fsl["rows"] > 0 and fsl["tokens"] > fsl["events"] > 0
    assert all(r["peak_mib"] >= 0 and r["seconds"] > 0 for r in results.values())


def test_bench_prints_rates_next_to_the_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workdir", str(tmp_path), "--minutes", "0.05", "--episodes", "1", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "1.00x baseline" in out
    for name in WORKLOADS:
        assert name in out
