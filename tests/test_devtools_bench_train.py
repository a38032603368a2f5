"""devtools.bench_train at a tiny size: runs end to end, every frame checked (no timing assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from devtools import bench_train


def test_train_bench_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--workdir", str(tmp_path), "--sizes", "64x48,48x32", "--seconds", "2", "--workers", "0,1",
            "--repeat", "1", "--smolvlm-px", "32", "--internvl-px", "32", "--seek-rows", "2"]  # fmt: skip
    result = bench_train.main(argv)
    out = capsys.readouterr().out
    assert result["checked"] and set(result["sizes"]) == {"64x48", "48x32"}
    for size, r in result["sizes"].items():
        assert r["video_frames"] == 40 and r["rows"] > 1 and 0 < r["frames"] <= 2 * r["video_frames"], size
        for key in ("pyav_sequential", "pyav_seek_per_frame", "frames_in_order", "frames_shuffled",
                    "processor_smolvlm", "processor_internvl", "processor_smolvlm_resize_decoding"):  # fmt: skip
            assert r[key]["frames_per_s"] > 0, (size, key)
        assert r["dataloader_resize"] == bench_train.decode_size("smolvlm", 32, *map(int, size.split("x")))
        assert set(r["dataloader"]) == {"0w_in_order", "0w_shuffled", "1w_in_order", "1w_shuffled"}
        for key, d in r["dataloader"].items():
            assert d["samples_per_s"] > 0 and all(mb > 0 for mb in d["peak_rss_mb"]), key
            assert len(d["peak_rss_mb"]) == 1  # the main process, or the one worker
        assert {"frames_in_order/pyav_sequential", "frames_shuffled/pyav_seek_per_frame"} <= set(r["ratios"])
        if result["torchcodec"] == "available":
            assert (
                r["torchcodec_in_order"]["frames_per_s"] > 0
                and "frames_shuffled/torchcodec_shuffled" in r["ratios"]
            )
    if result["torchcodec"] != "available":
        assert "torchcodec not measured" in out
    assert "(c) DataLoader 1 workers, shuffled" in out and "samples/s" in out
    # the recordings are written once per size and reused
    assert len(list(tmp_path.glob("train_*/train/*.mkv"))) == 2
    again = bench_train.main([*argv[:3], "48x32", *argv[4:], "--no-dataloader", "--no-torchcodec"])
    assert "reusing" in capsys.readouterr().out and "dataloader" not in again["sizes"]["48x32"]
    assert again["torchcodec"].startswith("disabled")


def test_sizes_are_validated() -> None:
    with pytest.raises(SystemExit):
        bench_train.main(["--sizes", "1920by1080"])


def test_decode_size_matches_the_processors() -> None:
    assert bench_train.decode_size("internvl", 448, 1920, 1080) == (448, 448)
    assert bench_train.decode_size("smolvlm", 512, 1920, 1080) == (512, 288)
    assert bench_train.decode_size("smolvlm", 512, 1025, 1017) == (512, 508)
