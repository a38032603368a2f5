"""devtools.bench_frames at a tiny size: runs end to end and checks every frame (no timing assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import bench_frames as frames_bench


def test_frames_bench_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--workdir",
        str(tmp_path),
        "--width",
        "64",
        "--height",
        "48",
        "--seconds",
        "2",
        "--fps",
        "20",
        "--gop",
        "10",
        "--window",
        "4",
        "--repeat",
        "1",
        "--malloc",
        "default",
        "--json",
    ]
    result = frames_bench.main(argv)
    out = capsys.readouterr().out
    assert "wrote" in out and "(b)/(a)" in out and "(c)/(d)" in out
    assert result["malloc_tuned"] is False  # process-wide setting: not in the test process
    assert result["frames"] == 40 and result["samples"] == 10 and result["checked"]
    assert set(result["fps"]) == {
        "a_sequential",
        "a_sequential_holding_samples",
        "b_ordered",
        "c_shuffled",
        "d_seek_per_frame",
    }
    assert all(v > 0 for v in result["fps"].values())
    assert result["loader_stats"]["b"]["seeks"] == 1  # time order: one forward pass
    assert result["loader_stats"]["b"]["decoded"] == 40
    # the video is cached in the workdir and reused
    again = frames_bench.main(argv[:-1] + ["--naive-samples", "2"])
    assert "reusing" in capsys.readouterr().out and again["video"] == result["video"]
    assert len(list(tmp_path.glob("*.mkv"))) == 1


def test_bench_video_frames_carry_their_index(tmp_path: Path) -> None:
    import av

    path = tmp_path / "v.mkv"
    pts = frames_bench.write_bench_video(path, width=96, height=64, seconds=1, fps=10, gop=5)
    with av.open(str(path)) as c:
        frames = [(f.pts, frames_bench.frame_number(f.to_ndarray(format="rgb24"))) for f in c.decode(video=0)]
    assert frames == [(p, i) for i, p in enumerate(pts)]
