"""owa_builders.training.frames.loader: FrameLoader against plain sequential decodes of real MKVs written
with PyAV (exact frames, batching, resuming, outputs, errors, placeholders, pickling)."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import uuid
from pathlib import Path

import av
import numpy as np
import pytest

try:
    from frames_fixtures import MS, H, W, sequential, write_test_videos
except ImportError:  # pragma: no cover
    from tests.frames_fixtures import MS, H, W, sequential, write_test_videos

from owa_builders.demo.recordings import frame_index_of
from owa_builders.training.frames import FrameLoader, FrameLoadError, FrameRef


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_videos(tmp_path_factory.mktemp("frames"))


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
    for bad_pts in ["5", 1.5, None, True]:
        with pytest.raises(TypeError, match=repr(bad_pts)):
            FrameRef("a.mkv", bad_pts)  # type: ignore[arg-type]
    for negative in [-1, np.int64(-5)]:
        with pytest.raises(ValueError, match=f"got {int(negative)}"):
            FrameRef("a.mkv", negative)
        with pytest.raises(ValueError, match=f"got {int(negative)}"):
            FrameRef.coerce({"uri": "a.mkv", "pts_ns": negative})


def test_negative_pts_is_an_invalid_reference(videos: Path) -> None:
    """pts_ns=-1 used to round onto frame 0 (1 ns of slack): it is an invalid reference."""
    loader = FrameLoader(videos, output="numpy")
    for refs in ([("a.mkv", -1)], [{"uri": "a.mkv", "pts_ns": -1}], [("a.mkv", 0), ("a.mkv", -MS)]):
        with pytest.raises(FrameLoadError, match="invalid reference") as e:
            loader.load(refs)
        assert e.value.pts_ns < 0 and f"pts_ns={e.value.pts_ns}" in str(e.value) and "'a.mkv'" in str(e.value)
    with pytest.raises(FrameLoadError, match="invalid reference"):  # before any I/O: even for a missing video
        loader.load_one("missing.mkv", -1)
    assert loader.stats.frames == 0 and len(loader.cache) == 0
    lenient = FrameLoader(videos, output="numpy", on_missing="placeholder")
    first, bad = lenient.load([("a.mkv", 0), ("a.mkv", -1)])
    assert frame_index_of(first) == 0 and bad.shape == (H, W, 3) and not bad.any()
    assert lenient.stats.placeholders == 1


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
    # after the last frame: still the last frame within one frame duration, missing from its end on
    # (a truncated file's last frame must not stand in for the first lost one)
    idx = loader.index("vfr.mkv")
    last = pts[-1] * MS
    assert idx.end_ns > last
    assert frame_index_of(loader.load_one("vfr.mkv", idx.end_ns - 1)) == len(pts) - 1
    for t in (idx.end_ns, idx.end_ns + 1):
        with pytest.raises(FrameLoadError):
            loader.load_one("vfr.mkv", t)


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
    # 13 frames, and one more: a served frame's timestamp is confirmed by the next frame out
    assert loader2.stats.seeks == 1 and loader2.stats.decoded == 14
    # backwards: seek to the real keyframe before the target
    assert frame_index_of(loader2.load_one("a.mkv", 3 * 50 * MS)) == 3
    assert loader2.stats.seeks == 2 and loader2.stats.decoded == 14 + 5
    # far ahead (a seek to frame 30 skips 26 frames): seek instead of decoding 4..29
    assert frame_index_of(loader2.load_one("a.mkv", 33 * 50 * MS)) == 33
    assert loader2.stats.seeks == 3 and loader2.stats.decoded == 14 + 5 + 5
    # with a larger resume_within, the same jump decodes forward
    loader3 = FrameLoader(videos, output="numpy", resume_within=30)
    loader3.load_one("a.mkv", 3 * 50 * MS)
    assert frame_index_of(loader3.load_one("a.mkv", 33 * 50 * MS)) == 33
    assert loader3.stats.seeks == 1 and loader3.stats.decoded == 34 + 1  # + the frame after 33


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
        # a uri that is itself a URL: outside the root, unless trusted (see test_training_frames_source)
        with pytest.raises(FrameLoadError, match="URL"):
            FrameLoader("/nonexistent", output="numpy").load_one(f"memory://{base}/vfr.mkv", 0)
        trusted = FrameLoader("/nonexistent", output="numpy", allow_outside_root=True)
        assert np.array_equal(trusted.load_one(f"memory://{base}/vfr.mkv", 0), vseq[0])
    finally:
        fs.rm(base, recursive=True)


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


def test_errors_name_root_uri_and_pts(videos: Path, tmp_path: Path) -> None:
    loader = FrameLoader(videos, output="numpy")
    cases = [
        ("missing.mkv", 0, "not found"),
        ("a.mkv", -MS, "invalid reference"),
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
    for resize in [(0, 10), (10,), "10x10", (10.5, 3), (True, 3)]:
        with pytest.raises(ValueError, match="resize"):
            FrameLoader(videos, resize=resize)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="placeholder_size"):
            FrameLoader(videos, placeholder_size=resize)  # type: ignore[arg-type]
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
    assert got[0].shape == (H, W, 3) and not got[0].any()  # a missing video: the size of this call's frames
    assert got[1].shape == (H, W, 3) and not got[1].any()  # the video's size
    assert frame_index_of(got[2]) == 1
    assert got[3].shape == (H, W, 3) and not got[3].any()
    assert loader.stats.placeholders == 3 and loader.stats.frames == 4
    resized = FrameLoader(videos, output="pil", on_missing="placeholder", resize=(20, 10))
    img = resized.load_one("missing.mkv", 0)
    assert img.size == (20, 10) and img.mode == "RGB" and resized.stats.placeholders == 1


def test_placeholder_size_is_never_made_up(videos: Path, tmp_path: Path) -> None:
    """A missing video's placeholder: placeholder_size, else the last decoded frame's size; else an error
    (it used to be a 1x1 frame that broke batching)."""
    fresh = FrameLoader(videos, output="numpy", on_missing="placeholder")
    with pytest.raises(FrameLoadError, match=r"not found.*pass placeholder_size=\(width, height\)") as e:
        fresh.load_one("missing.mkv", 0)
    assert e.value.uri == "missing.mkv" and e.value.ref_index == 0 and fresh.stats.placeholders == 0
    assert frame_index_of(fresh.load_one("b.mkv", (2 * 50 + 1) * MS)) == 2
    later = fresh.load_one("missing.mkv", 0)  # a later call: the last frame this loader decoded
    assert later.shape == (H, W, 3) and not later.any() and fresh.stats.placeholders == 1
    given = FrameLoader(videos, output="numpy", on_missing="placeholder", placeholder_size=(20, 10))
    alone, frame, bad_time = given.load([("missing.mkv", 0), ("a.mkv", 0), ("a.mkv", -1)])
    assert alone.shape == (10, 20, 3) and not alone.any()  # the caller's size for a video that is not there
    assert frame.shape == bad_time.shape == (H, W, 3) and not bad_time.any()  # the video's own size
    assert pickle.loads(pickle.dumps(given)).placeholder_size == (20, 10)
    # a video of another size: its placeholders have its size
    from owa_builders.demo.recordings import write_video

    write_video(tmp_path / "big.mkv", [0, 50], 96, 80)
    other = FrameLoader(tmp_path, output="torch", on_missing="placeholder")
    assert tuple(other.load_one("big.mkv", 10**12).shape) == (3, 80, 96)
    with pytest.raises(ValueError, match="placeholder_size"):
        FrameLoader(videos, placeholder_size=(0, 10))


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


def test_loader_repr_and_context_manager(videos: Path) -> None:
    with FrameLoader(videos, output="numpy") as loader:
        loader.load_one("a.mkv", 0)
        assert "FrameLoader(" in repr(loader) and len(loader.cache) == 1
    assert len(loader.cache) == 0
    assert os.path.exists(videos / "a.mkv")
