"""Canonical message fields: the part of each topic's payload that the event encoders represent.

:func:`canonical` is the single source of truth for what an encoder keeps and which values it
accepts; every encoder calls it before writing tokens, and round-trip comparisons use it.
Fields outside the canonical set (``timestamp``, ``device_handle``, a screen's ``utc_ns``,
``shape``, ``source_shape``...) are *not* encoded and do not survive a round trip.

Accepted ranges (inclusive; anything else raises :class:`EncodeError`, never clamped):

========== ================================ ===========================================
topic      field                            range
========== ================================ ===========================================
keyboard   ``event_type``                   ``press`` / ``release``
keyboard   ``vk``                           0 .. 255
mouse      ``event_type``                   ``move`` / ``click`` / ``scroll``
mouse      ``x``, ``y``                     -99_999 .. 99_999 (negative on multi-monitor)
mouse      ``button`` (click only)          left/right/middle/x1/x2/unknown
mouse      ``pressed`` (click only)         bool
mouse      ``dx``, ``dy`` (scroll only)     -99_999 .. 99_999
mouse/raw  ``last_x``, ``last_y``           -99_999 .. 99_999 (>= the USHORT range)
mouse/raw  ``us_flags`` (default 0)         0 .. 0xF
mouse/raw  ``button_flags`` (default 0)     0 .. 0xFFF
mouse/raw  ``button_data`` (default 0)      -32_768 .. 65_535 (kept as recorded: a raw
                                            USHORT 65416 stays 65416, it is not turned
                                            into -120)
screen     ``media_ref`` {``uri``, ``pts_ns``}  uri: str; pts_ns: int >= 0 or None. Not
                                            written as tokens: decoding takes it from the
                                            row's frame list.
========== ================================ ===========================================
"""

from __future__ import annotations

from typing import Any

import orjson

from owa_event.errors import OwaError
from owa_event.events import KEYBOARD, MOUSE, MOUSE_RAW, SCREEN, TOPIC_TYPES, Event

#: Topics the encoders support, in type-token order.
ENCODED_TOPICS: tuple[str, ...] = (KEYBOARD, MOUSE, MOUSE_RAW, SCREEN)

VK_MAX = 255
COORD_MAX = 99_999
SCROLL_MAX = 99_999
DELTA_MAX = 99_999
US_FLAGS_MAX = 0xF
BUTTON_FLAGS_MAX = 0xFFF
BUTTON_DATA_MIN = -32_768
BUTTON_DATA_MAX = 65_535

KEY_EVENT_TYPES: tuple[str, ...] = ("press", "release")
MOUSE_EVENT_TYPES: tuple[str, ...] = ("move", "click", "scroll")
#: ``unknown`` is allowed by owa-msgs' ``MouseButton`` and kept so such clicks still encode.
MOUSE_BUTTONS: tuple[str, ...] = ("left", "right", "middle", "x1", "x2", "unknown")
#: RAWMOUSE ``usButtonFlags`` bits, bit i = ``1 << i``.
BUTTON_FLAG_NAMES: tuple[str, ...] = (
    "LEFT_DOWN", "LEFT_UP", "RIGHT_DOWN", "RIGHT_UP", "MIDDLE_DOWN", "MIDDLE_UP",
    "X1_DOWN", "X1_UP", "X2_DOWN", "X2_UP", "WHEEL", "HWHEEL",
)  # fmt: skip
#: RAWMOUSE ``usFlags`` bits, bit i = ``1 << i``.
US_FLAG_NAMES: tuple[str, ...] = ("ABSOLUTE", "VIRTUAL_DESKTOP", "ATTRIBUTES_CHANGED", "NOCOALESCE")


class EncodeError(OwaError):
    """An event cannot be encoded (unsupported topic, missing field, value out of range, offset)."""


class DecodeError(OwaError):
    """A token stream is not a valid encoding."""


def describe(event: Event) -> str:
    """A short name for ``event`` in error messages (topic, index when known, time in ns)."""
    where = f" #{event.index}" if event.index >= 0 else ""
    return f"{event.topic} event{where} at {event.timestamp_ns} ns"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(fields: dict[str, Any], name: str, lo: int, hi: int, where: str, default: int | None = None) -> int:
    value = fields.get(name, default)
    if value is None:
        raise EncodeError(f"{where}: field {name!r} is missing")
    if not _is_int(value):
        raise EncodeError(f"{where}: field {name!r} = {value!r} is not an integer")
    if not lo <= value <= hi:
        raise EncodeError(f"{where}: field {name!r} = {value} is out of range [{lo}, {hi}]")
    return value


