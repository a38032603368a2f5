"""The shared event-encoder base, the token frame common to the token encoders, and the registry.

Every encoder turns one :class:`~owa_event.events.Event` into a list of token strings and
back. Time is always relative: an event is written as its offset from ``base_ns`` (the
sequence start, stored with the dataset row) in units of ``time_resolution_ns``, as
``time_digits`` fixed-width decimal digits. Decoding gives
``base_ns + floor((t - base_ns) / res) * res`` -- the exact time at that resolution for any
offset ``0 <= t - base_ns <= max_offset_ns()``. Larger offsets raise :class:`EncodeError`;
the packer starts a new sequence (a new base) long before that, so nothing ever wraps.

Frame of the token encoders (:class:`FramedEncoder`)::

    <EVENT_START> <TYPE> d_1 .. d_n  payload...  <EVENT_END>

with ``<TYPE>`` one of ``<KEYBOARD> <MOUSE> <MOUSE_RAW> <SCREEN>``, ``d_i`` in ``<0>..<9>``
(most significant first) and a screen payload of exactly one ``<IMAGE>``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from owa_event.events import KEYBOARD, MOUSE, MOUSE_RAW, SCREEN, Event
from owa_fsl.encoders.fields import (
    ENCODED_TOPICS,
    KEY_EVENT_TYPES,
    MOUSE_BUTTONS,
    MOUSE_EVENT_TYPES,
    VK_MAX,
    DecodeError,
    EncodeError,
    canonical,
    canonical_fields,
    describe,
    make_event,
)
from owa_fsl.encoders.stream import (
    EVENT_END,
    EVENT_START,
    IMAGE_PLACEHOLDER,
    collapse_images,
    split_events,
    split_text,
)

DEFAULT_TIME_RESOLUTION_NS = 1_000_000
#: 7 digits at 1 ms: offsets up to 9_999_999 ms (2 h 46 min) from the sequence start.
DEFAULT_TIME_DIGITS = 7

TYPE_TOKENS: dict[str, str] = {
    KEYBOARD: "<KEYBOARD>",
    MOUSE: "<MOUSE>",
    MOUSE_RAW: "<MOUSE_RAW>",
    SCREEN: "<SCREEN>",
}
TOKEN_TOPICS: dict[str, str] = {token: topic for topic, token in TYPE_TOKENS.items()}
DIGIT_TOKENS: tuple[str, ...] = tuple(f"<{d}>" for d in range(10))
DIGIT_VALUES: dict[str, int] = {token: d for d, token in enumerate(DIGIT_TOKENS)}
PLUS = "<+>"
MINUS = "<->"
SIGN_TOKENS: tuple[str, str] = (PLUS, MINUS)
SIGN_VALUES: dict[str, int] = {PLUS: 1, MINUS: -1}

# Categorical payload tokens shared by the token encoders.
VK_TOKENS: tuple[str, ...] = tuple(f"<VK_{n}>" for n in range(VK_MAX + 1))
PRESS_TOKENS: dict[str, str] = {name: f"<{name}>" for name in KEY_EVENT_TYPES}  # <press> <release>
MOUSE_TYPE_TOKENS: dict[str, str] = {name: f"<{name}>" for name in MOUSE_EVENT_TYPES}  # <move> ...
BUTTON_TOKENS: dict[str, str] = {name: f"<BTN_{name.upper()}>" for name in MOUSE_BUTTONS}
_VK_VALUES = {t: n for n, t in enumerate(VK_TOKENS)}
_PRESSED_VALUES = {PRESS_TOKENS["press"]: True, PRESS_TOKENS["release"]: False}
_KEY_TYPE_VALUES = {t: name for name, t in PRESS_TOKENS.items()}
_MOUSE_TYPE_VALUES = {t: name for name, t in MOUSE_TYPE_TOKENS.items()}
_BUTTON_VALUES = {t: name for name, t in BUTTON_TOKENS.items()}

#: Frame references ``(uri, pts_ns)`` of a sequence's screen events, in order.
Frames = Iterable[tuple[str, int | None]]
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
        """Whether events of ``topic`` can be encoded."""
        return topic in TYPE_TOKENS

    # -- time --------------------------------------------------------------------------------
    def max_offset_ns(self) -> int:
        """The largest encodable ``timestamp_ns - base_ns`` in ns: ``(10**time_digits - 1) * res``."""
        return self._max_units * self.time_resolution_ns

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

    def _next_frame(self, frames: Iterator[tuple[str, int | None]] | None, pos: int) -> dict[str, Any]:
        if frames is None:
            raise DecodeError(f"token {pos}: screen event but no frames were given")
        try:
            uri, pts_ns = next(frames)
        except StopIteration:
            raise DecodeError(f"token {pos}: screen event but the frames are exhausted") from None
        return {"media_ref": {"uri": uri, "pts_ns": pts_ns}}


_MISSING = object()


class Cursor:
    """Reads one event's tokens left to right; errors name the stream position."""

    __slots__ = ("tokens", "pos", "offset")

    def __init__(self, tokens: Sequence[str], offset: int = 0) -> None:
        self.tokens = tokens
        self.pos = 0
        self.offset = offset

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def fail(self, expected: str) -> DecodeError:
        got = self.peek()
        found = "the end of the event" if got is None else repr(got)
        return DecodeError(f"token {self.offset + self.pos}: expected {expected}, got {found}")

    def take(self, table: dict[str, Any], expected: str, what: str = "") -> Any:
        """The value ``table`` maps the next token to (and advance); :class:`DecodeError` otherwise,
        saying ``expected.format(what=what)`` (formatted only on failure)."""
        pos = self.pos
        if pos < len(self.tokens):
            value = table.get(self.tokens[pos], _MISSING)
            if value is not _MISSING:
                self.pos = pos + 1
                return value
        raise self.fail(expected.format(what=what))

    def expect(self, token: str) -> None:
        if self.peek() != token:
            raise self.fail(repr(token))
        self.pos += 1

    def digits(self, n: int, what: str) -> int:
        """``n`` decimal digit tokens, most significant first, as an int."""
        value = 0
        for _ in range(n):
            value = value * 10 + self.take(DIGIT_VALUES, "a digit of {what}", what)
        return value


