"""Tests of owa_event.intervals: interval arithmetic and recording selections."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owa_event.events import INPUT_TOPICS, TOPIC_TYPES, Event
from owa_event.intervals import (
    All,
    Difference,
    Inactivity,
    Intersection,
    Intervals,
    IntervalSelection,
    StartStopKey,
    Union,
    difference,
    intersection,
    normalize,
    selection_from_dict,
    union,
)

S = 1_000_000_000
F8, F9 = 119, 120


def ev(topic: str, t: int, **fields: Any) -> Event:
    return Event(topic, t, TOPIC_TYPES.get(topic, "test/Unknown"), orjson.dumps(fields), fields)


def key(t: int, vk: int, kind: str = "press") -> Event:
    return ev("keyboard", t, event_type=kind, vk=vk)


def screen(t: int) -> Event:
    return ev("screen", t, utc_ns=t)


def inside(intervals: Intervals, t: int) -> bool:
    return any(start <= t < end for start, end in intervals)


def kept(events: Iterable[Event], intervals: Intervals) -> list[int]:
    return [e.timestamp_ns for e in events if inside(intervals, e.timestamp_ns)]


# ---------------------------------------------------------------------------------------
# interval arithmetic
# ---------------------------------------------------------------------------------------
def test_normalize_sorts_merges_touching_and_drops_empty() -> None:
    assert normalize([(5, 7), (0, 2), (2, 3), (6, 9), (10, 10), (12, 13)]) == ((0, 3), (5, 9), (12, 13))
    assert normalize([]) == ()
    assert normalize([(1, 10), (2, 3)]) == ((1, 10),)
    with pytest.raises(ValueError, match="end before start"):
        normalize([(3, 2)])


def test_set_operations_hand_checked() -> None:
    a = ((0, 10), (20, 30))
    b = ((5, 25), (30, 35))
    assert union(a, b) == ((0, 35),)
    assert intersection(a, b) == ((5, 10), (20, 25))
    assert difference(a, b) == ((0, 5), (25, 30))
    assert difference(b, a) == ((10, 20), (30, 35))
    assert difference(((0, 100),), ((10, 20), (30, 40), (90, 120))) == ((0, 10), (20, 30), (40, 90))
    assert intersection(((0, 10),), ((10, 20),)) == ()  # half-open: touching is disjoint
    assert union(((0, 10),), ((10, 20),)) == ((0, 20),)
    assert difference(a, ()) == a and difference((), a) == () and intersection(a, ()) == ()


def as_set(pairs: Iterable[tuple[int, int]]) -> set[int]:
    return {x for start, end in pairs for x in range(start, end)}


def is_normalized(iv: Intervals) -> bool:
    return all(s < e for s, e in iv) and all(e1 < s2 for (_, e1), (s2, _) in zip(iv, iv[1:]))


_pairs = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 12)).map(lambda p: (p[0], p[0] + p[1])), max_size=8
)


@settings(max_examples=200, deadline=None)
@given(_pairs, _pairs)
def test_property_set_operations_match_brute_force(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    sa, sb = as_set(a), as_set(b)
    na = normalize(a)
    assert is_normalized(na) and as_set(na) == sa
    for result, expected in (
        (union(a, b), sa | sb),
        (intersection(a, b), sa & sb),
        (difference(a, b), sa - sb),
    ):
        assert is_normalized(result)
        assert as_set(result) == expected
    assert normalize(na) == na  # idempotent


# ---------------------------------------------------------------------------------------
# All
# ---------------------------------------------------------------------------------------
def test_all_includes_first_and_last_event() -> None:
    events = [screen(100), key(200, 65), screen(500)]
    iv = All().select(events, 100, 500)
    assert iv == ((100, 501),)
    assert kept(events, iv) == [100, 200, 500]
    assert All().topics() == frozenset()
    assert All().select([], 7, 7) == ((7, 8),)  # a one-message recording


def test_span_end_before_start_rejected() -> None:
    with pytest.raises(ValueError, match="span"):
        All().select([], 10, 9)


# ---------------------------------------------------------------------------------------
# StartStopKey
# ---------------------------------------------------------------------------------------
def test_start_stop_toggle() -> None:
    events = [key(10, F8), key(11, F8, "release"), key(50, F8), key(51, F8, "release"), key(80, F8)]
    sel = StartStopKey(F8)
    assert sel.topics() == frozenset({"keyboard"})
    assert sel.select(events, 0, 100) == ((10, 51), (80, 101))


def test_start_stop_separate_keys() -> None:
    events = [
        key(5, F9),  # stop with nothing running: ignored
        key(6, F9, "release"),
        key(10, F8),
        key(12, F8, "release"),
        key(20, F8),  # start while running: ignored
        key(21, F8, "release"),
        key(30, F9),
        key(31, F9, "release"),
        key(40, 65),  # other keys do nothing
        key(60, F8),
        key(61, F8, "release"),
        key(70, F9),
    ]
    assert StartStopKey(F8, F9).select(events, 0, 100) == ((10, 31), (60, 71))
    assert StartStopKey(F8, F8).select(events, 0, 100) == StartStopKey(F8).select(events, 0, 100)


def test_start_stop_autorepeat_ignored() -> None:
    events = [
        key(10, F8),
        key(20, F8),  # OS auto-repeat while held: would otherwise toggle off
        key(25, F8),
        key(30, F8, "release"),
        key(40, F8),
        key(45, F8, "release"),
    ]
    assert StartStopKey(F8).select(events, 0, 100) == ((10, 41),)
    # A held stop key (pressed before the start) only stops on a fresh press.
    events = [key(5, F9), key(10, F8), key(15, F9), key(17, F9, "release"), key(20, F9)]
    assert StartStopKey(F8, F9).select(events, 0, 100) == ((10, 21),)


def test_start_stop_only_presses_count_and_other_topics_ignored() -> None:
    events = [key(5, F8, "release"), screen(6), ev("mouse", 7, event_type="move", x=0, y=0)]
    assert StartStopKey(F8).select(events, 0, 100) == ()


def test_start_stop_unterminated_runs_to_end() -> None:
    events = [key(10, F8)]
    assert StartStopKey(F8, F9).select(events, 0, 100) == ((10, 101),)


def test_start_stop_boundaries_include_both_key_events() -> None:
    keys = [key(1000, F8), key(1001, F8, "release"), key(2000, F8), key(2001, F8, "release")]
    iv = StartStopKey(F8).select(keys, 0, 5000)
    assert iv == ((1000, 2001),)
    probes = [screen(t) for t in (999, 1000, 1500, 2000, 2001)]
    assert kept(probes, iv) == [1000, 1500, 2000]
    # The start press at the first message and the stop press at the last one are inside.
    iv = StartStopKey(F8).select([key(0, F8), key(1, F8, "release"), key(9, F8)], 0, 9)
    assert iv == ((0, 10),)
    assert kept([screen(0), screen(9)], iv) == [0, 9]


@pytest.mark.parametrize(
    "args, match",
    [
        ((256,), "start_vk"),
        ((-1,), "start_vk"),
        ((True,), "start_vk"),
        (("119",), "start_vk"),
        ((1, 999), "stop_vk"),
    ],
)
def test_start_stop_validation(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StartStopKey(*args)


# ---------------------------------------------------------------------------------------
# Inactivity
# ---------------------------------------------------------------------------------------
def test_inactivity_screen_gap_keeps_boundary_events() -> None:
    events = [screen(t * S) for t in (0, 1, 2, 10, 11)]
    sel = Inactivity(screen_timeout_s=5)
    assert sel.topics() == frozenset({"screen"})
    iv = sel.select(events, 0, 11 * S)
    assert iv == ((0, 2 * S + 1), (10 * S, 11 * S + 1))
    assert kept(events, iv) == [0, S, 2 * S, 10 * S, 11 * S]
    assert not inside(iv, 2 * S + 1) and not inside(iv, 10 * S - 1)


def test_inactivity_gap_equal_to_timeout_is_kept() -> None:
    events = [screen(0), screen(5 * S), screen(10 * S + 1)]
    iv = Inactivity(screen_timeout_s=5).select(events, 0, 10 * S + 1)
    assert iv == ((0, 5 * S + 1), (10 * S + 1, 10 * S + 2))


def test_inactivity_leading_and_trailing_stretches() -> None:
    events = [screen(7 * S), screen(8 * S)]
    iv = Inactivity(screen_timeout_s=5).select(events, 0, 20 * S)
    assert iv == ((7 * S, 8 * S + 1),)
    # Short leading/trailing stretches stay.
    assert Inactivity(screen_timeout_s=12).select(events, 0, 20 * S) == ((0, 20 * S + 1),)


def test_inactivity_no_events_of_that_kind() -> None:
    assert Inactivity(screen_timeout_s=5).select([], 0, 10 * S) == ()
    assert Inactivity(screen_timeout_s=5).select([], 0, 4 * S) == ((0, 4 * S + 1),)


def test_inactivity_input_gap_uses_all_input_topics() -> None:
    events = [
        key(0, 65),
        ev("mouse", 3 * S, event_type="move", x=1, y=1),
        screen(5 * S),  # not input: does not break the input gap
        ev("mouse/raw", 9 * S, last_x=1, last_y=0, us_flags=0, button_flags=0, button_data=0),
        key(10 * S, 65, "release"),
    ]
    sel = Inactivity(input_timeout_s=4)
    assert sel.topics() == INPUT_TOPICS
    iv = sel.select(events, 0, 10 * S)
    assert iv == ((0, 3 * S + 1), (9 * S, 10 * S + 1))
    assert kept(events, iv) == [0, 3 * S, 9 * S, 10 * S]


def test_inactivity_both_timeouts_remove_union() -> None:
    screens = [screen(t * S) for t in (0, 2, 10, 11, 12, 20)]
    keys = [key(t * S, 65, k) for t, k in ((0, "press"), (1, "release"), (11, "press"), (20, "release"))]
    events = sorted(screens + keys, key=lambda e: e.timestamp_ns)
    sel = Inactivity(screen_timeout_s=5, input_timeout_s=9)
    assert sel.topics() == INPUT_TOPICS | {"screen"}
    # screen gaps > 5 s: (2, 10), (12, 20); input gaps > 9 s: (1, 11); (11, 20) is exactly 9 s.
    assert sel.select(events, 0, 20 * S) == ((0, S + 1), (11 * S, 12 * S + 1), (20 * S, 20 * S + 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "at least one"),
        ({"screen_timeout_s": 0}, "screen_timeout_s"),
        ({"input_timeout_s": -1.0}, "input_timeout_s"),
        ({"input_timeout_s": math.nan}, "input_timeout_s"),
        ({"screen_timeout_s": "5"}, "screen_timeout_s"),
        ({"screen_timeout_s": True}, "screen_timeout_s"),
    ],
)
def test_inactivity_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Inactivity(**kwargs)


def test_out_of_order_events_rejected() -> None:
    with pytest.raises(ValueError, match="out of time order"):
        StartStopKey(F8).select([key(5, F8), key(3, F8)], 0, 10)
    with pytest.raises(ValueError, match="out of time order"):
        Inactivity(screen_timeout_s=1).select([screen(5), screen(3)], 0, 10)


# ---------------------------------------------------------------------------------------
# composition
# ---------------------------------------------------------------------------------------
def recording() -> list[Event]:
    return [
        screen(0),
        key(1 * S, F8),
        key(1 * S + 1, F8, "release"),
        screen(2 * S),
        key(3 * S, F8),
        key(3 * S + 1, F8, "release"),
        screen(4 * S),
        screen(20 * S),
        key(21 * S, F8),
        screen(30 * S),
    ]


def test_operators_build_composites() -> None:
    a, b = StartStopKey(F8), Inactivity(screen_timeout_s=5)
    assert a | b == Union(a, b)
    assert a & b == Intersection(a, b)
    assert a - b == Difference(a, b)
    assert (a | b).topics() == frozenset({"keyboard", "screen"})
    assert ((a - b) & All()).topics() == frozenset({"keyboard", "screen"})
    with pytest.raises(TypeError):
        a | 3  # type: ignore[operator]
    with pytest.raises(ValueError, match="IntervalSelection"):
        Union(a, "b")  # type: ignore[arg-type]


def test_composite_select() -> None:
    events = recording()
    keys, idle = StartStopKey(F8), Inactivity(screen_timeout_s=5)
    k = keys.select(events, 0, 30 * S)
    i = idle.select(events, 0, 30 * S)
    assert k == ((1 * S, 3 * S + 1), (21 * S, 30 * S + 1))
    assert i == ((0, 4 * S + 1), (20 * S, 20 * S + 1), (30 * S, 30 * S + 1))
    # Composites accept a one-shot iterator: events are shared between both children.
    assert (keys | idle).select(iter(events), 0, 30 * S) == union(k, i)
    assert (keys & idle).select(iter(events), 0, 30 * S) == intersection(k, i)
    assert (keys - idle).select(iter(events), 0, 30 * S) == difference(k, i)
    assert (All() - keys).select(events, 0, 30 * S) == ((0, S), (3 * S + 1, 21 * S))


# ---------------------------------------------------------------------------------------
# dicts, pickling, repr
# ---------------------------------------------------------------------------------------
SELECTIONS: list[IntervalSelection] = [
    All(),
    StartStopKey(F8),
    StartStopKey(F8, F9),
    Inactivity(screen_timeout_s=5.0),
    Inactivity(screen_timeout_s=2.5, input_timeout_s=30),
    (StartStopKey(F8, F9) | All()) - Inactivity(input_timeout_s=60.0) & StartStopKey(1),
]


@pytest.mark.parametrize("sel", SELECTIONS, ids=repr)
def test_dict_round_trip_and_pickle(sel: IntervalSelection) -> None:
    d = sel.to_dict()
    assert selection_from_dict(d) == sel
    assert selection_from_dict(json.loads(json.dumps(d))) == sel
    clone = pickle.loads(pickle.dumps(sel))
    assert clone == sel and hash(clone) == hash(sel) and repr(clone) == repr(sel)


def test_to_dict_shape_and_repr() -> None:
    sel = StartStopKey(F8, F9) | Inactivity(screen_timeout_s=5.0)
    assert sel.to_dict() == {
        "type": "union",
        "a": {"type": "start_stop_key", "start_vk": 119, "stop_vk": 120},
        "b": {"type": "inactivity", "screen_timeout_s": 5.0, "input_timeout_s": None},
    }
    assert repr(sel) == (
        "Union(a=StartStopKey(start_vk=119, stop_vk=120), "
        "b=Inactivity(screen_timeout_s=5.0, input_timeout_s=None))"
    )
    assert selection_from_dict({"type": "all"}) == All()
    assert selection_from_dict({"type": "start_stop_key", "start_vk": 119}) == StartStopKey(119)
    assert len({All(), All(), StartStopKey(1), StartStopKey(1)}) == 2


def test_from_dict_collects_all_problems() -> None:
    bad = {
        "type": "difference",
        "a": {"type": "start_stop_key", "start_vk": 300, "stopvk": 120},
        "b": {
            "type": "union",
            "a": {"type": "inactivity", "screen_timeout_s": -1},
            "b": {"type": "bogus"},
        },
        "c": 1,
    }
    with pytest.raises(ValueError) as info:
        selection_from_dict(bad)
    msg = str(info.value)
    assert "5 problem" in msg
    for fragment in (
        "<root>: unknown field 'c'",
        "a: unknown field 'stopvk'",
        "a: start_vk must be a virtual-key code 0..255, got 300",
        "b.a: screen_timeout_s must be > 0",
        "b.b: unknown type 'bogus' (one of: all, difference, inactivity, intersection, start_stop_key, "
        "union)",
    ):
        assert fragment in msg
    assert "b.a: at least one" not in msg  # a set-but-invalid timeout is one problem, not two


@pytest.mark.parametrize(
    "d, fragment",
    [
        ([], "expected a mapping"),
        ({}, "missing 'type'"),
        ({"type": 3}, "unknown type 3"),
        ({"type": "start_stop_key"}, "missing field 'start_vk'"),
        ({"type": "union", "a": {"type": "all"}}, "missing field 'b'"),
        ({"type": "union", "a": {"type": "all"}, "b": "all"}, "b: expected a mapping"),
        ({"type": "inactivity"}, "at least one of"),
        ({"type": "all", "x": 1}, "unknown field 'x' for type 'all' (allowed: none)"),
        ({"type": "start_stop_key", "start_vk": 1.5}, "start_vk must be an int"),
    ],
)
def test_from_dict_errors(d: Any, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        selection_from_dict(d)
    assert fragment in str(info.value)
