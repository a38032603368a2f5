"""Fuzz: real videos (H.264 without and with B-frames, HEVC) written with PyAV, then damaged byte-wise --
truncated, bits flipped in the middle, ranges zeroed, garbage appended, header bytes damaged -- and
loaded by FrameLoader. Every case must give, for every reference, the right frame (bit-exact when the
frame's bytes are intact), a frame of the right shape (damage the decoder cannot see), or a
FrameLoadError naming media_root, uri and pts (a counted placeholder with on_missing="placeholder");
never another exception, never a hang.

Each case runs in a forked child process with a time limit (a hang inside FFmpeg cannot be
interrupted from Python), and the test itself has a pytest timeout. CI runs a fixed, small set of
cases; ``OWA_FUZZ_EXAMPLES=500 pytest tests/test_training_frames_fuzz.py`` explores at random.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    from frames_fixtures import MS, H, W, sequential, write_mkv
except ImportError:  # pragma: no cover - run from the repository root without tests/ on sys.path
    from tests.frames_fixtures import MS, H, W, sequential, write_mkv

from owa_builders.training.frames import FrameLoader, FrameLoadError

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in mp.get_all_start_methods(), reason="cases run in forked children"
)

CASE_SECONDS = 20  # one case: a 30-frame 64x48 video loaded twice takes well under a second
N_FRAMES = 30
#: cases per (video, kind of damage); OWA_FUZZ_EXAMPLES=500 explores more (and randomly) than CI does
EXAMPLES = int(os.environ.get("OWA_FUZZ_EXAMPLES", "8"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="OWA_FUZZ_EXAMPLES" not in os.environ,  # CI: the same cases on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True, repr=False)
class Video:
    """An intact test video: its bytes, frame times (ns) and decoded frames (presentation order), and
    per frame the file offset where the next packet starts. Packets are stored in decode order and a
    frame depends only on packets before it in decode order (its random-access point up to itself),
    so damage at or after that offset cannot change the frame (the last packet: only damage after
    the end of the file, i.e. appended bytes)."""

    name: str
    data: bytes
    times: tuple[int, ...]
    frames: tuple[np.ndarray, ...]
    intact_before: tuple[int, ...]
    header_end: int  # file offset of the first packet: before it, the header says what the stream is

    def __repr__(self) -> str:
        return f"Video({self.name!r}, {len(self.data)} bytes, {len(self.times)} frames)"


def _describe(path: Path) -> Video:
    pts_ms, decoded = sequential(path)
    data = path.read_bytes()
    with av.open(str(path)) as c:
        starts = sorted((int(p.pos), int(p.pts)) for p in c.demux(video=0) if p.size)
    # a packet's ``pos`` lies inside its block's header: the next packet's pos is past this one's data
    until = {pts: nxt for (_, pts), (nxt, _) in zip(starts, starts[1:])}
    until[starts[-1][1]] = len(data)
    return Video(
        name=path.name,
        data=data,
        times=tuple(p * MS for p in pts_ms),
        frames=tuple(decoded[p] for p in pts_ms),
        intact_before=tuple(until[p] for p in pts_ms),
        header_end=starts[0][0],
    )


def _have(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Video]:
    root = tmp_path_factory.mktemp("fuzz")
    times = [i * 50 for i in range(N_FRAMES)]
    out = {}
    # frames show index 1..30: no real frame is all black, so an all-zero frame is a placeholder
    out["h264"] = _describe(write_mkv(root / "h264.mkv", times, gop=10, first_index=1))
    opts = {"preset": "veryfast", "bframes": "2", "x264-params": "keyint=12:min-keyint=12:scenecut=0"}
    out["h264-bframes"] = _describe(write_mkv(root / "h264b.mkv", times, options=opts, first_index=1))
    if _have("libx265"):
        hevc = {"preset": "ultrafast", "x265-params": "keyint=10:min-keyint=10:bframes=2:log-level=error"}
        out["hevc"] = _describe(
            write_mkv(root / "hevc.mkv", times, codec="libx265", options=hevc, first_index=1)
        )
    return out


# ------------------------------------------------------------------------------------------
# One case, in a forked child
# ------------------------------------------------------------------------------------------
def _outcome(video: Video, j: int, got: Any) -> tuple[Any, ...]:
    arr = np.asarray(got)
    exact = arr.shape == video.frames[j].shape and np.array_equal(arr, video.frames[j])
    return ("frame", arr.shape, arr.dtype.str, exact, not arr.any())


def _run_case(video: Video, data: bytes, order: list[int], conn: Any) -> None:  # pragma: no cover - child
    try:
        root = Path(tempfile.mkdtemp(prefix="owa-fuzz-"))
        try:
            (root / "v.mkv").write_bytes(data)
            result: dict[str, Any] = {"root": str(root), "size": None}
            try:
                idx = FrameLoader(root).index("v.mkv")
                result["size"] = (idx.height, idx.width, 3)  # what the (possibly damaged) file says
            except FrameLoadError:
                pass
            # (1) one reference per call, shuffled: seeks, resumes, the error path
            loader = FrameLoader(root, output="numpy", resume_within=0)
            single = {}
            for j in order:
                try:
                    single[j] = _outcome(video, j, loader.load_one("v.mkv", video.times[j]))
                except FrameLoadError as e:
                    single[j] = ("error", e.media_root, e.uri, e.pts_ns, str(e))
                except Exception as e:
                    single[j] = ("other", type(e).__name__, str(e), traceback.format_exc())
            result["single"] = single
            # (2) every reference in one call, placeholders: the forward pass
            lenient = FrameLoader(root, output="numpy", on_missing="placeholder", placeholder_size=(W, H))
            try:
                got = lenient.load([("v.mkv", t) for t in video.times])
                result["batch"] = [_outcome(video, j, g) for j, g in enumerate(got)]
                result["placeholders"] = lenient.stats.placeholders
            except Exception as e:
                result["batch"] = ("other", type(e).__name__, str(e), traceback.format_exc())
            conn.send(result)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    except BaseException as e:
        conn.send({"crash": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"})
    finally:
        conn.close()


def check_case(
    video: Video, data: bytes, damaged_from: int | None, seed: int, what: str, header: bool = False
) -> None:
    """Load every frame of ``data`` (a damaged copy of ``video``) in a forked child and check every outcome.

    ``damaged_from``: the first byte that may differ from the intact file when everything before it
    is intact (truncation, zeroed range, appended garbage), else None (nothing is known intact).
    ``header``: the damage may be in the header, which says what the frame size is; frames must then
    have the size the file says (one size for all), else the size the video was written with.
    """
    order = list(range(len(video.times)))
    random.Random(seed).shuffle(order)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_case, args=(video, data, order, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(CASE_SECONDS):
            pytest.fail(f"{video.name}, {what}: no result within {CASE_SECONDS} s (hang)")
        result = parent.recv()
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert "crash" not in result, f"{video.name}, {what}: the child crashed: {result.get('crash')}"
    root = result["root"]
    shape = result["size"] if header and result["size"] else (H, W, 3)

    def intact(j: int) -> bool:
        return damaged_from is not None and video.intact_before[j] <= damaged_from

    for j, out in result["single"].items():
        ctx_msg = f"{video.name}, {what}, frame {j} (pts_ns={video.times[j]})"
        assert out[0] != "other", f"{ctx_msg}: {out[1]} escaped FrameLoader: {out[2]}\n{out[3]}"
        if out[0] == "error":
            _, media_root, uri, pts_ns, message = out
            assert (media_root, uri, pts_ns) == (root, "v.mkv", video.times[j]), ctx_msg
            assert "'v.mkv'" in message and root in message and f"pts_ns={video.times[j]}" in message, message
        else:
            _, got, dtype, exact, _ = out
            assert got == shape and dtype == "|u1", f"{ctx_msg}: shape {got} {dtype}, expected {shape}"
            if intact(j):
                assert exact, f"{ctx_msg}: its bytes are intact, but the frame differs"
    batch = result["batch"]
    assert batch[0] != "other", f"{video.name}, {what}: {batch[1]} escaped the placeholder loader: {batch[2]}"
    assert len(batch) == len(video.times)
    zeros = 0
    for j, (_, got, dtype, exact, zero) in enumerate(batch):
        assert got == shape and dtype == "|u1", f"{video.name}, {what}, frame {j}: {got} {dtype}, not {shape}"
        zeros += zero
        if intact(j) and not zero:
            assert exact, f"{video.name}, {what}, frame {j}: its bytes are intact, but the frame differs"
    # every placeholder is black and counted; a black frame that is not a placeholder can only come
    # from damaged bytes the decoder did not notice (it may conceal a broken frame as black)
    damaged = sum(not intact(j) for j in range(len(video.times)))
    counted = result["placeholders"]
    assert counted <= zeros <= counted + damaged, (
        f"{video.name}, {what}: {counted} placeholders, {zeros} black"
    )


# ------------------------------------------------------------------------------------------
# Mutations
# ------------------------------------------------------------------------------------------
NAMES = ["h264", "h264-bframes", "hevc"]


def _video(videos: dict[str, Video], name: str) -> Video:
    if name not in videos:
        pytest.skip(f"no encoder for {name} here")
    return videos[name]


@pytest.mark.timeout(300 + 2 * CASE_SECONDS * EXAMPLES)
@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(cut=st.floats(0.0, 1.0, exclude_max=True), seed=st.integers(0, 2**16))
def test_truncated(videos: dict[str, Video], name: str, cut: float, seed: int) -> None:
    video = _video(videos, name)
    at = int(cut * len(video.data))
    check_case(video, video.data[:at], at, seed, f"truncated at byte {at} of {len(video.data)}")


@pytest.mark.timeout(300 + 2 * CASE_SECONDS * EXAMPLES)
@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8
    ),
    seed=st.integers(0, 2**16),
)
def test_bits_flipped_in_the_middle(
    videos: dict[str, Video], name: str, flips: list[tuple[float, int]], seed: int
) -> None:
    video = _video(videos, name)
    data = bytearray(video.data)
    start = video.header_end
    where = sorted({start + int(f * (len(data) - start)) for f, _ in flips})
    for (_, bit), at in zip(flips, where):
        data[at] ^= 1 << bit
    check_case(video, bytes(data), None, seed, f"bits flipped at {where}")


@pytest.mark.timeout(300 + 2 * CASE_SECONDS * EXAMPLES)
@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(start=st.floats(0.0, 1.0, exclude_max=True), length=st.integers(1, 600), seed=st.integers(0, 2**16))
def test_range_zeroed(videos: dict[str, Video], name: str, start: float, length: int, seed: int) -> None:
    video = _video(videos, name)
    a = int(start * len(video.data))
    b = min(len(video.data), a + length)
    data = video.data[:a] + bytes(b - a) + video.data[b:]
    check_case(video, data, a, seed, f"bytes {a}..{b} zeroed", header=a < video.header_end)


@pytest.mark.timeout(300 + 2 * CASE_SECONDS * EXAMPLES)
@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(garbage=st.binary(min_size=1, max_size=4096), seed=st.integers(0, 2**16))
def test_garbage_appended(videos: dict[str, Video], name: str, garbage: bytes, seed: int) -> None:
    video = _video(videos, name)
    check_case(video, video.data + garbage, len(video.data), seed, f"{len(garbage)} bytes appended")


@pytest.mark.timeout(300 + 2 * CASE_SECONDS * EXAMPLES)
@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(
    damage=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4
    ),
    seed=st.integers(0, 2**16),
)
def test_header_damaged(
    videos: dict[str, Video], name: str, damage: list[tuple[float, int]], seed: int
) -> None:
    video = _video(videos, name)
    data = bytearray(video.data)
    for where, value in damage:
        data[int(where * video.header_end)] = value  # EBML header, segment info, tracks (codec setup)
    check_case(video, bytes(data), None, seed, f"header bytes set: {damage}", header=True)


# ------------------------------------------------------------------------------------------
# One damaged packet, deterministically
# ------------------------------------------------------------------------------------------
def test_a_damaged_packet_fails_its_frames_only(tmp_path: Path) -> None:
    """Packet 3 of a 30-frame H.264 video (GOPs of 10) overwritten: FFmpeg raises InvalidDataError on
    it (it used to escape the loader, even with placeholders). Frame 3 and the frames decoded from
    it (4..9) are FrameLoadErrors; every other frame is exact."""
    from owa_builders.demo.recordings import write_video

    write_video(tmp_path / "ok.mkv", [i * 50 for i in range(30)], W, H, gop=10)
    _, frames = sequential(tmp_path / "ok.mkv")
    data = bytearray((tmp_path / "ok.mkv").read_bytes())
    with av.open(str(tmp_path / "ok.mkv")) as c:
        packets = [(int(p.pts), int(p.pos)) for p in c.demux(video=0) if p.size]
    pos = packets[3][1] + 8  # past the block header's rest and the NAL length: the slice itself
    data[pos : pos + 8] = bytes(8)
    (tmp_path / "bad.mkv").write_bytes(bytes(data))
    loader = FrameLoader(tmp_path, output="numpy", resume_within=0)
    order = list(range(30))
    random.Random(0).shuffle(order)
    for i in order:
        if 3 <= i <= 9:
            with pytest.raises(FrameLoadError) as e:
                loader.load_one("bad.mkv", i * 50 * MS)
            assert e.value.uri == "bad.mkv" and e.value.pts_ns == i * 50 * MS
            assert "InvalidDataError" in e.value.reason
            expected = (
                "produced no frame" if i == 3 else "damaged between this frame's random-access point and it"
            )
            assert expected in e.value.reason
        else:
            assert np.array_equal(loader.load_one("bad.mkv", i * 50 * MS), frames[i * 50]), i
    assert loader.stats.decode_errors >= 1
    lenient = FrameLoader(tmp_path, output="numpy", on_missing="placeholder")
    got = lenient.load([("bad.mkv", i * 50 * MS) for i in range(30)])  # one forward pass
    assert [i for i, g in enumerate(got) if i and not g.any()] == list(range(3, 10))  # frame 0 is black
    assert lenient.stats.placeholders == 7 and lenient.stats.seeks <= 1 + 3 * 7
    assert all(np.array_equal(got[i], frames[i * 50]) for i in range(30) if not 3 <= i <= 9)


def test_index_pass_is_bounded(tmp_path: Path) -> None:
    from owa_builders.training.frames import build_index

    path = write_mkv(tmp_path / "v.mkv", [i * 50 for i in range(20)])
    with av.open(str(path)) as c:
        with pytest.raises(ValueError, match="more than 5 packets"):
            build_index(c, c.streams.video[0], max_packets=5)
    with av.open(str(path)) as c:
        assert build_index(c, c.streams.video[0], max_packets=path.stat().st_size).frames == 20


# ------------------------------------------------------------------------------------------
# Damage libav reports (or that contradicts the container): refused and counted, never served
# ------------------------------------------------------------------------------------------
BFRAMES = {"preset": "veryfast", "bframes": "2", "x264-params": "keyint=12:min-keyint=12:scenecut=0"}
OPEN_GOP = {"preset": "ultrafast", "x264-params": "open-gop=1:bframes=2:keyint=10:min-keyint=10:scenecut=0"}
THREADS = ["SLICE", "FRAME"]


def _write_edited(path: Path, options: dict[str, str], edit: Any, n: int = N_FRAMES) -> Path:
    """A barcoded H.264 MKV (frame i shows i + 1, 50 ms apart) written with PyAV, each packet passed
    through ``edit(k, packet)`` (k: decode order) before muxing: return the packet or None to drop it."""
    from fractions import Fraction

    from owa_builders.demo.recordings import frame_image

    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = stream.time_base
        stream.options = options
        count = 0

        def mux(packets: list[Any]) -> None:
            nonlocal count
            for packet in packets:
                kept = edit(count, packet)
                count += 1
                if kept is not None:
                    container.mux(kept)

        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frame_image(i + 1, W, H), format="rgb24")
            frame.pts, frame.time_base = i * 50, Fraction(1, 1000)
            mux(stream.encode(frame))
        mux(stream.encode())
    return path


def _served(root: Path, name: str, thread_type: str, original: dict[int, np.ndarray]) -> dict[str, Any]:
    """Every frame time of the intact video (0, 50, ... ms) through FrameLoader: one call with
    placeholders (forward pass) and one shuffled call per reference (seeks). Each reference is
    ``"exact"`` (the original frame's pixels), ``"wrong"`` (another original frame's), ``"other"`` or
    ``"refused"``; a black frame that is not counted is a failure."""
    times = sorted(original)
    lenient = FrameLoader(root, output="numpy", on_missing="placeholder", thread_type=thread_type)
    got = lenient.load([(name, t * MS) for t in times])
    assert sum(not g.any() for g in got) == lenient.stats.placeholders  # every black frame counted

    def what(t: int, g: np.ndarray | None) -> str:
        if g is None or not g.any():
            return "refused"
        if np.array_equal(g, original[t]):
            return "exact"
        return "wrong" if any(np.array_equal(g, f) for f in original.values()) else "other"

    batch = {t: what(t, g) for t, g in zip(times, got)}
    strict = FrameLoader(root, output="numpy", resume_within=0, thread_type=thread_type)
    single, reasons = {}, {}
    order = list(times)
    random.Random(1).shuffle(order)
    for t in order:
        try:
            single[t] = what(t, strict.load_one(name, t * MS))
        except FrameLoadError as e:
            single[t], reasons[t] = "refused", e.reason
    return {"batch": batch, "single": single, "reasons": reasons, "lenient": lenient, "strict": strict}


@pytest.mark.parametrize("thread_type", THREADS)
def test_a_timestamp_contradicting_the_bitstream_is_refused(tmp_path: Path, thread_type: str) -> None:
    """One packet's pts rewritten (600 -> 536 ms, as a flipped bit in a block header does): the
    decoder returns its frame after the 550 ms frame, so the container's times contradict the
    bitstream's order (signal ``pts_order``). The frames of that GOP are refused and counted; no
    reference is ever served another frame's pixels (the 600 ms reference used to get the 550 ms frame)."""

    def repts(k: int, packet: Any) -> Any:
        if packet.pts == 600:
            packet.pts = 536
        return packet

    intact = _write_edited(tmp_path / "intact.mkv", BFRAMES, lambda k, p: p)
    _, original = sequential(intact)
    _write_edited(tmp_path / "bad.mkv", BFRAMES, repts)
    out = _served(tmp_path, "bad.mkv", thread_type, original)
    for mode in ("batch", "single"):
        assert set(out[mode].values()) <= {"exact", "refused"}, (mode, out[mode])
        assert out[mode][600] == "refused" and out[mode][550] == "refused"
        # both frames out of order are suspect (550 ms: decode position 9); decoded before: intact
        assert all(out[mode][t] == "exact" for t in original if t < 450 or t >= 1200)
    assert all("pts_order" in r for r in out["reasons"].values() if "damaged" in r)
    assert out["lenient"].stats.damaged >= 1 and out["strict"].stats.damaged >= 1


