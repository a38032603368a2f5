"""The hierarchical encoder: payload values as coarse-to-fine mixed-radix digits.

Each digit level has its own token family, so a token means the same thing wherever it
appears (``<V1_37>`` is always "37 hundreds"). Frame as in :mod:`owa_fsl.encoders.framed`,
payloads as the codecs write them (:mod:`owa_fsl.encoders.desktop`); numbers spelled by
:class:`MixedRadixSpelling`, which writes every value, so payloads have a fixed structure::

    mouse/raw  LAST_X LAST_Y <US_u> <BF2_h> <BF1_h> <BF0_h> BUTTON_DATA

Radices (most significant first):

- signed values (X, Y, DX, DY, LAST_X, LAST_Y, BUTTON_DATA, optional or not): sign
  ``<+>``/``<->`` then the magnitude in radices :data:`VALUE_RADICES` = (10, 100, 100) as
  ``<V2_d> <V1_d> <V0_d>`` (|v| <= 99_999; zero is ``<+>``);
- a flag mask of n bits: ceil(n / 4) hexadecimal digits, the flag set's ``digit_tag`` levels:
  ``button_flags`` ``<BF2_h> <BF1_h> <BF0_h>``, ``h`` in ``0..F`` (nibble 0 = left/right
  down/up, 1 = middle/x1, 2 = x2/wheel/h-wheel); ``us_flags`` one digit ``<US_u>``;
- ``vk``: one radix-256 digit ``<VK_n>`` (key codes are categorical, not split).
"""

from __future__ import annotations

from collections.abc import Sequence

from owa_fsl.encoders.base import register_encoder
from owa_fsl.encoders.codec import Cursor, FlagSet, NumberSpelling
from owa_fsl.encoders.errors import EncodeError
from owa_fsl.encoders.framed import MINUS, PLUS, SIGN_VALUES, FramedEncoder

VALUE_RADICES: tuple[int, ...] = (10, 100, 100)


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

    __slots__ = ("radices", "families", "size", "_steps", "_maps", "_names")

    def __init__(self, prefix: str, radices: Sequence[int], hexa: bool = False) -> None:
        self.radices = tuple(radices)
        families = []
        for i, radix in enumerate(self.radices):
            level = len(self.radices) - 1 - i
            tag = f"{prefix}{level}" if len(self.radices) > 1 else prefix
            families.append(tuple(f"<{tag}_{d:X}>" if hexa else f"<{tag}_{d}>" for d in range(radix)))
        self.families: tuple[tuple[str, ...], ...] = tuple(families)
        self.size = 1
        steps = []
        for family, radix in zip(reversed(self.families), reversed(self.radices)):
            steps.append((family, self.size, radix))
            self.size *= radix
        self._steps = tuple(reversed(steps))  # (family, divisor, radix), most significant first
        self._maps = tuple({t: d for d, t in enumerate(f)} for f in families)
        self._names = tuple(f"a digit of {{what}} ({f[0]}..{f[-1]})" for f in families)

    def vocab(self) -> list[str]:
        return [t for family in self.families for t in family]

    def write(self, value: int, out: list[str]) -> None:
        """Append the digit tokens of ``0 <= value < prod(radices)``."""
        if not 0 <= value < self.size:
            raise EncodeError(f"value {value} does not fit radices {self.radices}")
        for family, div, radix in self._steps:
            out.append(family[value // div % radix])

    def read(self, cursor: Cursor, what: str) -> int:
        value = 0
        for table, name, radix in zip(self._maps, self._names, self.radices):
            value = value * radix + cursor.take(table, name, what)
        return value


VALUE_LEVELS = Levels("V", VALUE_RADICES)


class MixedRadixSpelling(NumberSpelling):
    """Sign + (10, 100, 100) value levels; flags as hex-digit levels; every value written."""

    max_signed = VALUE_LEVELS.size - 1

    def __init__(self) -> None:
        self._flag_levels: dict[FlagSet, Levels] = {}

    def flag_levels(self, flags: FlagSet) -> Levels:
        """The hex-digit levels of ``flags``: ceil(bits / 4) radix-16 digits."""
        levels = self._flag_levels.get(flags)
        if levels is None:
            radices = (16,) * max(1, -(-len(flags.names) // 4))
            levels = self._flag_levels[flags] = Levels(flags.digit_tag, radices, hexa=True)
        return levels

    def vocab(self, flag_sets: Sequence[FlagSet]) -> list[str]:
        return [*VALUE_LEVELS.vocab(), *(t for flags in flag_sets for t in self.flag_levels(flags).vocab())]

    def write_signed(self, value: int, out: list[str]) -> None:
        if value >= 0:
            out.append(PLUS)
            VALUE_LEVELS.write(value, out)
        else:
            out.append(MINUS)
            VALUE_LEVELS.write(-value, out)

    def read_signed(self, cursor: Cursor, what: str) -> int:
        sign = cursor.take(SIGN_VALUES, "the sign of {what}", what)
        return sign * VALUE_LEVELS.read(cursor, what)

    def write_flags(self, mask: int, flags: FlagSet, out: list[str]) -> None:
        self.flag_levels(flags).write(mask, out)

    def read_flags(self, cursor: Cursor, flags: FlagSet, what: str) -> int:
        return self.flag_levels(flags).read(cursor, what)


@register_encoder
class HierarchicalEncoder(FramedEncoder):
    """Mixed-radix, level-tagged digit tokens for payload values (see the module docstring)."""

    name = "hierarchical"
    spelling = MixedRadixSpelling()
