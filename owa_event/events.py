"""The event: one timestamped message of a recording, in the current OWAMcap format.

Every stage works on :class:`Event` objects. An event's ``data`` is always the JSON payload
in the *current* format (legacy payloads are upgraded by :mod:`owa_event.legacy` before an
event is made), so downstream code never sees an old layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .errors import EventOrderError, OwaError, PayloadError  # noqa: F401 - re-exported (defined in errors.py)

# Topics of the OWAMcap format and their current message types.
KEYBOARD = "keyboard"
MOUSE = "mouse"
MOUSE_RAW = "mouse/raw"
SCREEN = "screen"
WINDOW = "window"
KEYBOARD_STATE = "keyboard/state"
MOUSE_STATE = "mouse/state"

TOPIC_TYPES: dict[str, str] = {
    KEYBOARD: "desktop/KeyboardEvent",
    MOUSE: "desktop/MouseEvent",
    MOUSE_RAW: "desktop/RawMouseEvent",
    SCREEN: "desktop/ScreenCaptured",
    WINDOW: "desktop/WindowInfo",
    KEYBOARD_STATE: "desktop/KeyboardState",
    MOUSE_STATE: "desktop/MouseState",
}
KNOWN_TOPICS: frozenset[str] = frozenset(TOPIC_TYPES)
KNOWN_TYPES: frozenset[str] = frozenset(TOPIC_TYPES.values()) | {"desktop/PointerBallisticsConfig"}
INPUT_TOPICS: frozenset[str] = frozenset({KEYBOARD, MOUSE, MOUSE_RAW})


_FRAMES: dict[tuple[str, str], tuple[bytes, bytes, bytes]] = {}


def _frame(topic: str, message_type: str) -> tuple[bytes, bytes, bytes]:
    """The fixed parts of a ``McapMessage`` JSON around the timestamp and the payload string (cached)."""
    frame = _FRAMES.get((topic, message_type))
    if frame is None:
        head = orjson.dumps({"topic": topic})[:-1] + b',"timestamp":'
        tail = b',"message_type":' + orjson.dumps(message_type) + b"}"
        frame = (head, b',"message":', tail)
        if len(_FRAMES) < 4096:  # bounded: a file may declare any number of topics
            _FRAMES[(topic, message_type)] = frame
    return frame


def mcap_message_json(topic: str, timestamp_ns: int, data: bytes, message_type: str) -> bytes:
    """``orjson.dumps({"topic", "timestamp", "message": data.decode(), "message_type"})``, byte for byte,
    without building the dict: the fixed parts are cached per (topic, type); only the payload string
    is escaped (the hot path of the event and binned stages)."""
    head, middle, tail = _frame(topic, message_type)
    return b"".join((head, str(timestamp_ns).encode(), middle, orjson.dumps(data.decode("utf-8")), tail))


#: What ``orjson.dumps`` of a string escapes that can occur in a JSON text (raw control characters are
#: only allowed as whitespace between tokens); the backslash first, so later escapes are not doubled.
_JSON_TEXT_ESCAPES = ((b"\\", b"\\\\"), (b'"', b'\\"'), (b"\n", b"\\n"), (b"\r", b"\\r"), (b"\t", b"\\t"))


def json_string_bodies(payloads: Sequence[bytes]) -> Any:
    """Each payload as the inside of a JSON string plus its closing quote (``orjson.dumps(p.decode())[1:]``),
    as one Arrow binary array, escaped in one pass over all the bytes (no Python work per payload).

    Precondition: every payload is a JSON text ``orjson.loads`` accepts (valid UTF-8, no raw control
    character but whitespace between tokens), so no payload holds a NUL byte: NULs separate them while
    escaping, and each becomes the closing quote afterwards.
    """
    import numpy as np
    import pyarrow as pa

    big = b"\0".join(payloads) + b"\0"
    for old, new in _JSON_TEXT_ESCAPES:
        if old in big:
            big = big.replace(old, new)
    ends = np.flatnonzero(np.frombuffer(big, np.uint8) == 0)
    if len(ends) != len(payloads):
        raise ValueError("a payload holds a NUL byte: not a JSON text")
    small = (
        len(big) < 2**31
    )  # binary's int32 offsets; beyond, large_binary offsets cast down (or an Arrow error)
    offsets = np.empty(len(ends) + 1, np.int32 if small else np.int64)
    offsets[0] = 0
    offsets[1:] = ends + 1
    big = big.replace(b"\0", b'"')
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(big)]
    if small:
        return pa.Array.from_buffers(pa.binary(), len(ends), buffers)
    return pa.Array.from_buffers(pa.large_binary(), len(ends), buffers).cast(pa.binary())


def mcap_message_array(
    channels: Sequence[tuple[str, str]], channel_index: Any, times: Any, payloads: Sequence[bytes]
) -> Any:
    """:func:`mcap_message_json` of many messages at once, as an Arrow binary array, byte for byte the
    same, built by Arrow kernels and one pass over the payload bytes (no Python work per message).

    ``channels``: ``(topic, message_type)`` per channel; ``channel_index`` (Arrow int32) picks each
    message's channel; ``times`` (Arrow int64, ns); ``payloads``: JSON texts that ``orjson.loads``
    accepts (the caller has parsed them; see :func:`json_string_bodies`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    frames = [_frame(topic, mtype) for topic, mtype in channels]
    heads = pa.array([f[0] for f in frames], pa.binary()).take(channel_index)
    tails = pa.array([f[2] for f in frames], pa.binary()).take(channel_index)
    stamps = pc.cast(times, pa.string()).view(pa.binary())
    bodies = json_string_bodies(payloads)
    return pc.binary_join_element_wise(heads, stamps, pa.scalar(b',"message":"'), bodies, tails, b"")


def dump_payload(fields: dict[str, Any]) -> bytes:
    """``fields`` as compact JSON bytes; :class:`PayloadError` for what JSON-for-rows cannot hold.

    ``orjson.loads`` accepts more than ``orjson.dumps`` writes, so a payload that was read may not be
    writable once changed (a rebased screen URI, summed raw mouse deltas).
    """
    try:
        return orjson.dumps(fields)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise PayloadError(f"the message cannot be written back as JSON ({exc})") from None


class Event:
    """One message of a recording.

    Invariants: ``timestamp_ns`` is the MCAP log time in ns since the epoch; ``data`` is the
    JSON payload (bytes) in the current format and ``fields`` is ``data`` parsed, the two
    always describing the same message; ``index`` is the message's position (0-based) in the time-ordered
    read that produced it (after topic/time filters), used with topic and time to name it in errors.
    """

    __slots__ = ("topic", "timestamp_ns", "message_type", "data", "fields", "index")

    def __init__(
        self,
        topic: str,
        timestamp_ns: int,
        message_type: str,
        data: bytes,
        fields: dict[str, Any],
        index: int = -1,
    ) -> None:
        self.topic = topic
        self.timestamp_ns = timestamp_ns
        self.message_type = message_type
        self.data = data
        self.fields = fields
        self.index = index

    def replace(self, **fields: Any) -> Event:
        """A copy whose payload has ``fields`` changed (``data`` is re-serialized; :class:`PayloadError`
        when that is not possible)."""
        merged = {**self.fields, **fields}
        return Event(
            self.topic, self.timestamp_ns, self.message_type, dump_payload(merged), merged, self.index
        )

    def at(self, timestamp_ns: int) -> Event:
        """A copy at another time (payload unchanged)."""
        return Event(self.topic, timestamp_ns, self.message_type, self.data, self.fields, self.index)

    def mcap_message_json(self) -> bytes:
        """The event as mcap-owa-support's ``McapMessage`` JSON (``McapMessage.model_validate_json``):
        ``{"topic", "timestamp", "message" (the payload as a JSON string), "message_type"}``, compact."""
        return mcap_message_json(self.topic, self.timestamp_ns, self.data, self.message_type)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (
            self.topic == other.topic
            and self.timestamp_ns == other.timestamp_ns
            and self.message_type == other.message_type
            and self.fields == other.fields
        )

    def __repr__(self) -> str:
        return f"Event({self.topic!r}, {self.timestamp_ns}, {self.message_type!r}, {self.fields!r})"


#: Raw deltas larger than this (in either direction) are not summed: a sum must stay a plain number.
MAX_SUMMED_DELTA = 2**31


def is_pure_move(fields: dict[str, Any]) -> bool:
    """Whether a ``mouse/raw`` payload is a *pure relative move*: no button flags, no ``us_flags`` (an
    absolute move), and ``last_x``/``last_y`` plain ints within +-:data:`MAX_SUMMED_DELTA` (missing
    ones count as 0). Only such moves are summed by the resampler (:mod:`owa_event.resample`)."""
    x, y = fields.get("last_x", 0), fields.get("last_y", 0)
    return (
        type(x) is int
        and type(y) is int
        and -MAX_SUMMED_DELTA <= x <= MAX_SUMMED_DELTA
        and -MAX_SUMMED_DELTA <= y <= MAX_SUMMED_DELTA
        and fields.get("button_flags", 0) == 0
        and fields.get("us_flags", 0) == 0
    )


#: A pure relative move as a read gives it when asked (``Recording.events(moves=True)``): a plain tuple
#: ``(timestamp_ns, last_x, last_y, data, fields, index, message_type)`` on topic ``mouse/raw`` instead
#: of an :class:`Event` (the bulk of a recording's messages, which the resampler sums: most are never
#: made into Events). :func:`move_event` makes one an Event.
Move = tuple[int, int, int, bytes, dict[str, Any], int, str]


def move_event(move: Move) -> Event:
    """The Event of a :data:`Move` (the very Event the read would have made)."""
    return Event(MOUSE_RAW, move[0], move[6], move[3], move[4], move[5])


def screen_ref(event: Event) -> tuple[str, int | None] | None:
    """``(uri, pts_ns)`` of a screen event's frame; None for other events and screens without media."""
    if event.topic != SCREEN:
        return None
    ref = event.fields.get("media_ref")
    if not isinstance(ref, dict) or not isinstance(ref.get("uri"), str):
        return None
    pts = ref.get("pts_ns")
    return ref["uri"], (int(pts) if pts is not None else None)
