"""The hierarchical encoder: payload values as coarse-to-fine mixed-radix digits.

Each digit level has its own token family, so a token means the same thing wherever it
appears (``<V1_37>`` is always "37 hundreds"). Frame, time digits, keyboard and mouse
payloads as in :class:`~owa_fsl.encoders.base.FramedEncoder`; the raw-mouse payload has a
fixed structure (every field always present)::

    mouse/raw  LAST_X LAST_Y <US_u> <BF2_h> <BF1_h> <BF0_h> BUTTON_DATA

Radices (most significant first):

- signed values (X, Y, DX, DY, LAST_X, LAST_Y, BUTTON_DATA): sign ``<+>``/``<->`` then the
  magnitude in radices :data:`VALUE_RADICES` = (10, 100, 100) as ``<V2_d> <V1_d> <V0_d>``
  (|v| <= 99_999; zero is ``<+>``);
- ``button_flags``: radices (16, 16, 16), the three hex nibbles ``<BF2_h> <BF1_h> <BF0_h>``,
  ``h`` in ``0..F`` (nibble 0 = left/right down/up, 1 = middle/x1, 2 = x2/wheel/h-wheel);
- ``us_flags``: one radix-16 digit ``<US_u>``, ``u`` in ``0..F``;
- ``vk``: one radix-256 digit ``<VK_n>`` (key codes are categorical, not split).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from owa_fsl.encoders.base import MINUS, PLUS, SIGN_VALUES, Cursor, FramedEncoder, register_encoder

VALUE_RADICES: tuple[int, ...] = (10, 100, 100)
BUTTON_FLAG_RADICES: tuple[int, ...] = (16, 16, 16)
US_FLAG_RADICES: tuple[int, ...] = (16,)


def to_mixed_radix(value: int, radices: Sequence[int]) -> list[int]:
    """Digits of ``0 <= value < prod(radices)``, most significant first."""
    if value < 0:
        raise ValueError(f"{value} is negative")
    digits = []
    for radix in reversed(radices):
        value, digit = divmod(value, radix)
        digits.append(digit)
    if value:
        raise ValueError(f"value does not fit radices {tuple(radices)}")
    return digits[::-1]


def from_mixed_radix(digits: Sequence[int], radices: Sequence[int]) -> int:
    """The inverse of :func:`to_mixed_radix`."""
    value = 0
    for digit, radix in zip(digits, radices, strict=True):
        value = value * radix + digit
    return value


class Levels:
    """The token families of a mixed-radix number: level ``i`` (0 = least significant) is
    ``<{prefix}{i}_{digit}>`` (``<{prefix}_{digit}>`` when there is one level); digits are
    decimal, or upper-case hex when ``hexa``."""

    __slots__ = ("radices", "families", "_maps", "_names")

    def __init__(self, prefix: str, radices: Sequence[int], hexa: bool = False) -> None:
        self.radices = tuple(radices)
        families = []
        for i, radix in enumerate(self.radices):
            level = len(self.radices) - 1 - i
            tag = f"{prefix}{level}" if len(self.radices) > 1 else prefix
            families.append(tuple(f"<{tag}_{d:X}>" if hexa else f"<{tag}_{d}>" for d in range(radix)))
        self.families: tuple[tuple[str, ...], ...] = tuple(families)
        self._maps = tuple({t: d for d, t in enumerate(f)} for f in families)
        self._names = tuple(f"a digit of {{what}} ({f[0]}..{f[-1]})" for f in families)

    def vocab(self) -> list[str]:
        return [t for family in self.families for t in family]

    def write(self, value: int, out: list[str]) -> None:
        """Append the digit tokens of ``0 <= value < prod(radices)``."""
        out.extend(family[d] for family, d in zip(self.families, to_mixed_radix(value, self.radices)))

    def read(self, cursor: Cursor, what: str) -> int:
        digits = [cursor.take(m, name, what) for m, name in zip(self._maps, self._names)]
        return from_mixed_radix(digits, self.radices)


VALUE_LEVELS = Levels("V", VALUE_RADICES)
BUTTON_FLAG_LEVELS = Levels("BF", BUTTON_FLAG_RADICES, hexa=True)
US_FLAG_LEVELS = Levels("US", US_FLAG_RADICES, hexa=True)


@register_encoder
class HierarchicalEncoder(FramedEncoder):
    """Mixed-radix, level-tagged digit tokens for payload values (see the module docstring)."""

    name = "hierarchical"

    def payload_vocab(self) -> list[str]:
        return [*VALUE_LEVELS.vocab(), *US_FLAG_LEVELS.vocab(), *BUTTON_FLAG_LEVELS.vocab()]

    def write_signed(self, value: int, out: list[str]) -> None:
        out.append(PLUS if value >= 0 else MINUS)
        VALUE_LEVELS.write(abs(value), out)

    def read_signed(self, cursor: Cursor, what: str) -> int:
        sign = cursor.take(SIGN_VALUES, "the sign of {what}", what)
        return sign * VALUE_LEVELS.read(cursor, what)

    def encode_raw(self, fields: dict[str, Any], out: list[str]) -> None:
        self.write_signed(fields["last_x"], out)
        self.write_signed(fields["last_y"], out)
        US_FLAG_LEVELS.write(fields["us_flags"], out)
        BUTTON_FLAG_LEVELS.write(fields["button_flags"], out)
        self.write_signed(fields["button_data"], out)

    def decode_raw(self, cursor: Cursor) -> dict[str, Any]:
        return {
            "last_x": self.read_signed(cursor, "last_x"),
            "last_y": self.read_signed(cursor, "last_y"),
            "us_flags": US_FLAG_LEVELS.read(cursor, "us_flags"),
            "button_flags": BUTTON_FLAG_LEVELS.read(cursor, "button_flags"),
            "button_data": self.read_signed(cursor, "button_data"),
        }
