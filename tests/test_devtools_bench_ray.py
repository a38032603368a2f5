"""The Ray bench runs every worker count on the same files and checks they make the same rows
(no timing assertions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from owa_builders.cli import main

pytestmark = pytest.mark.usefixtures("ray_cluster")
pytest.importorskip("s3fs", reason="the S3 stand-in needs s3fs and moto (the test extra)")
pytest.importorskip("moto", reason="the S3 stand-in needs s3fs and moto (the test extra)")


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


def test_bench_ray_straggler_builds_split_and_unsplit_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ray_cluster: Any
) -> None:
    argv = ["bench-ray", "--straggler", "--episodes", "1", "--minutes", "0.05", "--workdir", str(tmp_path)]
    assert main(argv) == 0  # exits with an error when the split build's rows or accounts differ
    out = capsys.readouterr().out
    assert "1 recording(s) of 0.05 min + one of 0.4 min" in out
    assert "1 worker (the total): 2 tasks" in out and "2 workers, one task per recording: 2 tasks" in out
    split_tasks = int(out.split("2 workers, long one split: ")[1].split(" tasks")[0])
    assert split_tasks == 1 + 8  # the long recording as 8 slices of 0.05 min
    assert "ideal on 2 workers = total/2" in out and "same rows, same accounts" in out
