"""The factorized encoder (default): every number is spelled with the shared digit and sign tokens.

Frame as in :mod:`owa_fsl.encoders.framed`, payloads as the codecs write them
(:mod:`owa_fsl.encoders.desktop`); numbers spelled by :class:`DecimalSpelling`:

- a signed value (X, Y, DX, DY, LAST_X, LAST_Y, BUTTON_DATA) is a sign ``<+>``/``<->`` and
  :data:`VALUE_DIGITS` = 5 decimal digits ``<0>..<9>``, most significant first
  (|v| <= 99_999; zero is ``<+>``);
- a flag mask is one token per set bit in ascending bit order (none when the mask is 0): for
  mouse/raw the ``us_flags`` bits ``<US_ABSOLUTE> <US_VIRTUAL_DESKTOP> <US_ATTRIBUTES_CHANGED>
  <US_NOCOALESCE>`` (0x1..0x8) and the 12 ``button_flags`` bits ``<RI_LEFT_DOWN> <RI_LEFT_UP>
  <RI_RIGHT_DOWN> ... <RI_X2_UP> <RI_WHEEL> <RI_HWHEEL>`` (0x1..0x800);
- an optional value (mouse/raw BUTTON_DATA) is written only when it is non-zero (most raw
  events are plain moves); when absent it decodes to 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from owa_fsl.encoders.base import register_encoder
from owa_fsl.encoders.codec import Cursor, FlagSet, NumberSpelling
from owa_fsl.encoders.errors import DecodeError, EncodeError
from owa_fsl.encoders.framed import MINUS, PLUS, SIGN_VALUES, DecimalDigits, FramedEncoder

VALUE_DIGITS = 5
_MAX = 10**VALUE_DIGITS - 1
_VALUE = DecimalDigits(VALUE_DIGITS)


class _Bits:
    """A flag set's bit tokens (``<{bit_tag}_{name}>``) and their bit numbers."""

    __slots__ = ("tokens", "bits")

    def __init__(self, flags: FlagSet) -> None:
        self.tokens: tuple[str, ...] = tuple(f"<{flags.bit_tag}_{name}>" for name in flags.names)
        self.bits: dict[str, int] = {t: bit for bit, t in enumerate(self.tokens)}


class DecimalSpelling(NumberSpelling):
    """Sign + 5 decimal digits; one token per set flag bit; optional values left out when 0."""

    max_signed = _MAX

    def __init__(self) -> None:
        self._bits: dict[FlagSet, _Bits] = {}

    def _bits_of(self, flags: FlagSet) -> _Bits:
        bits = self._bits.get(flags)
        if bits is None:
            bits = self._bits[flags] = _Bits(flags)
        return bits

    def vocab(self, flag_sets: Sequence[FlagSet]) -> list[str]:
        return [t for flags in flag_sets for t in self._bits_of(flags).tokens]

    def write_signed(self, value: int, out: list[str]) -> None:
        if 0 <= value <= _MAX:
            out.append(PLUS)
            _VALUE.write(value, out)
        elif -_MAX <= value < 0:
            out.append(MINUS)
            _VALUE.write(-value, out)
        else:
            raise EncodeError(f"value {value} does not fit the factorized spelling (|v| <= {_MAX})")

    def read_signed(self, cursor: Cursor, what: str) -> int:
        sign = cursor.take(SIGN_VALUES, "the sign of {what}", what)
        return sign * _VALUE.read(cursor, what)

    def write_optional_signed(self, value: int, out: list[str]) -> None:
        if value:
            self.write_signed(value, out)

    def read_optional_signed(self, cursor: Cursor, what: str) -> int:
        return self.read_signed(cursor, what) if cursor.peek() in SIGN_VALUES else 0

    def write_flags(self, mask: int, flags: FlagSet, out: list[str]) -> None:
        if mask:
            if not 0 < mask <= flags.max:
                raise EncodeError(f"mask {mask} does not fit {flags!r}")
            tokens = self._bits_of(flags).tokens
            out.extend(token for bit, token in enumerate(tokens) if mask >> bit & 1)

    def read_flags(self, cursor: Cursor, flags: FlagSet, what: str) -> int:
        """Consume a run of bit tokens (strictly ascending) and return the mask."""
        bits = self._bits_of(flags).bits
        mask, last = 0, -1
        while (token := cursor.peek()) in bits:
            bit = bits[token]
            if bit <= last:
                pos = cursor.offset + cursor.pos
                raise DecodeError(f"token {pos}: {what} bit {token!r} repeated or out of order")
            mask |= 1 << bit
            last = bit
            cursor.pos += 1
        return mask


@register_encoder
class FactorizedEncoder(FramedEncoder):
    """Shared decimal digit tokens for every number; one token per key, button and flag bit."""

    name = "factorized"
    spelling = DecimalSpelling()
