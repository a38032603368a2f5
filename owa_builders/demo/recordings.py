"""A built-in example: realistic synthetic OWAMcap recordings written with the real writers.

Each recording is an ``.mcap`` written by mcap-owa-support's ``OWAMcapWriter`` plus an ``.mkv``
written by PyAV (H.264, Matroska, time base 1/1000, integer-millisecond pts). Every video frame
carries its own index as a 4x4 grid of black/white blocks (:func:`frame_index_of` reads it back),
so frame loading can be checked exactly.

Legacy writers (0.3.x, 0.4.x, 0.5.0) are reproduced by writing their schema names and payload
layouts through the same real writer, with the header's library string set to that version.
Everything is seeded: the same arguments give byte-identical event streams.
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

WriterVersion = Literal["current", "0.5.0", "0.4.2", "0.3.2"]
WRITER_VERSIONS: tuple[WriterVersion, ...] = ("current", "0.5.0", "0.4.2", "0.3.2")
NS = 1_000_000_000
MS = 1_000_000
#: 2025-06-02 09:00:00 UTC, the default start of generated recordings.
DEFAULT_START_NS = 1_748_854_800 * NS
GRID = 4  # frames encode their index in a GRID x GRID grid of blocks (16 bits)


@dataclass(frozen=True)
class RawEvent:
    """One message to write: ``fields`` in the *current* layout; legacy writers convert it."""

    topic: str
    timestamp_ns: int
    fields: dict[str, Any]


# ------------------------------------------------------------------------------------------
# Frames that carry their own index
# ------------------------------------------------------------------------------------------
def frame_image(index: int, width: int, height: int) -> np.ndarray:
    """An RGB uint8 frame (height, width, 3) whose 4x4 block grid spells ``index`` in binary."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    bh, bw = height // GRID, width // GRID
    for bit in range(GRID * GRID):
        if (index >> bit) & 1:
            r, c = divmod(bit, GRID)
            img[r * bh : (r + 1) * bh, c * bw : (c + 1) * bw] = 255
    return img


