"""Real random-access points from the bitstream: pure functions over packet bytes (no I/O, no state).

Some recordings flag every packet as a keyframe; seeking to a flagged packet that is not a real
random-access point gives a wrong frame (grey garbage, a later frame, or nothing). So packets are
classified by their NAL units instead of their flags:

- H.264 (AVCC length-prefixed or Annex-B start codes): IDR (NAL type 5), or a recovery-point SEI
  with ``recovery_frame_cnt == 0`` (open-GOP I frames);
- HEVC: IRAP (NAL types 16..23: BLA, IDR, CRA);
- other codecs: unknown (None) -- the index then falls back to the container's flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["nal_length_size", "packet_is_rap", "random_access_points"]


def nal_length_size(codec: str, extradata: bytes) -> int | None:
    """NAL length-prefix size (bytes) for AVCC/hvcC extradata, or None for Annex-B (start codes)."""
    if not extradata or extradata.startswith(b"\x00\x00\x01") or extradata.startswith(b"\x00\x00\x00\x01"):
        return None
    if codec == "h264" and len(extradata) >= 7:
        return (extradata[4] & 3) + 1
    if codec == "hevc" and len(extradata) >= 23:
        return (extradata[21] & 3) + 1
    return None


def _nals_length_prefixed(data: memoryview, size: int) -> list[memoryview] | None:
    """The NAL units of a length-prefixed (AVCC/hvcC) access unit, or None if the lengths do not
    tile the packet exactly (then it is not length-prefixed)."""
    nals = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + size > end:
            return None
        n = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        if n == 0 or pos + n > end:
            return None
        nals.append(data[pos : pos + n])
        pos += n
    return nals


def _nals_annexb(data: bytes) -> Iterator[bytes]:
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        nal = data[start:end]
        if nal.endswith(b"\x00"):  # the 4-byte start code's leading zero
            nal = nal.rstrip(b"\x00")
        if nal:
            yield nal
        pos = nxt


def _h264_sei_is_recovery_point(nal: bytes | memoryview) -> bool:
    """Whether an H.264 SEI NAL carries a recovery point with ``recovery_frame_cnt == 0``."""
    rbsp = bytes(nal[1:]).replace(b"\x00\x00\x03", b"\x00\x00")
    pos, end = 0, len(rbsp)
    while pos < end and rbsp[pos] != 0x80:  # 0x80: rbsp trailing bits
        ptype = 0
        while pos < end and rbsp[pos] == 0xFF:
            ptype += 255
            pos += 1
        if pos >= end:
            return False
        ptype += rbsp[pos]
        pos += 1
        psize = 0
        while pos < end and rbsp[pos] == 0xFF:
            psize += 255
            pos += 1
        if pos >= end:
            return False
        psize += rbsp[pos]
        pos += 1
        if ptype == 6:  # recovery_point: recovery_frame_cnt is ue(v); a leading 1 bit means 0
            return pos < end and bool(rbsp[pos] & 0x80)
        pos += psize
    return False


def _classify(codec: str, nals: Iterable[bytes | memoryview]) -> bool | None:
    """True if the access unit is a real random-access point, False if not, None if no VCL NAL."""
    recovery = False
    for nal in nals:
        if len(nal) < 1:
            continue
        if codec == "h264":
            t = nal[0] & 0x1F
            if t == 6 and not recovery:
                recovery = _h264_sei_is_recovery_point(nal)
            elif 1 <= t <= 5:
                return t == 5 or recovery
        else:  # hevc
            t = (nal[0] >> 1) & 0x3F
            if t <= 31:  # VCL
                return 16 <= t <= 23  # IRAP: BLA_W_LP .. CRA, reserved IRAP
    return None


def packet_is_rap(codec: str, size: int | None, packet: Any) -> bool | None:
    """Whether one packet (anything with the buffer protocol) is a real random-access point;
    ``size`` is :func:`nal_length_size` of the stream's extradata. None: cannot tell."""
    if codec not in ("h264", "hevc"):
        return None
    data = memoryview(packet).cast("B")
    if size is not None:
        nals = _nals_length_prefixed(data, size)
        if nals is not None:
            return _classify(codec, nals)
    # Annex-B (start codes), also when a muxer stored it despite AVCC extradata
    return _classify(codec, _nals_annexb(bytes(data)))


def random_access_points(codec: str, extradata: bytes | None, packets: Iterable[Any]) -> list[bool | None]:
    """For each packet (anything with the buffer protocol, e.g. ``av.Packet``), whether it is a real
    random-access point by its NAL units (H.264/HEVC only; None where it cannot tell)."""
    size = nal_length_size(codec, extradata or b"")
    return [packet_is_rap(codec, size, packet) for packet in packets]
