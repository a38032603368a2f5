"""owa_builders.training.frames.bitstream: NAL classification of hand-made H.264/HEVC access units
and of real packets written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av

try:
    from frames_fixtures import write_mkv
except ImportError:  # pragma: no cover - run from the repository root without tests/ on sys.path
    from tests.frames_fixtures import write_mkv

from owa_builders.training.frames import random_access_points


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


def test_real_h264_packets_muxed_with_lying_flags(tmp_path: Path) -> None:
    """Packets of a real libx264 stream muxed with every packet flagged as a keyframe (the container's
    cues then point at every frame): by their NAL units, only the IDRs are random-access points."""
    path = write_mkv(tmp_path / "v.mkv", [i * 50 for i in range(12)], gop=5, lie=True)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        packets = [p for p in c.demux(stream) if p.size]
        extradata = bytes(stream.codec_context.extradata or b"")
    assert len(packets) == 12
    assert random_access_points("h264", extradata, packets) == [i % 5 == 0 for i in range(12)]
