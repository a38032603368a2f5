"""Payload codecs: the encoders' extension point, one codec per message kind (topic).

A :class:`PayloadCodec` owns everything about one topic's payload: its canonical fields and
their validation (:meth:`~PayloadCodec.canonical`, the single source of truth for what the
encoders keep and which values they accept), its type token (``<KEYBOARD>``), its own tokens
(:meth:`~PayloadCodec.tokens`, e.g. ``<VK_65>``) and how the payload is written as tokens and
read back (:meth:`~PayloadCodec.encode` / :meth:`~PayloadCodec.decode`). Numbers are never
spelled by a codec: it hands them to the encoder's :class:`NumberSpelling` (sign and decimal
digits for ``factorized``, mixed-radix level tokens for ``hierarchical``), so one codec serves
every token encoder; the ``json`` encoder writes :meth:`~PayloadCodec.canonical` as JSON.

The table topic -> codec (:func:`register_codec`) is the only place where the encoders,
:func:`canonical` and ``EventEncoder.supports`` look a topic up; a topic without a codec is an
:class:`EncodeError` naming it. The desktop codecs (keyboard, mouse, mouse/raw, screen) are in
:mod:`owa_fsl.encoders.desktop`.

How to add a message type
-------------------------
1. Write one codec class (in :mod:`owa_fsl.encoders.desktop` for a desktop message, or in a
   module that :mod:`owa_fsl.encoders` imports)::

       BUTTONS = Categorical({"a": "<PAD_A>", "b": "<PAD_B>"}, "a gamepad button token")

       class GamepadCodec(PayloadCodec):
           topic = "gamepad"                       # the recording's topic
           message_type = "desktop/GamepadEvent"   # the message type of decoded events
           type_token = "<GAMEPAD>"                # unique among codecs

           def tokens(self) -> list[str]:          # its own tokens, if any
               return BUTTONS.tokens()

           def canonical(self, fields):            # validate; errors name the field only
               return {"button": choice_field(fields, "button", list(BUTTONS.token_of)),
                       "stick_x": int_field(fields, "stick_x", -32_768, 32_767)}

           def encode(self, fields, spell, out):   # tokens in a fixed order
               BUTTONS.write(fields["button"], out)
               spell.write_signed(fields["stick_x"], out)

           def decode(self, cursor, spell):        # the exact inverse
               return {"button": BUTTONS.read(cursor), "stick_x": spell.read_signed(cursor, "stick_x")}

   Signed values go through ``spell.write_signed`` (``|v| <= spell.max_signed``), bit masks
   through ``spell.write_flags`` with a :class:`FlagSet` listed in ``flag_sets``, values that
   are usually 0 and come last through ``spell.write_optional_signed``; fixed choices are
   :class:`Categorical` tokens. A payload that is a video frame subclasses :class:`FrameCodec`.
2. Register it, in its own call, below the existing registrations: ``register_codec(GamepadCodec())``.
3. Nothing else: every encoder, ``supports``, the FSL config's ``keep_topics`` check and the
   tokenizer expansion (``required_tokens`` / ``expand_tokenizer``) pick it up. Its tokens are
   appended at the end of each token encoder's vocabulary: existing tokens keep their places,
   and an already expanded tokenizer (a saved dataset's) only grows, keeping every id.
   Add a round trip through every encoder to ``tests/test_fsl_encoders.py`` (see the gamepad
   codec there).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, KeysView, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import orjson

from owa_event.events import TOPIC_TYPES, Event
from owa_fsl.encoders.errors import DecodeError, EncodeError, describe
from owa_fsl.encoders.stream import IMAGE_PLACEHOLDER

#: A frame reference ``(uri, pts_ns)``.
FrameRef = tuple[str, int | None]


# -- validating fields ---------------------------------------------------------------------------
# Errors name the field and the value, not the event: the caller adds where (see canonical()).
def int_field(fields: Mapping[str, Any], name: str, lo: int, hi: int, default: int | None = None) -> int:
    """``fields[name]`` (``default`` when absent), an integer (not a bool) in ``[lo, hi]``."""
    value = fields.get(name, default)
    if type(value) is int and lo <= value <= hi:
        return value
    if value is None:
        raise EncodeError(f"field {name!r} is missing")
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError(f"field {name!r} = {value!r} is not an integer")
    if not lo <= value <= hi:
        raise EncodeError(f"field {name!r} = {value} is out of range [{lo}, {hi}]")
    return value  # an int subclass in range


def choice_field(fields: Mapping[str, Any], name: str, choices: Sequence[Any]) -> Any:
    """``fields[name]``, one of ``choices``."""
    value = fields.get(name)
    if value not in choices:
        raise EncodeError(f"field {name!r} = {value!r} is not one of {list(choices)}")
    return value


def bool_field(fields: Mapping[str, Any], name: str) -> bool:
    """``fields[name]``, a bool."""
    value = fields.get(name)
    if not isinstance(value, bool):
        raise EncodeError(f"field {name!r} = {value!r} is not a bool")
    return value


# -- reading tokens --------------------------------------------------------------------------------
_MISSING = object()


def next_frame(frames: Iterator[FrameRef] | None, pos: int) -> FrameRef:
    """The next ``(uri, pts_ns)`` of ``frames``; :class:`DecodeError` naming token ``pos`` when none."""
    if frames is None:
        raise DecodeError(f"token {pos}: {IMAGE_PLACEHOLDER} needs a frame but no frames were given")
    try:
        uri, pts_ns = next(frames)
    except StopIteration:
        raise DecodeError(
            f"token {pos}: {IMAGE_PLACEHOLDER} needs a frame but the frames are exhausted"
        ) from None
    return uri, pts_ns


class Cursor:
    """Reads one event's tokens left to right; errors name the position in the whole stream
    (``offset`` + index in ``tokens``). ``frames`` feeds :class:`FrameCodec` payloads."""

    __slots__ = ("tokens", "pos", "offset", "frames")

    def __init__(
        self, tokens: Sequence[str], offset: int = 0, frames: Iterator[FrameRef] | None = None
    ) -> None:
        self.tokens = tokens
        self.pos = 0
        self.offset = offset
        self.frames = frames

    def peek(self) -> str | None:
        """The next token, or None at the end."""
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def fail(self, expected: str) -> DecodeError:
        """The error for "expected ``expected`` here" (to raise)."""
        got = self.peek()
        found = "the end of the event" if got is None else repr(got)
        return DecodeError(f"token {self.offset + self.pos}: expected {expected}, got {found}")

    def take(self, table: Mapping[str, Any], expected: str, what: str = "") -> Any:
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
        """Consume ``token`` or raise :class:`DecodeError`."""
        if self.peek() != token:
            raise self.fail(repr(token))
        self.pos += 1

    def next_frame(self) -> FrameRef:
        """The next frame reference (for the token just read)."""
        return next_frame(self.frames, self.offset + self.pos - 1)


# -- what a codec writes with -------------------------------------------------------------------
class Categorical:
    """A value with one token per choice (``<VK_65>``, ``<press>``): spelled the same by every
    token encoder. ``expected`` describes the tokens in decoding errors."""

    __slots__ = ("token_of", "value_of", "expected")

    def __init__(self, tokens: Mapping[Any, str], expected: str) -> None:
        self.token_of: dict[Any, str] = dict(tokens)
        self.value_of: dict[str, Any] = {t: v for v, t in self.token_of.items()}
        self.expected = expected

    def tokens(self) -> list[str]:
        """The tokens, in choice order."""
        return list(self.token_of.values())

    def write(self, value: Any, out: list[str]) -> None:
        out.append(self.token_of[value])

    def read(self, cursor: Cursor) -> Any:
        return cursor.take(self.value_of, self.expected)


_NAME = re.compile(r"[A-Za-z0-9_]+")


class FlagSet:
    """A bit-mask field: bit ``i`` (value ``1 << i``) is named ``names[i]``; masks are in
    ``[0, max]``. Its token names, one family per kind of spelling: one token per set bit
    ``<{bit_tag}_{name}>``, or hexadecimal digits ``<{digit_tag}{level}_{h}>``
    (``<{digit_tag}_{h}>`` for a single digit). Compared by identity."""

    __slots__ = ("names", "bit_tag", "digit_tag", "max")

    def __init__(self, names: Sequence[str], bit_tag: str, digit_tag: str) -> None:
        bad = [n for n in (*names, bit_tag, digit_tag) if not (isinstance(n, str) and _NAME.fullmatch(n))]
        if bad or not names:
            raise ValueError(f"flag names and tags must be non-empty [A-Za-z0-9_] words, got {bad or names}")
        self.names: tuple[str, ...] = tuple(names)
        self.bit_tag = bit_tag
        self.digit_tag = digit_tag
        self.max: int = (1 << len(self.names)) - 1

    def __repr__(self) -> str:
        return f"FlagSet({self.bit_tag}/{self.digit_tag}, {len(self.names)} bits)"


class NumberSpelling(ABC):
    """How a token encoder spells numbers. Codecs write and read numbers only through these
    methods, so the same codec serves every token encoder.

    Invariant: each ``read_*`` consumes exactly what the matching ``write_*`` appended.
    """

    #: The largest magnitude :meth:`write_signed` spells; larger values raise :class:`EncodeError`.
    max_signed: ClassVar[int]

    @abstractmethod
    def vocab(self, flag_sets: Sequence[FlagSet]) -> list[str]:
        """This spelling's own tokens: its value tokens, then those of each flag set, in order
        (not repeating the frame's digits and signs)."""

    @abstractmethod
    def write_signed(self, value: int, out: list[str]) -> None:
        """Append ``-max_signed <= value <= max_signed``."""

    @abstractmethod
    def read_signed(self, cursor: Cursor, what: str) -> int:
        """Read a value written by :meth:`write_signed` (``what`` names it in errors)."""

    def write_optional_signed(self, value: int, out: list[str]) -> None:
        """Append a value that is usually 0. A spelling may write nothing for 0 and then tells
        presence by the next token, so the value must come last in its payload."""
        self.write_signed(value, out)

    def read_optional_signed(self, cursor: Cursor, what: str) -> int:
        """Read a value written by :meth:`write_optional_signed`."""
        return self.read_signed(cursor, what)

    @abstractmethod
    def write_flags(self, mask: int, flags: FlagSet, out: list[str]) -> None:
        """Append ``0 <= mask <= flags.max``."""

    @abstractmethod
    def read_flags(self, cursor: Cursor, flags: FlagSet, what: str) -> int:
        """Read a mask written by :meth:`write_flags`."""


# -- codecs ----------------------------------------------------------------------------------------
class PayloadCodec(ABC):
    """One topic's payload: canonical fields, type token, own tokens, encode/decode.

    Invariants: :meth:`canonical` returns a new dict with a fixed key order and raises
    :class:`EncodeError` naming the field and value (not the event) for anything it does not
    accept, never clamping; ``decode(encode(canonical(f)))`` equals ``canonical(f)``; ``encode``
    appends only tokens of :meth:`tokens`, of the spelling's ``vocab(flag_sets)`` and the frame's
    digits and signs.
    """

    #: The recording topic this codec encodes.
    topic: ClassVar[str]
    #: The message type of decoded events (``desktop/KeyboardEvent``).
    message_type: ClassVar[str]
    #: ``<NAME>``: the token after ``<EVENT_START>``; unique among codecs.
    type_token: ClassVar[str]
    #: The flag sets ``encode`` hands to ``spell.write_flags``, in order (they decide the vocab).
    flag_sets: ClassVar[tuple[FlagSet, ...]] = ()
    #: True when the payload is a video frame (see :class:`FrameCodec`).
    frame: ClassVar[bool] = False

    def tokens(self) -> list[str]:
        """This codec's own tokens (categorical values), in a fixed order."""
        return []

    @abstractmethod
    def canonical(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The validated fields the encoders keep (see the class invariants)."""

    @abstractmethod
    def encode(self, fields: dict[str, Any], spell: NumberSpelling, out: list[str]) -> None:
        """Append the payload tokens of canonical ``fields``."""

    @abstractmethod
    def decode(self, cursor: Cursor, spell: NumberSpelling) -> dict[str, Any]:
        """Read a payload written by :meth:`encode` (the result is validated by the caller)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.topic!r})"


