"""The factorized encoder (default): every value is spelled with shared digit and sign tokens.

Payloads (after ``<EVENT_START> <TYPE> time-digits``, before ``<EVENT_END>``)::

    keyboard   <VK_n> (<press>|<release>)                                   n = 0..255
    mouse      (<move>|<click>|<scroll>) X Y [<BTN_b> (<press>|<release>)] [DX DY]
    mouse/raw  LAST_X LAST_Y {<US_f>} {<RI_f>} [BUTTON_DATA]
    screen     <IMAGE>

A signed value (X, Y, DX, DY, LAST_X, LAST_Y, BUTTON_DATA) is a sign ``<+>``/``<->`` and
:data:`VALUE_DIGITS` = 5 decimal digits ``<0>..<9>`` (|v| <= 99_999); zero is ``<+>``.
The button part is present for clicks only, DX DY for scrolls only.

Raw-mouse flags are one token per set bit, in ascending bit order (none when the mask is 0):
``us_flags`` bits ``<US_ABSOLUTE> <US_VIRTUAL_DESKTOP> <US_ATTRIBUTES_CHANGED> <US_NOCOALESCE>``
(0x1..0x8) and the 12 ``button_flags`` bits ``<RI_LEFT_DOWN> <RI_LEFT_UP> ... <RI_WHEEL>
<RI_HWHEEL>`` (0x1..0x800). BUTTON_DATA is written only when it is non-zero (most raw events
are plain moves), so an absent value decodes to 0.
"""

from __future__ import annotations

from typing import Any

from owa_event.events import KEYBOARD, MOUSE, MOUSE_RAW
from owa_fsl.encoders.base import (
    MINUS,
    PLUS,
    SIGN_TOKENS,
    Cursor,
    FramedEncoder,
    digit_tokens,
    register_encoder,
)
from owa_fsl.encoders.fields import (
    BUTTON_FLAG_NAMES,
    KEY_EVENT_TYPES,
    MOUSE_BUTTONS,
    MOUSE_EVENT_TYPES,
    US_FLAG_NAMES,
    VK_MAX,
    DecodeError,
)

VALUE_DIGITS = 5
VK_TOKENS: tuple[str, ...] = tuple(f"<VK_{n}>" for n in range(VK_MAX + 1))
PRESS_TOKENS: dict[str, str] = {name: f"<{name}>" for name in KEY_EVENT_TYPES}  # press/release
MOUSE_TYPE_TOKENS: dict[str, str] = {name: f"<{name}>" for name in MOUSE_EVENT_TYPES}
BUTTON_TOKENS: dict[str, str] = {name: f"<BTN_{name.upper()}>" for name in MOUSE_BUTTONS}
US_FLAG_TOKENS: tuple[str, ...] = tuple(f"<US_{name}>" for name in US_FLAG_NAMES)
BUTTON_FLAG_TOKENS: tuple[str, ...] = tuple(f"<RI_{name}>" for name in BUTTON_FLAG_NAMES)

_VK_VALUES = {t: n for n, t in enumerate(VK_TOKENS)}
_PRESS_VALUES = {PRESS_TOKENS["press"]: True, PRESS_TOKENS["release"]: False}
_KEY_TYPE_VALUES = {t: name for name, t in PRESS_TOKENS.items()}
_MOUSE_TYPE_VALUES = {t: name for name, t in MOUSE_TYPE_TOKENS.items()}
_BUTTON_VALUES = {t: name for name, t in BUTTON_TOKENS.items()}
_SIGN_VALUES = {PLUS: 1, MINUS: -1}


def signed_tokens(value: int, out: list[str]) -> None:
    """Append ``value`` (|value| < 10**VALUE_DIGITS, checked by ``canonical``) as sign + digits."""
    out.append(PLUS if value >= 0 else MINUS)
    out.extend(digit_tokens(abs(value), VALUE_DIGITS))


def read_signed(cursor: Cursor, what: str) -> int:
    sign = cursor.take(_SIGN_VALUES, f"the sign of {what}")
    return sign * cursor.digits(VALUE_DIGITS, what)


def _bit_tokens(mask: int, tokens: tuple[str, ...], out: list[str]) -> None:
    out.extend(token for bit, token in enumerate(tokens) if mask >> bit & 1)


def _read_bits(cursor: Cursor, tokens: tuple[str, ...], what: str) -> int:
    """Consume a run of ``tokens`` (strictly ascending bits) and return the mask."""
    values = {t: bit for bit, t in enumerate(tokens)}
    mask, last = 0, -1
    while (token := cursor.peek()) in values:
        bit = values[token]
        if bit <= last:
            raise DecodeError(f"token {cursor.offset + cursor.pos}: {what} bit {token!r} repeated or out of order")
        mask |= 1 << bit
        last = bit
        cursor.pos += 1
    return mask


@register_encoder
class FactorizedEncoder(FramedEncoder):
    """Shared digit/sign tokens for every number; one token per key, button and flag bit."""

    name = "factorized"

    def payload_vocab(self) -> list[str]:
        return [
            *SIGN_TOKENS,
            *VK_TOKENS,
            *PRESS_TOKENS.values(),
            *MOUSE_TYPE_TOKENS.values(),
            *BUTTON_TOKENS.values(),
            *US_FLAG_TOKENS,
            *BUTTON_FLAG_TOKENS,
        ]

    def encode_payload(self, topic: str, fields: dict[str, Any], out: list[str]) -> None:
        if topic == KEYBOARD:
            out.append(VK_TOKENS[fields["vk"]])
            out.append(PRESS_TOKENS[fields["event_type"]])
        elif topic == MOUSE:
            out.append(MOUSE_TYPE_TOKENS[fields["event_type"]])
            signed_tokens(fields["x"], out)
            signed_tokens(fields["y"], out)
            if fields["event_type"] == "click":
                out.append(BUTTON_TOKENS[fields["button"]])
                out.append(PRESS_TOKENS["press" if fields["pressed"] else "release"])
            elif fields["event_type"] == "scroll":
                signed_tokens(fields["dx"], out)
                signed_tokens(fields["dy"], out)
        elif topic == MOUSE_RAW:
            signed_tokens(fields["last_x"], out)
            signed_tokens(fields["last_y"], out)
            _bit_tokens(fields["us_flags"], US_FLAG_TOKENS, out)
            _bit_tokens(fields["button_flags"], BUTTON_FLAG_TOKENS, out)
            if fields["button_data"] != 0:
                signed_tokens(fields["button_data"], out)
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
                "x": read_signed(cursor, "x"),
                "y": read_signed(cursor, "y"),
            }
            if event_type == "click":
                fields["button"] = cursor.take(_BUTTON_VALUES, "a mouse button token")
                fields["pressed"] = cursor.take(_PRESS_VALUES, "<press> or <release>")
            elif event_type == "scroll":
                fields["dx"] = read_signed(cursor, "dx")
                fields["dy"] = read_signed(cursor, "dy")
            return fields
        if topic == MOUSE_RAW:
            last_x = read_signed(cursor, "last_x")
            last_y = read_signed(cursor, "last_y")
            us_flags = _read_bits(cursor, US_FLAG_TOKENS, "us_flags")
            button_flags = _read_bits(cursor, BUTTON_FLAG_TOKENS, "button_flags")
            button_data = read_signed(cursor, "button_data") if cursor.peek() in _SIGN_VALUES else 0
            return {
                "last_x": last_x,
                "last_y": last_y,
                "us_flags": us_flags,
                "button_flags": button_flags,
                "button_data": button_data,
            }
        raise AssertionError(topic)  # pragma: no cover
