"""owa_builders.training.frames.index: real random-access points from the bitstream (keyframe flags that
lie, open GOPs, Annex-B), frame times; checked through the loader against plain sequential decodes."""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest

try:
    from frames_fixtures import MS, naive_seek, sequential, write_mkv, write_test_videos
except ImportError:  # pragma: no cover - run from the repository root without tests/ on sys.path
    from tests.frames_fixtures import MS, naive_seek, sequential, write_mkv, write_test_videos

from owa_builders.demo.recordings import frame_index_of
from owa_builders.training.frames import FrameLoader


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_videos(tmp_path_factory.mktemp("frames"))


def test_lying_keyframes_h264(videos: Path) -> None:
    path = videos / "lying.mkv"
    pts, seq = sequential(path)
    loader = FrameLoader(videos, output="numpy", resume_within=0)
    idx = loader.index("lying.mkv")
    assert idx.rap_positions.tolist() == [0, 10, 20, 30, 40]  # the real IDRs, from the bitstream
    wrong = 0
    for i, p in enumerate(pts):
        naive = naive_seek(path, p)
        if i % 10:
            # trusting the flags lands on a P frame: the decoder skips to the next IDR (or returns nothing)
            wrong += naive is None or naive[0] != p or not np.array_equal(naive[1], seq[p])
        got = loader.load_one("lying.mkv", p * MS)
        assert np.array_equal(got, seq[p]) and frame_index_of(got) == i
    assert wrong == len(pts) - 5
    with av.open(str(videos / "a.mkv")) as c:  # the same naive seek on an honest file is right
        c.seek(13 * 50, stream=c.streams.video[0])
        assert next(f for f in c.decode(video=0) if f.pts >= 13 * 50).pts == 13 * 50


def test_lying_keyframes_hevc_open_gop(tmp_path: Path) -> None:
    """HEVC, open GOPs (CRA + RASL leading pictures), B-frames, audio, every packet flagged."""
    opts = {
        "preset": "ultrafast",
        "x265-params": "keyint=10:min-keyint=10:bframes=3:open-gop=1:scenecut=0:log-level=error",
    }
    path = write_mkv(
        tmp_path / "hevc.mkv",
        [i * 50 for i in range(40)],
        codec="libx265",
        options=opts,
        lie=True,
        audio=True,
    )
    pts, seq = sequential(path)
    assert len(pts) == 40
    loader = FrameLoader(tmp_path, output="numpy", resume_within=0)
    idx = loader.index("hevc.mkv")
    assert idx.codec == "hevc" and idx.flagged_keyframes == 40 and 3 <= len(idx.rap_positions) < 10
    rap_pts = {int(idx.pts[k]) for k in idx.rap_positions}
    wrong = 0
    order = list(range(40))
    random.Random(0).shuffle(order)
    for i in order:
        p = pts[i]
        if p not in rap_pts:
            naive = naive_seek(path, p)
            wrong += naive is None or naive[0] != p or not np.array_equal(naive[1], seq[p])
        got = loader.load_one("hevc.mkv", p * MS)
        assert np.array_equal(got, seq[p]) and frame_index_of(got) == i
    assert wrong >= (40 - len(rap_pts)) // 2


def test_lying_keyframes_h264_open_gop(tmp_path: Path) -> None:
    """x264 open GOPs: after the first IDR, random access is at non-IDR I frames that only a
    recovery-point SEI marks; B-frames; every packet flagged as a keyframe."""
    opts = {"preset": "ultrafast", "x264-params": "open-gop=1:bframes=2:keyint=10:min-keyint=10:scenecut=0"}
    path = write_mkv(tmp_path / "og.mkv", [i * 50 for i in range(40)], options=opts, lie=True)
    pts, seq = sequential(path)
    loader = FrameLoader(tmp_path, output="numpy", resume_within=0)
    idx = loader.index("og.mkv")
    assert idx.rap_positions.tolist() == [0, 10, 20, 30]
    assert not np.array_equal(idx.order, np.arange(40))  # B-frames
    order = list(range(40))
    random.Random(5).shuffle(order)
    for i in order:
        got = loader.load_one("og.mkv", pts[i] * MS)
        assert np.array_equal(got, seq[pts[i]]) and frame_index_of(got) == i


def test_annexb_h264_in_mpegts(tmp_path: Path) -> None:
    """Annex-B packets (start codes) and a 1/90000 time base (pts_ns not whole ms)."""
    path = write_mkv(tmp_path / "v.ts", [i * 50 for i in range(30)], fmt="mpegts", gop=10)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        tb = stream.time_base
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(stream)]
    loader = FrameLoader(tmp_path, output="numpy", resume_within=0)
    idx = loader.index("v.ts")
    assert idx.rap_source == "bitstream" and len(idx.rap_positions) == 3
    for p, arr in frames[::-1]:
        t = p * tb.numerator * 1_000_000_000 // tb.denominator  # floor to ns
        got = loader.load_one("v.ts", t)
        assert np.array_equal(got, arr)


def test_real_recording_remuxed_with_lying_flags(shared_recording: Path, tmp_path: Path) -> None:
    """The real HEVC stream (+ its audio and subtitle streams) remuxed with every video packet flagged."""
    src = shared_recording.with_suffix(".mkv")
    dst = tmp_path / "lying_real.mkv"
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="matroska") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None and packet.size == 0:
                continue
            if packet.stream.type == "video":
                packet.is_keyframe = True
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    pts, seq = sequential(dst)
    loader = FrameLoader(tmp_path, output="numpy", resume_within=0)
    idx = loader.index(dst.name)
    assert idx.flagged_keyframes == len(pts) and idx.rap_positions.tolist() == [0]
    naive_right = 0
    for p in pts[1:6]:
        naive = naive_seek(dst, p)
        naive_right += naive is not None and naive[0] == p and np.array_equal(naive[1], seq[p])
    assert naive_right == 0
    for p in reversed(pts):
        assert np.array_equal(loader.load_one(dst.name, p * MS), seq[p])


def test_index_times_and_positions(videos: Path) -> None:
    """``time_ns``/``locate``/``start_for``/``span_ns`` on a B-frame stream (decode order != presentation order)."""
    pts, _ = sequential(videos / "vfr.mkv")
    idx = FrameLoader(videos).index("vfr.mkv")
    assert idx.frames == len(pts) and [idx.time_ns(j) for j in range(idx.frames)] == [p * MS for p in pts]
    assert idx.span_ns()[0] == 0 and idx.span_ns()[1] == idx.end_ns > pts[-1] * MS
    for j, p in enumerate(pts):
        assert idx.locate(p * MS) == j and idx.locate(p * MS + 1) == j  # 1 ns of slack
        if j + 1 < len(pts):
            assert idx.locate(pts[j + 1] * MS - 2) == j  # displayed until the next frame
        pos = int(idx.order[j])
        start = idx.start_for(pos)
        assert start is not None and idx.rap[start] and start <= pos and idx.pts[start] <= idx.pts[pos]
    assert idx.locate(-MS) is None and idx.locate(idx.end_ns + 1) is None and idx.locate(idx.end_ns) is None
    assert idx.locate(idx.end_ns - 1) == idx.frames - 1
    assert idx.declared_end_ns == idx.end_ns  # the video track's DURATION tag (the audio lasts longer)
