"""The Ray bench runs every worker count on the same files and checks they make the same rows
(no timing assertions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from owa_builders.cli import main

pytestmark = pytest.mark.usefixtures("ray_cluster")


def test_bench_ray_reports_each_worker_count_and_the_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ray_cluster: Any
) -> None:
    argv = [
        "bench-ray",
        "--episodes",
        "3",
        "--minutes",
        "0.05",
        "--workers",
        "1",
        "2",
        "--workdir",
        str(tmp_path),
        "--output",
        "s3-stand-in",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "on 3 recording(s) of 0.05 min" in out
    lines = [line for line in out.splitlines() if "worker(s):" in line]
    assert lines[0].lstrip().startswith("1 worker(s):") and lines[1].lstrip().startswith("2 worker(s):")
    assert lines[0].split("->")[0] == lines[1].split("->")[0].replace("2 worker", "1 worker")  # same messages
    assert "2 vs 1 worker(s):" in out and "same rows" in out and "this machine's CPUs right now:" in out
    into = [line for line in out.splitlines() if line.lstrip().startswith("into s3-stand-in (2 worker(s)):")]
    assert len(into) == 1 and "local folder:" in into[0] and into[0].endswith("same rows")
    assert sorted(p.name for p in (tmp_path / "out-2w").iterdir()) == [
        "fsl-internvl3",
        "owa_build.json",
        "tokenizer",
    ]
