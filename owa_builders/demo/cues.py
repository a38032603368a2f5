"""Example recordings whose actions depend on what the screen shows: the data for the learning check.

In the built-in example recordings (:mod:`owa_builders.demo.recordings`) the input is random and the
screen shows a frame-index barcode, so no token can be predicted from a frame: a model gains
nothing from the frames there. Here every frame shows a *cue*, one lit block of a ``2 x 4`` grid
(chosen at random, seeded), and after a frame with probability ``press_probability`` the user
presses and releases the key of that cue (``A`` .. ``H``) before the next frame, at fixed delays: the
key's identity is the one thing in the token stream that cannot be predicted without the frame. A model that reads
the frames can predict which key comes (about ``ln 8`` nats per press it can save); one that is
given the wrong frames cannot.

Recordings are written with the real writer (:func:`~owa_builders.demo.recordings.write_recording`,
current layout) and real H.264 video (PyAV, Matroska, time base 1/1000, integer-millisecond pts),
with a slow random mouse as raw deltas. Everything is seeded: the same arguments give the same
events and frames.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .recordings import DEFAULT_START_NS, MS, NS, RawEvent, write_recording, write_video

#: The cue grid (rows, columns): one lit block per frame.
CUE_GRID = (2, 4)
#: The key of each cue: virtual-key codes of ``A`` .. ``H``.
CUE_KEYS = tuple(range(0x41, 0x41 + CUE_GRID[0] * CUE_GRID[1]))


@dataclass(frozen=True)
class CueSpec:
    """One cued session. Durations in s, rates in Hz, sizes in px."""

    duration_s: float = 20.0
    """Length of the session."""
    seed: int = 0
    """Seeds the cues, the presses, their timing and the mouse."""
    start_ns: int = DEFAULT_START_NS
    """Time of the session's start (ns since the epoch)."""
    fps: float = 10.0
    """Screen frames per second; a cued press and its release fall between two frames."""
    press_probability: float = 1.0
    """Chance that a frame is followed by the press of its cue's key."""
    press_delay_ms: float = 20.0
    """Time from a frame to the press of its key."""
    hold_ms: float = 40.0
    """Time from a press to its release (``press_delay_ms + hold_ms`` < the frame period)."""
    width: int = 64
    """Frame width."""
    height: int = 48
    """Frame height."""
    mouse_hz: float = 2.0
    """Raw mouse deltas per second (random, independent of the screen; 0: none)."""


def cue_image(cue: int, width: int, height: int) -> np.ndarray:
    """An RGB uint8 frame ``(height, width, 3)``: black, with block ``cue`` of the cue grid white."""
    rows, cols = CUE_GRID
    if not 0 <= cue < rows * cols:
        raise ValueError(f"cue must be in [0, {rows * cols}), got {cue}")
    img = np.zeros((height, width, 3), dtype=np.uint8)
    bh, bw = height // rows, width // cols
    r, c = divmod(cue, cols)
    img[r * bh : (r + 1) * bh, c * bw : (c + 1) * bw] = 255
    return img


def cue_of(rgb: np.ndarray) -> int:
    """The cue a frame of :func:`cue_image` shows: its brightest block (robust to lossy compression)."""
    rows, cols = CUE_GRID
    height, width = rgb.shape[:2]
    bh, bw = height // rows, width // cols
    means = [
        rgb[r * bh : (r + 1) * bh, c * bw : (c + 1) * bw].mean() for r in range(rows) for c in range(cols)
    ]
    return int(np.argmax(means))


