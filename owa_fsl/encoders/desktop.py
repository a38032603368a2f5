"""The desktop message format: the codecs of ``keyboard``, ``mouse``, ``mouse/raw`` and ``screen``.

Each codec's :meth:`canonical` is what the encoders keep and which values they accept.
Fields outside the canonical set (``timestamp``, ``device_handle``, a screen's ``utc_ns``,
``shape``, ``source_shape``...) are *not* encoded and do not survive a round trip.

Accepted ranges (inclusive; anything else raises :class:`EncodeError`, never clamped):

========== ================================ ===========================================
topic      field                            range
========== ================================ ===========================================
keyboard   ``event_type``                   ``press`` / ``release``
keyboard   ``vk``                           0 .. 255
mouse      ``event_type``                   ``move`` / ``click`` / ``scroll``
mouse      ``x``, ``y``                     -99_999 .. 99_999 (negative on multi-monitor)
mouse      ``button`` (click only)          left/right/middle/x1/x2/unknown
mouse      ``pressed`` (click only)         bool
mouse      ``dx``, ``dy`` (scroll only)     -99_999 .. 99_999
mouse/raw  ``last_x``, ``last_y``           -99_999 .. 99_999 (>= the USHORT range)
mouse/raw  ``us_flags`` (default 0)         0 .. 0xF
mouse/raw  ``button_flags`` (default 0)     0 .. 0xFFF
mouse/raw  ``button_data`` (default 0)      -32_768 .. 65_535 (kept as recorded: a raw
                                            USHORT 65416 stays 65416, it is not turned
                                            into -120)
screen     ``media_ref`` {``uri``, ``pts_ns``}  uri: str; pts_ns: int >= 0 or None. Not
                                            written as tokens: decoding takes it from the
                                            row's frame list.
========== ================================ ===========================================

Payloads (``S`` = a signed value, spelled by the encoder; ``[...]`` = only for that variant)::

    keyboard   <VK_n> (<press>|<release>)
    mouse      (<move>|<click>|<scroll>) S:x S:y [click: <BTN_b> (<press>|<release>)] [scroll: S:dx S:dy]
    mouse/raw  S:last_x S:last_y FLAGS:us_flags FLAGS:button_flags OPTIONAL_S:button_data
    screen     <IMAGE>

The four codecs are registered as one vocabulary block, in this order: the token ids of every
dataset built so far depend on it. Register a new message type in its own ``register_codec``
call below (see :mod:`owa_fsl.encoders.codec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from owa_event.events import KEYBOARD, MOUSE, MOUSE_RAW, SCREEN, TOPIC_TYPES
from owa_fsl.encoders.codec import (
    Categorical,
    Cursor,
    FlagSet,
    FrameCodec,
    FrameRef,
    NumberSpelling,
    PayloadCodec,
    bool_field,
    choice_field,
    int_field,
    register_codec,
)
from owa_fsl.encoders.errors import EncodeError

VK_MAX = 255
COORD_MAX = 99_999
SCROLL_MAX = 99_999
DELTA_MAX = 99_999
BUTTON_DATA_MIN = -32_768
BUTTON_DATA_MAX = 65_535

KEY_EVENT_TYPES: tuple[str, ...] = ("press", "release")
MOUSE_EVENT_TYPES: tuple[str, ...] = ("move", "click", "scroll")
#: ``unknown`` is allowed by owa-msgs' ``MouseButton`` and kept so such clicks still encode.
MOUSE_BUTTONS: tuple[str, ...] = ("left", "right", "middle", "x1", "x2", "unknown")
#: RAWMOUSE ``usButtonFlags`` bits, bit i = ``1 << i``.
BUTTON_FLAG_NAMES: tuple[str, ...] = (
    "LEFT_DOWN", "LEFT_UP", "RIGHT_DOWN", "RIGHT_UP", "MIDDLE_DOWN", "MIDDLE_UP",
    "X1_DOWN", "X1_UP", "X2_DOWN", "X2_UP", "WHEEL", "HWHEEL",
)  # fmt: skip
#: RAWMOUSE ``usFlags`` bits, bit i = ``1 << i``.
US_FLAG_NAMES: tuple[str, ...] = ("ABSOLUTE", "VIRTUAL_DESKTOP", "ATTRIBUTES_CHANGED", "NOCOALESCE")

# -- tokens ----------------------------------------------------------------------------------------
KEYS = Categorical({n: f"<VK_{n}>" for n in range(VK_MAX + 1)}, "a key token <VK_n>")
KEY_ACTIONS = Categorical({name: f"<{name}>" for name in KEY_EVENT_TYPES}, "<press> or <release>")
PRESSED = Categorical({True: "<press>", False: "<release>"}, "<press> or <release>")
MOUSE_ACTIONS = Categorical({name: f"<{name}>" for name in MOUSE_EVENT_TYPES}, "a mouse event type token")
BUTTONS = Categorical({name: f"<BTN_{name.upper()}>" for name in MOUSE_BUTTONS}, "a mouse button token")
#: ``usFlags``: bit tokens ``<US_ABSOLUTE>``..., or one hex digit ``<US_0>``..``<US_F>``.
US_FLAGS = FlagSet(US_FLAG_NAMES, bit_tag="US", digit_tag="US")
#: ``usButtonFlags``: bit tokens ``<RI_LEFT_DOWN>``..., or hex digits ``<BF2_h> <BF1_h> <BF0_h>``.
BUTTON_FLAGS = FlagSet(BUTTON_FLAG_NAMES, bit_tag="RI", digit_tag="BF")
US_FLAGS_MAX = US_FLAGS.max  # 0xF
BUTTON_FLAGS_MAX = BUTTON_FLAGS.max  # 0xFFF

# kept for readers of the token tables
VK_TOKENS: tuple[str, ...] = tuple(KEYS.tokens())
PRESS_TOKENS: dict[str, str] = dict(KEY_ACTIONS.token_of)
MOUSE_TYPE_TOKENS: dict[str, str] = dict(MOUSE_ACTIONS.token_of)
BUTTON_TOKENS: dict[str, str] = dict(BUTTONS.token_of)


class KeyboardCodec(PayloadCodec):
    """``<VK_n> (<press>|<release>)``."""

    topic = KEYBOARD
    message_type = TOPIC_TYPES[KEYBOARD]
    type_token = "<KEYBOARD>"

    def tokens(self) -> list[str]:
        return [*KEYS.tokens(), *KEY_ACTIONS.tokens()]

    def canonical(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "event_type": choice_field(fields, "event_type", KEY_EVENT_TYPES),
            "vk": int_field(fields, "vk", 0, VK_MAX),
        }

    def encode(self, fields: dict[str, Any], spell: NumberSpelling, out: list[str]) -> None:
        out.append(VK_TOKENS[fields["vk"]])
        out.append(PRESS_TOKENS[fields["event_type"]])

    def decode(self, cursor: Cursor, spell: NumberSpelling) -> dict[str, Any]:
        vk = KEYS.read(cursor)
        return {"event_type": KEY_ACTIONS.read(cursor), "vk": vk}


class MouseCodec(PayloadCodec):
    """``(<move>|<click>|<scroll>) X Y``, then ``<BTN_b> (<press>|<release>)`` for a click,
    ``DX DY`` for a scroll."""

    topic = MOUSE
    message_type = TOPIC_TYPES[MOUSE]
    type_token = "<MOUSE>"

    def tokens(self) -> list[str]:
        return [*MOUSE_ACTIONS.tokens(), *BUTTONS.tokens(), *PRESSED.tokens()]

    def canonical(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        event_type = choice_field(fields, "event_type", MOUSE_EVENT_TYPES)
        out: dict[str, Any] = {
            "event_type": event_type,
            "x": int_field(fields, "x", -COORD_MAX, COORD_MAX),
            "y": int_field(fields, "y", -COORD_MAX, COORD_MAX),
        }
        if event_type == "click":
            out["button"] = choice_field(fields, "button", MOUSE_BUTTONS)
            out["pressed"] = bool_field(fields, "pressed")
        elif event_type == "scroll":
            out["dx"] = int_field(fields, "dx", -SCROLL_MAX, SCROLL_MAX)
            out["dy"] = int_field(fields, "dy", -SCROLL_MAX, SCROLL_MAX)
        return out

    def encode(self, fields: dict[str, Any], spell: NumberSpelling, out: list[str]) -> None:
        event_type = fields["event_type"]
        out.append(MOUSE_TYPE_TOKENS[event_type])
        spell.write_signed(fields["x"], out)
        spell.write_signed(fields["y"], out)
        if event_type == "click":
            out.append(BUTTON_TOKENS[fields["button"]])
            out.append(PRESSED.token_of[fields["pressed"]])
        elif event_type == "scroll":
            spell.write_signed(fields["dx"], out)
            spell.write_signed(fields["dy"], out)

    def decode(self, cursor: Cursor, spell: NumberSpelling) -> dict[str, Any]:
        event_type = MOUSE_ACTIONS.read(cursor)
        fields: dict[str, Any] = {
            "event_type": event_type,
            "x": spell.read_signed(cursor, "x"),
            "y": spell.read_signed(cursor, "y"),
        }
        if event_type == "click":
            fields["button"] = BUTTONS.read(cursor)
            fields["pressed"] = PRESSED.read(cursor)
        elif event_type == "scroll":
            fields["dx"] = spell.read_signed(cursor, "dx")
            fields["dy"] = spell.read_signed(cursor, "dy")
        return fields


class RawMouseCodec(PayloadCodec):
    """``LAST_X LAST_Y US_FLAGS BUTTON_FLAGS BUTTON_DATA``; the flags and the (optional)
    button data as the encoder spells them."""

    topic = MOUSE_RAW
    message_type = TOPIC_TYPES[MOUSE_RAW]
    type_token = "<MOUSE_RAW>"
    flag_sets = (US_FLAGS, BUTTON_FLAGS)

    def canonical(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "last_x": int_field(fields, "last_x", -DELTA_MAX, DELTA_MAX),
            "last_y": int_field(fields, "last_y", -DELTA_MAX, DELTA_MAX),
            "us_flags": int_field(fields, "us_flags", 0, US_FLAGS_MAX, default=0),
            "button_flags": int_field(fields, "button_flags", 0, BUTTON_FLAGS_MAX, default=0),
            "button_data": int_field(fields, "button_data", BUTTON_DATA_MIN, BUTTON_DATA_MAX, default=0),
        }

    def encode(self, fields: dict[str, Any], spell: NumberSpelling, out: list[str]) -> None:
        spell.write_signed(fields["last_x"], out)
        spell.write_signed(fields["last_y"], out)
        spell.write_flags(fields["us_flags"], US_FLAGS, out)
        spell.write_flags(fields["button_flags"], BUTTON_FLAGS, out)
        spell.write_optional_signed(fields["button_data"], out)

    def decode(self, cursor: Cursor, spell: NumberSpelling) -> dict[str, Any]:
        return {
            "last_x": spell.read_signed(cursor, "last_x"),
            "last_y": spell.read_signed(cursor, "last_y"),
            "us_flags": spell.read_flags(cursor, US_FLAGS, "us_flags"),
            "button_flags": spell.read_flags(cursor, BUTTON_FLAGS, "button_flags"),
            "button_data": spell.read_optional_signed(cursor, "button_data"),
        }


class ScreenCodec(FrameCodec):
    """``<IMAGE>``: the frame ``media_ref`` ``{uri, pts_ns}`` comes from the row's frame list."""

    topic = SCREEN
    message_type = TOPIC_TYPES[SCREEN]
    type_token = "<SCREEN>"

    def canonical(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        ref = fields.get("media_ref")
        if not isinstance(ref, dict) or not isinstance(ref.get("uri"), str):
            raise EncodeError(f"field 'media_ref' = {ref!r} has no string 'uri'")
        pts = ref.get("pts_ns")
        if pts is not None and not (isinstance(pts, int) and not isinstance(pts, bool) and pts >= 0):
            raise EncodeError(f"field 'media_ref.pts_ns' = {pts!r} is not a non-negative integer")
        return {"media_ref": {"uri": ref["uri"], "pts_ns": pts}}

    def frame_ref(self, fields: dict[str, Any]) -> FrameRef:
        ref = fields["media_ref"]
        return ref["uri"], ref["pts_ns"]

    def from_frame(self, uri: str, pts_ns: int | None) -> dict[str, Any]:
        return {"media_ref": {"uri": uri, "pts_ns": pts_ns}}


# One block, in this order: the vocabulary (and so every saved dataset's token ids) depends on it.
register_codec(KeyboardCodec(), MouseCodec(), RawMouseCodec(), ScreenCodec())
