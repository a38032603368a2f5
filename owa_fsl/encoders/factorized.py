"""The factorized encoder (default): every number is spelled with the shared digit and sign tokens.

Frame, keyboard and mouse payloads as in :class:`~owa_fsl.encoders.base.FramedEncoder`.

- A signed value (X, Y, DX, DY, LAST_X, LAST_Y, BUTTON_DATA) is a sign ``<+>``/``<->`` and
  :data:`VALUE_DIGITS` = 5 decimal digits ``<0>..<9>``, most significant first
  (|v| <= 99_999; zero is ``<+>``).
- mouse/raw payload: ``LAST_X LAST_Y {<US_f>} {<RI_f>} [BUTTON_DATA]``. Flags are one token
  per set bit in ascending bit order (none when the mask is 0): ``us_flags`` bits
  ``<US_ABSOLUTE> <US_VIRTUAL_DESKTOP> <US_ATTRIBUTES_CHANGED> <US_NOCOALESCE>`` (0x1..0x8)
  and the 12 ``button_flags`` bits ``<RI_LEFT_DOWN> <RI_LEFT_UP> <RI_RIGHT_DOWN> ...
  <RI_X2_UP> <RI_WHEEL> <RI_HWHEEL>`` (0x1..0x800). BUTTON_DATA is written only when it is
  non-zero (most raw events are plain moves); when absent it decodes to 0.
"""

from __future__ import annotations

from typing import Any

from owa_fsl.encoders.base import (
    MINUS,
    PLUS,
    SIGN_VALUES,
    Cursor,
    FramedEncoder,
    digit_tokens,
    register_encoder,
)
from owa_fsl.encoders.fields import BUTTON_FLAG_NAMES, US_FLAG_NAMES, DecodeError

VALUE_DIGITS = 5
US_FLAG_TOKENS: tuple[str, ...] = tuple(f"<US_{name}>" for name in US_FLAG_NAMES)
BUTTON_FLAG_TOKENS: tuple[str, ...] = tuple(f"<RI_{name}>" for name in BUTTON_FLAG_NAMES)
_US_BITS = {t: bit for bit, t in enumerate(US_FLAG_TOKENS)}
_BUTTON_BITS = {t: bit for bit, t in enumerate(BUTTON_FLAG_TOKENS)}


def write_bits(mask: int, tokens: tuple[str, ...], out: list[str]) -> None:
    """Append one token per set bit of ``mask``, lowest bit first."""
    if mask:
        out.extend(token for bit, token in enumerate(tokens) if mask >> bit & 1)


def read_bits(cursor: Cursor, bits: dict[str, int], what: str) -> int:
    """Consume a run of bit tokens (strictly ascending) and return the mask."""
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

    def payload_vocab(self) -> list[str]:
        return [*US_FLAG_TOKENS, *BUTTON_FLAG_TOKENS]

    def write_signed(self, value: int, out: list[str]) -> None:
        out.append(PLUS if value >= 0 else MINUS)
        out.extend(digit_tokens(abs(value), VALUE_DIGITS))

    def read_signed(self, cursor: Cursor, what: str) -> int:
        sign = cursor.take(SIGN_VALUES, "the sign of {what}", what)
        return sign * cursor.digits(VALUE_DIGITS, what)

    def encode_raw(self, fields: dict[str, Any], out: list[str]) -> None:
        self.write_signed(fields["last_x"], out)
        self.write_signed(fields["last_y"], out)
        write_bits(fields["us_flags"], US_FLAG_TOKENS, out)
        write_bits(fields["button_flags"], BUTTON_FLAG_TOKENS, out)
        if fields["button_data"] != 0:
            self.write_signed(fields["button_data"], out)

    def decode_raw(self, cursor: Cursor) -> dict[str, Any]:
        last_x = self.read_signed(cursor, "last_x")
        last_y = self.read_signed(cursor, "last_y")
        us_flags = read_bits(cursor, _US_BITS, "us_flags")
        button_flags = read_bits(cursor, _BUTTON_BITS, "button_flags")
        button_data = self.read_signed(cursor, "button_data") if cursor.peek() in SIGN_VALUES else 0
        return {
            "last_x": last_x,
            "last_y": last_y,
            "us_flags": us_flags,
            "button_flags": button_flags,
            "button_data": button_data,
        }
