"""owa_builders.training.frames: FrameLoader against plain sequential decodes of real MKVs written with PyAV."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import random
import subprocess
import sys
import uuid
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from owa_builders.tools.example import frame_image, frame_index_of, write_video
from owa_builders.training.frames import (
    FrameLoader,
    FrameLoadError,
    FrameRef,
    VideoCache,
    random_access_points,
)

MS = 1_000_000
W, H = 64, 48


# ------------------------------------------------------------------------------------------
# Writing test videos
# ------------------------------------------------------------------------------------------
def write_mkv(
    path: Path,
    pts_ms: list[int],
    *,
    codec: str = "libx264",
    gop: int = 10,
    options: dict | None = None,
    lie: bool = False,
    audio: bool = False,
    fmt: str = "matroska",
    width: int = W,
    height: int = H,
) -> Path:
    """Frames carrying their index; ``lie``: every video packet muxed with ``is_keyframe = True``."""
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=20)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if fmt == "matroska":
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = stream.time_base
        stream.codec_context.gop_size = gop
        stream.options = options or {"preset": "ultrafast", "bframes": "0"}
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=16000)
            astream.layout = "mono"
        apts = 0

        def mux(packets):
            for packet in packets:
                if lie:
                    packet.is_keyframe = True
                container.mux(packet)

        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(frame_image(i, width, height), format="rgb24")
            frame.pts = int(pts)
            frame.time_base = Fraction(1, 1000)
            mux(stream.encode(frame))
            while astream is not None and apts < pts * 16:
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, apts
                apts += 1024
                container.mux(astream.encode(af))
        mux(stream.encode())
        if astream is not None:
            container.mux(astream.encode())
    return path


def jittered_pts(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    pts, t = [], 0
    for _ in range(n):
        pts.append(t)
        t += rng.choice([17, 33, 50, 50, 50, 66, 120])
    return pts


def sequential(path: Path | str) -> tuple[list[int], dict[int, np.ndarray]]:
    """Plain sequential decode: frame pts (ms, presentation order) and RGB arrays by pts."""
    with av.open(str(path)) as container:
        frames = {f.pts: f.to_ndarray(format="rgb24") for f in container.decode(video=0)}
    return sorted(frames), frames


def naive_seek(path: Path | str, pts: int) -> tuple[int, np.ndarray] | None:
    """What trusting the keyframe flags gives: container.seek(pts) then the first frame at/after pts."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(pts, stream=stream)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts >= pts:
                return frame.pts, frame.to_ndarray(format="rgb24")
    return None


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frames")
    # VFR, B-frames (decode order != presentation order), an audio stream
    write_mkv(
        root / "vfr.mkv",
        jittered_pts(60),
        gop=12,
        options={"preset": "veryfast", "bframes": "2", "x264-params": "keyint=12:min-keyint=12:scenecut=0"},
        audio=True,
    )
    for k, name in enumerate("abc"):
        write_video(root / f"{name}.mkv", [i * 50 + k for i in range(40)], W, H, gop=10 + 5 * k)
    write_mkv(root / "lying.mkv", [i * 50 for i in range(50)], gop=10, lie=True)
    return root


# ------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------
def test_frame_ref_coercion() -> None:
    ref = FrameRef("a.mkv", 5)
    assert FrameRef.coerce(ref) is ref
    assert FrameRef.coerce(("a.mkv", 5)) == ref
    assert FrameRef.coerce({"uri": "a.mkv", "pts_ns": np.int64(5)}) == ref
    assert hash(FrameRef("a.mkv", 5)) == hash(ref)
    with pytest.raises(AttributeError):
        ref.pts_ns = 3  # type: ignore[misc]
    for bad in [{"uri": "a.mkv"}, ("a.mkv",), 5, ("a.mkv", 1.5), ("", 1), ("a.mkv", None), ("a.mkv", True)]:
        with pytest.raises(TypeError):
            FrameRef.coerce(bad)


