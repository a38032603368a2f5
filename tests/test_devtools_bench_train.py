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
            # its approximate mode places frames by the average rate: wrong on a recording's jittered times
            assert any(k.endswith(("/approximate/0", "/approximate/1")) for k in r["torchcodec_wrong_frames"])
            assert r["torchcodec_in_order"]["mode"].startswith("exact")
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


def _torchcodec() -> None:
    why = bench_train.torchcodec_status()
    if why is not None:
        pytest.skip(f"torchcodec unavailable: {why}")


def test_torchcodec_exact_mode_gives_the_frame_loaders_frames(tmp_path: Path) -> None:
    """The comparator is honest: torchcodec (exact mode) returns the FrameLoader's frames, pixel for
    pixel, on a jittered, barcoded video, in order and out of order."""
    _torchcodec()
    import numpy as np
    from torchcodec.decoders import VideoDecoder

    from devtools.bench_frames import frame_number, write_bench_video
    from owa_builders.training.frames import FrameLoader

    pts_ms = [20, 71, 118, 170, 223, 268, 321, 370, 419, 472, 518, 569]  # jittered, as recorded
    write_bench_video(tmp_path / "v.mkv", width=96, height=64, seconds=1, fps=20, gop=4, pts_ms=pts_ms)
    times = [p * 1_000_000 for p in pts_ms]
    order = [7, 0, 11, 3, 4, 10, 1]
    ours = FrameLoader(tmp_path, output="numpy").load([("v.mkv", times[i]) for i in order])
    decoder = VideoDecoder(str(tmp_path / "v.mkv"), seek_mode="exact", dimension_order="NHWC")
    theirs = [decoder.get_frames_played_at(seconds=[times[i] / 1e9]).data[0].numpy() for i in order]
    assert [frame_number(f) for f in ours] == order
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def _all_frames_agree(root: Path, name: str) -> None:
    """torchcodec (exact mode) and the FrameLoader give the same pixels for every frame, last to first."""
    import numpy as np
    from torchcodec.decoders import VideoDecoder

    from owa_builders.training.frames import FrameLoader

    loader = FrameLoader(root, output="numpy")
    idx = loader.index(name)
    times = [idx.time_ns(j) for j in range(idx.frames)]
    ours = loader.load([(name, t) for t in times])
    decoder = VideoDecoder(str(root / name), seek_mode="exact", dimension_order="NHWC")
    for j in reversed(range(idx.frames)):
        theirs = decoder.get_frames_played_at(seconds=[times[j] / 1e9]).data[0].numpy()
        assert np.array_equal(ours[j], theirs), (name, j)


def test_torchcodec_on_a_video_with_lying_keyframe_flags(tmp_path: Path) -> None:
    """Every packet flagged a keyframe (as some recorders write): torchcodec's exact mode still agrees
    with the FrameLoader, which never trusts the flags."""
    _torchcodec()
    from frames_fixtures import write_mkv

    write_mkv(tmp_path / "lying.mkv", [i * 50 for i in range(30)], gop=10, lie=True)
    _all_frames_agree(tmp_path, "lying.mkv")


def test_torchcodec_on_the_real_recording(shared_recording: Path) -> None:
    """The real 0.5.1 recording (HEVC, from the OWA recorder): the same frames from both decoders."""
    _torchcodec()
    _all_frames_agree(shared_recording.parent, shared_recording.with_suffix(".mkv").name)
