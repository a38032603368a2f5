"""The token frame shared by the token encoders, and their vocabulary::

    <EVENT_START> <TYPE> d_1 .. d_n  payload...  <EVENT_END>

``<TYPE>`` is the type token of the event's payload codec (``<KEYBOARD>`` ...), ``d_i`` in
``<0>..<9>`` the time offset (most significant first, ``time_digits`` of them), and the payload
is written by the codec (:mod:`owa_fsl.encoders.codec`), its numbers spelled by the encoder's
:class:`~owa_fsl.encoders.codec.NumberSpelling` (the only thing a token encoder adds).

Vocabulary: one block per :func:`~owa_fsl.encoders.codec.register_codec` call, in registration
order, each token kept at its first occurrence::

    <EVENT_START> <EVENT_END> <TYPE>... <0>..<9> <IMAGE> <+> <->   frame (new in the first block only)
    the codecs' own tokens (in codec order)
    the spelling's value tokens, then its tokens for the codecs' flag sets

so a later registration only appends its type tokens, own tokens and flag tokens: existing ids
never move.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import ClassVar

from owa_event.events import Event
from owa_fsl.encoders.base import DEFAULT_TIME_DIGITS, DEFAULT_TIME_RESOLUTION_NS, EventEncoder, Frames
from owa_fsl.encoders.codec import (
    CODECS_BY_TYPE_TOKEN,
    Cursor,
    NumberSpelling,
    checked_fields,
    codec_groups,
    event_fields,
    find_codec,
    make_event,
)
from owa_fsl.encoders.errors import DecodeError, EncodeError, describe
from owa_fsl.encoders.stream import EVENT_END, EVENT_START, IMAGE_PLACEHOLDER, split_events

DIGIT_TOKENS: tuple[str, ...] = tuple(f"<{d}>" for d in range(10))
DIGIT_VALUES: dict[str, int] = {token: d for d, token in enumerate(DIGIT_TOKENS)}
PLUS = "<+>"
MINUS = "<->"
SIGN_TOKENS: tuple[str, str] = (PLUS, MINUS)
SIGN_VALUES: dict[str, int] = {PLUS: 1, MINUS: -1}

#: ``_DIGIT_RUNS[w][v]``: the ``w`` digit tokens of ``0 <= v < 10**w`` (w = 1, 2, 3), most significant first.
_DIGIT_RUNS: dict[int, tuple[tuple[str, ...], ...]] = {
    w: tuple(product(DIGIT_TOKENS, repeat=w)) for w in (1, 2, 3)
}


class DecimalDigits:
    """Fixed-width decimal digit tokens, by table lookups of up to three digits at a time."""

    __slots__ = ("width", "_steps")

    def __init__(self, width: int) -> None:
        self.width = width
        sizes: list[int] = []
        rest = width
        while rest > 0:
            size = rest % 3 or 3
            sizes.append(size)
            rest -= size
        steps = []
        below = width
        for size in sizes:
            below -= size
            steps.append((10**below, 10**size, _DIGIT_RUNS[size]))
        self._steps: tuple[tuple[int, int, tuple[tuple[str, ...], ...]], ...] = tuple(steps)

    def write(self, value: int, out: list[str]) -> None:
        """Append ``0 <= value < 10**width`` (not checked: callers range-check)."""
        for div, mod, runs in self._steps:
            out += runs[value // div % mod]

    def read(self, cursor: Cursor, what: str) -> int:
        """Read ``width`` digit tokens as an int."""
        value = 0
        for _ in range(self.width):
            value = value * 10 + cursor.take(DIGIT_VALUES, "a digit of {what}", what)
        return value


def digit_tokens(value: int, width: int) -> list[str]:
    """``value`` (``0 <= value < 10**width``) as ``width`` decimal digit tokens, most significant first."""
    out: list[str] = []
    DecimalDigits(width).write(value, out)
    return out


class FramedEncoder(EventEncoder):
    """``<EVENT_START> <TYPE> time-digits payload <EVENT_END>``; subclasses only choose
    :attr:`spelling`, how numbers are spelled (see the module docstring)."""

    spelling: ClassVar[NumberSpelling]

    def __init__(
        self, time_resolution_ns: int = DEFAULT_TIME_RESOLUTION_NS, time_digits: int = DEFAULT_TIME_DIGITS
    ) -> None:
        super().__init__(time_resolution_ns, time_digits)
        self._time = DecimalDigits(self.time_digits)

    def vocab(self) -> list[str]:
        tokens: list[str] = []
        for group in codec_groups():
            tokens += [EVENT_START, EVENT_END, *(c.type_token for c in group)]
            tokens += [*DIGIT_TOKENS, IMAGE_PLACEHOLDER, *SIGN_TOKENS]
            for codec in group:
                tokens += codec.tokens()
            tokens += self.spelling.vocab([fs for codec in group for fs in codec.flag_sets])
        return list(dict.fromkeys(tokens))

    def encode(self, event: Event, base_ns: int) -> list[str]:
        codec = find_codec(event.topic) or self.codec_of(event)  # codec_of raises, naming the topic
        fields = event_fields(codec, event)
        offset = event.timestamp_ns - base_ns
        if 0 <= offset <= self._max_offset_ns:
            units = offset // self.time_resolution_ns
        else:
            units = self.offset_units(event.timestamp_ns, base_ns, event)  # raises
        out = [EVENT_START, codec.type_token]
        self._time.write(units, out)
        try:
            codec.encode(fields, self.spelling, out)
        except EncodeError as exc:  # a value the spelling cannot write
            raise EncodeError(f"{describe(event)}: {exc}") from None
        out.append(EVENT_END)
        return out

    def decode(self, tokens: Sequence[str], base_ns: int, frames: Frames | None = None) -> list[Event]:
        frame_iter = iter(frames) if frames is not None else None
        spell, time, res = self.spelling, self._time, self.time_resolution_ns
        events: list[Event] = []
        for start, chunk in split_events(tokens):
            cursor = Cursor(chunk, start, frame_iter)
            cursor.expect(EVENT_START)
            codec = cursor.take(CODECS_BY_TYPE_TOKEN, "an event type token")
            units = time.read(cursor, "the time offset")
            fields = codec.decode(cursor, spell)
            if not codec.frame:  # decoded values must be encodable again (e.g. button_data <= 65535)
                try:
                    fields = checked_fields(codec, fields, f"token {start}: decoded {codec.topic} event")
                except EncodeError as exc:
                    raise DecodeError(str(exc)) from None
            cursor.expect(EVENT_END)
            events.append(make_event(codec.topic, base_ns + units * res, fields))
        return events
