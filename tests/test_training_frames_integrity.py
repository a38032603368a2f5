"""FrameJudge (owa_builders.training.frames.integrity): signals per decode position, told in decode
order about real PyAV packets and frames (timestamps set by hand), and the truncated-tail rule."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from owa_builders.training.frames import FrameLoader
from owa_builders.training.frames.integrity import (
    DECODER_OPTIONS,
    FrameJudge,
    decoder_options,
    truncated_tail,
)

try:
    from frames_fixtures import MS, write_mkv
except ImportError:  # pragma: no cover
    from tests.frames_fixtures import MS, write_mkv


def _packet(pts: int) -> av.Packet:
    packet = av.Packet(b"\x00\x00\x00\x01\x09")
    packet.pts = pts
    return packet


def _frame(pts: int) -> av.VideoFrame:
    frame = av.VideoFrame(16, 16, "yuv420p")
    frame.pts = pts
    return frame


POSITIONS = {0: 0, 100: 1, 50: 2, 200: 3, 150: 4}  # decode order: I0 P100 B50 P200 B150


def test_frames_in_presentation_order_raise_nothing() -> None:
    judge = FrameJudge(POSITIONS)
    for pts, pos in POSITIONS.items():
        judge.packet(_packet(pts), pos)
    for pts in (0, 50, 100, 150, 200):
        judge.frame(_frame(pts))
    assert judge.signals == {} and judge.between(0, 4) is None and judge.settled(4)


def test_a_frame_out_of_order_marks_both() -> None:
    judge = FrameJudge(POSITIONS)
    for pts in (0, 100, 50):
        judge.frame(_frame(pts))
    assert judge.signals == {1: ["pts_order"], 2: ["pts_order"]}
    assert "pts_order at decode position 1" in judge.between(0, 1)
    assert judge.between(3, 4) is None


def test_a_frame_with_an_unknown_pts_marks_the_one_before() -> None:
    judge = FrameJudge(POSITIONS)
    judge.frame(_frame(0))
    judge.frame(_frame(77))
    assert judge.signals == {0: ["pts_order"]}


def test_errors_are_blamed_on_every_packet_in_flight() -> None:
    judge = FrameJudge(POSITIONS)
    for pts in (0, 100, 50):
        judge.packet(_packet(pts), POSITIONS[pts])
    judge.frame(_frame(0))
    assert not judge.settled(1)
    assert judge.error(av.InvalidDataError(1, "x"), 2) is True
    assert sorted(judge.signals) == [1, 2]  # 0 came out: not blamed
    judge.restart()
    assert judge.settled(4)


def test_leading_pictures_and_first_gop_errors_after_a_seek() -> None:
    judge = FrameJudge(POSITIONS)
    judge.restart(from_pts=100, first_gop=(1, 3))
    judge.packet(_packet(50), 2)  # a leading picture of the point at 100 ms
    assert judge.error(av.InvalidDataError(1, "x"), 2) is False and judge.signals == {}
    judge.frame(_frame(50))  # never served: not judged
    judge.packet(_packet(100), 1)
    assert judge.error(av.InvalidDataError(1, "x"), 1) is False  # first GOP: a suspect only
    assert judge.suspects == {1: ["decode_error"]} and judge.between(0, 4) is None
    assert judge.suspect_between(0, 1) and not judge.suspect_between(2, 4)
    judge.restart(from_pts=0)  # decoded again from the point before: the suspect is judged anew
    judge.packet(_packet(100), 1)
    assert judge.suspects == {}


def test_decoder_options_follow_the_threading() -> None:
    assert decoder_options("SLICE") == DECODER_OPTIONS and "explode" in DECODER_OPTIONS["err_detect"]
    assert decoder_options("FRAME") == {} and decoder_options("AUTO") == {}


def test_truncated_tail(tmp_path: Path) -> None:
    opts = {"preset": "veryfast", "bframes": "2", "x264-params": "keyint=12:min-keyint=12:scenecut=0"}
    path = write_mkv(tmp_path / "v.mkv", [i * 50 for i in range(30)], options=opts)
    with av.open(str(path)) as c:
        cut = [int(p.pos) for p in c.demux(video=0) if p.size][-3]
    (tmp_path / "cut.mkv").write_bytes(path.read_bytes()[:cut])
    whole, cut_idx = FrameLoader(tmp_path).index("v.mkv"), FrameLoader(tmp_path).index("cut.mkv")
    assert whole.declared_end_ns == whole.end_ns == cut_idx.declared_end_ns > cut_idx.end_ns
    for idx in (whole, cut_idx):
        for j in range(idx.frames):
            assert truncated_tail(idx, j, idx.time_ns(j)) is None  # a frame's own time: always served
    j = cut_idx.frames - 2  # between two frames of the last GOP
    assert truncated_tail(whole, j, whole.time_ns(j) + 10 * MS) is None
    assert "truncated" in truncated_tail(cut_idx, j, cut_idx.time_ns(j) + 10 * MS)
    assert truncated_tail(cut_idx, 1, cut_idx.time_ns(1) + 10 * MS) is None  # an earlier GOP


@pytest.mark.parametrize("thread_type", ["SLICE", "FRAME"])
def test_intact_videos_raise_no_signal(tmp_path: Path, thread_type: str) -> None:
    opts = {"preset": "veryfast", "bframes": "2", "x264-params": "keyint=12:min-keyint=12:scenecut=0"}
    write_mkv(tmp_path / "v.mkv", [i * 50 for i in range(30)], options=opts)
    loader = FrameLoader(tmp_path, output="numpy", thread_type=thread_type, resume_within=0)
    for i in (29, 3, 17, 0, 12, 28):
        loader.load_one("v.mkv", i * 50 * MS)
    video = loader.cache.get("v.mkv")
    assert video.judge.signals == {} and video.judge.suspects == {} and loader.stats.damaged == 0
