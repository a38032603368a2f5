"""Fixed-rate bins over one episode's events: a pure, streaming function.

Bin ``k`` of an episode covers ``[start_ns + k * period_ns, start_ns + (k + 1) * period_ns)``
(integer ns, so boundaries never drift, however long the episode). A bin holds:

* ``state``: per state topic, the latest event of that topic with ``timestamp_ns <= bin start``
  (possibly from an earlier bin; the topic is absent while none has been seen). Never from the
  future of the bin start. Ties (several events at the same time) go to the last one in the stream.
* ``actions``: every action-topic event with ``bin start <= timestamp_ns < bin end``, in stream
  (time) order. An event exactly at a bin start belongs to that bin.

Every action event lands in exactly one bin. Every event that goes in has exactly one fate
(:data:`FATES`), counted in an :class:`~owa_event.account.Account`.

Memory is bounded by one bin: the open bin's actions, the latest state event per topic and the
state events superseded since the last bin closed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from owa_event.account import Account
from owa_event.events import Event, EventOrderError

from .errors import EmptyRunError

RULE_STATE_UNUSED = "state_unused"
RULE_STATE_ONLY_IN_DROPPED_BINS = "state_only_in_dropped_bins"
RULE_NOT_BINNED = "not_binned"
#: Fates of an event (every event that goes in has exactly one). ``action`` and ``state`` (the state
#: of at least one emitted bin) are output (``Account.emit``); the others are drops under that rule:
#: ``state_only_in_dropped_bins`` (the state only of bins dropped as empty), ``state_unused`` (the
#: state of no bin: a later event of its topic came before the next bin start, e.g. a 20 fps screen
#: binned at 10 fps, or it came after the last bin's start) and ``not_binned`` (neither a state nor
#: an action topic, e.g. ``window``).
FATES = ("action", "state", RULE_STATE_ONLY_IN_DROPPED_BINS, RULE_STATE_UNUSED, RULE_NOT_BINNED)


@dataclass
class Bin:
    """One bin: ``bin_idx`` counts from the episode start (kept even when empty bins are dropped)."""

    bin_idx: int
    start_ns: int
    end_ns: int
    state: list[Event]
    actions: list[Event]


@dataclass
class BinCounts:
    """Bins of one or more :func:`bin_events` runs (what happened to *events* is in the Account)."""

    episodes: int = 0
    bins: int = 0
    """Bins emitted."""
    empty_bins_dropped: int = 0
    """Bins without actions that were not emitted (``drop_empty``)."""


class _Held:
    """A state event and whether it was the state of an emitted / a dropped bin."""

    __slots__ = ("event", "emitted", "dropped")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.emitted = False
        self.dropped = False


def _retire(held: _Held, account: Account) -> None:
    topic = held.event.topic
    if held.emitted:
        account.emit(topic)
    elif held.dropped:
        account.drop(RULE_STATE_ONLY_IN_DROPPED_BINS, topic)
    else:
        account.drop(RULE_STATE_UNUSED, topic)


def check_period(period_ns: int) -> None:
    """:class:`ValueError` unless ``period_ns`` (a bin's length) is a positive int (not a bool)."""
    if isinstance(period_ns, bool) or not isinstance(period_ns, int) or period_ns < 1:
        raise ValueError(f"period_ns must be a positive integer (ns), got {period_ns!r}")


def check_roles(state_topics: Sequence[str], action_topics: Sequence[str]) -> None:
    """:class:`ValueError` when a topic is both a state and an action topic."""
    overlap = set(state_topics) & set(action_topics)
    if overlap:
        raise ValueError(f"topics {sorted(overlap)} are both state and action topics")


def bin_events(
    events: Iterable[Event],
    start_ns: int,
    end_ns: int | None,
    period_ns: int,
    state_topics: Sequence[str],
    action_topics: Sequence[str],
    account: Account | None = None,
    counts: BinCounts | None = None,
    *,
    drop_empty: bool = False,
    max_empty_run: int | None = None,
) -> Iterator[Bin]:
    """The bins of one episode's time-ordered ``events``, streamed.

    Bins start at ``start_ns``. With ``end_ns=None`` they run through the bin holding the last
    event (of any topic); with an ``end_ns`` they cover ``[start_ns, end_ns)`` (the last bin may
    reach past it), also when empty, and every event must be before ``end_ns``. ``state`` lists
    the latest event of each state topic, in ``state_topics`` order. With ``drop_empty`` bins
    without actions are not emitted (counted in ``counts.empty_bins_dropped``; long gaps cost
    O(1), not one step per bin). Without ``drop_empty``, a run of more than ``max_empty_run``
    consecutive bins without any event (a stretch the bins would fill one by one) raises
    :class:`EmptyRunError` before any of them is made, so the cost always follows the data.
    ``account`` gets each event's fate (:data:`FATES`); counting the
    events that go in is the caller's. Raises :class:`ValueError` for an event before ``start_ns``,
    at or after ``end_ns``, or earlier than the event before it.
    """
    check_period(period_ns)
    if end_ns is not None and end_ns < start_ns:
        raise ValueError(f"end_ns {end_ns} is before start_ns {start_ns}")
    check_roles(state_topics, action_topics)
    account = account if account is not None else Account()
    stats = counts if counts is not None else BinCounts()
    stats.episodes += 1
    state_order = {topic: i for i, topic in enumerate(dict.fromkeys(state_topics))}
    actions_set = frozenset(action_topics)

    current: dict[str, _Held] = {}  # topic -> latest state event so far
    retired: list[_Held] = []  # superseded since the last bin closed (may be in the open bin's state)
    next_k = 0  # the first bin not yet emitted or dropped
    open_k = -1  # the open bin (-1: none)
    open_state: dict[str, _Held] = {}
    open_actions: list[Event] = []
    open_end = start_ns
    last_t = start_ns

    def state_list(held: dict[str, _Held]) -> list[Event]:
        return [h.event for _, h in sorted(held.items(), key=lambda kv: state_order[kv[0]])]

    def close(k: int, held: dict[str, _Held], actions: list[Event]) -> Bin | None:
        """Emit (return) or drop bin ``k``; marks its state events."""
        if drop_empty and not actions:
            stats.empty_bins_dropped += 1
            for h in held.values():
                h.dropped = True
            return None
        stats.bins += 1
        for h in held.values():
            h.emitted = True
        start = start_ns + k * period_ns
        return Bin(k, start, start + period_ns, state_list(held), actions)

    def gap(until_k: int) -> Iterator[Bin]:
        """Empty bins ``next_k .. until_k - 1`` (no event in them: their state is ``current``)."""
        nonlocal next_k
        n = until_k - next_k
        if n <= 0:
            return
        if drop_empty:
            stats.empty_bins_dropped += n
            for h in current.values():
                h.dropped = True
            next_k = until_k
            return
        if max_empty_run is not None and n > max_empty_run:
            first = start_ns + next_k * period_ns
            raise EmptyRunError(
                f"{n} consecutive bins from {first} ns ({n * period_ns / 1e9:.0f} s) hold no event at all: more than "
                f"the {max_empty_run} empty bins allowed in a row; set drop_empty_bins=True, cut the episode with "
                f"an Inactivity interval, or raise max_gap_s"
            )
        for k in range(next_k, until_k):
            next_k = k + 1
            b = close(k, current, [])
            assert b is not None
            yield b

    for event in events:
        t = event.timestamp_ns
        if t < last_t:
            where = "the episode start" if t < start_ns else "the event before it"
            limit = start_ns if t < start_ns else last_t
            raise EventOrderError(
                f"event {event.index} ({event.topic!r} at {t}) is before {where} ({limit}): "
                f"events must be time-ordered and at or after start_ns"
            )
        if end_ns is not None and t >= end_ns:
            raise EventOrderError(
                f"event {event.index} ({event.topic!r} at {t}) is at or after end_ns ({end_ns})"
            )
        last_t = t
        topic = event.topic
        if t >= open_end:  # the event opens a new bin
            k = (t - start_ns) // period_ns
            if open_k >= 0:
                b = close(open_k, open_state, open_actions)
                next_k = open_k + 1
                for h in retired:
                    _retire(h, account)
                retired = []
                if b is not None:
                    yield b
            yield from gap(k)
            open_k, open_state, open_actions = k, dict(current), []
            open_end = start_ns + (k + 1) * period_ns
        if topic in actions_set:
            open_actions.append(event)
            account.emit(topic)
        elif topic in state_order:
            held = _Held(event)
            old = current.get(topic)
            if old is not None:
                retired.append(old)
            current[topic] = held
            if t == open_end - period_ns:  # exactly at the open bin's start: its state
                open_state[topic] = held
        else:
            account.drop(RULE_NOT_BINNED, topic)
    if open_k >= 0:
        b = close(open_k, open_state, open_actions)
        next_k = open_k + 1
        if b is not None:
            yield b
    if end_ns is not None:
        yield from gap(-(-(end_ns - start_ns) // period_ns))  # ceil: bins until one reaches end_ns
    for h in retired:
        _retire(h, account)
    for h in current.values():
        _retire(h, account)


def period_ns_of(fps: float) -> int:
    """The bin length in integer ns for ``fps`` bins per second: ``round(1e9 / fps)``."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    period = round(1e9 / fps)
    if period < 1:
        raise ValueError(f"fps {fps} gives bins shorter than 1 ns")
    return int(period)