@pytest.mark.parametrize("thread_type", THREADS)
def test_a_truncated_tail_serves_no_stand_in(tmp_path: Path, thread_type: str) -> None:
    """Cut after the last GOP's I and P packets (B-frames 1250..1350 and the last P lost): the header
    still says 1.5 s, so times between the surviving frames of that GOP are refused instead of being
    served the 1200 ms frame, and the stream's end (1450 ms after a 1400 ms frame) is missing."""
    path = write_mkv(
        tmp_path / "whole.mkv", [i * 50 for i in range(N_FRAMES)], options=BFRAMES, first_index=1
    )
    _, original = sequential(path)
    with av.open(str(path)) as c:
        packets = [(int(p.pts), int(p.pos)) for p in c.demux(video=0) if p.size]
    decode_order = [p for p, _ in packets]
    cut = packets[decode_order.index(1400) + 1][1]  # the block after the 1400 ms P frame's
    (tmp_path / "cut.mkv").write_bytes(path.read_bytes()[:cut])
    out = _served(tmp_path, "cut.mkv", thread_type, original)
    for mode in ("batch", "single"):
        assert "wrong" not in out[mode].values(), (mode, out[mode])
        assert [t for t in original if out[mode][t] == "refused"] == [1250, 1300, 1350, 1450], out[mode]
    assert "truncated" in out["reasons"][1300] and "outside" in out["reasons"][1450]
    assert out["lenient"].stats.damaged == 3 and out["lenient"].stats.placeholders == 4