class FrameCodec(PayloadCodec):
    """A payload that is a video frame: written as one ``<IMAGE>`` (which the FSL stage
    expands to the model's image tokens); decoding takes its reference from the row's frames."""

    frame = True

    @abstractmethod
    def frame_ref(self, fields: dict[str, Any]) -> FrameRef:
        """``(uri, pts_ns)`` of canonical ``fields``."""

    @abstractmethod
    def from_frame(self, uri: str, pts_ns: int | None) -> dict[str, Any]:
        """The fields of a decoded event whose frame is ``(uri, pts_ns)``."""

    def encode(self, fields: dict[str, Any], spell: NumberSpelling, out: list[str]) -> None:
        out.append(IMAGE_PLACEHOLDER)

    def decode(self, cursor: Cursor, spell: NumberSpelling) -> dict[str, Any]:
        cursor.expect(IMAGE_PLACEHOLDER)
        return self.from_frame(*cursor.next_frame())


# -- the table topic -> codec ----------------------------------------------------------------------
_CODECS: dict[str, PayloadCodec] = {}
_BY_TYPE_TOKEN: dict[str, PayloadCodec] = {}
_TYPE_TOKENS: dict[str, str] = {}
_GROUPS: list[tuple[PayloadCodec, ...]] = []

#: Topics with a codec, in registration order (a live view of the table).
ENCODED_TOPICS: KeysView[str] = _CODECS.keys()
#: topic -> type token (a live read-only view).
TYPE_TOKENS: Mapping[str, str] = MappingProxyType(_TYPE_TOKENS)
#: type token -> codec (a live read-only view).
CODECS_BY_TYPE_TOKEN: Mapping[str, PayloadCodec] = MappingProxyType(_BY_TYPE_TOKEN)