def _choice(fields: dict[str, Any], name: str, choices: tuple[str, ...], where: str) -> str:
    value = fields.get(name)
    if value not in choices:
        raise EncodeError(f"{where}: field {name!r} = {value!r} is not one of {list(choices)}")
    return value


def canonical_fields(topic: str, fields: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    """The validated canonical fields of a ``topic`` payload (a new dict, fixed key order).

    Raises :class:`EncodeError` naming ``where``, the field and the value when a value is missing
    or outside the ranges of the module docstring, or when ``topic`` is not encodable.
    """
    where = where or f"{topic} event"
    if topic == KEYBOARD:
        return {
            "event_type": _choice(fields, "event_type", KEY_EVENT_TYPES, where),
            "vk": _int(fields, "vk", 0, VK_MAX, where),
        }
    if topic == MOUSE:
        event_type = _choice(fields, "event_type", MOUSE_EVENT_TYPES, where)
        out: dict[str, Any] = {
            "event_type": event_type,
            "x": _int(fields, "x", -COORD_MAX, COORD_MAX, where),
            "y": _int(fields, "y", -COORD_MAX, COORD_MAX, where),
        }
        if event_type == "click":
            out["button"] = _choice(fields, "button", MOUSE_BUTTONS, where)
            pressed = fields.get("pressed")
            if not isinstance(pressed, bool):
                raise EncodeError(f"{where}: field 'pressed' = {pressed!r} is not a bool")
            out["pressed"] = pressed
        elif event_type == "scroll":
            out["dx"] = _int(fields, "dx", -SCROLL_MAX, SCROLL_MAX, where)
            out["dy"] = _int(fields, "dy", -SCROLL_MAX, SCROLL_MAX, where)
        return out
    if topic == MOUSE_RAW:
        return {
            "last_x": _int(fields, "last_x", -DELTA_MAX, DELTA_MAX, where),
            "last_y": _int(fields, "last_y", -DELTA_MAX, DELTA_MAX, where),
            "us_flags": _int(fields, "us_flags", 0, US_FLAGS_MAX, where, default=0),
            "button_flags": _int(fields, "button_flags", 0, BUTTON_FLAGS_MAX, where, default=0),
            "button_data": _int(fields, "button_data", BUTTON_DATA_MIN, BUTTON_DATA_MAX, where, default=0),
        }
    if topic == SCREEN:
        ref = fields.get("media_ref")
        if not isinstance(ref, dict) or not isinstance(ref.get("uri"), str):
            raise EncodeError(f"{where}: field 'media_ref' = {ref!r} has no string 'uri'")
        pts = ref.get("pts_ns")
        if pts is not None and not (_is_int(pts) and pts >= 0):
            raise EncodeError(f"{where}: field 'media_ref.pts_ns' = {pts!r} is not a non-negative integer")
        return {"media_ref": {"uri": ref["uri"], "pts_ns": pts}}
    raise EncodeError(f"{where}: topic {topic!r} is not encodable (supported: {list(ENCODED_TOPICS)})")


def canonical(event: Event) -> dict[str, Any]:
    """The fields of ``event`` that the encoders represent, validated (see the module docstring).

    ``decode(encode(e))`` has exactly these fields; compare events through this helper.
    """
    return canonical_fields(event.topic, event.fields, describe(event))


def frame_ref(event: Event) -> tuple[str, int | None]:
    """A screen event's frame reference ``(uri, pts_ns)``: what ``decode`` takes from ``frames``."""
    ref = canonical(event)["media_ref"]
    return ref["uri"], ref["pts_ns"]


def make_event(topic: str, timestamp_ns: int, fields: dict[str, Any], index: int = -1) -> Event:
    """A decoded :class:`Event` with the current message type of ``topic`` and ``fields`` as payload."""
    return Event(topic, timestamp_ns, TOPIC_TYPES[topic], orjson.dumps(fields), fields, index)
