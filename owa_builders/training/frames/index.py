"""Per-video index: frame times and real random-access points, from one demux-only pass (no decoding).

:func:`build_index` reads every packet of the video stream once; :class:`VideoIndex` keeps, per
frame, its pts (stream time base) and whether it is a real random-access point (by the
bitstream, see :mod:`.bitstream`; else the container's flags), plus presentation order and times
in ns. A few bytes per frame; the loader caches indexes beyond the life of open containers.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .bitstream import nal_length_size, packet_is_rap

__all__ = ["NS", "SLACK_NS", "VideoIndex", "build_index", "to_ns", "video_stream"]

NS = 1_000_000_000
#: Rounding tolerance (ns) when matching a requested time to a frame time.
SLACK_NS = 1


def to_ns(pts: int, tb: Fraction) -> int:
    """``pts * tb`` in ns, rounded half up."""
    num = pts * tb.numerator * NS
    return (2 * num + tb.denominator) // (2 * tb.denominator)


@dataclass
class VideoIndex:
    """What the loader knows about one video stream, from one demux-only pass.

    ``pts`` (stream time-base units) and ``rap`` are in decode (packet) order; ``order`` lists
    decode positions in presentation order, ``pts_ns`` the matching presentation times (ns,
    sorted). "Position" below is a decode position unless it says presentation position.
    """

    codec: str
    time_base: Fraction
    width: int
    height: int
    pts: np.ndarray  # int64, decode order
    rap: np.ndarray  # bool, decode order
    order: np.ndarray  # int64: decode positions sorted by pts
    pts_ns: np.ndarray  # int64: presentation times (ns), sorted
    end_ns: int  # last frame's pts_ns + one frame duration
    rap_source: str  # "bitstream", "flags" or "none"
    flagged_keyframes: int = 0
    declared_end_ns: int = -1  # how long the container's header says the video lasts (ns; -1: unknown)
    position_of_pts: dict[int, int] = field(default_factory=dict, repr=False)
    rap_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def __post_init__(self) -> None:
        if not self.position_of_pts:
            pos: dict[int, int] = {}
            for i, p in enumerate(self.pts.tolist()):
                pos.setdefault(p, i)
            self.position_of_pts = pos
        self.rap_positions = np.flatnonzero(self.rap).astype(np.int64)
        raps = self.rap_positions
        #: typical distance (frames, decode order) between random-access points
        self.gop = int(np.median(np.diff(raps))) if len(raps) > 1 else max(1, len(self.pts))
        self._times = self.pts_ns.tolist()  # plain ints: bisect on a list is faster than on an array

    @property
    def frames(self) -> int:
        return len(self.pts)

    def time_ns(self, j: int) -> int:
        """Presentation time (ns) of the frame at presentation position ``j``."""
        return self._times[j]

    def locate(self, pts_ns: int) -> int | None:
        """Presentation position of the frame displayed at ``pts_ns``, or None if outside the stream."""
        j = bisect.bisect_right(self._times, pts_ns + SLACK_NS) - 1
        if j < 0 or pts_ns > self.end_ns or (pts_ns == self.end_ns and self.end_ns > self._times[-1]):
            return None  # the last frame is displayed until end_ns, not at it
        return j

    def start_for(self, position: int) -> int | None:
        """Decode position of the latest real random-access point from which decoding reaches the
        packet at decode ``position`` correctly (at or before it in decode *and* presentation order)."""
        k = int(np.searchsorted(self.rap_positions, position, side="right")) - 1
        target = self.pts[position]
        while k >= 0 and self.pts[self.rap_positions[k]] > target:
            k -= 1  # a leading picture of that point: needs the previous one
        return int(self.rap_positions[k]) if k >= 0 else None

    def span_ns(self) -> tuple[int, int]:
        """(first frame's time, end of the stream) in ns; ``(0, -1)`` when there are no frames."""
        return (int(self.pts_ns[0]), int(self.end_ns)) if len(self.pts_ns) else (0, -1)


def video_stream(container: Any) -> Any | None:
    """The container's first video stream that is not an attached picture (cover art), or None.
    Every other stream (audio, subtitles, covers, ...) is discarded by the demuxer itself, so its
    packets are not even read out."""
    video = next((s for s in container.streams.video if not _is_attached_picture(s)), None)
    if video is None:
        return None
    for stream in container.streams:
        if stream.index != video.index:
            try:
                stream.discard = type(stream.discard).all
            except Exception:  # pragma: no cover - older PyAV: the packets are then just skipped
                pass
    return video


def _is_attached_picture(stream: Any) -> bool:
    disposition = getattr(stream, "disposition", 0)
    return bool(int(disposition) & 0x400)  # AV_DISPOSITION_ATTACHED_PIC


def build_index(container: Any, stream: Any, max_packets: int | None = None) -> VideoIndex:
    """Index ``stream`` with a demux-only pass (no decoding); leaves ``container`` at end of file.

    ``max_packets`` bounds the pass (e.g. the file's size in bytes: every packet takes at least one
    byte); a demuxer yielding more raises ValueError instead of looping.
    """
    cc = stream.codec_context
    codec = cc.name
    extradata = bytes(cc.extradata or b"")
    size = nal_length_size(codec, extradata)
    pts_l: list[int] = []
    rap_l: list[bool | None] = []
    flag_l: list[bool] = []
    dur_l: list[int] = []
    for count, packet in enumerate(container.demux(stream)):
        if max_packets is not None and count > max_packets:
            raise ValueError(f"the demuxer returned more than {max_packets} packets: the file is damaged")
        if packet.size == 0:
            continue
        p = packet.pts if packet.pts is not None else packet.dts
        if p is None:
            continue
        pts_l.append(int(p))
        flag_l.append(bool(packet.is_keyframe))
        rap_l.append(packet_is_rap(codec, size, packet))
        dur_l.append(int(packet.duration or 0))
    tb = stream.time_base or Fraction(1, 1000)
    if any(r for r in rap_l):
        rap = np.array([bool(r) for r in rap_l], dtype=bool)
        source = "bitstream"
    elif any(flag_l):
        rap = np.array(flag_l, dtype=bool)
        source = "flags"
    else:
        rap = np.zeros(len(pts_l), dtype=bool)
        source = "none"
    pts = np.array(pts_l, dtype=np.int64)
    order = np.argsort(pts, kind="stable").astype(np.int64)
    pts_ns = np.array([to_ns(int(p), tb) for p in pts[order]], dtype=np.int64)
    end_ns = -1
    if len(pts):
        last = int(order[-1])
        dur = dur_l[last]
        if dur > 0:
            dur_ns = to_ns(dur, tb)
        elif len(pts_ns) > 1:
            dur_ns = int(statistics.median(np.diff(pts_ns).tolist()))
        else:
            dur_ns = 0
        end_ns = int(pts_ns[-1]) + dur_ns
    return VideoIndex(
        codec=codec,
        time_base=Fraction(tb),
        width=int(cc.width or 0),
        height=int(cc.height or 0),
        pts=pts,
        rap=rap,
        order=order,
        pts_ns=pts_ns,
        end_ns=end_ns,
        rap_source=source,
        flagged_keyframes=int(sum(flag_l)),
        declared_end_ns=_declared_end_ns(container, stream),
    )


def _declared_end_ns(container: Any, stream: Any) -> int:
    """How long the header says the video stream lasts (ns, from time 0), or -1 when it does not say:
    the stream's duration, else its Matroska ``DURATION`` tag, else the container's duration when the
    video is its only stream (with other streams, that is the longest one's)."""
    tb = stream.time_base
    if isinstance(stream.duration, int) and stream.duration > 0 and tb:
        start = stream.start_time if isinstance(stream.start_time, int) else 0
        return to_ns(stream.duration + max(start, 0), Fraction(tb))
    tag = (getattr(stream, "metadata", None) or {}).get("DURATION")
    if isinstance(tag, str):
        try:
            h, m, sec = tag.split(":")
            whole, _, frac = sec.partition(".")
            return ((int(h) * 60 + int(m)) * 60 + int(whole)) * NS + int((frac + "000000000")[:9])
        except ValueError:
            return -1
    duration = getattr(container, "duration", None)  # AV_TIME_BASE (us) units
    if len(container.streams) != 1 or not isinstance(duration, int) or duration <= 0:
        return -1
    start = getattr(container, "start_time", None)
    return (duration + (start if isinstance(start, int) and start > 0 else 0)) * 1000