def frame_index_of(rgb: np.ndarray) -> int:
    """Read back the index written by :func:`frame_image` (robust to lossy compression)."""
    height, width = rgb.shape[:2]
    bh, bw = height // GRID, width // GRID
    index = 0
    for bit in range(GRID * GRID):
        r, c = divmod(bit, GRID)
        block = rgb[r * bh + bh // 4 : (r + 1) * bh - bh // 4, c * bw + bw // 4 : (c + 1) * bw - bw // 4]
        if block.mean() > 127:
            index |= 1 << bit
    return index


def write_video(
    path: str | os.PathLike[str],
    pts_ms: Sequence[int],
    width: int,
    height: int,
    gop: int = 20,
    *,
    image: Callable[[int], np.ndarray] | None = None,
    rate: int = 20,
) -> None:
    """Write an H.264 MKV with one frame per pts (ms, strictly increasing); frame i shows
    ``image(i)`` (default: index i, :func:`frame_image`); ``rate``: the stream's nominal frames/s."""
    import av

    with av.open(os.fspath(path), mode="w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = __import__("fractions").Fraction(1, 1000)
        stream.codec_context.time_base = stream.time_base
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "bframes": "0"}
        for i, pts in enumerate(pts_ms):
            rgb = frame_image(i, width, height) if image is None else image(i)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = int(pts)
            frame.time_base = stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ------------------------------------------------------------------------------------------
# A realistic session
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionSpec:
    """What to generate. Rates in Hz, durations in s, sizes in px."""

    duration_s: float = 10.0
    seed: int = 0
    start_ns: int = DEFAULT_START_NS
    fps: float = 20.0
    frame_jitter_ms: float = 3.0
    width: int = 64
    height: int = 48
    raw_mouse_hz: float = 250.0
    mouse_hz: float = 60.0
    state_hz: float = 1.0


def _click(t: int, x: int, y: int, button: str, *, pressed: bool) -> list[RawEvent]:
    """A button press or release: the raw event (flag bits) 2 us after ``t``, the absolute one at 3 us."""
    flag = {"left": 0x1, "right": 0x4}[button] << (0 if pressed else 1)
    raw = {"us_flags": 0, "last_x": 0, "last_y": 0, "button_flags": flag, "button_data": 0}
    mouse = {"event_type": "click", "x": x, "y": y, "button": button, "pressed": pressed}
    return [RawEvent("mouse/raw", t + 2000, raw), RawEvent("mouse", t + 3000, mouse)]


def session_events(spec: SessionSpec) -> tuple[list[RawEvent], list[int]]:
    """The events of one synthetic session, in time order, and the video's frame pts (ms)."""
    rng = random.Random(spec.seed)
    t0, end = spec.start_ns, spec.start_ns + int(spec.duration_s * NS)
    events: list[RawEvent] = []

    # screen: fps with gaussian jitter; pts relative to the first frame, integer ms.
    pts_ms: list[int] = []
    period = NS / spec.fps
    k = 0
    while True:
        t = t0 + 20 * MS + int(k * period + rng.gauss(0, spec.frame_jitter_ms * MS))
        if t >= end:
            break
        pts = (t - t0) // MS
        if pts_ms and pts <= pts_ms[-1]:
            pts = pts_ms[-1] + 1
        t = t0 + pts * MS + (t - t0) % MS
        pts_ms.append(pts)
        shape = [spec.width, spec.height]
        events.append(
            RawEvent(
                "screen",
                t,
                {
                    "utc_ns": t - 2 * MS,
                    "source_shape": shape,
                    "shape": shape,
                    "media_ref": {"uri": "VIDEO", "pts_ns": (pts - pts_ms[0]) * MS},
                },
            )
        )
        k += 1
    first = pts_ms[0] if pts_ms else 0
    pts_ms = [p - first for p in pts_ms]

    # absolute mouse moves + raw deltas, clicks with matching raw button flags, scrolls.
    x, y = 800, 450
    raw_period = NS / spec.raw_mouse_hz
    mouse_every = max(1, round(spec.raw_mouse_hz / spec.mouse_hz))
    buttons_down: set[str] = set()
    i = 0
    t = t0 + 5 * MS
    while t < end:
        dx, dy = rng.randint(-4, 4), rng.randint(-3, 3)
        x, y = min(max(x + dx, 0), 1919), min(max(y + dy, 0), 1079)
        events.append(
            RawEvent(
                "mouse/raw",
                t,
                {"us_flags": 0, "last_x": dx, "last_y": dy, "button_flags": 0, "button_data": 0},
            )
        )
        if i % mouse_every == 0:
            events.append(RawEvent("mouse", t + 1000, {"event_type": "move", "x": x, "y": y}))
        roll = rng.random()
        if roll < 0.004 and not buttons_down:
            button = rng.choice(["left", "left", "left", "right"])
            buttons_down.add(button)
            events += _click(t, x, y, button, pressed=True)
        elif roll < 0.03 and buttons_down:
            events += _click(t, x, y, buttons_down.pop(), pressed=False)
        elif roll > 0.997:
            up = rng.random() < 0.5
            # Windows reports the wheel delta as an unsigned 16-bit value: -120 is 65416.
            events.append(
                RawEvent(
                    "mouse/raw",
                    t + 2000,
                    {
                        "us_flags": 0,
                        "last_x": 0,
                        "last_y": 0,
                        "button_flags": 0x400,
                        "button_data": 120 if up else 65416,
                    },
                )
            )
            events.append(
                RawEvent(
                    "mouse",
                    t + 3000,
                    {"event_type": "scroll", "x": x, "y": y, "dx": 0, "dy": 1 if up else -1},
                )
            )
        i += 1
        t = t0 + 5 * MS + int(i * raw_period)

    # keyboard: typing bursts, and now and then a held key with OS auto-repeat.
    t = t0 + 300 * MS
    while t < end - 300 * MS:
        if rng.random() < 0.08:
            vk = rng.choice([0x25, 0x26, 0x27, 0x28, 0x08])  # arrows, backspace
            events.append(RawEvent("keyboard", t, {"event_type": "press", "vk": vk}))
            hold = rng.randint(600, 1200) * MS
            r = t + 500 * MS
            while r < t + hold:
                events.append(RawEvent("keyboard", r, {"event_type": "press", "vk": vk}))
                r += 33 * MS
            events.append(RawEvent("keyboard", t + hold, {"event_type": "release", "vk": vk}))
            t += hold + rng.randint(100, 400) * MS
        else:
            vk = rng.choice(list(range(0x41, 0x5B)) + [0x20, 0x20, 0x0D])
            dur = rng.randint(40, 120) * MS
            events.append(RawEvent("keyboard", t, {"event_type": "press", "vk": vk}))
            events.append(RawEvent("keyboard", t + dur, {"event_type": "release", "vk": vk}))
            t += rng.randint(60, 250) * MS + (rng.randint(500, 2000) * MS if rng.random() < 0.05 else 0)

    # state topics at ~1 Hz.
    period = NS / spec.state_hz
    k = 0
    while t0 + int(k * period) < end:
        t = t0 + int(k * period) + 1 * MS
        events.append(
            RawEvent(
                "window",
                t,
                {
                    "title": f"Untitled - Notepad ({k // 5})",
                    "rect": [100, 100, 1380, 820],
                    "hWnd": 131072 + k // 5,
                },
            )
        )
        events.append(RawEvent("keyboard/state", t + 1000, {"buttons": []}))
        events.append(RawEvent("mouse/state", t + 2000, {"x": 800, "y": 450, "buttons": []}))
        k += 1

    events.sort(key=lambda e: e.timestamp_ns)
    return events, pts_ms


# ------------------------------------------------------------------------------------------
# Writing with the real writer, in any layout
# ------------------------------------------------------------------------------------------
_LEGACY_03_NAMES = {
    "keyboard": "owa.env.desktop.msg.KeyboardEvent",
    "mouse": "owa.env.desktop.msg.MouseEvent",
    "window": "owa.env.desktop.msg.WindowInfo",
    "keyboard/state": "owa.env.desktop.msg.KeyboardState",
    "mouse/state": "owa.env.desktop.msg.MouseState",
    "screen": "owa.env.gst.msg.ScreenEmitted",
}


def _legacy_class(type_name: str) -> type:
    from owa.core import OWAMessage

    class Legacy(OWAMessage):
        model_config = {"extra": "allow"}
        _type: ClassVar[str] = type_name

    Legacy.__name__ = type_name.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
    return Legacy


def _message(topic: str, fields: dict[str, Any], version: WriterVersion, classes: dict[str, type]) -> Any:
    """The message object for one event in ``version``'s layout."""
    from owa.core import MESSAGES

    from owa_event.events import TOPIC_TYPES

    if topic == "screen" and version != "current":
        ref = fields["media_ref"]
        if version == "0.5.0":
            fields = {
                **{k: v for k, v in fields.items() if k != "media_ref"},
                "media_ref": {"type": "external_video", "path": ref["uri"], "pts_ns": ref["pts_ns"]},
            }
        elif version == "0.4.2":
            fields = {
                "utc_ns": fields["utc_ns"],
                "original_shape": fields["source_shape"],
                "shape": fields["shape"],
                "path": ref["uri"],
                "pts": ref["pts_ns"],
            }
        else:
            fields = {"path": ref["uri"], "pts": ref["pts_ns"], "utc_ns": fields["utc_ns"]}
    if version == "0.3.2":
        name = _LEGACY_03_NAMES[topic]
    elif topic == "screen" and version != "current" or topic not in TOPIC_TYPES:
        name = TOPIC_TYPES.get(topic, f"example/{topic}")
    else:
        return MESSAGES[TOPIC_TYPES[topic]](**fields)
    cls = classes.get(name)
    if cls is None:
        cls = classes[name] = _legacy_class(name)
    return cls(**fields)


@contextlib.contextmanager
def _writer_version(version: WriterVersion) -> Iterator[None]:
    """Make the real writer stamp ``version`` in the MCAP header's library string."""
    import mcap_owa.writer as owa_writer

    if version == "current":
        yield
        return
    saved = owa_writer.__version__
    owa_writer.__version__ = version
    try:
        yield
    finally:
        owa_writer.__version__ = saved


def write_recording(
    mcap_path: str | os.PathLike[str],
    events: Sequence[RawEvent],
    *,
    version: WriterVersion = "current",
    video: tuple[Sequence[int], int, int] | None = None,
) -> Path:
    """Write ``events`` (current layout) as ``mcap_path`` in ``version``'s layout, with the real writer.

    Screen ``media_ref.uri`` values equal to ``"VIDEO"`` are replaced by the video's file name
    (the .mcap's stem + ``.mkv``). ``video = (pts_ms, width, height)`` also writes that MKV.
    Returns the .mcap path.
    """
    from mcap_owa.highlevel import OWAMcapWriter

    mcap_path = Path(mcap_path)
    mcap_path.parent.mkdir(parents=True, exist_ok=True)
    video_name = mcap_path.with_suffix(".mkv").name
    classes: dict[str, type] = {}
    with warnings.catch_warnings(), _writer_version(version), OWAMcapWriter(mcap_path) as writer:
        # owa.core warns that legacy python-path type names are not 'domain/Type': that is the point.
        warnings.simplefilter("ignore", UserWarning)
        for event in events:
            fields = event.fields
            if event.topic == "screen" and fields.get("media_ref", {}).get("uri") == "VIDEO":
                fields = {**fields, "media_ref": {**fields["media_ref"], "uri": video_name}}
            if version == "0.3.2" and event.topic == "mouse/raw":
                continue  # 0.3.x recorders had no raw mouse topic
            writer.write_message(
                _message(event.topic, fields, version, classes),
                topic=event.topic,
                timestamp=event.timestamp_ns,
            )
    if video is not None:
        pts_ms, width, height = video
        write_video(mcap_path.with_suffix(".mkv"), pts_ms, width, height)
    return mcap_path


def generate_recording(
    mcap_path: str | os.PathLike[str],
    spec: SessionSpec = SessionSpec(),
    *,
    version: WriterVersion = "current",
    video: bool = True,
) -> Path:
    """Generate one synthetic session as ``mcap_path`` (+ its ``.mkv`` when ``video``)."""
    events, pts_ms = session_events(spec)
    return write_recording(
        mcap_path, events, version=version, video=(pts_ms, spec.width, spec.height) if video else None
    )


def generate_corpus(
    root: str | os.PathLike[str],
    *,
    episodes: int = 4,
    duration_s: float = 10.0,
    seed: int = 0,
    splits: Sequence[str] = ("train",),
    legacy: bool = True,
    video: bool = True,
    width: int = 64,
    height: int = 48,
) -> list[Path]:
    """A folder of recordings: ``root/<split>/episode_XXX.mcap`` (+ .mkv), episodes spread over splits.

    With ``legacy``, episodes cycle through every writer layout (current, 0.5.0, 0.4.2, 0.3.2).
    """
    paths = []
    for i in range(episodes):
        split = splits[i % len(splits)]
        version = WRITER_VERSIONS[i % len(WRITER_VERSIONS)] if legacy else "current"
        spec = SessionSpec(
            duration_s=duration_s,
            seed=seed + i,
            start_ns=DEFAULT_START_NS + i * 3600 * NS,
            width=width,
            height=height,
        )
        paths.append(
            generate_recording(
                Path(root) / split / f"episode_{i:03d}.mcap", spec, version=version, video=video
            )
        )
    return paths
