"""Test videos for the owa_builders.training.frames tests: real MKVs written with PyAV, whose frames
carry their index (``owa_builders.demo.recordings.frame_image``), and plain-PyAV references to check against."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from owa_builders.demo.recordings import frame_image, write_video

MS = 1_000_000
W, H = 64, 48


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
    first_index: int = 0,
) -> Path:
    """Frames carrying their index (``first_index`` + position); ``lie``: every video packet muxed with
    ``is_keyframe = True``."""
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
            frame = av.VideoFrame.from_ndarray(frame_image(first_index + i, width, height), format="rgb24")
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


def write_test_videos(root: Path) -> Path:
    """``vfr.mkv`` (VFR, B-frames, audio), ``a/b/c.mkv`` (40 frames at 50 ms + k, GOP 10/15/20) and
    ``lying.mkv`` (every packet flagged as a keyframe) in ``root``."""
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