_CHAR_DIGIT: dict[str, str] = {str(d): token for d, token in enumerate(DIGIT_TOKENS)}


def digit_tokens(value: int, width: int) -> list[str]:
    """``value`` (``0 <= value < 10**width``) as ``width`` decimal digit tokens, most significant first."""
    return [_CHAR_DIGIT[c] for c in str(value).zfill(width)]


class FramedEncoder(EventEncoder):
    """``<EVENT_START> <TYPE> time-digits payload <EVENT_END>`` with the payloads::

        keyboard   <VK_n> (<press>|<release>)
        mouse      (<move>|<click>|<scroll>) X Y [<BTN_b> (<press>|<release>)] [DX DY]
        mouse/raw  (subclass)
        screen     <IMAGE>

    The button part is present for clicks only, DX DY for scrolls only. Subclasses choose how
    a signed value (X, Y, DX, DY) is spelled and write the raw-mouse payload.
    """

    def frame_vocab(self) -> list[str]:
        """Tokens shared by the token encoders: markers, types, digits, ``<IMAGE>``, signs,
        keys, press/release, mouse event types and buttons."""
        return [
            EVENT_START,
            EVENT_END,
            *TYPE_TOKENS.values(),
            *DIGIT_TOKENS,
            IMAGE_PLACEHOLDER,
            *SIGN_TOKENS,
            *VK_TOKENS,
            *PRESS_TOKENS.values(),
            *MOUSE_TYPE_TOKENS.values(),
            *BUTTON_TOKENS.values(),
        ]

    @abstractmethod
    def payload_vocab(self) -> list[str]:
        """The encoder's own tokens (not repeating :meth:`frame_vocab`)."""

    def vocab(self) -> list[str]:
        frame = self.frame_vocab()
        seen = set(frame)
        return frame + [t for t in self.payload_vocab() if t not in seen]

    @abstractmethod
    def write_signed(self, value: int, out: list[str]) -> None:
        """Append a signed value accepted by :func:`canonical` (|value| <= 99_999)."""

    @abstractmethod
    def read_signed(self, cursor: Cursor, what: str) -> int:
        """Read a value written by :meth:`write_signed`."""

    @abstractmethod
    def encode_raw(self, fields: dict[str, Any], out: list[str]) -> None:
        """Append the payload of canonical mouse/raw ``fields``."""

    @abstractmethod
    def decode_raw(self, cursor: Cursor) -> dict[str, Any]:
        """Read a payload written by :meth:`encode_raw`."""

    def encode_payload(self, topic: str, fields: dict[str, Any], out: list[str]) -> None:
        """Append the payload tokens of canonical ``fields`` (keyboard, mouse, mouse/raw)."""
        if topic == KEYBOARD:
            out.append(VK_TOKENS[fields["vk"]])
            out.append(PRESS_TOKENS[fields["event_type"]])
        elif topic == MOUSE:
            event_type = fields["event_type"]
            out.append(MOUSE_TYPE_TOKENS[event_type])
            self.write_signed(fields["x"], out)
            self.write_signed(fields["y"], out)
            if event_type == "click":
                out.append(BUTTON_TOKENS[fields["button"]])
                out.append(PRESS_TOKENS["press" if fields["pressed"] else "release"])
            elif event_type == "scroll":
                self.write_signed(fields["dx"], out)
                self.write_signed(fields["dy"], out)
        else:
            self.encode_raw(fields, out)

    def decode_payload(self, topic: str, cursor: Cursor) -> dict[str, Any]:
        """Read a payload written by :meth:`encode_payload` (fields not yet range-checked)."""
        if topic == KEYBOARD:
            vk = cursor.take(_VK_VALUES, "a key token <VK_n>")
            return {"event_type": cursor.take(_KEY_TYPE_VALUES, "<press> or <release>"), "vk": vk}
        if topic == MOUSE:
            event_type = cursor.take(_MOUSE_TYPE_VALUES, "a mouse event type token")
            fields: dict[str, Any] = {
                "event_type": event_type,
                "x": self.read_signed(cursor, "x"),
                "y": self.read_signed(cursor, "y"),
            }
            if event_type == "click":
                fields["button"] = cursor.take(_BUTTON_VALUES, "a mouse button token")
                fields["pressed"] = cursor.take(_PRESSED_VALUES, "<press> or <release>")
            elif event_type == "scroll":
                fields["dx"] = self.read_signed(cursor, "dx")
                fields["dy"] = self.read_signed(cursor, "dy")
            return fields
        return self.decode_raw(cursor)

    def encode(self, event: Event, base_ns: int) -> list[str]:
        if event.topic not in TYPE_TOKENS:
            raise EncodeError(
                f"{describe(event)}: topic {event.topic!r} is not supported by the {self.name} encoder "
                f"(supported: {list(ENCODED_TOPICS)})"
            )
        fields = canonical(event)
        units = self.offset_units(event.timestamp_ns, base_ns, event)
        out = [EVENT_START, TYPE_TOKENS[event.topic], *digit_tokens(units, self.time_digits)]
        if event.topic == SCREEN:
            out.append(IMAGE_PLACEHOLDER)
        else:
            self.encode_payload(event.topic, fields, out)
        out.append(EVENT_END)
        return out

    def decode(self, tokens: Sequence[str], base_ns: int, frames: Frames | None = None) -> list[Event]:
        frame_iter = iter(frames) if frames is not None else None
        events: list[Event] = []
        for start, chunk in split_events(tokens):
            cursor = Cursor(chunk, start)
            cursor.expect(EVENT_START)
            topic = cursor.take(TOKEN_TOPICS, "an event type token")
            units = cursor.digits(self.time_digits, "the time offset")
            if topic == SCREEN:
                cursor.expect(IMAGE_PLACEHOLDER)
                fields = self._next_frame(frame_iter, start + cursor.pos - 1)
            else:
                fields = self.decode_payload(topic, cursor)
                try:  # decoded values must be encodable again (e.g. button_data <= 65535)
                    fields = canonical_fields(topic, fields, f"token {start}: decoded {topic} event")
                except EncodeError as exc:
                    raise DecodeError(str(exc)) from None
            cursor.expect(EVENT_END)
            events.append(make_event(topic, base_ns + units * self.time_resolution_ns, fields))
        return events


# -- registry ------------------------------------------------------------------------------------
_REGISTRY: dict[str, type[EventEncoder]] = {}


def register_encoder(cls: E) -> E:
    """Class decorator: make ``cls`` available to :func:`get_encoder` under ``cls.name``."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"encoder name {cls.name!r} is already registered by {existing.__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def available_encoders() -> list[str]:
    """Registered encoder names, sorted."""
    import owa_fsl.encoders  # noqa: F401  (registers the built-in encoders)

    return sorted(_REGISTRY)


def get_encoder(name: str = "factorized", **options: Any) -> EventEncoder:
    """A new encoder by registry name (``factorized`` (default), ``hierarchical``, ``json``)."""
    import owa_fsl.encoders  # noqa: F401  (registers the built-in encoders)

    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; available: {sorted(_REGISTRY)}") from None
    return cls(**options)