def _is_token(token: object) -> bool:
    return (
        isinstance(token, str)
        and len(token) > 2
        and token[0] == "<"
        and token[-1] == ">"
        and "<" not in token[1:]
        and ">" not in token[:-1]
    )


def register_codec(*codecs: PayloadCodec) -> None:
    """Add ``codecs`` to the table, as one vocabulary block (see ``FramedEncoder.vocab``).

    Register a new message type in its own call: blocks are appended, so the tokens already in
    an encoder's vocabulary keep their places. ``ValueError`` listing every problem: a topic or
    type token already taken, or a token that is not one ``<...>`` (no inner brackets: no token
    can then be part of another).
    """
    not_codecs = [c for c in codecs if not isinstance(c, PayloadCodec)]
    if not_codecs or not codecs:
        raise ValueError(f"cannot register codecs: none given or not PayloadCodec instances: {not_codecs}")
    topics = [c.topic for c in codecs]
    types = [c.type_token for c in codecs]
    problems = [f"topic {t!r} already has the codec {_CODECS[t]!r}" for t in topics if t in _CODECS]
    problems += [f"type token {t!r} is already used" for t in types if t in _BY_TYPE_TOKEN]
    if len(set(topics)) < len(topics) or len(set(types)) < len(types):
        problems.append(f"topics {topics} and type tokens {types} must be distinct")
    for codec in codecs:
        bad = [t for t in (codec.type_token, *codec.tokens()) if not _is_token(t)]
        if bad:
            problems.append(f"{codec!r}: tokens must look like '<NAME>' (no inner brackets): {bad}")
    if problems:
        raise ValueError("cannot register codecs: " + "; ".join(problems))
    for codec in codecs:
        _CODECS[codec.topic] = codec
        _BY_TYPE_TOKEN[codec.type_token] = codec
        _TYPE_TOKENS[codec.topic] = codec.type_token
    _GROUPS.append(tuple(codecs))


