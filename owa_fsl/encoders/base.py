"""The event-encoder contract (:class:`EventEncoder`), relative time, and the registry of encoders.

Every encoder turns one :class:`~owa_event.events.Event` into a list of token strings and
back. Time is always relative: an event is written as its offset from ``base_ns`` (the
sequence start, stored with the dataset row) in units of ``time_resolution_ns``, as
``time_digits`` fixed-width decimal digits. Decoding gives
``base_ns + floor((t - base_ns) / res) * res`` -- the exact time at that resolution for any
offset ``0 <= t - base_ns <= max_offset_ns()``. Larger offsets raise :class:`EncodeError`;
the packer starts a new sequence (a new base) long before that, so nothing ever wraps.

Which topics an encoder accepts and what it keeps of their payloads is not decided here but by
the table topic -> payload codec (:mod:`owa_fsl.encoders.codec`). The token encoders share
the frame of :mod:`owa_fsl.encoders.framed`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from owa_event.events import Event
from owa_fsl.encoders.codec import ENCODED_TOPICS, FrameRef, PayloadCodec, find_codec
from owa_fsl.encoders.errors import EncodeError, describe
from owa_fsl.encoders.stream import collapse_images, split_text

DEFAULT_TIME_RESOLUTION_NS = 1_000_000
#: 7 digits at 1 ms: offsets up to 9_999_999 ms (2 h 46 min) from the sequence start.
DEFAULT_TIME_DIGITS = 7

#: Frame references ``(uri, pts_ns)`` of a sequence's screen events, in order.
Frames = Iterable[FrameRef]
E = TypeVar("E", bound="type[EventEncoder]")


class EventEncoder(ABC):
    """Event <-> token strings, relative to a sequence base time ``base_ns``.

    Invariants: ``vocab()`` is closed and deterministic (same options -> same list, same order);
    ``decode(encode(e, b), b, frames)`` equals ``e`` in :func:`canonical` fields, with the time
    quantized to ``time_resolution_ns`` (see :meth:`quantize`), for every accepted event and
    every ``0 <= e.timestamp_ns - b <= max_offset_ns()``. ``single_tokens`` says whether every
    encoded string is a vocab token (the json encoder's are not).
    """

    name: ClassVar[str]
    single_tokens: ClassVar[bool] = True

    def __init__(
        self, time_resolution_ns: int = DEFAULT_TIME_RESOLUTION_NS, time_digits: int = DEFAULT_TIME_DIGITS
    ) -> None:
        res = time_resolution_ns
        if isinstance(res, bool) or not (isinstance(res, int) and res >= 1):
            raise ValueError(f"time_resolution_ns must be a positive integer (ns), got {res!r}")
        if isinstance(time_digits, bool) or not (isinstance(time_digits, int) and 1 <= time_digits <= 18):
            raise ValueError(f"time_digits must be an integer in [1, 18], got {time_digits!r}")
        self.time_resolution_ns = time_resolution_ns
        self.time_digits = time_digits
        self._max_units = 10**time_digits - 1
        self._max_offset_ns = self._max_units * time_resolution_ns

    # -- description -------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The constructor options; ``get_encoder(self.name, **self.options())`` rebuilds ``self``."""
        return {"time_resolution_ns": self.time_resolution_ns, "time_digits": self.time_digits}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventEncoder):
            return NotImplemented
        return self.name == other.name and self.options() == other.options()

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.options().items()))))

    def supports(self, topic: str) -> bool:
        """Whether events of ``topic`` can be encoded (it has a payload codec)."""
        return topic in ENCODED_TOPICS

    def codec_of(self, event: Event) -> PayloadCodec:
        """The payload codec of ``event``'s topic; :class:`EncodeError` naming the topic when none."""
        codec = find_codec(event.topic)
        if codec is None:
            raise EncodeError(
                f"{describe(event)}: topic {event.topic!r} is not supported by the {self.name} encoder "
                f"(supported: {list(ENCODED_TOPICS)})"
            )
        return codec

    # -- time --------------------------------------------------------------------------------
    def max_offset_ns(self) -> int:
        """The largest encodable ``timestamp_ns - base_ns`` in ns: ``(10**time_digits - 1) * res``."""
        return self._max_offset_ns

    def offset_units(self, timestamp_ns: int, base_ns: int, event: Event | None = None) -> int:
        """``floor((timestamp_ns - base_ns) / res)``; :class:`EncodeError` if negative or too large."""
        offset = timestamp_ns - base_ns
        if offset < 0 or offset > self.max_offset_ns():
            where = describe(event) if event is not None else f"time {timestamp_ns} ns"
            if offset < 0:
                raise EncodeError(f"{where}: offset {offset} ns is before the sequence base {base_ns} ns")
            raise EncodeError(
                f"{where}: offset {offset} ns from base {base_ns} ns exceeds max_offset_ns() = "
                f"{self.max_offset_ns()} ns ({self.time_digits} digits at {self.time_resolution_ns} ns); "
                f"start a new sequence (new base) instead"
            )
        return offset // self.time_resolution_ns

    def quantize(self, timestamp_ns: int, base_ns: int) -> int:
        """The time a round trip gives back: ``base_ns + floor((t - base_ns) / res) * res`` (ns)."""
        return base_ns + self.offset_units(timestamp_ns, base_ns) * self.time_resolution_ns

    # -- the interface -----------------------------------------------------------------------
    @abstractmethod
    def vocab(self) -> list[str]:
        """The closed list of token strings to add to a tokenizer, in a deterministic order."""

    @abstractmethod
    def encode(self, event: Event, base_ns: int) -> list[str]:
        """``event`` as token strings, its time written relative to ``base_ns``.

        Raises :class:`EncodeError` (naming topic, field and value) for an unsupported topic, a
        missing or out-of-range value, or an offset outside ``[0, max_offset_ns()]``.
        """

    @abstractmethod
    def decode(self, tokens: Sequence[str], base_ns: int, frames: Frames | None = None) -> list[Event]:
        """The events of a stream of whole encoded events (the inverse of :meth:`encode`).

        Screen events take their ``(uri, pts_ns)`` from ``frames`` in order. Raises
        :class:`DecodeError` on any malformed event or stray token.
        """

    # -- conveniences --------------------------------------------------------------------------
    def encode_many(self, events: Iterable[Event], base_ns: int) -> list[str]:
        """The concatenated encodings of ``events`` (all relative to the same ``base_ns``)."""
        out: list[str] = []
        for event in events:
            out.extend(self.encode(event, base_ns))
        return out

    def split_text(self, text: str, image_tokens: Sequence[str] = ()) -> list[str]:
        """Split decoded text into token strings; exact image runs (``image_tokens`` = one
        frame's expansion) become ``<IMAGE>``. Text between tokens is kept as one string."""
        parts = split_text(text, [*self.vocab(), *image_tokens])
        return collapse_images(parts, image_tokens)

    def decode_text(
        self, text: str, base_ns: int, frames: Frames | None = None, image_tokens: Sequence[str] = ()
    ) -> list[Event]:
        """Decode the text of a token stream (e.g. ``tokenizer.decode(ids)`` of whole events)."""
        return self.decode(self.split_text(text, image_tokens), base_ns, frames)


# -- registry ------------------------------------------------------------------------------------
_REGISTRY: dict[str, type[EventEncoder]] = {}


def register_encoder(cls: E) -> E:
    """Class decorator: make ``cls`` available to :func:`get_encoder` under ``cls.name``."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"encoder name {cls.name!r} is already registered by {existing.__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_encoders() -> dict[str, type[EventEncoder]]:
    """Name -> encoder class of every encoder registered so far (the built-in ones are registered when
    :mod:`owa_fsl.encoders` is imported, which is where :func:`~owa_fsl.encoders.get_encoder` lives)."""
    return dict(_REGISTRY)