def cue_session(spec: CueSpec) -> tuple[list[RawEvent], list[int], list[int]]:
    """The events of one cued session in time order, the video's frame pts (ms) and each frame's cue."""
    rng = random.Random(spec.seed)
    n_cues = CUE_GRID[0] * CUE_GRID[1]
    t0, end = spec.start_ns, spec.start_ns + int(spec.duration_s * NS)
    period_ms = 1000.0 / spec.fps
    events: list[RawEvent] = []
    pts_ms: list[int] = []
    cues: list[int] = []
    k = 0
    while (pts := round(k * period_ms)) * MS + t0 < end:
        t = t0 + pts * MS
        cue = rng.randrange(n_cues)
        pts_ms.append(pts)
        cues.append(cue)
        shape = [spec.width, spec.height]
        media_ref = {"uri": "VIDEO", "pts_ns": pts * MS}
        events.append(RawEvent("screen", t, {"utc_ns": t, "source_shape": shape, "shape": shape,
                                             "media_ref": media_ref}))  # fmt: skip
        if rng.random() < spec.press_probability:
            press = t + int(spec.press_delay_ms * MS)
            release = press + int(spec.hold_ms * MS)
            vk = CUE_KEYS[cue]
            events.append(RawEvent("keyboard", press, {"event_type": "press", "vk": vk}))
            events.append(RawEvent("keyboard", release, {"event_type": "release", "vk": vk}))
        k += 1
    n_moves = int(spec.duration_s * spec.mouse_hz)
    for i in range(n_moves):
        t = t0 + 7 * MS + int(i * NS / spec.mouse_hz)
        dx, dy = rng.randint(-3, 3), rng.randint(-2, 2)
        raw = {"us_flags": 0, "last_x": dx, "last_y": dy, "button_flags": 0, "button_data": 0}
        events.append(RawEvent("mouse/raw", t, raw))
    events.sort(key=lambda e: e.timestamp_ns)
    return events, pts_ms, cues


def write_cue_video(
    path: str | os.PathLike[str], pts_ms: Sequence[int], cues: Sequence[int], width: int, height: int
) -> None:
    """An H.264 MKV with one frame per pts (ms, strictly increasing); frame i shows ``cues[i]``."""
    if len(cues) != len(pts_ms):
        raise ValueError(f"{len(cues)} cues for {len(pts_ms)} frame times")
    write_video(path, pts_ms, width, height, image=lambda i: cue_image(cues[i], width, height), rate=10)


def generate_cue_corpus(
    root: str | os.PathLike[str],
    *,
    episodes: int = 4,
    duration_s: float = 20.0,
    seed: int = 0,
    splits: Sequence[str] = ("train", "test"),
    width: int = 64,
    height: int = 48,
) -> list[Path]:
    """A folder of cued recordings, ``root/<split>/cued_XXX.mcap`` + ``.mkv``, episodes dealt over
    ``splits`` in turn (each episode in exactly one split: held-out episodes are never trained on)."""
    paths = []
    for i in range(episodes):
        spec = CueSpec(duration_s=duration_s, seed=seed * 1000 + i, start_ns=DEFAULT_START_NS + i * 3600 * NS,
                       width=width, height=height)  # fmt: skip
        events, pts_ms, cues = cue_session(spec)
        mcap = Path(root) / splits[i % len(splits)] / f"cued_{i:03d}.mcap"
        write_recording(mcap, events)
        write_cue_video(mcap.with_suffix(".mkv"), pts_ms, cues, width, height)
        paths.append(mcap)
    return paths


def build_cue_example(
    workdir: str | os.PathLike[str],
    *,
    episodes: int = 8,
    duration_s: float = 40.0,
    max_sequence_length: int = 1024,
    splits: Sequence[str] = ("train", "train", "train", "test"),
) -> Path:
    """Cued recordings (dealt over ``splits``: 3 of every 4 in ``train/``, the rest in ``test/``), the
    example tokenizer and an ``fsl-smolvlm`` build of them in ``workdir``; returns the built folder
    (``workdir/fsl``), ready for ``owa-builders train-check``."""
    from ..build import build
    from .tokenizer import write_example_tokenizer

    work = Path(workdir)
    recordings = work / "recordings"
    generate_cue_corpus(recordings, episodes=episodes, duration_s=duration_s, splits=splits)
    tokenizer = write_example_tokenizer(work / "example-tokenizer")
    options = {"tokenizer_name": str(tokenizer), "max_sequence_length": max_sequence_length}
    build("fsl", str(recordings), work / "fsl", config="fsl-smolvlm", options=options,
          cache_dir=str(work / "cache"))  # fmt: skip
    return work / "fsl"