def unregister_codec(topic: str) -> PayloadCodec:
    """Remove the codec of ``topic`` from the table and return it (``KeyError`` if none)."""
    codec = _CODECS.pop(topic)
    del _BY_TYPE_TOKEN[codec.type_token]
    del _TYPE_TOKENS[topic]
    for i, group in enumerate(_GROUPS):
        if codec in group:
            rest = tuple(c for c in group if c is not codec)
            if rest:
                _GROUPS[i] = rest
            else:
                del _GROUPS[i]
            break
    return codec


def codec_groups() -> list[tuple[PayloadCodec, ...]]:
    """The registered codecs, as registered: one tuple per :func:`register_codec` call, in order."""
    return list(_GROUPS)


def get_codec(topic: str) -> PayloadCodec:
    """The codec of ``topic``; :class:`EncodeError` naming it when there is none."""
    codec = _CODECS.get(topic)
    if codec is None:
        raise EncodeError(f"topic {topic!r} is not encodable (supported: {list(_CODECS)})")
    return codec


def find_codec(topic: str) -> PayloadCodec | None:
    """The codec of ``topic``, or None."""
    return _CODECS.get(topic)


# -- canonical fields ------------------------------------------------------------------------------
def checked_fields(codec: PayloadCodec, fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``codec.canonical(fields)``, its errors prefixed by ``where``."""
    try:
        return codec.canonical(fields)
    except EncodeError as exc:
        raise EncodeError(f"{where}: {exc}") from None


def event_fields(codec: PayloadCodec, event: Event) -> dict[str, Any]:
    """``codec.canonical(event.fields)``, its errors prefixed by the event's name."""
    try:
        return codec.canonical(event.fields)
    except EncodeError as exc:
        raise EncodeError(f"{describe(event)}: {exc}") from None


def canonical_fields(topic: str, fields: Mapping[str, Any], where: str | None = None) -> dict[str, Any]:
    """The validated canonical fields of a ``topic`` payload (a new dict, fixed key order).

    Raises :class:`EncodeError` naming ``where``, the field and the value when a value is missing
    or not accepted by the topic's codec, or when ``topic`` has no codec.
    """
    where = where or f"{topic} event"
    codec = _CODECS.get(topic)
    if codec is None:
        raise EncodeError(f"{where}: topic {topic!r} is not encodable (supported: {list(_CODECS)})")
    return checked_fields(codec, fields, where)


def canonical(event: Event) -> dict[str, Any]:
    """The fields of ``event`` that the encoders represent, validated by its topic's codec.

    ``decode(encode(e))`` has exactly these fields; compare events through this helper.
    """
    codec = _CODECS.get(event.topic)
    if codec is None:
        raise EncodeError(
            f"{describe(event)}: topic {event.topic!r} is not encodable (supported: {list(_CODECS)})"
        )
    return event_fields(codec, event)


def frame_ref(event: Event) -> FrameRef:
    """The frame reference ``(uri, pts_ns)`` of an event whose codec is a :class:`FrameCodec`
    (a screen event): what ``decode`` takes from ``frames``."""
    codec = _CODECS.get(event.topic)
    if not isinstance(codec, FrameCodec):
        raise EncodeError(f"{describe(event)}: topic {event.topic!r} carries no frame")
    return codec.frame_ref(canonical(event))


def make_event(topic: str, timestamp_ns: int, fields: dict[str, Any], index: int = -1) -> Event:
    """An :class:`Event` with ``fields`` as payload and the message type of ``topic``'s codec
    (of :data:`~owa_event.events.TOPIC_TYPES` for a topic without one)."""
    codec = _CODECS.get(topic)
    message_type = codec.message_type if codec is not None else TOPIC_TYPES[topic]
    return Event(topic, timestamp_ns, message_type, orjson.dumps(fields), fields, index)
