"""Tests of owa_event.events: the Event value and its McapMessage JSON form."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap_owa.highlevel import McapMessage

from owa_event.events import INPUT_TOPICS, KNOWN_TOPICS, KNOWN_TYPES, TOPIC_TYPES, Event, mcap_message_json

T0 = 1_748_854_800_000_000_000


def make(
    topic: str, t: int, fields: dict[str, Any], message_type: str | None = None, index: int = -1
) -> Event:
    return Event(
        topic, t, message_type or TOPIC_TYPES.get(topic, "custom/Thing"), orjson.dumps(fields), fields, index
    )


def test_topic_tables_are_consistent() -> None:
    assert KNOWN_TOPICS == set(TOPIC_TYPES)
    assert set(TOPIC_TYPES.values()) < KNOWN_TYPES
    assert INPUT_TOPICS == {"keyboard", "mouse", "mouse/raw"}
    assert TOPIC_TYPES["screen"] == "desktop/ScreenCaptured"
    assert TOPIC_TYPES["mouse/raw"] == "desktop/RawMouseEvent"


@pytest.mark.parametrize(
    ("topic", "fields"),
    [
        ("keyboard", {"event_type": "press", "vk": 65}),
        ("mouse", {"event_type": "click", "x": 10, "y": 20, "button": "left", "pressed": True}),
        (
            "mouse/raw",
            {"us_flags": 0, "last_x": -3, "last_y": 2, "button_flags": 0x400, "button_data": 65416},
        ),
        ("window", {"title": "*test.txt - 메모장", "rect": [819, 263, 1856, 1286], "hWnd": 2822264}),
        (
            "window",
            {
                "title": 'quotes " and \\ backslash \n newline \u2028 and emoji \U0001f600',
                "rect": [0, 0, 1, 1],
                "hWnd": 1,
            },
        ),
        (
            "screen",
            {
                "utc_ns": T0,
                "source_shape": [1025, 1017],
                "shape": [1025, 1017],
                "media_ref": {"uri": "sub/x.mkv", "pts_ns": 20_000_000},
            },
        ),
        ("custom", {"value": 1, "nested": {"a": [1, 2.5, None, True]}}),
    ],
)
def test_mcap_message_json_round_trips_through_mcap_owa(topic: str, fields: dict[str, Any]) -> None:
    event = make(topic, T0 + 123_456_789, fields)
    msg = McapMessage.model_validate_json(event.mcap_message_json())
    assert msg.topic == topic
    assert msg.timestamp == T0 + 123_456_789
    assert msg.message_type == event.message_type
    assert msg.message == event.data  # exact bytes, non-ASCII included
    assert orjson.loads(msg.message) == fields


def test_mcap_message_json_decodes_to_the_owa_message_with_non_ascii_title() -> None:
    fields = {"title": "*test.txt - 메모장", "rect": [819, 263, 1856, 1286], "hWnd": 2822264}
    msg = McapMessage.model_validate_json(make("window", T0, fields).mcap_message_json())
    decoded = msg.decoded
    assert decoded.title == "*test.txt - 메모장"
    assert tuple(decoded.rect) == (819, 263, 1856, 1286)
    assert decoded.hWnd == 2822264


def test_mcap_message_json_keeps_the_original_payload_bytes() -> None:
    # data read from a file may be formatted differently from orjson's output: it is kept as is.
    data = b'{ "event_type" : "press",  "vk": 65 }'
    event = Event("keyboard", T0, "desktop/KeyboardEvent", data, orjson.loads(data))
    msg = McapMessage.model_validate_json(event.mcap_message_json())
    assert msg.message == data
    assert set(orjson.loads(event.mcap_message_json())) == {"topic", "timestamp", "message", "message_type"}


def test_replace_changes_fields_and_data_together() -> None:
    event = make(
        "mouse/raw",
        T0,
        {"us_flags": 0, "last_x": 1, "last_y": 2, "button_flags": 0, "button_data": 0},
        index=7,
    )
    new = event.replace(last_x=10, last_y=-20)
    assert new.fields == {"us_flags": 0, "last_x": 10, "last_y": -20, "button_flags": 0, "button_data": 0}
    assert orjson.loads(new.data) == new.fields
    assert (new.topic, new.timestamp_ns, new.message_type, new.index) == (
        "mouse/raw",
        T0,
        "desktop/RawMouseEvent",
        7,
    )
    # the original is untouched
    assert event.fields["last_x"] == 1 and orjson.loads(event.data)["last_x"] == 1
    assert new != event


def test_replace_can_add_a_field() -> None:
    event = make("keyboard", T0, {"event_type": "press", "vk": 65})
    new = event.replace(timestamp=5)
    assert new.fields == {"event_type": "press", "vk": 65, "timestamp": 5}
    assert orjson.loads(new.data) == new.fields
    assert "timestamp" not in event.fields


def test_at_moves_the_event_in_time_only() -> None:
    event = make("keyboard", T0, {"event_type": "press", "vk": 65}, index=3)
    moved = event.at(T0 + 5)
    assert moved.timestamp_ns == T0 + 5
    assert (moved.topic, moved.message_type, moved.fields, moved.data, moved.index) == (
        event.topic,
        event.message_type,
        event.fields,
        event.data,
        3,
    )
    assert event.timestamp_ns == T0
    assert moved != event
    assert moved.at(T0) == event


def test_equality_ignores_data_formatting_and_index() -> None:
    a = Event(
        "keyboard",
        T0,
        "desktop/KeyboardEvent",
        b'{"event_type":"press","vk":65}',
        {"event_type": "press", "vk": 65},
        0,
    )
    b = Event(
        "keyboard",
        T0,
        "desktop/KeyboardEvent",
        b'{"vk": 65, "event_type": "press"}',
        {"vk": 65, "event_type": "press"},
        9,
    )
    assert a == b


@pytest.mark.parametrize(
    "other",
    [
        Event("mouse", T0, "desktop/KeyboardEvent", b"{}", {"event_type": "press", "vk": 65}),
        Event("keyboard", T0 + 1, "desktop/KeyboardEvent", b"{}", {"event_type": "press", "vk": 65}),
        Event("keyboard", T0, "custom/Thing", b"{}", {"event_type": "press", "vk": 65}),
        Event("keyboard", T0, "desktop/KeyboardEvent", b"{}", {"event_type": "press", "vk": 66}),
    ],
)
def test_equality_compares_topic_time_type_and_fields(other: Event) -> None:
    event = Event("keyboard", T0, "desktop/KeyboardEvent", b"{}", {"event_type": "press", "vk": 65})
    assert event != other
    assert not (event == other)


def test_equality_with_other_types_is_not_implemented() -> None:
    event = make("keyboard", T0, {"event_type": "press", "vk": 65})
    assert event.__eq__("keyboard") is NotImplemented
    assert event != ("keyboard", T0)


def test_repr_names_topic_time_type_and_fields() -> None:
    text = repr(make("keyboard", T0, {"event_type": "press", "vk": 65}))
    assert text == f"Event('keyboard', {T0}, 'desktop/KeyboardEvent', {{'event_type': 'press', 'vk': 65}})"


@settings(max_examples=300, deadline=None)
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=12,
    ),
    pretty=st.booleans(),
    topic=st.text(min_size=1),
    message_type=st.text(),
    timestamp=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_mcap_message_json_is_orjson_of_the_dict_byte_for_byte(
    payload: object, pretty: bool, topic: str, message_type: str, timestamp: int
) -> None:
    data = orjson.dumps({"v": payload}, option=orjson.OPT_INDENT_2 if pretty else 0)  # any valid JSON text
    expected = orjson.dumps(
        {"topic": topic, "timestamp": timestamp, "message": data.decode(), "message_type": message_type}
    )
    assert mcap_message_json(topic, timestamp, data, message_type) == expected


def test_mcap_message_array_is_mcap_message_json_byte_for_byte() -> None:
    import pyarrow as pa

    from owa_event.events import mcap_message_array

    payloads = [
        b'{"a":1}',
        b'{ "a" :\t"b",\r\n"c": 2 }\n',
        b'{"t":"\\"q\\" \\\\ \\n \\u0001"}',
        '{"t":"é – 日本 😀 \u2028 \x7f"}'.encode(),
        b'{"weird \\"key\\"":[]}',
    ]
    channels = [("mouse/raw", "desktop/RawMouseEvent"), ('a "topic" \\ é', 'custom/Ty"pe')]
    index = [i % 2 for i in range(len(payloads))]
    times = [1_748_854_800_000_000_000 + i for i in range(len(payloads))]
    got = mcap_message_array(
        channels, pa.array(index, pa.int32()), pa.array(times, pa.int64()), payloads
    ).to_pylist()
    want = [
        mcap_message_json(channels[i][0], t, p, channels[i][1])
        for i, t, p in zip(index, times, payloads, strict=True)
    ]
    assert got == want
    assert [orjson.loads(row)["message"] for row in got] == [p.decode() for p in payloads]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.text(max_size=8),
            st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False)),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([b"", b" ", b"\n", b"\t", b"\r\n"]),
)
def test_mcap_message_array_matches_on_generated_payloads(
    objects: list[dict[str, Any]], space: bytes
) -> None:
    import pyarrow as pa

    from owa_event.events import mcap_message_array

    payloads = [space + orjson.dumps(o) + space for o in objects]
    times = list(range(len(payloads)))
    index = pa.array([0] * len(payloads), pa.int32())
    got = mcap_message_array(
        [("keyboard", "desktop/KeyboardEvent")], index, pa.array(times, pa.int64()), payloads
    )
    assert got.to_pylist() == [
        mcap_message_json("keyboard", t, p, "desktop/KeyboardEvent")
        for t, p in zip(times, payloads, strict=True)
    ]
