"""The encoders' errors, and how an event is named in their messages."""

from __future__ import annotations

from owa_event.events import Event
from owa_fsl.errors import DecodeError, EncodeError  # noqa: F401 - re-exported (defined in errors.py)


def describe(event: Event) -> str:
    """A short name for ``event`` in error messages (topic, index when known, time in ns)."""
    where = f" #{event.index}" if event.index >= 0 else ""
    return f"{event.topic} event{where} at {event.timestamp_ns} ns"
