"""Event encoders: round trips, ranges, time offsets, errors, token streams."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owa_event.events import TOPIC_TYPES, Event
from owa_fsl.encoders import (
    ENCODED_TOPICS,
    EVENT_END,
    EVENT_START,
    IMAGE_PLACEHOLDER,
    TYPE_TOKENS,
    Categorical,
    Cursor,
    DecodeError,
    EncodeError,
    EventEncoder,
    FlagSet,
    NumberSpelling,
    PayloadCodec,
    RawMouseCodec,
    available_encoders,
    canonical,
    canonical_fields,
    codec_groups,
    collapse_images,
    frame_ref,
    get_codec,
    get_encoder,
    make_event,
    register_codec,
    split_events,
    split_text,
    unregister_codec,
)
from owa_fsl.encoders.codec import choice_field, int_field
from owa_fsl.encoders.hierarchical import from_mixed_radix, to_mixed_radix
from owa_fsl.tokenizer import INTERNVL3, TokenTable, expand_tokenizer, required_tokens

try:
    from fsl_tokenizer_fixture import make_local_tokenizer
except ImportError:  # tests/ imported as a package
    from tests.fsl_tokenizer_fixture import make_local_tokenizer

NAMES = ["factorized", "hierarchical", "json"]
BASE = 1_700_000_000_123_456_789
MS = 1_000_000
FAST = settings(max_examples=40, deadline=None)


def ev(topic: str, t: int, fields: dict[str, Any], index: int = -1) -> Event:
    return Event(topic, t, TOPIC_TYPES.get(topic, "x/Unknown"), orjson.dumps(fields), fields, index)


def roundtrip(enc: EventEncoder, event: Event, base: int = BASE) -> Event:
    frames = [frame_ref(event)] if event.topic == "screen" else None
    (out,) = enc.decode(enc.encode(event, base), base, frames)
    return out


def assert_roundtrip(enc: EventEncoder, event: Event, base: int = BASE) -> None:
    out = roundtrip(enc, event, base)
    assert out.topic == event.topic
    assert out.message_type == get_codec(event.topic).message_type == event.message_type
    assert out.timestamp_ns == enc.quantize(event.timestamp_ns, base)
    assert out.fields == canonical(event)
    assert orjson.loads(out.data) == out.fields


@pytest.fixture(params=NAMES)
def enc(request: pytest.FixtureRequest) -> EventEncoder:
    return get_encoder(request.param)


# -- registry and vocabulary ----------------------------------------------------------------------
def test_registry() -> None:
    assert available_encoders() == sorted(NAMES)
    assert get_encoder().name == "factorized"
    e = get_encoder("hierarchical", time_resolution_ns=10 * MS, time_digits=6)
    assert (e.time_resolution_ns, e.time_digits) == (10 * MS, 6)
    assert get_encoder(e.name, **e.options()) == e
    with pytest.raises(ValueError, match="unknown encoder 'nope'.*factorized"):
        get_encoder("nope")
    with pytest.raises(ValueError, match="time_resolution_ns"):
        get_encoder("factorized", time_resolution_ns=0)


def test_vocab_is_closed_deterministic_and_bracketed(enc: EventEncoder) -> None:
    vocab = enc.vocab()
    assert vocab == get_encoder(enc.name).vocab()
    assert len(vocab) == len(set(vocab))
    assert {EVENT_START, EVENT_END, IMAGE_PLACEHOLDER} <= set(vocab)
    # "<...>" with no inner brackets: no token can be a prefix or infix of another
    for tok in vocab:
        assert tok.startswith("<") and tok.endswith(">") and "<" not in tok[1:] and ">" not in tok[:-1]
    assert len(vocab) == {"factorized": 302, "hierarchical": 560, "json": 3}[enc.name]


def test_encoded_strings_are_vocab_tokens_for_token_encoders() -> None:
    events = sample_events()
    for name in ("factorized", "hierarchical"):
        enc = get_encoder(name)
        vocab = set(enc.vocab())
        assert set(enc.encode_many(events, BASE)) <= vocab


# -- round trips -----------------------------------------------------------------------------------
def test_keyboard_all_keys_exhaustive(enc: EventEncoder) -> None:
    for vk, kind in itertools.product(range(256), ("press", "release")):
        assert_roundtrip(enc, ev("keyboard", BASE + vk * MS, {"event_type": kind, "vk": vk}))


def test_raw_mouse_every_flag_combination_exhaustive(enc: EventEncoder) -> None:
    for flags in range(0x1000):
        fields = {
            "last_x": flags - 2048,
            "last_y": -flags,
            "us_flags": 0,
            "button_flags": flags,
            "button_data": 0,
        }
        assert_roundtrip(enc, ev("mouse/raw", BASE + flags, fields))
    for us in range(16):
        fields = {"last_x": 1, "last_y": 2, "us_flags": us, "button_flags": 0, "button_data": 0}
        assert_roundtrip(enc, ev("mouse/raw", BASE, fields))


def test_raw_mouse_single_bits_are_single_tokens() -> None:
    enc = get_encoder("factorized")
    for bit in range(12):
        fields = {"last_x": 0, "last_y": 0, "button_flags": 1 << bit}
        tokens = enc.encode(ev("mouse/raw", BASE, fields), BASE)
        assert sum(t.startswith("<RI_") for t in tokens) == 1


@pytest.mark.parametrize("data", [0, 120, -120, 65416, 65535, -32768, 32767, 1, -1])
def test_raw_wheel_data_as_recorded(enc: EventEncoder, data: int) -> None:
    # real files carry the USHORT (65416 for -120): kept exactly as recorded
    for flags in (0x400, 0x800, 0x40):
        fields = {"last_x": 0, "last_y": 0, "us_flags": 0, "button_flags": flags, "button_data": data}
        assert_roundtrip(enc, ev("mouse/raw", BASE, fields))


@FAST
@given(
    name=st.sampled_from(NAMES),
    x=st.integers(-99_999, 99_999),
    y=st.integers(-99_999, 99_999),
    us=st.integers(0, 15),
    flags=st.integers(0, 0xFFF),
    data=st.integers(-32_768, 65_535),
    dt=st.integers(0, 10**12),
)
def test_raw_mouse_roundtrip_property(
    name: str, x: int, y: int, us: int, flags: int, data: int, dt: int
) -> None:
    fields = {"last_x": x, "last_y": y, "us_flags": us, "button_flags": flags, "button_data": data}
    assert_roundtrip(get_encoder(name), ev("mouse/raw", BASE + dt, fields))


def test_raw_mouse_defaults_and_extra_fields() -> None:
    raw = ev("mouse/raw", BASE, {"last_x": 3, "last_y": -4, "device_handle": 77, "timestamp": 5})
    assert canonical(raw) == {"last_x": 3, "last_y": -4, "us_flags": 0, "button_flags": 0, "button_data": 0}
    for name in NAMES:
        assert_roundtrip(get_encoder(name), raw)


def test_mouse_clicks_every_button(enc: EventEncoder) -> None:
    for button, pressed in itertools.product(
        ("left", "right", "middle", "x1", "x2", "unknown"), (True, False)
    ):
        fields = {"event_type": "click", "x": -1920, "y": 1080, "button": button, "pressed": pressed}
        assert_roundtrip(enc, ev("mouse", BASE + 5, fields))


@FAST
@given(
    name=st.sampled_from(NAMES),
    kind=st.sampled_from(["move", "click", "scroll"]),
    x=st.integers(-99_999, 99_999),
    y=st.integers(-99_999, 99_999),
    dx=st.integers(-99_999, 99_999),
    dy=st.integers(-99_999, 99_999),
    button=st.sampled_from(["left", "right", "middle", "x1", "x2"]),
    pressed=st.booleans(),
)
def test_mouse_roundtrip_property(
    name: str, kind: str, x: int, y: int, dx: int, dy: int, button: str, pressed: bool
) -> None:
    fields = {"event_type": kind, "x": x, "y": y, "button": button, "pressed": pressed, "dx": dx, "dy": dy}
    event = ev("mouse", BASE + 17, fields)
    expected = {"event_type": kind, "x": x, "y": y}
    if kind == "click":
        expected |= {"button": button, "pressed": pressed}
    elif kind == "scroll":
        expected |= {"dx": dx, "dy": dy}
    assert canonical(event) == expected
    assert_roundtrip(get_encoder(name), event)


def test_scroll_both_ways(enc: EventEncoder) -> None:
    for dx, dy in [(0, 1), (0, -1), (1, 0), (-1, 0), (-120, 240), (0, 0)]:
        assert_roundtrip(enc, ev("mouse", BASE, {"event_type": "scroll", "x": 5, "y": 6, "dx": dx, "dy": dy}))


def test_screen_roundtrip_takes_frames_in_order(enc: EventEncoder) -> None:
    screens = [
        ev("screen", BASE + i * 50 * MS, {"utc_ns": 1, "source_shape": [4, 4], "shape": [4, 4],
                                           "media_ref": {"uri": f"v{i % 2}.mkv", "pts_ns": i * 50 * MS}})
        for i in range(4)
    ]  # fmt: skip
    keys = [ev("keyboard", BASE + i * 50 * MS + 1, {"event_type": "press", "vk": 65 + i}) for i in range(4)]
    events = [e for pair in zip(screens, keys) for e in pair]
    tokens = enc.encode_many(events, BASE)
    assert tokens.count(IMAGE_PLACEHOLDER) == 4
    decoded = enc.decode(tokens, BASE, iter([frame_ref(s) for s in screens]))
    assert [d.fields for d in decoded] == [canonical(e) for e in events]
    assert decoded[0].fields == {"media_ref": {"uri": "v0.mkv", "pts_ns": 0}}  # other fields not encoded
    with pytest.raises(DecodeError, match="no frames"):
        enc.decode(tokens, BASE)
    with pytest.raises(DecodeError, match="exhausted"):
        enc.decode(tokens, BASE, [frame_ref(screens[0])])


# -- time ------------------------------------------------------------------------------------------
def test_max_offset(enc: EventEncoder) -> None:
    assert enc.max_offset_ns() == (10**7 - 1) * MS
    assert enc.max_offset_ns() >= 3600 * 10**9  # >= 1 h at 1 ms
    key = {"event_type": "press", "vk": 1}
    assert_roundtrip(enc, ev("keyboard", BASE + enc.max_offset_ns(), key))
    with pytest.raises(
        EncodeError, match=r"offset 9999999000001 ns .* exceeds max_offset_ns\(\) = 9999999000000"
    ):
        enc.encode(ev("keyboard", BASE + enc.max_offset_ns() + 1, key), BASE)
    with pytest.raises(EncodeError, match="before the sequence base"):
        enc.encode(ev("keyboard", BASE - 1, key), BASE)


@FAST
@given(
    name=st.sampled_from(NAMES),
    res=st.sampled_from([1, 1000, MS, 10 * MS, 50 * MS]),
    digits=st.integers(3, 9),
    frac=st.floats(0, 1),
)
def test_time_quantization(name: str, res: int, digits: int, frac: float) -> None:
    enc = get_encoder(name, time_resolution_ns=res, time_digits=digits)
    assert enc.max_offset_ns() == (10**digits - 1) * res
    offset = int(frac * enc.max_offset_ns())
    event = ev("keyboard", BASE + offset, {"event_type": "release", "vk": 9})
    out = roundtrip(enc, event)
    assert out.timestamp_ns == BASE + (offset // res) * res
    assert 0 <= event.timestamp_ns - out.timestamp_ns < res


def test_gap_longer_than_wrap_uses_new_base(enc: EventEncoder) -> None:
    """A packer starts a new sequence (base) when an offset would not fit: times stay exact."""
    small = get_encoder(enc.name, time_digits=3)  # wraps after 1 s at 1 ms
    times = [BASE, BASE + 400 * MS, BASE + 5 * 3600 * 10**9 + 7, BASE + 5 * 3600 * 10**9 + 998 * MS]
    events = [ev("keyboard", t, {"event_type": "press", "vk": i}) for i, t in enumerate(times)]
    with pytest.raises(EncodeError, match="exceeds"):
        small.encode(events[2], BASE)
    sequences: list[tuple[int, list[Event]]] = []
    for e in events:
        if not sequences or e.timestamp_ns - sequences[-1][0] > small.max_offset_ns():
            sequences.append((e.timestamp_ns, []))
        sequences[-1][1].append(e)
    assert len(sequences) == 2
    decoded = [d for base, seq in sequences for d in small.decode(small.encode_many(seq, base), base)]
    assert [d.timestamp_ns for d in decoded] == [BASE, BASE + 400 * MS, times[2], times[2] + 997 * MS]


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("topic", "fields", "message"),
    [
        (
            "keyboard",
            {"event_type": "press", "vk": 256},
            r"keyboard event #5 .*'vk' = 256 is out of range \[0, 255\]",
        ),
        ("keyboard", {"event_type": "press", "vk": -1}, r"'vk' = -1 is out of range"),
        ("keyboard", {"event_type": "hold", "vk": 1}, r"'event_type' = 'hold' is not one of"),
        ("keyboard", {"event_type": "press", "vk": True}, r"'vk' = True is not an integer"),
        ("keyboard", {"event_type": "press"}, r"'vk' is missing"),
        (
            "mouse",
            {"event_type": "move", "x": 100_000, "y": 0},
            r"'x' = 100000 is out of range \[-99999, 99999\]",
        ),
        ("mouse", {"event_type": "click", "x": 0, "y": 0, "pressed": True}, r"'button' = None is not one of"),
        (
            "mouse",
            {"event_type": "click", "x": 0, "y": 0, "button": "left"},
            r"'pressed' = None is not a bool",
        ),
        ("mouse", {"event_type": "scroll", "x": 0, "y": 0, "dx": 0}, r"'dy' is missing"),
        ("mouse", {"event_type": "drag", "x": 0, "y": 0}, r"'event_type' = 'drag'"),
        ("mouse/raw", {"last_x": -100_000, "last_y": 0}, r"mouse/raw event #5 .*'last_x' = -100000"),
        (
            "mouse/raw",
            {"last_x": 0, "last_y": 0, "button_flags": 0x1000},
            r"'button_flags' = 4096 .*\[0, 4095\]",
        ),
        ("mouse/raw", {"last_x": 0, "last_y": 0, "us_flags": 16}, r"'us_flags' = 16"),
        (
            "mouse/raw",
            {"last_x": 0, "last_y": 0, "button_data": 65536},
            r"'button_data' = 65536 .*\[-32768, 65535\]",
        ),
        ("mouse/raw", {"last_x": 0, "last_y": 0, "button_data": -32769}, r"'button_data' = -32769"),
        ("screen", {"utc_ns": 1}, r"'media_ref' = None has no string 'uri'"),
        ("screen", {"media_ref": {"uri": "a.mkv", "pts_ns": -5}}, r"'media_ref.pts_ns' = -5"),
        ("window", {"title": "x"}, r"window event #5 .*topic 'window' is not supported"),
    ],
)
def test_encode_errors_name_topic_field_value(
    enc: EventEncoder, topic: str, fields: dict, message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        enc.encode(ev(topic, BASE, fields, index=5), BASE)


def test_supports(enc: EventEncoder) -> None:
    assert all(enc.supports(t) for t in ("keyboard", "mouse", "mouse/raw", "screen"))
    assert not any(enc.supports(t) for t in ("window", "keyboard/state", "mouse/state", "other"))


@pytest.mark.parametrize(
    ("name", "tokens", "message"),
    [
        ("factorized", ["<pad>", EVENT_START], "outside an event"),
        ("factorized", [EVENT_START, "<KEYBOARD>"], "not terminated"),
        ("factorized", [EVENT_START, EVENT_START], "inside the event"),
        ("factorized", [EVENT_END], "without a matching"),
        ("factorized", [EVENT_START, "<KEYBOARD>", "<0>", EVENT_END], "expected a digit of the time offset"),
        ("factorized", [EVENT_START, "<FOO>", EVENT_END], "expected an event type token"),
        ("factorized", [EVENT_START, "<KEYBOARD>", *["<0>"] * 7, "<press>", EVENT_END], r"expected a key token"),
        ("factorized", [EVENT_START, "<KEYBOARD>", *["<0>"] * 7, "<VK_1>", "<press>", "<0>", EVENT_END],
         r"expected '<EVENT_END>', got '<0>'"),
        ("factorized", [EVENT_START, "<MOUSE_RAW>", *["<0>"] * 7, "<+>", *["<0>"] * 5, "<+>", *["<0>"] * 5,
                        "<RI_WHEEL>", "<RI_LEFT_DOWN>", EVENT_END], "out of order"),
        ("factorized", [EVENT_START, "<MOUSE_RAW>", *["<0>"] * 7, "<+>", *["<0>"] * 5, "<+>", *["<0>"] * 5,
                        "<+>", *["<9>"] * 5, EVENT_END], r"'button_data' = 99999 is out of range"),
        ("hierarchical", [EVENT_START, "<MOUSE>", *["<0>"] * 7, "<move>", "<+>", "<V2_0>", "<V0_1>", EVENT_END],
         r"expected a digit of x \(<V1_0>..<V1_99>\)"),
        ("json", [EVENT_START, "{not json", EVENT_END], "not JSON"),
        ("json", [EVENT_START, '{"topic":"window","offset":0,"payload":{}}', EVENT_END], "unsupported topic"),
        ("json", [EVENT_START, '{"topic":"keyboard","offset":0,"payload":{"event_type":"press","vk":300}}',
                  EVENT_END], r"'vk' = 300"),
        ("json", [EVENT_START, '{"topic":"keyboard","offset":0,"payload":{"event_type":"press","vk":3}}',
                  IMAGE_PLACEHOLDER, EVENT_END], "and only there"),
    ],
)  # fmt: skip
def test_decode_errors(name: str, tokens: list[str], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        get_encoder(name).decode(tokens, BASE, [("a", 0)])


# -- token streams ---------------------------------------------------------------------------------
def sample_events() -> list[Event]:
    t = BASE + 3
    return [
        ev("screen", t, {"utc_ns": 5, "media_ref": {"uri": "rec.mkv", "pts_ns": 0}}),
        ev("keyboard", t + 1 * MS, {"event_type": "press", "vk": 65}),
        ev("keyboard", t + 2 * MS, {"event_type": "release", "vk": 65}),
        ev("mouse", t + 3 * MS, {"event_type": "move", "x": -1500, "y": 20}),
        ev("mouse", t + 4 * MS, {"event_type": "click", "x": 3, "y": 4, "button": "right", "pressed": True}),
        ev("mouse", t + 5 * MS, {"event_type": "scroll", "x": 3, "y": 4, "dx": 0, "dy": -2}),
        ev("mouse/raw", t + 6 * MS, {"last_x": -7, "last_y": 3, "us_flags": 0, "button_flags": 0, "button_data": 0}),
        ev("mouse/raw", t + 7 * MS, {"last_x": 0, "last_y": 0, "us_flags": 1, "button_flags": 0x401,
                                      "button_data": 65416}),
        ev("screen", t + 50 * MS, {"utc_ns": 6, "media_ref": {"uri": "rec.mkv", "pts_ns": 50 * MS}}),
    ]  # fmt: skip


def test_decode_text_with_image_runs(enc: EventEncoder) -> None:
    events = sample_events()
    image = ["<img>", *["<IMG_CONTEXT>"] * 4, "</img>"]
    tokens = enc.encode_many(events, BASE)
    text = "".join("".join(image) if t == IMAGE_PLACEHOLDER else t for t in tokens)
    frames = [frame_ref(e) for e in events if e.topic == "screen"]
    decoded = enc.decode_text(text, BASE, frames, image_tokens=image)
    assert [d.fields for d in decoded] == [canonical(e) for e in events]
    assert [d.timestamp_ns for d in decoded] == [enc.quantize(e.timestamp_ns, BASE) for e in events]
    assert enc.split_text(text, image) == tokens


def test_stream_helpers() -> None:
    assert split_text("<a>xx<b><a>", ["<a>", "<b>"]) == ["<a>", "xx", "<b>", "<a>"]
    assert split_text("<ab>", ["<a", "<ab>"]) == ["<ab>"]  # longest wins
    assert split_text("plain", []) == ["plain"]
    image = ["<s>", "<i>", "<i>", "</s>"]
    assert collapse_images(["<x>", *image, *image, "<i>"], image) == ["<x>", "<IMAGE>", "<IMAGE>", "<i>"]
    assert collapse_images(["<s>", "<i>", "</s>"], image) == ["<s>", "<i>", "</s>"]  # partial run kept
    assert split_events([EVENT_START, "<a>", EVENT_END, EVENT_START, EVENT_END]) == [
        (0, [EVENT_START, "<a>", EVENT_END]),
        (3, [EVENT_START, EVENT_END]),
    ]


def test_mixed_radix() -> None:
    radices = (10, 100, 100)
    for v in (0, 1, 99, 100, 12345, 99_999):
        assert from_mixed_radix(to_mixed_radix(v, radices), radices) == v
    assert to_mixed_radix(12345, radices) == [1, 23, 45]
    with pytest.raises(ValueError):
        to_mixed_radix(100_000, radices)


def test_hierarchical_tokens_documented() -> None:
    enc = get_encoder("hierarchical")
    raw = ev("mouse/raw", BASE, {"last_x": -12345, "last_y": 7, "us_flags": 1, "button_flags": 0x401,
                                 "button_data": 65416})  # fmt: skip
    assert enc.encode(raw, BASE)[9:] == [
        "<->", "<V2_1>", "<V1_23>", "<V0_45>", "<+>", "<V2_0>", "<V1_0>", "<V0_7>",
        "<US_1>", "<BF2_4>", "<BF1_0>", "<BF0_1>", "<+>", "<V2_6>", "<V1_54>", "<V0_16>", EVENT_END,
    ]  # fmt: skip


def test_factorized_tokens_documented() -> None:
    enc = get_encoder("factorized")
    key = ev("keyboard", BASE + 1234 * MS + 5, {"event_type": "press", "vk": 13})
    assert enc.encode(key, BASE) == [
        EVENT_START, "<KEYBOARD>", "<0>", "<0>", "<0>", "<1>", "<2>", "<3>", "<4>", "<VK_13>", "<press>", EVENT_END,
    ]  # fmt: skip
    raw = ev("mouse/raw", BASE, {"last_x": 5, "last_y": -5})
    assert enc.encode(raw, BASE)[9:] == ["<+>", *["<0>"] * 4, "<5>", "<->", *["<0>"] * 4, "<5>", EVENT_END]


# -- a real recording (skipped when ../shared is absent) -----------------------------------------
def test_real_recording_roundtrip(shared_recording: Path) -> None:
    from mcap_owa.highlevel import OWAMcapReader

    with OWAMcapReader(str(shared_recording)) as reader:
        events = [
            Event(m.topic, m.timestamp, m.message_type, m.message, orjson.loads(m.message), i)
            for i, m in enumerate(reader.iter_messages())
        ]
    base = events[0].timestamp_ns
    for name in NAMES:
        enc = get_encoder(name)
        kept = [e for e in events if enc.supports(e.topic)]
        assert len(kept) > 200
        frames = [frame_ref(e) for e in kept if e.topic == "screen"]
        decoded = enc.decode(enc.encode_many(kept, base), base, frames)
        assert [d.fields for d in decoded] == [canonical(e) for e in kept]
        assert [d.timestamp_ns for d in decoded] == [enc.quantize(e.timestamp_ns, base) for e in kept]


# -- the output is unchanged by the codec table (pinned before it existed) -----------------------
def pinned_events() -> list[Event]:
    return [
        ev("keyboard", BASE + 1234 * MS + 5, {"event_type": "release", "vk": 255}),
        ev("mouse", BASE + 2 * MS, {"event_type": "move", "x": -1500, "y": 20}),
        ev("mouse", BASE + 3 * MS, {"event_type": "click", "x": 3, "y": 99_999, "button": "x2", "pressed": False}),
        ev("mouse", BASE + 4 * MS, {"event_type": "scroll", "x": 0, "y": -4, "dx": 120, "dy": -2}),
        ev("mouse/raw", BASE + 5 * MS, {"last_x": -7, "last_y": 3}),
        ev("mouse/raw", BASE + 6 * MS, {"last_x": 0, "last_y": -12345, "us_flags": 9, "button_flags": 0xC03,
                                         "button_data": 65416}),
        ev("screen", BASE + 7 * MS, {"media_ref": {"uri": "a.mkv", "pts_ns": 5}}),
    ]  # fmt: skip


#: name: (size, sha256 of the tokens joined by newlines), captured before the codec table existed.
PINNED_VOCAB = {
    "factorized": (302, "7f7ef60de4d6c8ea77476d8f7e2d484d2d95e54e93f6849fe83393769e6474b0"),
    "hierarchical": (560, "676c94a59a4770603beb1cfff61dffda92af349bcc46381da837e1f1e85469bb"),
    "json": (3, "11546d2f921ebd60102e170d2092f5be1a767af50deec3821a6147486a291194"),
}
#: name: the encodings of pinned_events() relative to BASE, captured before the codec table existed.
PINNED_TOKENS = {
    "factorized": [
        ["<EVENT_START>", "<KEYBOARD>", "<0>", "<0>", "<0>", "<1>", "<2>", "<3>", "<4>", "<VK_255>", "<release>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<2>", "<move>", "<->", "<0>", "<1>", "<5>", "<0>", "<0>", "<+>", "<0>", "<0>", "<0>", "<2>", "<0>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<3>", "<click>", "<+>", "<0>", "<0>", "<0>", "<0>", "<3>", "<+>", "<9>", "<9>", "<9>", "<9>", "<9>", "<BTN_X2>", "<release>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<4>", "<scroll>", "<+>", "<0>", "<0>", "<0>", "<0>", "<0>", "<->", "<0>", "<0>", "<0>", "<0>", "<4>", "<+>", "<0>", "<0>", "<1>", "<2>", "<0>", "<->", "<0>", "<0>", "<0>", "<0>", "<2>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE_RAW>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<5>", "<->", "<0>", "<0>", "<0>", "<0>", "<7>", "<+>", "<0>", "<0>", "<0>", "<0>", "<3>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE_RAW>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<6>", "<+>", "<0>", "<0>", "<0>", "<0>", "<0>", "<->", "<1>", "<2>", "<3>", "<4>", "<5>", "<US_ABSOLUTE>", "<US_NOCOALESCE>", "<RI_LEFT_DOWN>", "<RI_LEFT_UP>", "<RI_WHEEL>", "<RI_HWHEEL>", "<+>", "<6>", "<5>", "<4>", "<1>", "<6>", "<EVENT_END>"],
        ["<EVENT_START>", "<SCREEN>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<7>", "<IMAGE>", "<EVENT_END>"],
    ],
    "hierarchical": [
        ["<EVENT_START>", "<KEYBOARD>", "<0>", "<0>", "<0>", "<1>", "<2>", "<3>", "<4>", "<VK_255>", "<release>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<2>", "<move>", "<->", "<V2_0>", "<V1_15>", "<V0_0>", "<+>", "<V2_0>", "<V1_0>", "<V0_20>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<3>", "<click>", "<+>", "<V2_0>", "<V1_0>", "<V0_3>", "<+>", "<V2_9>", "<V1_99>", "<V0_99>", "<BTN_X2>", "<release>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<4>", "<scroll>", "<+>", "<V2_0>", "<V1_0>", "<V0_0>", "<->", "<V2_0>", "<V1_0>", "<V0_4>", "<+>", "<V2_0>", "<V1_1>", "<V0_20>", "<->", "<V2_0>", "<V1_0>", "<V0_2>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE_RAW>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<5>", "<->", "<V2_0>", "<V1_0>", "<V0_7>", "<+>", "<V2_0>", "<V1_0>", "<V0_3>", "<US_0>", "<BF2_0>", "<BF1_0>", "<BF0_0>", "<+>", "<V2_0>", "<V1_0>", "<V0_0>", "<EVENT_END>"],
        ["<EVENT_START>", "<MOUSE_RAW>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<6>", "<+>", "<V2_0>", "<V1_0>", "<V0_0>", "<->", "<V2_1>", "<V1_23>", "<V0_45>", "<US_9>", "<BF2_C>", "<BF1_0>", "<BF0_3>", "<+>", "<V2_6>", "<V1_54>", "<V0_16>", "<EVENT_END>"],
        ["<EVENT_START>", "<SCREEN>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<7>", "<IMAGE>", "<EVENT_END>"],
    ],
    "json": [
        ["<EVENT_START>", '{"topic":"keyboard","offset":1234,"payload":{"event_type":"release","vk":255}}', "<EVENT_END>"],
        ["<EVENT_START>", '{"topic":"mouse","offset":2,"payload":{"event_type":"move","x":-1500,"y":20}}', "<EVENT_END>"],
        ["<EVENT_START>", '{"topic":"mouse","offset":3,"payload":{"event_type":"click","x":3,"y":99999,"button":"x2","pressed":false}}', "<EVENT_END>"],
        ["<EVENT_START>", '{"topic":"mouse","offset":4,"payload":{"event_type":"scroll","x":0,"y":-4,"dx":120,"dy":-2}}', "<EVENT_END>"],
        ["<EVENT_START>", '{"topic":"mouse/raw","offset":5,"payload":{"last_x":-7,"last_y":3,"us_flags":0,"button_flags":0,"button_data":0}}', "<EVENT_END>"],
        ["<EVENT_START>", '{"topic":"mouse/raw","offset":6,"payload":{"last_x":0,"last_y":-12345,"us_flags":9,"button_flags":3075,"button_data":65416}}', "<EVENT_END>"],
        ["<EVENT_START>", '{"topic":"screen","offset":7,"payload":{}}', "<IMAGE>", "<EVENT_END>"],
    ],
}  # fmt: skip


def test_vocab_and_encodings_are_pinned(enc: EventEncoder) -> None:
    """Existing datasets stay valid: same vocab (order included) and the same token lists."""
    vocab = enc.vocab()
    assert (len(vocab), hashlib.sha256("\n".join(vocab).encode()).hexdigest()) == PINNED_VOCAB[enc.name]
    assert [enc.encode(e, BASE) for e in pinned_events()] == PINNED_TOKENS[enc.name]


# -- the extension point: a new message kind, defined here only ------------------------------------
PAD_BUTTONS = FlagSet(("A", "B", "X", "Y", "LB", "RB"), bit_tag="PAD", digit_tag="PADB")
DPAD = Categorical(
    {d: f"<DPAD_{d.upper()}>" for d in ("none", "up", "down", "left", "right")}, "a d-pad token"
)


class GamepadCodec(PayloadCodec):
    """A toy gamepad: ``<DPAD_d> S:stick_x S:stick_y FLAGS:buttons``."""

    topic = "gamepad"
    message_type = "test/GamepadEvent"
    type_token = "<GAMEPAD>"
    flag_sets = (PAD_BUTTONS,)

    def tokens(self) -> list[str]:
        return DPAD.tokens()

    def canonical(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "dpad": choice_field(fields, "dpad", tuple(DPAD.token_of)),
            "stick_x": int_field(fields, "stick_x", -32_768, 32_767),
            "stick_y": int_field(fields, "stick_y", -32_768, 32_767),
            "buttons": int_field(fields, "buttons", 0, PAD_BUTTONS.max, default=0),
        }

    def encode(self, fields: dict[str, Any], spell: NumberSpelling, out: list[str]) -> None:
        DPAD.write(fields["dpad"], out)
        spell.write_signed(fields["stick_x"], out)
        spell.write_signed(fields["stick_y"], out)
        spell.write_flags(fields["buttons"], PAD_BUTTONS, out)

    def decode(self, cursor: Cursor, spell: NumberSpelling) -> dict[str, Any]:
        return {
            "dpad": DPAD.read(cursor),
            "stick_x": spell.read_signed(cursor, "stick_x"),
            "stick_y": spell.read_signed(cursor, "stick_y"),
            "buttons": spell.read_flags(cursor, PAD_BUTTONS, "buttons"),
        }


@pytest.fixture()
def gamepad() -> Iterator[GamepadCodec]:
    """The gamepad codec registered for one test (the table is process-wide)."""
    codec = GamepadCodec()
    register_codec(codec)
    try:
        yield codec
    finally:
        unregister_codec(codec.topic)
    assert "gamepad" not in ENCODED_TOPICS


def pad(t: int, **fields: Any) -> Event:
    return Event("gamepad", t, "test/GamepadEvent", orjson.dumps(fields), fields)


def test_new_message_kind_through_every_encoder(gamepad: GamepadCodec) -> None:
    event = pad(BASE + 3 * MS, dpad="up", stick_x=-120, stick_y=32_767, buttons=0b100001, extra=1)
    assert canonical(event) == {"dpad": "up", "stick_x": -120, "stick_y": 32_767, "buttons": 0b100001}
    head = [EVENT_START, "<GAMEPAD>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>", "<3>", "<DPAD_UP>"]
    assert get_encoder("factorized").encode(event, BASE) == [
        *head, "<->", "<0>", "<0>", "<1>", "<2>", "<0>", "<+>", "<3>", "<2>", "<7>", "<6>", "<7>",
        "<PAD_A>", "<PAD_RB>", EVENT_END,
    ]  # fmt: skip
    assert get_encoder("hierarchical").encode(event, BASE) == [
        *head, "<->", "<V2_0>", "<V1_1>", "<V0_20>", "<+>", "<V2_3>", "<V1_27>", "<V0_67>",
        "<PADB1_2>", "<PADB0_1>", EVENT_END,
    ]  # fmt: skip
    for name in NAMES:
        enc = get_encoder(name)
        assert enc.supports("gamepad")
        assert_roundtrip(enc, event)
        mixed = [*sample_events(), event]
        frames = [frame_ref(e) for e in mixed if e.topic == "screen"]
        decoded = enc.decode(enc.encode_many(mixed, BASE), BASE, frames)
        assert [d.fields for d in decoded] == [canonical(e) for e in mixed]
    with pytest.raises(
        EncodeError, match=r"gamepad event at \d+ ns: field 'stick_x' = 40000 is out of range"
    ):
        get_encoder("factorized").encode(pad(BASE, dpad="up", stick_x=40_000, stick_y=0), BASE)
    with pytest.raises(DecodeError, match=r"expected a d-pad token, got '<VK_1>'"):
        get_encoder("factorized").decode([EVENT_START, "<GAMEPAD>", *["<0>"] * 7, "<VK_1>", EVENT_END], BASE)


@FAST
@given(
    name=st.sampled_from(NAMES),
    dpad=st.sampled_from(["none", "up", "down", "left", "right"]),
    x=st.integers(-32_768, 32_767),
    y=st.integers(-32_768, 32_767),
    buttons=st.integers(0, 63),
)
def test_new_message_kind_roundtrip_property(name: str, dpad: str, x: int, y: int, buttons: int) -> None:
    codec = GamepadCodec()
    register_codec(codec)
    try:
        assert_roundtrip(get_encoder(name), pad(BASE + 9, dpad=dpad, stick_x=x, stick_y=y, buttons=buttons))
    finally:
        unregister_codec(codec.topic)


def test_new_message_kind_appends_to_the_vocab_and_tokenizer(tmp_path: Path) -> None:
    """The tokenizer expansion picks up the new tokens; existing encoder tokens keep their ids."""
    before = {name: get_encoder(name).vocab() for name in NAMES}
    old_toks, old_ids = {}, {}
    for name in ("factorized", "hierarchical"):
        old_toks[name] = expand_tokenizer(make_local_tokenizer(tmp_path), get_encoder(name), INTERNVL3)
        old_ids[name] = TokenTable(old_toks[name], get_encoder(name), INTERNVL3).token_to_id
    codec = GamepadCodec()
    register_codec(codec)
    try:
        added = {
            "factorized": ["<GAMEPAD>", *DPAD.tokens(), "<PAD_A>", "<PAD_B>", "<PAD_X>", "<PAD_Y>", "<PAD_LB>",
                           "<PAD_RB>"],
            "hierarchical": ["<GAMEPAD>", *DPAD.tokens(), *(f"<PADB1_{h:X}>" for h in range(16)),
                             *(f"<PADB0_{h:X}>" for h in range(16))],
            "json": [],
        }  # fmt: skip
        event = pad(BASE + 5, dpad="left", stick_x=7, stick_y=-7, buttons=3)
        for name in NAMES:
            enc = get_encoder(name)
            assert enc.vocab() == before[name] + added[name]
            if name == "json":
                continue
            assert required_tokens(enc, INTERNVL3)[: len(enc.vocab())] == enc.vocab()
            tok = expand_tokenizer(make_local_tokenizer(tmp_path), enc, INTERNVL3)
            table = TokenTable(tok, enc, INTERNVL3)
            assert set(added[name]) <= set(table.token_to_id)
            # a fresh expansion: the encoder's old tokens keep their ids (image tokens come after them)
            assert [table.token_to_id[t] for t in before[name]] == [old_ids[name][t] for t in before[name]]
            # a saved dataset's expanded tokenizer grows: every id it had stays
            grown = TokenTable(expand_tokenizer(old_toks[name], enc, INTERNVL3), enc, INTERNVL3).token_to_id
            assert {t: grown[t] for t in old_ids[name]} == old_ids[name]
            assert set(grown) - set(old_ids[name]) == set(added[name])
            tokens = enc.encode(event, BASE)
            assert table.ids(tokens) == tok("".join(tokens), add_special_tokens=False)["input_ids"]
            assert enc.decode(table.to_tokens(table.ids(tokens)), BASE) == [
                make_event("gamepad", BASE, canonical(event))
            ]
    finally:
        unregister_codec(codec.topic)
    assert [get_encoder(name).vocab() for name in NAMES] == [before[name] for name in NAMES]


def test_codec_table() -> None:
    assert list(ENCODED_TOPICS) == ["keyboard", "mouse", "mouse/raw", "screen"]
    assert dict(TYPE_TOKENS) == {"keyboard": "<KEYBOARD>", "mouse": "<MOUSE>", "mouse/raw": "<MOUSE_RAW>",
                                 "screen": "<SCREEN>"}  # fmt: skip
    assert [[c.topic for c in group] for group in codec_groups()] == [list(ENCODED_TOPICS)]
    assert isinstance(get_codec("mouse/raw"), RawMouseCodec)
    with pytest.raises(EncodeError, match=r"topic 'window' is not encodable \(supported: \['keyboard'"):
        get_codec("window")
    with pytest.raises(EncodeError, match=r"window event #5 at \d+ ns: topic 'window' is not encodable"):
        canonical(ev("window", BASE, {"title": "x"}, index=5))
    with pytest.raises(EncodeError, match=r"window event: topic 'window' is not encodable"):
        canonical_fields("window", {})
    with pytest.raises(EncodeError, match="carries no frame"):
        frame_ref(ev("keyboard", BASE, {"event_type": "press", "vk": 1}))


class _Bad(GamepadCodec):
    def __init__(self, topic: str, type_token: str, tokens: list[str]) -> None:
        self.topic, self.type_token, self._tokens = topic, type_token, tokens  # type: ignore[misc]

    def tokens(self) -> list[str]:
        return self._tokens


@pytest.mark.parametrize(
    ("codecs", "message"),
    [
        ([_Bad("keyboard", "<KB2>", [])], r"topic 'keyboard' already has the codec KeyboardCodec"),
        ([_Bad("pad", "<MOUSE>", [])], r"type token '<MOUSE>' is already used"),
        ([_Bad("pad", "<PAD>", ["<a<b>"])], r"tokens must look like '<NAME>'.*'<a<b>'"),
        ([_Bad("pad", "PAD", [])], r"tokens must look like '<NAME>'.*'PAD'"),
        ([_Bad("pad", "<PAD>", []), _Bad("pad", "<PAD2>", [])], r"must be distinct"),
        ([], "none given"),
        ([GamepadCodec(), "gamepad"], "not PayloadCodec instances: \\['gamepad'\\]"),
    ],
)
def test_register_codec_rejects(codecs: list[PayloadCodec], message: str) -> None:
    before = list(ENCODED_TOPICS)
    with pytest.raises(ValueError, match=message):
        register_codec(*codecs)
    assert list(ENCODED_TOPICS) == before


def test_flag_set_names_are_checked() -> None:
    assert FlagSet(("A", "B", "C"), "T", "TB").max == 0b111
    for names, bit_tag, digit_tag in [
        (("A>",), "T", "TB"),
        (("A",), "<T", "TB"),
        (("A",), "T", ""),
        ((), "T", "TB"),
    ]:
        with pytest.raises(ValueError, match="flag names and tags"):
            FlagSet(names, bit_tag, digit_tag)


def test_spelling_limits_are_encode_errors() -> None:
    """A codec whose values exceed what a spelling can write gets an EncodeError, never a wrong token."""

    class Wide(GamepadCodec):
        def canonical(self, fields: Mapping[str, Any]) -> dict[str, Any]:
            return {**super().canonical({**fields, "stick_x": 0}), "stick_x": fields["stick_x"]}

    register_codec(Wide())
    try:
        for name in ("factorized", "hierarchical"):
            with pytest.raises(EncodeError, match=r"gamepad event at \d+ ns: value 100000 does not fit"):
                get_encoder(name).encode(pad(BASE, dpad="up", stick_x=100_000, stick_y=0), BASE)
    finally:
        unregister_codec("gamepad")
