"""Tests of owa_event.resample: per-topic rate limiting of one time-ordered stream."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owa_event.account import Account
from owa_event.events import TOPIC_TYPES, Event, EventOrderError, Move, is_pure_move
from owa_event.resample import (
    RULE_AUTOREPEAT,
    RULE_MOUSE_LATEST,
    RULE_RATE_LIMIT,
    _Resampler,
    resample,
)

MS = 1_000_000  # ns per ms
S = 1_000_000_000  # ns per s


def ev(topic: str, t: int, index: int = -1, **fields: Any) -> Event:
    return Event(topic, t, TOPIC_TYPES.get(topic, "test/Unknown"), orjson.dumps(fields), fields, index)


def raw(
    t: int, dx: int = 0, dy: int = 0, *, button_flags: int = 0, us_flags: int = 0, button_data: int = 0
) -> Event:
    flags = {"us_flags": us_flags, "button_flags": button_flags, "button_data": button_data}
    return ev("mouse/raw", t, last_x=dx, last_y=dy, **flags)


def move(t: int, x: int = 0, y: int = 0) -> Event:
    return ev("mouse", t, event_type="move", x=x, y=y)


def click(t: int, pressed: bool = True) -> Event:
    return ev("mouse", t, event_type="click", x=0, y=0, button="left", pressed=pressed)


def key(t: int, vk: int, kind: str = "press") -> Event:
    return ev("keyboard", t, event_type=kind, vk=vk)


def screen(t: int) -> Event:
    return ev("screen", t, utc_ns=t)


def run(events: Iterable[Event], rates: Mapping[str, float], **kw: Any) -> tuple[list[Event], Account]:
    """The output and the account: resample counts drops and merges; in and out are counted here."""
    account = Account()
    events = list(events)
    for e in events:
        account.take_in(e.topic)
    out = list(resample(events, rates, account=account, **kw))
    for e in out:
        account.emit(e.topic)
    return out, account


def assert_time_ordered(out: list[Event]) -> None:
    ts = [e.timestamp_ns for e in out]
    assert ts == sorted(ts)


def assert_stats_add_up(inp: list[Event], stats: Account) -> None:
    assert stats.unaccounted() == {}
    assert set(stats.messages_in) == set(Counter(e.topic for e in inp))


def sums(events: Iterable[Event]) -> tuple[int, int]:
    rel = [e for e in events if e.topic == "mouse/raw" and e.fields["us_flags"] == 0]
    return sum(e.fields["last_x"] for e in rel), sum(e.fields["last_y"] for e in rel)


# ---------------------------------------------------------------------------------------
# identity and validation
# ---------------------------------------------------------------------------------------
def mixed_stream() -> list[Event]:
    out: list[Event] = []
    for i in range(50):
        t = i * 5 * MS
        out.append(raw(t, 1, -1))
        out.append(move(t + 1, i, i))
        if i % 7 == 0:
            out.append(key(t + 2, 65, "press" if i % 2 == 0 else "release"))
        if i % 3 == 0:
            out.append(screen(t + 3))
        if i % 10 == 0:
            out.append(ev("window", t + 4, title="x", rect=[0, 0, 1, 1], hWnd=1))
    return out


def test_empty_mapping_is_identity() -> None:
    inp = mixed_stream()
    out, stats = run(inp, {})
    assert len(out) == len(inp)
    assert all(a is b for a, b in zip(out, inp))
    assert_stats_add_up(inp, stats)
    assert sum(stats.out.values()) == len(inp)


def test_zero_or_absent_rate_is_identity_for_that_topic() -> None:
    inp = mixed_stream()
    out, _ = run(inp, {"mouse/raw": 0, "mouse": 0.0, "keyboard": 0, "window": 0})
    assert all(a is b for a, b in zip(out, inp)) and len(out) == len(inp)
    # Limiting screen only leaves every other topic's events as the same objects, in order.
    out, _ = run(inp, {"screen": 1.0})
    others_out = [e for e in out if e.topic != "screen"]
    others_in = [e for e in inp if e.topic != "screen"]
    assert len(others_out) == len(others_in) and all(a is b for a, b in zip(others_out, others_in))


def test_empty_input() -> None:
    assert run([], {"mouse/raw": 60, "screen": 20})[0] == []


@pytest.mark.parametrize("rate", [-1, -0.001, math.nan, math.inf, "20"])
def test_bad_rate_raises_eagerly(rate: Any) -> None:
    with pytest.raises(ValueError, match="rate for topic 'screen'"):
        resample([], {"screen": rate})  # raised at call time, not on first next()


def test_input_out_of_order_raises() -> None:
    with pytest.raises(ValueError, match="out of time order"):
        list(resample([screen(10), screen(5)], {}))


# ---------------------------------------------------------------------------------------
# mouse/raw
# ---------------------------------------------------------------------------------------
def test_raw_moves_summed_per_period() -> None:
    # P = 10 ms; moves every 3 ms: [0,3,6,9] [12,15,18,21] [24]
    inp = [raw(i * 3 * MS, 1, 2) for i in range(9)]
    out, stats = run(inp, {"mouse/raw": 100})
    assert [e.timestamp_ns for e in out] == [9 * MS, 21 * MS, 24 * MS]
    assert [(e.fields["last_x"], e.fields["last_y"]) for e in out] == [(4, 8), (4, 8), (1, 2)]
    assert out[-1] is inp[-1]  # single-move accumulation is emitted unchanged
    assert orjson.loads(out[0].data) == out[0].fields  # payload re-serialized
    assert stats.out["mouse/raw"] == 3 and stats.merged["mouse/raw"] == 6
    assert_stats_add_up(inp, stats)


def test_raw_merged_event_is_last_absorbed_move() -> None:
    a = ev("mouse/raw", 0, index=0, last_x=5, last_y=0, us_flags=0, button_flags=0, button_data=0)
    flags = {"us_flags": 0, "button_flags": 0, "button_data": 7}
    b = ev("mouse/raw", 4 * MS, index=1, last_x=-2, last_y=3, extra="z", **flags)
    (out,), _ = run([a, b], {"mouse/raw": 100})
    assert out.timestamp_ns == b.timestamp_ns and out.index == 1
    assert out.fields == {**b.fields, "last_x": 3, "last_y": 3}


def test_raw_period_boundary_is_exclusive() -> None:
    inp = [raw(0, 1), raw(10 * MS - 1, 1), raw(10 * MS, 1)]
    out, _ = run(inp, {"mouse/raw": 100})
    assert [(e.timestamp_ns, e.fields["last_x"]) for e in out] == [(10 * MS - 1, 2), (10 * MS, 1)]


def test_raw_flush_before_click_and_at_end() -> None:
    down = raw(5 * MS, button_flags=0x1)
    inp = [raw(0, 1, 1), raw(2 * MS, 1, 1), raw(4 * MS, 1, 1), down, raw(6 * MS, 2, 2), raw(7 * MS, 3, 3)]
    out, stats = run(inp, {"mouse/raw": 10})  # P = 100 ms: nothing else would flush
    assert [(e.timestamp_ns, e.fields["last_x"]) for e in out] == [(4 * MS, 3), (5 * MS, 0), (7 * MS, 5)]
    assert out[1] is down
    assert stats.merged["mouse/raw"] == 3
    assert sums(out) == sums(inp)


def test_raw_wheel_and_absolute_pass_and_flush() -> None:
    wheel = raw(3 * MS, button_flags=0x400, button_data=120)
    absolute = raw(6 * MS, 30000, 30000, us_flags=1)
    inp = [raw(0, 1), raw(1 * MS, 1), wheel, raw(4 * MS, 1), raw(5 * MS, 1), absolute, raw(7 * MS, 1)]
    out, _ = run(inp, {"mouse/raw": 10})
    assert [e.timestamp_ns for e in out] == [1 * MS, 3 * MS, 5 * MS, 6 * MS, 7 * MS]
    assert out[1] is wheel and out[3] is absolute
    assert sums(out) == sums(inp) == (5, 0)


def test_raw_sum_spans_other_topic_events_in_time_order() -> None:
    """Other topics do not break an accumulation; they wait and come out in time order."""
    k = key(3 * MS, 65)
    inp = [raw(0, 1), raw(2 * MS, 1), k, raw(4 * MS, 1), raw(6 * MS, 1), raw(150 * MS, 1)]
    out, stats = run(inp, {"mouse/raw": 10, "keyboard": 10})
    assert [(e.topic, e.timestamp_ns) for e in out] == [
        ("keyboard", 3 * MS),
        ("mouse/raw", 6 * MS),
        ("mouse/raw", 150 * MS),
    ]
    assert out[0] is k
    assert out[1].fields["last_x"] == 4
    assert_time_ordered(out)
    assert sums(out) == (5, 0)
    assert stats.merged["mouse/raw"] == 3


def test_raw_sum_before_a_later_other_topic_event() -> None:
    """An event after the last absorbed move comes after the sum, which is stamped at that move."""
    s = screen(8 * MS)
    inp = [raw(0, 1), raw(2 * MS, 1), s, raw(150 * MS, 1)]
    out, _ = run(inp, {"mouse/raw": 10})
    assert [(e.topic, e.timestamp_ns) for e in out] == [
        ("mouse/raw", 2 * MS),
        ("screen", 8 * MS),
        ("mouse/raw", 150 * MS),
    ]


def test_mouse_and_raw_limited_together_reach_their_rates() -> None:
    """Interleaved 1000 Hz mouse and mouse/raw, both limited to 50 Hz, keep ~50 events/s each."""
    inp = []
    for i in range(1000):
        inp.append(raw(i * MS, 1, -1))
        inp.append(move(i * MS + 500, i))
    out, stats = run(inp, {"mouse/raw": 50, "mouse": 50})
    kept = Counter(e.topic for e in out)
    assert 49 <= kept["mouse/raw"] <= 51 and 49 <= kept["mouse"] <= 51
    assert sums(out) == (1000, -1000)
    assert_time_ordered(out)
    assert stats.messages_in["mouse"] == 1000 and stats.messages_in["mouse/raw"] == 1000


def test_dropped_event_of_other_topic_does_not_flush() -> None:
    # The second screen frame is rate-limited away; it must not split the raw accumulation.
    inp = [screen(0), raw(1 * MS, 1), screen(2 * MS), raw(3 * MS, 1)]
    out, stats = run(inp, {"mouse/raw": 10, "screen": 1})
    assert [(e.topic, e.timestamp_ns) for e in out] == [("screen", 0), ("mouse/raw", 3 * MS)]
    assert out[1].fields["last_x"] == 2
    assert stats.dropped[RULE_RATE_LIMIT]["screen"] == 1
    assert_stats_add_up(inp, stats)


def test_raw_and_mouse_interleaved_stay_time_ordered() -> None:
    inp: list[Event] = []
    for i in range(200):
        inp.append(raw(i * MS, 1, -1))
        inp.append(move(i * MS + 500_000, i, i))
    out, stats = run(inp, {"mouse/raw": 60, "mouse": 60})
    assert_time_ordered(out)
    assert sums(out) == sums(inp)
    assert_stats_add_up(inp, stats)


# Property: random raw moves, clicks, wheel/absolute events and other-topic events.
_kinds = st.sampled_from(["move", "move", "move", "move", "button", "wheel", "abs", "key", "screen", "mouse"])


@st.composite
def _streams(draw: st.DrawFn) -> tuple[list[Event], dict[str, float]]:
    n = draw(st.integers(0, 60))
    t = draw(st.integers(0, 10 * S))
    out: list[Event] = []
    for _ in range(n):
        t += draw(st.integers(0, 20 * MS))
        kind = draw(_kinds)
        dx = draw(st.integers(-500, 500))
        dy = draw(st.integers(-500, 500))
        if kind == "move":
            out.append(raw(t, dx, dy))
        elif kind == "button":
            out.append(raw(t, dx, dy, button_flags=draw(st.sampled_from([0x1, 0x2, 0x4, 0x8, 0x10]))))
        elif kind == "wheel":
            out.append(raw(t, 0, 0, button_flags=0x400, button_data=draw(st.sampled_from([120, -120]))))
        elif kind == "abs":
            out.append(raw(t, abs(dx) * 60, abs(dy) * 60, us_flags=1))
        elif kind == "key":
            out.append(key(t, draw(st.integers(65, 67)), draw(st.sampled_from(["press", "release"]))))
        elif kind == "screen":
            out.append(screen(t))
        else:
            out.append(move(t, dx, dy) if draw(st.booleans()) else click(t))
    rates = {
        "mouse/raw": draw(st.sampled_from([0, 1, 20, 60, 125.5, 1000])),
        "screen": draw(st.sampled_from([0, 5, 20])),
        "mouse": draw(st.sampled_from([0, 30, 60])),
        "keyboard": draw(st.sampled_from([0, 10])),
    }
    return out, rates


def _special_raw_ids(events: list[Event]) -> list[int]:
    raw_events = [e for e in events if e.topic == "mouse/raw"]
    return [id(e) for e in raw_events if e.fields["button_flags"] or e.fields["us_flags"]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams(), st.booleans())
def test_property_raw_displacement_preserved(stream: tuple[list[Event], dict[str, float]], rep: bool) -> None:
    inp, rates = stream
    out, stats = run(inp, rates, keyboard_repeat=rep)
    assert sums(out) == sums(inp)
    assert_time_ordered(out)
    assert_stats_add_up(inp, stats)
    assert len(out) == sum(stats.out.values())
    # Non-move raw events (buttons, wheel, absolute) all pass, as the same objects, in order.
    assert _special_raw_ids(out) == _special_raw_ids(inp)
    # Every output event is an input event, or a sum emitted at the time of an input raw move.
    in_ids = {id(e) for e in inp}
    raw_times = {e.timestamp_ns for e in inp if e.topic == "mouse/raw"}
    for e in out:
        assert id(e) in in_ids or (e.topic == "mouse/raw" and e.timestamp_ns in raw_times)
    if rates["mouse/raw"] == 0:
        assert [e for e in out if e.topic == "mouse/raw"] == [e for e in inp if e.topic == "mouse/raw"]


# ---------------------------------------------------------------------------------------
# mouse (absolute)
# ---------------------------------------------------------------------------------------
def test_mouse_latest_move_per_period() -> None:
    # P = 10 ms; moves every 3 ms: period [0,10) keeps 9, [12,22) keeps 21, [24,..) keeps 24.
    inp = [move(i * 3 * MS, i, i) for i in range(9)]
    out, stats = run(inp, {"mouse": 100})
    assert out == [inp[3], inp[7], inp[8]]
    assert all(any(o is i for i in inp) for o in out)
    assert stats.dropped[RULE_MOUSE_LATEST]["mouse"] == 6
    assert_stats_add_up(inp, stats)


def test_mouse_click_flushes_pending_move_and_passes() -> None:
    c = click(2 * MS)
    inp = [move(0, 1), move(1 * MS, 2), c, move(3 * MS, 3), move(4 * MS, 4)]
    out, stats = run(inp, {"mouse": 10})
    assert out == [inp[1], c, inp[4]]
    assert stats.dropped[RULE_MOUSE_LATEST]["mouse"] == 2


def test_mouse_pending_waits_for_period_and_flushes_at_end() -> None:
    s = screen(2 * MS)
    inp = [move(0, 1), move(1 * MS, 2), s, move(3 * MS, 3), move(4 * MS, 4)]
    out, _ = run(inp, {"mouse": 10})
    assert out == [s, inp[4]]
    assert_time_ordered(out)


# ---------------------------------------------------------------------------------------
# keyboard
# ---------------------------------------------------------------------------------------
def autorepeat_stream() -> list[Event]:
    # 'A' pressed at 0, OS auto-repeat every 33 ms from 500 ms, released at 1000 ms.
    inp = [key(0, 65)]
    inp += [key(500 * MS + i * 33 * MS, 65) for i in range(16)]
    inp.append(key(1000 * MS, 65, "release"))
    return inp


def test_keyboard_autorepeat_dropped() -> None:
    inp = autorepeat_stream()
    out, stats = run(inp, {"keyboard": 10})
    assert out == [inp[0], inp[-1]]
    assert stats.dropped[RULE_AUTOREPEAT]["keyboard"] == 16
    assert_stats_add_up(inp, stats)


def test_keyboard_rate_zero_keeps_autorepeat() -> None:
    inp = autorepeat_stream()
    assert run(inp, {"keyboard": 0})[0] == inp


def test_keyboard_repeat_reemitted_at_rate() -> None:
    inp = autorepeat_stream()
    out, stats = run(inp, {"keyboard": 10}, keyboard_repeat=True)  # P = 100 ms
    presses = [e.timestamp_ns // MS for e in out if e.fields["event_type"] == "press"]
    # 0, then repeats (500 + 33 i) at >= 100 ms after the last emitted press.
    assert presses == [0, 500, 632, 764, 896]
    assert all(b - a >= 100 for a, b in zip(presses, presses[1:]))
    assert out[-1] is inp[-1]
    assert_stats_add_up(inp, stats)


def test_keyboard_releases_always_pass_and_unhold() -> None:
    inp = [
        key(0, 66, "release"),  # release of a key never pressed
        key(1 * MS, 65),
        key(2 * MS, 65, "release"),
        key(3 * MS, 65),  # a new press after the release, not a repeat
        key(4 * MS, 65),  # repeat
        key(5 * MS, 67),  # another key is independent
        key(6 * MS, 65, "release"),
        key(7 * MS, 65, "release"),  # double release passes
    ]
    out, stats = run(inp, {"keyboard": 1})
    assert out == [inp[i] for i in (0, 1, 2, 3, 5, 6, 7)]
    assert stats.dropped[RULE_AUTOREPEAT]["keyboard"] == 1


# ---------------------------------------------------------------------------------------
# other topics: jitter-robust rate limit
# ---------------------------------------------------------------------------------------
def jittered(fps: float, n: int, sigma_ns: float, seed: int, max_jitter_ns: float | None = None) -> list[int]:
    rng = random.Random(seed)
    period = S / fps
    ts = []
    for i in range(n):
        j = rng.gauss(0.0, sigma_ns)
        if max_jitter_ns is not None:
            j = max(-max_jitter_ns, min(max_jitter_ns, j))
        ts.append(10 * S + round(i * period + j))
    return sorted(ts)


def naive_keep(ts: list[int], period: float) -> list[int]:
    kept: list[int] = []
    for t in ts:
        if not kept or t - kept[-1] >= period:
            kept.append(t)
    return kept


def test_screen_20fps_with_jitter_limited_to_20hz_keeps_every_frame() -> None:
    period = S / 20
    ts = jittered(20, 2000, 3 * MS, seed=1234, max_jitter_ns=period / 4 - 1)
    inp = [screen(t) for t in ts]
    out, stats = run(inp, {"screen": 20})
    assert out == inp
    assert stats.dropped.get(RULE_RATE_LIMIT, Counter())["screen"] == 0
    # The naive "t - last_kept >= P" rule loses a large share of the same frames.
    naive = naive_keep(ts, period)
    assert len(naive) < 0.8 * len(ts)


def test_screen_60fps_limited_to_20hz_keeps_a_third() -> None:
    period = S / 20
    ts = jittered(60, 3000, 2 * MS, seed=99)
    inp = [screen(t) for t in ts]
    out, stats = run(inp, {"screen": 20})
    kept = [e.timestamp_ns for e in out]
    assert abs(len(kept) - len(ts) / 3) <= 0.02 * len(ts)
    assert all(b - a >= period / 2 for a, b in zip(kept, kept[1:]))
    # Over any window of length T at most T/P + 3/2 are kept (T/P + 1 cannot hold for every
    # window: two frames P/2 apart must both be kept by the jitter guarantee).
    assert len(kept) <= (kept[-1] - kept[0]) / period + 1.5
    for i in range(len(kept)):
        for j in range(i + 1, min(len(kept), i + 50)):
            assert j - i + 1 <= (kept[j] - kept[i]) / period + 1.5
    assert stats.out["screen"] + stats.dropped[RULE_RATE_LIMIT]["screen"] == len(ts)


def test_rate_limit_reanchors_after_gap_and_applies_to_unknown_topics() -> None:
    inp = [ev("custom/topic", t * MS, v=t) for t in (0, 100, 200, 5000, 5100, 5200, 5600)]
    out, stats = run(inp, {"custom/topic": 2})  # P = 500 ms
    assert [e.timestamp_ns // MS for e in out] == [0, 5000, 5600]
    assert stats.dropped[RULE_RATE_LIMIT]["custom/topic"] == 4


def test_stats_add_up_on_mixed_stream() -> None:
    inp = mixed_stream() + autorepeat_stream_shifted()
    out, stats = run(inp, {"mouse/raw": 60, "mouse": 30, "keyboard": 5, "screen": 10, "window": 1})
    assert_stats_add_up(inp, stats)
    assert len(out) == sum(stats.out.values())
    assert_time_ordered(out)
    assert sums(out) == sums(inp)


def autorepeat_stream_shifted() -> list[Event]:
    return [e.at(e.timestamp_ns + 10 * S) for e in autorepeat_stream()]


def test_one_account_accumulates_across_calls() -> None:
    stats = Account()
    kept: Counter[str] = Counter()
    for _ in range(2):
        inp = [raw(0, 1), raw(1, 1), screen(2), screen(3)]
        kept.update(e.topic for e in resample(inp, {"mouse/raw": 1, "screen": 1}, account=stats))
    assert kept == Counter({"mouse/raw": 2, "screen": 2})
    assert stats.merged["mouse/raw"] == 2
    assert stats.dropped[RULE_RATE_LIMIT]["screen"] == 2


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 200 * MS), max_size=80),
    st.sampled_from([1, 7.5, 20, 60]),
)
def test_property_rate_limit_bounds(gaps: list[int], rate: float) -> None:
    period = S / rate
    ts = [S + sum(gaps[: i + 1]) for i in range(len(gaps))]
    out, stats = run([screen(t) for t in ts], {"screen": rate})
    kept = [e.timestamp_ns for e in out]
    assert kept[:1] == ts[:1]  # the first event is always kept
    assert all(b - a >= period / 2 for a, b in zip(kept, kept[1:]))
    for i in range(len(kept)):
        for j in range(i + 1, len(kept)):
            assert j - i + 1 <= (kept[j] - kept[i]) / period + 1.5
    assert stats.messages_in["screen"] == len(ts)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-0.2499, 0.2499), min_size=1, max_size=60), st.sampled_from([5, 20, 30, 60]))
def test_property_exact_rate_with_small_jitter_keeps_all(jitter: list[float], rate: float) -> None:
    period = S / rate
    ts = [S + round((i + j) * period) for i, j in enumerate(jitter)]
    inp = [screen(t) for t in ts]
    assert run(inp, {"screen": rate})[0] == inp


def _general_path(
    events: list[Event], rates: Mapping[str, float], keyboard_repeat: bool
) -> tuple[list, Account]:
    """The rules without the inlined raw-mouse fast path of ``resample``: every event through
    ``_Resampler.push`` and ``release`` (the reference the fast path must equal)."""
    from owa_event.resample import _period_ns, _Resampler

    account = Account()
    state = _Resampler({k: _period_ns(k, v) for k, v in rates.items()}, keyboard_repeat, account)
    out: list[Event] = []
    for ev in events:
        state.push(ev)
        state.release(out)
    state.release(out, final=True)
    return out, account


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams(), st.booleans())
def test_property_fast_path_equals_general_path(
    stream: tuple[list[Event], dict[str, float]], rep: bool
) -> None:
    inp, rates = stream
    account = Account()
    out = list(resample(inp, rates, keyboard_repeat=rep, account=account))
    ref, ref_account = _general_path(inp, rates, rep)
    key = [(e.topic, e.timestamp_ns, e.fields, e.index) for e in out]
    assert key == [(e.topic, e.timestamp_ns, e.fields, e.index) for e in ref]
    assert account.dropped == ref_account.dropped and account.merged == ref_account.merged


# ---------------------------------------------------------------------------------------
# Move tuples (a read's pure raw moves, Recording.events(moves=True)) give the same output
# ---------------------------------------------------------------------------------------
def _as_moves(events: list[Event]) -> list[Event | Move]:
    """``events`` with every pure relative raw move as the Move tuple a read would give."""
    return [
        (
            e.timestamp_ns,
            e.fields.get("last_x", 0),
            e.fields.get("last_y", 0),
            e.data,
            e.fields,
            e.index,
            e.message_type,
        )
        if e.topic == "mouse/raw" and is_pure_move(e.fields)
        else e
        for e in events
    ]


def _in_runs(items: list[Event | Move], cuts: list[bool]) -> list[Event | Move | list[Move]]:
    """``items`` with consecutive Moves in lists, as a read gives them (a new list where ``cuts`` says)."""
    out: list[Event | Move | list[Move]] = []
    for item, cut in zip(items, cuts + [False] * len(items)):
        if type(item) is tuple:
            if out and type(out[-1]) is list and not cut:
                out[-1].append(item)
            else:
                out.append([item])
        else:
            out.append(item)
    return out


def _same(a: list[Event], b: list[Event]) -> None:
    assert [(e.topic, e.timestamp_ns, e.message_type, e.data, e.fields, e.index) for e in a] == [
        (e.topic, e.timestamp_ns, e.message_type, e.data, e.fields, e.index) for e in b
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams(), st.booleans())
def test_property_move_tuples_give_the_same_output_and_account(
    stream: tuple[list[Event], dict[str, float]], rep: bool
) -> None:
    inp, rates = stream
    inp = [Event(e.topic, e.timestamp_ns, e.message_type, e.data, e.fields, i) for i, e in enumerate(inp)]
    want_account, got_account = Account(), Account()
    want = list(resample(inp, rates, keyboard_repeat=rep, account=want_account))
    got = list(resample(_as_moves(inp), rates, keyboard_repeat=rep, account=got_account))
    _same(got, want)
    assert got_account == want_account
    assert all(type(e) is Event for e in got)
    runs_account = Account()
    cuts = [i % 5 == 4 for i in range(len(inp))]  # some runs cut where no other event is between
    _same(
        list(resample(_in_runs(_as_moves(inp), cuts), rates, keyboard_repeat=rep, account=runs_account)), want
    )
    assert runs_account == want_account


def test_move_tuples_with_other_events_waiting_and_a_tie() -> None:
    # Other-topic events wait while a sum is pending; one shares the time of the move after it.
    inp = [
        raw(0, 1, 1),
        screen(1 * MS),
        raw(1 * MS, 2, 0),
        move(3 * MS, 5, 5),
        raw(3 * MS, 0, 4),
        raw(60 * MS, 1, 1),
    ]
    inp = [Event(e.topic, e.timestamp_ns, e.message_type, e.data, e.fields, i) for i, e in enumerate(inp)]
    rates = {"mouse/raw": 20, "screen": 20}
    want = list(resample(inp, rates))
    got = list(resample(_as_moves(inp), rates))
    _same(got, want)
    assert [e.topic for e in got] == ["screen", "mouse", "mouse/raw", "mouse/raw"]
    assert (got[2].fields["last_x"], got[2].fields["last_y"], got[2].index) == (3, 5, 4)


def test_move_tuples_without_a_raw_rate_pass_as_their_events() -> None:
    inp = [raw(0, 1, 1), raw(1 * MS, 2, 0), screen(2 * MS)]
    inp = [Event(e.topic, e.timestamp_ns, e.message_type, e.data, e.fields, i) for i, e in enumerate(inp)]
    _same(list(resample(_as_moves(inp), {"screen": 20})), inp)


def test_move_tuple_out_of_order_raises() -> None:
    inp = _as_moves([screen(5 * MS), raw(1 * MS, 1, 1)])
    with pytest.raises(EventOrderError, match="out of time order"):
        list(resample(inp, {"mouse/raw": 20}))


def _reference(events: list[Event], rates: dict[str, float], rep: bool, account: Account) -> list[Event]:
    """The rules alone: every event through ``_Resampler.push`` + ``release`` (no inline fast path)."""
    periods = {topic: 1e9 / rate if rate > 0 else 0.0 for topic, rate in rates.items()}
    state, out = _Resampler(periods, rep, account), []
    for e in events:
        state.push(e)
        state.release(out)
    state.release(out, final=True)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams(), st.booleans(), st.booleans(), st.sampled_from([0, 1_700_000_000 * S + 123]))
def test_property_fast_paths_equal_the_rules_alone(
    stream: tuple[list[Event], dict[str, float]], rep: bool, moves: bool, epoch: int
) -> None:
    inp, rates = stream  # times near 0 and near a real epoch (where ns + a period rounds as a float)
    inp = [
        Event(e.topic, e.timestamp_ns + epoch, e.message_type, e.data, e.fields, i) for i, e in enumerate(inp)
    ]
    want_account, got_account = Account(), Account()
    want = _reference(inp, rates, rep, want_account)
    got = list(
        resample(
            _in_runs(_as_moves(inp), []) if moves else inp, rates, keyboard_repeat=rep, account=got_account
        )
    )
    _same(got, want)
    assert got_account == want_account
