"""The encoders' errors, and how an event is named in their messages."""

from __future__ import annotations

from owa_event.errors import OwaError
from owa_event.events import Event


class EncodeError(OwaError):
    """An event cannot be encoded (unsupported topic, missing field, value out of range, offset)."""


class DecodeError(OwaError):
    """A token stream is not a valid encoding."""


def describe(event: Event) -> str:
    """A short name for ``event`` in error messages (topic, index when known, time in ns)."""
    where = f" #{event.index}" if event.index >= 0 else ""
    return f"{event.topic} event{where} at {event.timestamp_ns} ns"
