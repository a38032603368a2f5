"""What libav says about damage while decoding: signals per decode position (pure bookkeeping, no I/O).

A :class:`FrameJudge` is told, in decode order, every packet fed to a decoder, every error the
decoder raised and every frame it returned; it records per decode position what was reported
there (:attr:`FrameJudge.signals`). The loader refuses a frame when any signal lies between the
frame's random-access point and the frame. The judge does not care how packets are scheduled
(one at a time, decode-ahead, decoder threads): only the order it is told things in matters.

Signals:

- ``decode_error``: the decoder raised (``av.InvalidDataError`` and friends). With
  :data:`DECODER_OPTIONS` (``err_detect=...+explode``) libav raises on damage it would otherwise
  conceal (an undecodable macroblock, a bad slice header, a missing reference);
- ``frame_corrupt``: the frame's ``AV_FRAME_FLAG_CORRUPT`` (PyAV ``frame.is_corrupt``), set by
  the decoder for frames decoded from missing references (e.g. a GOP without its keyframe);
- ``packet_corrupt``: the demuxer flagged the packet (``AV_PKT_FLAG_CORRUPT``);
- ``pts_order``: the decoder returned a frame whose pts is not after the previous frame's (or
  one whose pts is not a packet's): the container's timestamps contradict the bitstream's
  order, so a time cannot be tied to a picture; both frames are suspect.

And one judgement from the index alone, :func:`truncated_tail`: a time between frames near the
end of a truncated file (header duration > frames' end) may belong to a lost frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .index import SLACK_NS, VideoIndex, to_ns

#: Containers without presentation timestamps: FFmpeg's AVI demuxer makes pts up from the packet
#: order, so frames of a B-frame stream come out of order by design (no ``pts_order`` judged).
NO_PTS_FORMATS = frozenset({"avi"})

__all__ = [
    "DECODER_OPTIONS",
    "IN_FLIGHT",
    "SETTLE_PACKETS",
    "TRUNCATION_SLACK_NS",
    "FrameJudge",
    "truncated_tail",
]

#: A container header's duration may exceed the frames' end by this much (rounding) without the file
#: being taken for truncated (ns).
TRUNCATION_SLACK_NS = 1_000_000

#: An error is blamed on the packets in flight at most this many decode positions before the newest
#: one fed (frame threads hold up to one packet per thread; B-frame reordering holds a few more).
IN_FLIGHT = 32
#: A frame is served once the packets decoded before it have come out of the decoder (their frames
#: can show its timestamp wrong), waiting at most this many more packets (H.264's reorder limit).
SETTLE_PACKETS = 16

#: libav decoder options the loader opens decoders with (see :func:`decoder_options`): check what can
#: be checked (``crccheck``, ``bitstream``, ``buffer``) and fail loudly (``explode``) instead of concealing.
DECODER_OPTIONS: dict[str, str] = {"err_detect": "crccheck+bitstream+buffer+explode"}


def decoder_options(thread_type: str) -> dict[str, str]:
    """The decoder options for a decoder with ``thread_type``: :data:`DECODER_OPTIONS`, except with
    frame threads (``"FRAME"``, ``"AUTO"``), where libav's H.264 decoder, once ``explode`` has failed
    a frame, fails every later packet until flushed (no frame comes out): there only the corrupt
    flags, plain decode errors and timestamps are signals."""
    return {} if thread_type.upper() in ("FRAME", "AUTO") else dict(DECODER_OPTIONS)


class FrameJudge:
    """Signals of damage per decode position, for one positioned decode (reset on every seek).

    ``position_of_pts``: the video's pts (stream time base) -> decode position (the index's).
    Positions are the packets' decode positions; a frame's signals are recorded at the
    position of the packet carrying its pts.
    """

    def __init__(self, position_of_pts: Mapping[int, int], check_order: bool = True) -> None:
        self.position_of_pts = position_of_pts
        #: judge ``pts_order`` (off for containers whose demuxer makes presentation times up)
        self.check_order = check_order
        #: decode position -> signal names (a property of the file: kept across seeks)
        self.signals: dict[int, list[str]] = {}
        #: decode position -> errors raised in the first GOP after a seek, which the seek itself can
        #: cause (an open GOP's recovery point: libav misses pictures from before it, e.g. "mmco: unref
        #: short failure"); confirmed or cleared by decoding that position from an earlier point
        self.suspects: dict[int, list[str]] = {}
        self._last_pts: int | None = None
        self._last_where: int | None = None
        self._in_flight: dict[int, None] = {}  # positions fed whose frame has not come out (ordered)
        self._from_pts: int | None = None
        self._suspect_from, self._suspect_until = 0, 0
        self._leading = False  # the last packet fed is a leading picture of the starting point

    def restart(self, from_pts: int | None = None, first_gop: tuple[int, int] = (0, 0)) -> None:
        """The decoder was flushed (a seek to the random-access point at ``from_pts``): nothing is in
        flight, the pts order starts over; frames before ``from_pts`` (the point's leading pictures,
        which the caller drops) are not judged. Errors at decode positions in ``first_gop``
        (``[start, end)``: from the point to the next one; empty when decoding from the video's first
        point) are only suspects (:attr:`suspects`)."""
        self._last_pts = None
        self._last_where = None
        self._in_flight.clear()
        self._from_pts = from_pts
        self._suspect_from, self._suspect_until = first_gop

    def _suspect(self, where: int) -> bool:
        return self._suspect_from <= where < self._suspect_until

    def position_of(self, packet: Any) -> int | None:
        p = packet.pts if packet.pts is not None else packet.dts
        return self.position_of_pts.get(int(p)) if p is not None else None

    def mark(self, where: int | None, signal: str) -> None:
        if where is None:
            return
        names = self.signals.setdefault(where, [])
        if signal not in names:
            names.append(signal)

    def packet(self, packet: Any, where: int | None) -> None:
        """A packet about to be fed at decode position ``where``."""
        pts = packet.pts if packet.pts is not None else packet.dts
        self._leading = self._from_pts is not None and pts is not None and int(pts) < self._from_pts
        if self._leading:
            return  # a leading picture of the starting point: its references were skipped
        if getattr(packet, "is_corrupt", False):
            self.mark(where, "packet_corrupt")
        if where is not None:
            self._in_flight[where] = None
            if not self._suspect(where):
                self.suspects.pop(where, None)  # decoded with its references: judged anew

    def error(self, error: BaseException, where: int | None) -> bool:
        """The decoder raised ``error`` while fed the packet at decode position ``where`` (None: the
        flush); True if it is blamed on that position for sure. The error may belong to any packet whose frame has not come out yet (frame threads
        report an error one or more packets late; reordering holds frames back), so all of them are
        marked -- refusing a few frames too many rather than serving one damaged frame. An error on a
        leading picture of the starting point (an open GOP's, decoded without its references, never
        served) is expected and ignored (False returned)."""
        if self._leading:
            return False
        latest = max(self._in_flight, default=-1)
        blamed = [pos for pos in self._in_flight if pos >= latest - IN_FLIGHT]
        for pos in blamed + ([where] if where is not None and where not in blamed else []):
            if self._suspect(pos):
                names = self.suspects.setdefault(pos, [])
                if "decode_error" not in names:
                    names.append("decode_error")
            else:
                self.mark(pos, "decode_error")
        return where is not None and not self._suspect(where)

    def frame(self, frame: Any) -> None:
        """A frame the decoder returned, every one, in the order returned (the caller filters after)."""
        if frame.pts is None:
            return
        pts = int(frame.pts)
        where = self.position_of_pts.get(pts)
        if where is not None:
            self._in_flight.pop(where, None)
        if self._from_pts is not None and pts < self._from_pts:
            return  # a leading picture of the starting point: dropped by the caller, never served
        if getattr(frame, "is_corrupt", False):
            self.mark(where, "frame_corrupt")
        if not self.check_order:
            return
        if where is None:
            self.mark(self._last_where, "pts_order")
        elif self._last_pts is not None and pts <= self._last_pts:
            self.mark(where, "pts_order")
            self.mark(self._last_where, "pts_order")
        if where is not None and (self._last_pts is None or pts > self._last_pts):
            self._last_pts, self._last_where = pts, where

    def between(self, first: int, last: int) -> str | None:
        """The signals at decode positions in ``[first, last]`` (e.g. ``"decode_error at 3"``), or None."""
        found = [
            f"{'+'.join(names)} at decode position {pos}"
            for pos, names in sorted(self.signals.items())
            if first <= pos <= last
        ]
        return ", ".join(found) if found else None

    def settled(self, position: int) -> bool:
        """Whether every packet fed at a decode position <= ``position`` has come out as a frame (so
        that whatever their frames show about it, e.g. ``pts_order``, is known)."""
        return not any(pos <= position for pos in self._in_flight)

    def suspect_between(self, first: int, last: int) -> bool:
        """Whether an error at a decode position in ``[first, last]`` awaits confirmation."""
        return any(first <= pos <= last for pos in self.suspects)


def truncated_tail(index: VideoIndex, j: int, pts_ns: int) -> str | None:
    """Why the time ``pts_ns`` (ns), located at presentation position ``j``, cannot be served, or None.

    The loader serves a time between two frames as the earlier frame. That is only right if no
    frame between them was lost: when the container's header says the video lasts longer than its
    frames do (a truncated file), frames of the last GOP may be missing (a B-frame stream loses the
    frames displayed before its last P frame), so in the last GOP only exact frame times are served.
    """
    if index.declared_end_ns <= index.end_ns + TRUNCATION_SLACK_NS or not index.frames:
        return None
    if abs(pts_ns - index.time_ns(j)) <= SLACK_NS:
        return None  # the frame itself
    last_rap = index.rap_positions[-1] if len(index.rap_positions) else 0
    if pts_ns < to_ns(int(index.pts[int(last_rap)]), index.time_base):
        return None
    return (
        f"between frames of a truncated video (its header says it lasts {index.declared_end_ns} ns, its "
        f"frames end at {index.end_ns} ns): a frame displayed at this time may be lost"
    )
