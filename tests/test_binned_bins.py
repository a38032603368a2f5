"""bin_events: a pure streaming function; checked against a brute-force model on random streams."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owa_binned.bins import FATES, Bin, BinCounts, EmptyRunError, bin_events, period_ns_of
from owa_event.account import Account
from owa_event.events import TOPIC_TYPES, Event

STATE = ["screen"]
ACTIONS = ["keyboard", "mouse", "mouse/raw"]
MS = 1_000_000


def ev(topic: str, t: int, i: int = 0) -> Event:
    fields = {"i": i}
    return Event(topic, t, TOPIC_TYPES.get(topic, "test/Other"), orjson.dumps(fields), fields, i)


def run(
    events: list[Event],
    start: int,
    period: int,
    end: int | None = None,
    *,
    drop: bool = False,
    state: list[str] = STATE,
    actions: list[str] = ACTIONS,
) -> tuple[list[Bin], Stats]:
    stats = Stats(Account(), BinCounts(), state, actions)
    for e in events:
        stats.account.take_in(e.topic)  # counting what goes in is the caller's
    bins = list(
        bin_events(
            iter(events), start, end, period, state, actions, stats.account, stats.counts, drop_empty=drop
        )
    )
    return bins, stats


class Stats:
    """A run's Account and BinCounts, read by fate (``action``, ``state`` are output; the other fates
    are drop rules), as the tests below name them."""

    def __init__(self, account: Account, counts: BinCounts, state: list[str], actions: list[str]) -> None:
        self.account, self.counts, self._state, self._actions = account, counts, state, actions

    def __getattr__(self, name: str) -> object:
        if name in ("bins", "episodes", "empty_bins_dropped"):
            return getattr(self.counts, name)
        if name == "action":
            return Counter({t: n for t, n in self.account.out.items() if t in self._actions})
        if name == "state":
            return Counter({t: n for t, n in self.account.out.items() if t in self._state})
        if name == "events_in":
            return self.account.messages_in
        if name in FATES:
            return +self.account.dropped.get(name, Counter())
        raise AttributeError(name)

    def unaccounted(self) -> dict[str, int]:
        return self.account.unaccounted()


# ---------------------------------------------------------------------------------------
# the rules, one at a time
# ---------------------------------------------------------------------------------------
def test_boundaries_event_at_a_bin_start_belongs_to_that_bin() -> None:
    p = 100
    events = [
        ev("keyboard", 0, 0),
        ev("keyboard", 99, 1),
        ev("keyboard", 100, 2),
        ev("mouse", 199, 3),
        ev("mouse", 200, 4),
    ]
    bins, stats = run(events, 0, p)
    assert [(b.bin_idx, b.start_ns, b.end_ns) for b in bins] == [(0, 0, 100), (1, 100, 200), (2, 200, 300)]
    assert [[e.fields["i"] for e in b.actions] for b in bins] == [[0, 1], [2, 3], [4]]
    assert stats.bins == 3 and not stats.unaccounted()


def test_state_is_the_latest_at_or_before_the_bin_start_never_from_the_future() -> None:
    p = 100
    events = [
        ev("keyboard", 0, 0),
        ev("screen", 50, 1),  # after bin 0's start: not bin 0's state
        ev("screen", 100, 2),  # exactly at bin 1's start: bin 1's state
        ev("screen", 150, 3),  # inside bin 1: bin 2's state (latest at or before 200)
        ev("keyboard", 420, 4),  # bins 2, 3 are empty; bin 4 holds it; state carried over
    ]
    bins, stats = run(events, 0, p)
    assert [b.bin_idx for b in bins] == [0, 1, 2, 3, 4]
    assert [[e.fields["i"] for e in b.state] for b in bins] == [[], [2], [3], [3], [3]]
    for b in bins:
        assert all(e.timestamp_ns <= b.start_ns for e in b.state)
    # screen 1 was superseded before any bin start: unused; 2 and 3 are states
    assert stats.state["screen"] == 2 and stats.state_unused["screen"] == 1
    assert stats.action["keyboard"] == 2 and not stats.unaccounted()


def test_ties_at_a_bin_start_go_to_the_last_event_in_the_stream() -> None:
    events = [ev("screen", 100, 0), ev("keyboard", 100, 1), ev("screen", 100, 2)]
    bins, stats = run(events, 100, 10)
    assert [e.fields["i"] for e in bins[0].state] == [2]
    assert stats.state_unused["screen"] == 1 and stats.state["screen"] == 1


def test_first_bin_starts_at_start_ns_even_before_the_first_event() -> None:
    bins, _ = run([ev("keyboard", 1_050, 0)], 1_000, 20)
    assert [(b.bin_idx, b.start_ns, len(b.actions)) for b in bins] == [
        (0, 1_000, 0),
        (1, 1_020, 0),
        (2, 1_040, 1),
    ]


def test_state_topics_in_configured_order_and_other_topics_not_binned() -> None:
    events = [
        ev("window", 0, 0),
        ev("screen", 0, 1),
        ev("keyboard/state", 0, 2),
        ev("keyboard", 5, 3),
        ev("mouse/state", 12, 4),
    ]
    bins, stats = run(events, 0, 10, state=["keyboard/state", "screen"])
    assert [[e.topic for e in b.state] for b in bins] == [
        ["keyboard/state", "screen"],
        ["keyboard/state", "screen"],
    ]
    assert stats.not_binned == {"window": 1, "mouse/state": 1}
    assert len(bins) == 2  # bins run through the last event of any topic
    assert not stats.unaccounted()


def test_drop_empty_bins_counts_and_keeps_bin_idx() -> None:
    events = [
        ev("screen", 0, 0),
        ev("keyboard", 5, 1),
        ev("screen", 25, 2),
        ev("keyboard", 47, 3),
        ev("screen", 61, 4),
    ]
    kept, stats = run(events, 0, 10, drop=True)
    full, full_stats = run(events, 0, 10)
    assert [b.bin_idx for b in kept] == [0, 4]
    assert [b.bin_idx for b in full] == [0, 1, 2, 3, 4, 5, 6]
    assert stats.bins == 2 and stats.empty_bins_dropped == 5 == full_stats.bins - stats.bins
    assert [[e.fields["i"] for e in b.state] for b in kept] == [[0], [2]]
    assert [b for b in full if b.actions] == kept
    # screen 2 is bin 4's state (emitted); screen 0 only of bin 0 (emitted) -> state;
    # screen 4 is after the last bin start: unused
    assert stats.state["screen"] == 2 and stats.state_unused["screen"] == 1 and not stats.unaccounted()


def test_state_only_in_dropped_bins_is_counted_as_such() -> None:
    events = [
        ev("keyboard", 0, 0),
        ev("screen", 5, 1),
        ev("keyboard", 35, 2),
        ev("screen", 36, 3),
        ev("keyboard", 41, 4),
    ]
    # bin 1, 2 (dropped) have screen 1; bin 3 (kept) has screen 1 too -> state
    bins, stats = run(events, 0, 10, drop=True)
    assert [b.bin_idx for b in bins] == [0, 3, 4]
    assert stats.state["screen"] == 2 and not stats.state_only_in_dropped_bins
    # screen 1 is the state of dropped bins 1, 2 only when bin 3 has it replaced
    events = [ev("keyboard", 0, 0), ev("screen", 5, 1), ev("screen", 30, 3), ev("keyboard", 35, 2)]
    bins, stats = run(events, 0, 10, drop=True)
    assert [b.bin_idx for b in bins] == [0, 3]
    assert [e.fields["i"] for e in bins[1].state] == [3]
    assert stats.state_only_in_dropped_bins["screen"] == 1 and stats.state["screen"] == 1
    assert stats.empty_bins_dropped == 2 and not stats.unaccounted()


def test_long_gap_with_drop_empty_costs_nothing() -> None:
    far = 10**9 * 3600 * 10**6  # a million hours later, in ns: 3.6e15 bins of 1 us between
    bins, stats = run([ev("keyboard", 0, 0), ev("keyboard", far, 1)], 0, 1_000, drop=True)
    assert [b.bin_idx for b in bins] == [0, far // 1_000]
    assert stats.empty_bins_dropped == far // 1_000 - 1


def test_integer_boundaries_do_not_drift_over_hours() -> None:
    period = period_ns_of(30.0)
    assert period == 33_333_333
    start = 1_700_000_000_123_456_789
    t = start + 10 * 3600 * 10**9  # ten hours in
    bins, _ = run([ev("keyboard", start, 0), ev("keyboard", t, 1)], start, period, drop=True)
    last = bins[-1]
    assert last.start_ns == start + last.bin_idx * period and last.start_ns <= t < last.end_ns
    assert last.bin_idx == (t - start) // period


def test_end_ns_adds_trailing_empty_bins() -> None:
    bins, stats = run([ev("keyboard", 3, 0)], 0, 10, 35)
    assert [b.bin_idx for b in bins] == [0, 1, 2, 3]
    bins, _ = run([], 0, 10, 30)
    assert [b.bin_idx for b in bins] == [0, 1, 2]
    assert run([], 0, 10)[0] == []
    with pytest.raises(ValueError, match="at or after end_ns"):
        run([ev("keyboard", 30, 0)], 0, 10, 30)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="before the episode start"):
        run([ev("keyboard", 5, 0)], 10, 10)
    with pytest.raises(ValueError, match="before the event before it"):
        run([ev("keyboard", 15, 0), ev("keyboard", 12, 1)], 10, 10)
    for period in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="period_ns"):
            run([], 0, period)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both state and action"):
        run([], 0, 10, state=["screen"], actions=["screen"])
    with pytest.raises(ValueError, match="shorter than 1 ns"):
        period_ns_of(3e9)
    for fps in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="fps must be"):
            period_ns_of(fps)
    assert period_ns_of(10) == 100_000_000 and period_ns_of(1e9) == 1


def test_streaming_consumes_at_most_one_bin_ahead() -> None:
    consumed: list[int] = []

    def endless() -> Iterator[Event]:
        for i in itertools.count():
            consumed.append(i)
            yield ev("keyboard" if i % 3 else "screen", i * 7, i)

    bins = bin_events(endless(), 0, None, 100, STATE, ACTIONS)
    first = list(itertools.islice(bins, 3))
    assert [b.bin_idx for b in first] == [0, 1, 2]
    assert max(consumed) * 7 < 400  # nothing read past the event that opened bin 3


# ---------------------------------------------------------------------------------------
# property: random streams and rates against a brute-force model
# ---------------------------------------------------------------------------------------
TOPICS = ["screen", "keyboard", "mouse", "mouse/raw", "window", "keyboard/state"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Event], int, int, int | None, bool]:
    n = draw(st.integers(0, 60))
    gaps = draw(st.lists(st.integers(0, 400), min_size=n, max_size=n))
    topics = draw(st.lists(st.sampled_from(TOPICS), min_size=n, max_size=n))
    start = draw(st.integers(0, 10**12))
    lead = draw(st.integers(0, 300))
    fps = draw(
        st.one_of(st.integers(1, 50).map(lambda x: x * 1e6), st.floats(1e5, 5e7))
    )  # 20 ns .. 10 us bins
    period = period_ns_of(fps)
    times = list(itertools.accumulate(gaps, initial=start + lead))[1:]
    events = [ev(topic, t, i) for i, (topic, t) in enumerate(zip(topics, times))]
    end = None
    if draw(st.booleans()):
        end = (times[-1] if times else start) + 1 + draw(st.integers(0, 500))
    return events, start, period, end, draw(st.booleans())


def model(
    events: list[Event], start: int, period: int, end: int | None
) -> list[tuple[int, list[int], list[int]]]:
    """Every bin (nothing dropped) as (bin_idx, state indices, action indices), by brute force."""
    last = end - 1 if end is not None else (events[-1].timestamp_ns if events else None)
    if last is None:
        return []
    out = []
    for k in range((last - start) // period + 1):
        s = start + k * period
        actions = [e.index for e in events if e.topic in ACTIONS and s <= e.timestamp_ns < s + period]
        before = [e for e in events if e.topic in STATE and e.timestamp_ns <= s]
        out.append((k, [before[-1].index] if before else [], actions))
    return out


@settings(max_examples=200, deadline=None)
@given(streams())
def test_bins_match_the_brute_force_model(case: tuple[list[Event], int, int, int | None, bool]) -> None:
    events, start, period, end, drop = case
    bins, stats = run(events, start, period, end, drop=drop)
    got = [(b.bin_idx, [e.index for e in b.state], [e.index for e in b.actions]) for b in bins]
    expected = model(events, start, period, end)
    kept = [b for b in expected if b[2]] if drop else expected
    assert got == kept
    for b in bins:
        assert b.start_ns == start + b.bin_idx * period and b.end_ns == b.start_ns + period
        assert all(e.timestamp_ns <= b.start_ns for e in b.state)  # never from the future
        assert all(b.start_ns <= e.timestamp_ns < b.end_ns for e in b.actions)
    # every action event lands in exactly one bin
    placed = [e.index for b in bins for e in b.actions]
    assert sorted(placed) == [e.index for e in events if e.topic in ACTIONS]
    # the account balances, and matches the model
    assert not stats.unaccounted()
    assert sum(stats.events_in.values()) == len(events)
    assert sum(sum(getattr(stats, f).values()) for f in FATES) == len(events)
    assert stats.bins == len(bins) and stats.bins + stats.empty_bins_dropped == len(expected)
    emitted_states = {i for _, s, _ in kept for i in s}
    any_states = {i for _, s, _ in expected for i in s}
    assert sum(stats.state.values()) == len(emitted_states)
    assert sum(stats.state_only_in_dropped_bins.values()) == len(any_states - emitted_states)
    assert stats.not_binned == {
        t: n for t in ("window", "keyboard/state") if (n := sum(e.topic == t for e in events))
    }


def test_a_long_stretch_without_events_is_an_error_before_any_bin_is_made() -> None:
    week = 7 * 24 * 3600 * 1_000_000_000
    events = [ev("keyboard", 0, 0), ev("keyboard", week, 1)]
    period = 100_000_000  # 10 fps: a week would be ~6 million bins
    with pytest.raises(EmptyRunError, match=r"6047999 consecutive bins .* hold no event at all"):
        run_limited(events, period, max_empty_run=36_000)
    # dropped empty bins cost nothing, whatever the stretch
    bins, stats = run(events, 0, period, drop=True)
    assert [b.bin_idx for b in bins] == [0, week // period] and stats.empty_bins_dropped == week // period - 1
    # within the bound, every empty bin is made
    short = [ev("keyboard", 0, 0), ev("keyboard", 36_000 * period, 1)]
    assert len(run_limited(short, period, max_empty_run=36_000)) == 36_001


def run_limited(events: list[Event], period: int, max_empty_run: int) -> list[Bin]:
    return list(bin_events(iter(events), 0, None, period, STATE, ACTIONS, max_empty_run=max_empty_run))
