"""The benchmark runs and reports every workload on the same files (no timing assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.bench import WORKLOADS, corpus, main, measure


def test_every_workload_processes_every_message(tmp_path: Path) -> None:
    from owa_builders.demo.tokenizer import write_example_tokenizer

    files = corpus(tmp_path, minutes=0.2, episodes=2)
    tokenizer = str(write_example_tokenizer(tmp_path / "tok"))
    results = {name: measure(name, files, str(Path(files[0]).parent), tokenizer) for name in WORKLOADS}
    counts = {name: r["messages"] for name, r in results.items()}
    assert len(set(counts.values())) == 1 and next(iter(counts.values())) > 1000  # every workload reads all
    one, two = results["fsl builder: MCAP -> Arrow"], results["fsl builder, num_proc=2"]
    assert one["rows"] == two["rows"] > 0 and one["tokens"] == two["tokens"] > one["events"] > 0
    assert results["event builder: MCAP -> Arrow"]["rows"] == counts["limit probe: chunk scan + orjson.loads"]
    assert all(r["peak_mib"] >= 0 and r["seconds"] > 0 for r in results.values())


def test_bench_prints_ratios_to_the_limit_probe_and_the_projection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--workdir", str(tmp_path), "--minutes", "0.1", "--episodes", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "1.000 of the limit" in out  # the limit probe itself
    for name in WORKLOADS:
        assert name in out
    assert (
        "fsl num_proc=2 / one process:" in out
        and "projected 300 h" in out
        and "(target >= 0.3)" in out
        and "start-up" in out
    )