# ------------------------------------------------------------------------------------------
# Exactness
# ------------------------------------------------------------------------------------------
def test_every_pts_matches_sequential_decode(videos: Path) -> None:
    pts, seq = sequential(videos / "vfr.mkv")
    loader = FrameLoader(videos, output="numpy")
    idx = loader.index("vfr.mkv")
    assert idx.codec == "h264" and idx.rap_source == "bitstream"
    assert not np.array_equal(idx.order, np.arange(len(idx.order)))  # B-frames: decode order differs
    # one batch, and one call per frame in shuffled order with forced seeks
    got = loader.load([("vfr.mkv", p * MS) for p in pts])
    for i, (p, arr) in enumerate(zip(pts, got)):
        assert np.array_equal(arr, seq[p]) and frame_index_of(arr) == i
    audio = loader.cache.get("vfr.mkv").container.streams.audio[0]
    assert audio.discard.name == "all"  # only the video stream is read out and decoded
    seeker = FrameLoader(videos, output="numpy", resume_within=0)
    order = list(range(len(pts)))
    random.Random(1).shuffle(order)
    for i in order:
        assert np.array_equal(seeker.load([("vfr.mkv", pts[i] * MS)])[0], seq[pts[i]])
    assert seeker.stats.seeks > 10


def test_pts_between_frames_and_stream_end(videos: Path) -> None:
    pts, seq = sequential(videos / "vfr.mkv")
    loader = FrameLoader(videos, output="numpy")
    refs, expected = [], []
    for i in range(len(pts) - 1):
        for t in (pts[i] * MS + 1, (pts[i] + pts[i + 1]) * MS // 2, pts[i + 1] * MS - 2):
            refs.append(("vfr.mkv", t))
            expected.append(i)  # the frame displayed at t: latest pts <= t
    got = loader.load(refs)
    assert [frame_index_of(a) for a in got] == expected
    # after the last frame: still the last frame within one frame duration, missing beyond it
    idx = loader.index("vfr.mkv")
    last = pts[-1] * MS
    assert idx.end_ns > last
    assert frame_index_of(loader.load_one("vfr.mkv", idx.end_ns)) == len(pts) - 1
    with pytest.raises(FrameLoadError):
        loader.load_one("vfr.mkv", idx.end_ns + 1)


def test_batched_multi_video_in_request_order(videos: Path) -> None:
    rng = random.Random(3)
    refs = [(name, (i * 50 + k) * MS, i) for k, name in enumerate("abc") for i in range(40)]
    refs += [("vfr.mkv", p * MS, i) for i, p in enumerate(sequential(videos / "vfr.mkv")[0])]
    rng.shuffle(refs)
    refs += refs[:5]  # duplicates
    for output in ("numpy", "pil"):
        loader = FrameLoader(videos, output=output)
        got = loader.load([{"uri": u if u.endswith(".mkv") else f"{u}.mkv", "pts_ns": t} for u, t, _ in refs])
        assert [frame_index_of(np.asarray(g)) for g in got] == [i for _, _, i in refs]
        assert loader.stats.frames == len(refs)
        assert loader.stats.seeks == 4  # one forward pass per video
        assert loader.stats.converted == len(refs) - 5  # duplicates converted once...
    a, b = got[0], got[len(refs) - 5]  # ...but returned as distinct objects
    assert a is not b and np.array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------------------------------
# Decoder reuse and the cache
# ------------------------------------------------------------------------------------------
def test_time_ordered_samples_resume_without_seeking(videos: Path) -> None:
    loader = FrameLoader(videos, output="numpy")
    n = 40
    for start in range(0, n - 8 + 1, 8):  # FSL-like samples of 8 frames, in time order, one call each
        got = loader.load([("a.mkv", (i * 50) * MS) for i in range(start, start + 8)])
        assert [frame_index_of(g) for g in got] == list(range(start, start + 8))
    assert loader.stats.seeks == 1
    assert loader.stats.decoded == n  # every frame decoded exactly once
    assert loader.stats.cache_misses == 1 and loader.stats.cache_hits == 4
    # a.mkv has keyframes every 10 frames. Ahead in the same GOP, or just past the next keyframe:
    # no seek; the same frame again: no decode.
    loader2 = FrameLoader(videos, output="numpy")
    got = [frame_index_of(loader2.load_one("a.mkv", i * 50 * MS)) for i in (0, 0, 4, 8, 12)]
    assert got == [0, 0, 4, 8, 12]
    assert loader2.stats.seeks == 1 and loader2.stats.decoded == 13
    # backwards: seek to the real keyframe before the target
    assert frame_index_of(loader2.load_one("a.mkv", 3 * 50 * MS)) == 3
    assert loader2.stats.seeks == 2 and loader2.stats.decoded == 13 + 4
    # far ahead (a seek to frame 30 skips 26 frames): seek instead of decoding 4..29
    assert frame_index_of(loader2.load_one("a.mkv", 33 * 50 * MS)) == 33
    assert loader2.stats.seeks == 3 and loader2.stats.decoded == 13 + 4 + 4
    # with a larger resume_within, the same jump decodes forward
    loader3 = FrameLoader(videos, output="numpy", resume_within=30)
    loader3.load_one("a.mkv", 3 * 50 * MS)
    assert frame_index_of(loader3.load_one("a.mkv", 33 * 50 * MS)) == 33
    assert loader3.stats.seeks == 1 and loader3.stats.decoded == 34


def test_lru_bound_and_evictions(videos: Path) -> None:
    loader = FrameLoader(videos, output="numpy", max_open_videos=1)
    for rnd in range(3):
        for k, name in enumerate("abc"):
            i = 5 + rnd
            assert frame_index_of(loader.load_one(f"{name}.mkv", (i * 50 + k) * MS)) == i
            assert len(loader.cache) == 1 and loader.cache.open_keys() == [f"{name}.mkv"]
    assert loader.stats.evictions == 8 and loader.stats.cache_misses == 9
    assert loader.stats.indexes_built == 3  # indexes outlive their containers
    # one batch over 3 videos with one slot: still right, still bounded
    got = loader.load([(f"{n}.mkv", (7 * 50 + "abc".index(n)) * MS) for n in "cab"])
    assert [frame_index_of(g) for g in got] == [7, 7, 7] and len(loader.cache) == 1
    loader.close()
    assert len(loader.cache) == 0


def test_video_cache_closes_evicted() -> None:
    closed = []

    class Fake:
        def __init__(self, key):
            self.key, self.index = key, object()

        def close(self):
            closed.append(self.key)

    cache = VideoCache(2)
    for key in "abc":
        cache.put(key, Fake(key))  # type: ignore[arg-type]
    assert closed == ["a"] and cache.open_keys() == ["b", "c"] and cache.evictions == 1
    cache.get("b")
    cache.put("d", Fake("d"))  # type: ignore[arg-type]
    assert closed == ["a", "c"] and cache.open_keys() == ["b", "d"]
    with pytest.raises(ValueError):
        VideoCache(0)
    small = VideoCache(1, max_indexes=3)
    for k in range(10):
        small.put_index(f"v{k}", object())  # type: ignore[arg-type]
    assert [k for k in ("v6", "v7", "v8", "v9") if small.index(k) is not None] == ["v7", "v8", "v9"]


def test_tune_allocator_in_a_subprocess() -> None:
    code = (
        "import pickle, sys\n"
        "from owa_builders.training.frames import FrameLoader, tune_allocator\n"
        "ok = tune_allocator()\n"
        "import platform\n"
        "assert ok == (platform.libc_ver()[0] == 'glibc'), ok\n"
        "loader = pickle.loads(pickle.dumps(FrameLoader('.', tune_allocator=True)))\n"
        "assert loader.tune_allocator is True\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# ------------------------------------------------------------------------------------------
# Lying keyframe flags
# ------------------------------------------------------------------------------------------
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


def test_nal_parsing() -> None:
    # H.264 AVCC, 4-byte lengths: a P slice whose length is 0x125 starts "00 00 01 25" -- which is
    # NOT an Annex-B start code followed by an IDR NAL (0x25 & 0x1f == 5).
    p_slice = (0x125).to_bytes(4, "big") + bytes([0x41]) + bytes(0x124)
    idr = (5).to_bytes(4, "big") + bytes([0x65, 0x88, 0x84, 0x00, 0x10])
    sei_recovery = bytes([0x06, 0x06, 0x01, 0xC4, 0x80])  # recovery point, recovery_frame_cnt = 0
    p_nal = bytes([0x41, 0x9A, 0x00])
    open_gop_i = len(sei_recovery).to_bytes(4, "big") + sei_recovery + len(p_nal).to_bytes(4, "big") + p_nal
    avcc = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0x00, 0x10])
    assert random_access_points("h264", avcc, [p_slice, idr, open_gop_i]) == [False, True, True]
    sei_later = bytes([0x06, 0x06, 0x01, 0x44, 0x80])  # recovery_frame_cnt = 1: not a random-access point
    gradual = len(sei_later).to_bytes(4, "big") + sei_later + len(p_nal).to_bytes(4, "big") + p_nal
    assert random_access_points("h264", avcc, [gradual]) == [False]
    annexb = [b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x65\x88", b"\x00\x00\x01\x41\x9a"]
    assert random_access_points("h264", b"", annexb) == [True, False]
    # HEVC: CRA (21) and IDR_W_RADL (19) are random-access points; TRAIL_R (1) and RASL_N (8) are not
    hvcc = bytes([1] + [0] * 20 + [3, 0])
    aud = (3).to_bytes(4, "big") + bytes([0x46, 0x01, 0x10])  # access unit delimiter (35)

    def au(nal_type: int) -> bytes:
        return aud + (3).to_bytes(4, "big") + bytes([nal_type << 1, 1, 0xAF])

    assert random_access_points("hevc", hvcc, [au(19), au(21), au(1), au(8)]) == [True, True, False, False]
    assert random_access_points("vp9", None, [b"\x00"]) == [None]


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


# ------------------------------------------------------------------------------------------
# Where videos live
# ------------------------------------------------------------------------------------------
def test_fsspec_memory_root(videos: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    base = f"/frames-test-{uuid.uuid4().hex}"
    fs.pipe(f"{base}/sub/lying.mkv", (videos / "lying.mkv").read_bytes())
    fs.pipe(f"{base}/vfr.mkv", (videos / "vfr.mkv").read_bytes())
    try:
        pts, seq = sequential(videos / "lying.mkv")
        vpts, vseq = sequential(videos / "vfr.mkv")
        loader = FrameLoader(f"memory://{base}", output="numpy", max_open_videos=1, resume_within=0)
        order = list(range(len(pts)))
        random.Random(2).shuffle(order)
        for i in order[:20]:
            assert np.array_equal(loader.load_one("sub/lying.mkv", pts[i] * MS), seq[pts[i]])
        got = loader.load([("vfr.mkv", p * MS) for p in vpts] + [("sub/lying.mkv", 0)])
        assert all(np.array_equal(g, vseq[p]) for g, p in zip(got, vpts))
        assert np.array_equal(got[-1], seq[0])
        with pytest.raises(FrameLoadError, match="memory://"):
            loader.load_one("sub/missing.mkv", 0)
        # a uri that is itself a URL
        assert np.array_equal(
            FrameLoader("/nonexistent", output="numpy").load_one(f"memory://{base}/vfr.mkv", 0), vseq[0]
        )
    finally:
        fs.rm(base, recursive=True)


# ------------------------------------------------------------------------------------------
# The real recording (HEVC, VFR, audio + subtitle streams, padded odd size)
# ------------------------------------------------------------------------------------------
def _screen_refs(mcap_path: Path) -> list[dict]:
    from mcap.reader import make_reader

    refs = []
    with open(mcap_path, "rb") as f:
        reader = make_reader(f)
        for _, _channel, message in reader.iter_messages(topics=["screen"]):
            payload = json.loads(message.data)
            refs.append({**payload["media_ref"], "source_shape": payload["source_shape"]})
    return refs


def test_real_recording_matches_sequential_decode(shared_recording: Path) -> None:
    mkv = shared_recording.with_suffix(".mkv")
    refs = _screen_refs(shared_recording)
    assert len(refs) > 10 and all(r["uri"] == mkv.name for r in refs)
    pts, seq = sequential(mkv)
    with av.open(str(mkv)) as c:
        assert {s.type for s in c.streams} >= {"video", "audio", "subtitle"}

    def expected(pts_ns: int) -> np.ndarray:
        return seq[max(p for p in pts if p * MS <= pts_ns)]

    loader = FrameLoader(mkv.parent, output="numpy")
    got = loader.load([{"uri": r["uri"], "pts_ns": r["pts_ns"]} for r in refs])
    for r, arr in zip(refs, got):
        assert np.array_equal(arr, expected(r["pts_ns"]))
        w, h = r["source_shape"]
        assert (arr.shape[1], arr.shape[0]) == (w + w % 2, h + h % 2)  # padded size, as decoded
    assert loader.stats.seeks == 1 and loader.index(mkv.name).codec == "hevc"
    seeker = FrameLoader(mkv.parent, output="numpy", resume_within=0)
    for r in reversed(refs):
        assert np.array_equal(seeker.load_one(r["uri"], r["pts_ns"]), expected(r["pts_ns"]))


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


# ------------------------------------------------------------------------------------------
# Errors and placeholders
# ------------------------------------------------------------------------------------------
def test_errors_name_root_uri_and_pts(videos: Path, tmp_path: Path) -> None:
    loader = FrameLoader(videos, output="numpy")
    cases = [
        ("missing.mkv", 0, "not found"),
        ("a.mkv", -MS, "outside"),
        ("a.mkv", 10 * 60 * 1_000_000_000, "outside"),
    ]
    (videos / "garbage.mkv").write_bytes(b"not a video" * 100)
    cases.append(("garbage.mkv", 0, "cannot open"))
    for uri, pts_ns, reason in cases:
        with pytest.raises(FrameLoadError) as e:
            loader.load([("a.mkv", 0), (uri, pts_ns)])
        msg = str(e.value)
        assert isinstance(e.value, ValueError)
        assert str(videos) in msg and repr(uri) in msg and reason in msg and f"pts_ns={pts_ns}" in msg
        assert (e.value.media_root, e.value.uri, e.value.pts_ns) == (str(videos), uri, pts_ns)
        assert str(pickle.loads(pickle.dumps(e.value))) == msg  # crosses DataLoader worker boundaries
    audio_only = tmp_path / "audio.mka"
    with av.open(str(audio_only), "w", format="matroska") as c:
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        for k in range(4):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, k * 1024
            c.mux(s.encode(af))
        c.mux(s.encode())
    with pytest.raises(FrameLoadError, match="no video stream"):
        FrameLoader(tmp_path).load_one("audio.mka", 0)
    with pytest.raises(FrameLoadError):
        FrameLoader(tmp_path / "nowhere").load_one("a.mkv", 0)


def test_bad_arguments(videos: Path) -> None:
    with pytest.raises(ValueError):
        FrameLoader(videos, output="jpeg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FrameLoader(videos, on_missing="skip")  # type: ignore[arg-type]
    for resize in [(0, 10), (10,), "10x10", (10.5, 3)]:
        with pytest.raises(ValueError):
            FrameLoader(videos, resize=resize)  # type: ignore[arg-type]
    for n in [0, -1, 1.5, True]:
        with pytest.raises(ValueError):
            FrameLoader(videos, max_open_videos=n)  # type: ignore[arg-type]
    for n in [-1, None, 2.0]:
        with pytest.raises(ValueError):
            FrameLoader(videos, resume_within=n)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FrameLoader(videos).load([("a.mkv", "0")])


def test_placeholders_are_counted(videos: Path) -> None:
    loader = FrameLoader(videos, output="numpy", on_missing="placeholder")
    got = loader.load([("missing.mkv", 0), ("a.mkv", -5 * MS), ("a.mkv", 50 * MS), ("a.mkv", 10**12)])
    assert got[0].shape == (1, 1, 3) and not got[0].any()  # size unknown
    assert got[1].shape == (H, W, 3) and not got[1].any()  # the video's size
    assert frame_index_of(got[2]) == 1
    assert got[3].shape == (H, W, 3) and not got[3].any()
    assert loader.stats.placeholders == 3 and loader.stats.frames == 4
    resized = FrameLoader(videos, output="pil", on_missing="placeholder", resize=(20, 10))
    img = resized.load_one("missing.mkv", 0)
    assert img.size == (20, 10) and img.mode == "RGB" and resized.stats.placeholders == 1


# ------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------
def test_outputs_and_resize(videos: Path) -> None:
    ref = ("a.mkv", 9 * 50 * MS)
    arr = FrameLoader(videos, output="numpy").load_one(*ref)
    assert (
        arr.dtype == np.uint8
        and arr.shape == (H, W, 3)
        and arr.flags.c_contiguous
        and frame_index_of(arr) == 9
    )
    img = FrameLoader(videos, output="pil").load_one(*ref)
    assert img.mode == "RGB" and img.size == (W, H) and np.array_equal(np.asarray(img), arr)
    small = FrameLoader(videos, output="numpy", resize=(32, 40)).load_one(*ref)
    assert small.shape == (40, 32, 3) and frame_index_of(small) == 9
    img = FrameLoader(videos, output="pil", resize=(32, 40)).load_one(*ref)
    assert img.size == (32, 40) and np.array_equal(np.asarray(img), small)


def test_torch_output(videos: Path) -> None:
    torch = pytest.importorskip("torch")
    ref = ("a.mkv", 9 * 50 * MS)
    arr = FrameLoader(videos, output="numpy").load_one(*ref)
    t = FrameLoader(videos, output="torch").load_one(*ref)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and tuple(t.shape) == (3, H, W)
    assert t.is_contiguous() and np.array_equal(t.permute(1, 2, 0).numpy(), arr)
    loader = FrameLoader(videos, output="torch", resize=(32, 40), on_missing="placeholder")
    a, b = loader.load([ref, ("missing.mkv", 0)])
    assert tuple(a.shape) == (3, 40, 32) and tuple(b.shape) == (3, 40, 32) and int(b.sum()) == 0


def test_imports_without_torch(videos: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import owa_builders, owa_builders.training.frames as f\n"
        f"a = f.FrameLoader({str(videos)!r}, output='numpy').load_one('a.mkv', 0)\n"
        "assert a.shape == (48, 64, 3)\n"
        "try:\n"
        f"    f.FrameLoader({str(videos)!r}, output='torch').load_one('a.mkv', 0)\n"
        "except ImportError: print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------
def test_pickling_drops_open_videos(videos: Path) -> None:
    loader = FrameLoader(
        videos,
        output="numpy",
        resize=(32, 24),
        max_open_videos=2,
        on_missing="placeholder",
        storage_options={"anon": True},
    )
    loader.load([("a.mkv", 0), ("b.mkv", MS)])
    assert len(loader.cache) == 2
    clone = pickle.loads(pickle.dumps(loader))
    assert len(clone.cache) == 0 and clone.stats.frames == 0
    assert (
        clone.media_root,
        clone.output,
        clone.resize,
        clone.max_open_videos,
        clone.on_missing,
        clone.storage_options,
    ) == (str(videos), "numpy", (32, 24), 2, "placeholder", {"anon": True})
    assert frame_index_of(clone.load_one("c.mkv", (4 * 50 + 2) * MS)) == 4
    assert len(loader.cache) == 2  # the original is untouched


def _child_load(loader: FrameLoader, queue) -> None:  # pragma: no cover - runs in a child process
    got = loader.load([("a.mkv", i * 50 * MS) for i in range(20, 30)] + [("b.mkv", (3 * 50 + 1) * MS)])
    queue.put(([frame_index_of(g) for g in got], len(loader.cache)))


@pytest.mark.skipif(sys.platform == "win32" or "fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_forked_child_gets_its_own_containers(videos: Path) -> None:
    loader = FrameLoader(videos, output="numpy")
    assert [frame_index_of(g) for g in loader.load([("a.mkv", i * 50 * MS) for i in range(5)])] == list(
        range(5)
    )
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_load, args=(loader, queue))
    proc.start()
    indices, open_in_child = queue.get(timeout=60)
    proc.join(60)
    assert indices == list(range(20, 30)) + [3] and open_in_child == 2
    # the parent closed its videos before forking (a threaded decoder cannot cross a fork) and reopens them
    assert [frame_index_of(g) for g in loader.load([("a.mkv", i * 50 * MS) for i in range(5, 10)])] == list(
        range(5, 10)
    )
    assert loader.stats.seeks == 2 and loader.stats.indexes_built == 1


def test_cache_in_forked_child_forgets_parent_videos_without_closing() -> None:
    closed = []

    class Fake:
        index = object()

        def close(self):
            closed.append(self)

    cache = VideoCache(2)
    cache.put("a", Fake())  # type: ignore[arg-type]
    cache._pid = -1  # as seen from a child forked while the parent was loading
    assert cache.get("a") is None and len(cache) == 0 and closed == []


def test_loader_repr_and_context_manager(videos: Path) -> None:
    with FrameLoader(videos, output="numpy") as loader:
        loader.load_one("a.mkv", 0)
        assert "FrameLoader(" in repr(loader) and len(loader.cache) == 1
    assert len(loader.cache) == 0
    assert os.path.exists(videos / "a.mkv")