@pytest.mark.parametrize("thread_type", THREADS)
def test_seek_errors_of_an_open_gop_are_cleared_not_served_as_damage(
    tmp_path: Path, thread_type: str
) -> None:
    """Intact x264 open GOPs: seeking to a recovery point makes libav (err_detect=explode) raise
    ("mmco: unref short failure": pictures from before the point are missing). Such an error is a
    suspect, decoded again from the previous point, where it does not recur: every frame is served
    exactly, nothing is counted damaged. (Frame threads decode without explode.)"""
    path = write_mkv(tmp_path / "og.mkv", [i * 50 for i in range(N_FRAMES)], options=OPEN_GOP, first_index=1)
    _, original = sequential(path)
    out = _served(tmp_path, "og.mkv", thread_type, original)
    assert set(out["batch"].values()) == {"exact"} and set(out["single"].values()) == {"exact"}
    assert out["strict"].stats.damaged == 0
    if thread_type == "SLICE":  # frame threads decode without explode (integrity.decoder_options)
        assert out["strict"].stats.decode_errors >= 1


@pytest.mark.parametrize("thread_type", THREADS)
def test_a_decode_error_refuses_its_gop_with_frame_threads(tmp_path: Path, thread_type: str) -> None:
    """Bytes of one P slice zeroed (libav raises): with frame threads the error surfaces packets late,
    so it is blamed on every packet in flight; the frames from that packet to the next keyframe are
    refused and counted, every other frame is exact, none is another frame's."""
    path = write_mkv(tmp_path / "ok.mkv", [i * 50 for i in range(N_FRAMES)], gop=10, first_index=1)
    _, original = sequential(path)
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as c:
        packets = [(int(p.pts), int(p.pos)) for p in c.demux(video=0) if p.size]
    pos = packets[13][1] + 8
    data[pos : pos + 8] = bytes(8)
    (tmp_path / "bad.mkv").write_bytes(bytes(data))
    out = _served(tmp_path, "bad.mkv", thread_type, original)
    for mode in ("batch", "single"):
        assert "wrong" not in out[mode].values() and "other" not in out[mode].values(), (mode, out[mode])
        refused = [t // 50 for t in original if out[mode][t] == "refused"]
        assert refused and refused[0] >= 10 and all(i < 20 for i in refused), (mode, refused)
        assert 13 in refused
        assert all(out[mode][i * 50] == "exact" for i in range(N_FRAMES) if i < 10 or i >= 20)
