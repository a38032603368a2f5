"""The hierarchical encoder: payload values as coarse-to-fine mixed-radix digits.

Each digit level has its own token family, so a token means the same thing wherever it
appears (``<V1_37>`` is always "37 hundreds"). Same frame and time digits as the factorized
encoder; payloads (fixed structure, every field always present)::

    keyboard   <VK_n> (<press>|<release>)                                   n = 0..255
    mouse      (<move>|<click>|<scroll>) X Y [<BTN_b> (<press>|<release>)] [DX DY]
    mouse/raw  LAST_X LAST_Y <US_u> <BF2_h> <BF1_h> <BF0_h> BUTTON_DATA
    screen     <IMAGE>

Radices (most significant first):

- signed values (X, Y, DX, DY, LAST_X, LAST_Y, BUTTON_DATA): sign ``<+>``/``<->`` then the
  magnitude in radices :data:`VALUE_RADICES` = (10, 100, 100) as ``<V2_d> <V1_d> <V0_d>``
  (|v| <= 99_999; zero is ``<+>``);
- ``button_flags``: radices (16, 16, 16), i.e. the three hex nibbles ``<BF2_h> <BF1_h>
  <BF0_h>`` with ``h`` in ``0..F`` (0xFFF max);
- ``us_flags``: one radix-16 digit ``<US_u>``, ``u`` in ``0..F``;
- ``vk``: one radix-256 digit ``<VK_n>`` (key codes are categorical, not split).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from owa_event.events import KEYBOARD, MOUSE, MOUSE_RAW
from owa_fsl.encoders.base import MINUS, PLUS, SIGN_TOKENS, Cursor, FramedEncoder, register_encoder
from owa_fsl.encoders.factorized import BUTTON_TOKENS, MOUSE_TYPE_TOKENS, PRESS_TOKENS, VK_TOKENS

VALUE_RADICES: tuple[int, ...] = (10, 100, 100)
BUTTON_FLAG_RADICES: tuple[int, ...] = (16, 16, 16)
US_FLAG_RADICES: tuple[int, ...] = (16,)


def to_mixed_radix(value: int, radices: Sequence[int]) -> list[int]:
    """Digits of ``0 <= value < prod(radices)``, most significant first."""
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
        self._names = tuple(f"{f[0]}..{f[-1]}" for f in families)

    def vocab(self) -> list[str]:
        return [t for family in self.families for t in family]

    def write(self, value: int, out: list[str]) -> None:
        """Append the digit tokens of ``0 <= value < prod(radices)``."""
        out.extend(family[d] for family, d in zip(self.families, to_mixed_radix(value, self.radices)))

    def read(self, cursor: Cursor, what: str) -> int:
        digits = [cursor.take(m, f"a digit of {what} ({name})") for m, name in zip(self._maps, self._names)]
        return from_mixed_radix(digits, self.radices)


VALUE_LEVELS = Levels("V", VALUE_RADICES)
BUTTON_FLAG_LEVELS = Levels("BF", BUTTON_FLAG_RADICES, hexa=True)
US_FLAG_LEVELS = Levels("US", US_FLAG_RADICES, hexa=True)

_VK_VALUES = {t: n for n, t in enumerate(VK_TOKENS)}
_PRESS_VALUES = {PRESS_TOKENS["press"]: True, PRESS_TOKENS["release"]: False}
_KEY_TYPE_VALUES = {t: name for name, t in PRESS_TOKENS.items()}
_MOUSE_TYPE_VALUES = {t: name for name, t in MOUSE_TYPE_TOKENS.items()}
_BUTTON_VALUES = {t: name for name, t in BUTTON_TOKENS.items()}
_SIGN_VALUES = {PLUS: 1, MINUS: -1}


def _signed(value: int, out: list[str]) -> None:
    out.append(PLUS if value >= 0 else MINUS)
    VALUE_LEVELS.write(abs(value), out)


def _read_signed(cursor: Cursor, what: str) -> int:
    sign = cursor.take(_SIGN_VALUES, f"the sign of {what}")
    return sign * VALUE_LEVELS.read(cursor, what)


@register_encoder
class HierarchicalEncoder(FramedEncoder):
    """Mixed-radix, level-tagged digit tokens for payload values (see the module docstring)."""

    name = "hierarchical"

    def payload_vocab(self) -> list[str]:
        return [
            *SIGN_TOKENS,
            *VALUE_LEVELS.vocab(),
            *VK_TOKENS,
            *PRESS_TOKENS.values(),
            *MOUSE_TYPE_TOKENS.values(),
            *BUTTON_TOKENS.values(),
            *US_FLAG_LEVELS.vocab(),
            *BUTTON_FLAG_LEVELS.vocab(),
        ]

    def encode_payload(self, topic: str, fields: dict[str, Any], out: list[str]) -> None:
        if topic == KEYBOARD:
            out.append(VK_TOKENS[fields["vk"]])
            out.append(PRESS_TOKENS[fields["event_type"]])
        elif topic == MOUSE:
            out.append(MOUSE_TYPE_TOKENS[fields["event_type"]])
            _signed(fields["x"], out)
            _signed(fields["y"], out)
            if fields["event_type"] == "click":
                out.append(BUTTON_TOKENS[fields["button"]])
                out.append(PRESS_TOKENS["press" if fields["pressed"] else "release"])
            elif fields["event_type"] == "scroll":
                _signed(fields["dx"], out)
                _signed(fields["dy"], out)
        elif topic == MOUSE_RAW:
            _signed(fields["last_x"], out)
            _signed(fields["last_y"], out)
            US_FLAG_LEVELS.write(fields["us_flags"], out)
            BUTTON_FLAG_LEVELS.write(fields["button_flags"], out)
            _signed(fields["button_data"], out)
        else:  # pragma: no cover - encode() only routes the three input topics here
            raise AssertionError(topic)

    def decode_payload(self, topic: str, cursor: Cursor) -> dict[str, Any]:
        if topic == KEYBOARD:
            vk = cursor.take(_VK_VALUES, "a key token <VK_n>")
            event_type = cursor.take(_KEY_TYPE_VALUES, "<press> or <release>")
            return {"event_type": event_type, "vk": vk}
        if topic == MOUSE:
            event_type = cursor.take(_MOUSE_TYPE_VALUES, "a mouse event type token")
            fields: dict[str, Any] = {
                "event_type": event_type,
                "x": _read_signed(cursor, "x"),
                "y": _read_signed(cursor, "y"),
            }
            if event_type == "click":
                fields["button"] = cursor.take(_BUTTON_VALUES, "a mouse button token")
                fields["pressed"] = cursor.take(_PRESS_VALUES, "<press> or <release>")
            elif event_type == "scroll":
                fields["dx"] = _read_signed(cursor, "dx")
                fields["dy"] = _read_signed(cursor, "dy")
            return fields
        if topic == MOUSE_RAW:
            return {
                "last_x": _read_signed(cursor, "last_x"),
                "last_y": _read_signed(cursor, "last_y"),
                "us_flags": US_FLAG_LEVELS.read(cursor, "us_flags"),
                "button_flags": BUTTON_FLAG_LEVELS.read(cursor, "button_flags"),
                "button_data": _read_signed(cursor, "button_data"),
            }
        raise AssertionError(topic)  # pragma: no cover
