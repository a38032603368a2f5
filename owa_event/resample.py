"""Per-topic rate limiting of one time-ordered event stream.

:func:`resample` takes the events of ONE episode (all topics merged, in time order) and a
mapping ``topic -> rate`` in Hz, and yields a thinned stream. ``P = 1e9 / rate`` is the
period in ns. A topic that is missing from the mapping or has rate ``0`` is passed through
untouched (the very same :class:`~owa_event.events.Event` objects); with an empty mapping
the output is exactly the input. Negative or non-finite rates raise :class:`ValueError`.

Guarantees
    * The output is in time order (non-decreasing ``timestamp_ns``) and is a subsequence of
      the input, except that summed ``mouse/raw`` moves are emitted as one new event.
    * The sum of ``last_x`` and of ``last_y`` over relative ``mouse/raw`` events is exactly
      preserved: raw motion is merged, never lost.
    * Call once per episode (interval): at the end of the input everything pending is
      flushed, so nothing leaks from one episode into the next.
    * A dropped event never flushes or otherwise affects another topic.
    * Input that goes back in time raises :class:`ValueError` (naming the event).

Rules
    ``mouse/raw`` (relative deltas)
        Consecutive *pure relative moves* (``button_flags == 0``, ``us_flags == 0`` and int
        ``last_x``/``last_y`` within +-2**31) are summed; any other raw event passes unchanged. An accumulation starts at a move at time ``t0`` and absorbs the following
        moves with ``timestamp_ns < t0 + P``. The pending sum is emitted as ONE event -- the
        LAST absorbed move (its timestamp and other fields) with ``last_x``/``last_y``
        replaced by the sums; an accumulation of a single move is emitted unchanged -- when
        a move at ``>= t0 + P`` arrives (which starts a new accumulation), when a non-pure
        ``mouse/raw`` event arrives (button/wheel events and absolute moves, which always
        pass immediately, after the flushed sum), and at the end of the input. Absorbed
        moves are counted as merged in the :class:`~owa_event.account.Account`.
    ``mouse`` (absolute)
        Moves (``event_type == "move"``) keep only the latest per period: the first move at
        ``t0`` opens a period ``[t0, t0 + P)``; later moves in the period replace the pending
        one (the replaced move is dropped, rule ``"mouse_latest_per_period"``). The pending
        move is emitted when a move at ``>= t0 + P`` arrives (which opens a new period),
        before any click/scroll (which always pass immediately), and at the end of the
        input. After any flush the next move opens a new period (raw accumulations likewise
        restart).
    ``keyboard`` (rate > 0)
        Held keys (``vk``, an int) are tracked; an event whose ``vk`` is not an int passes
        unchanged and is not tracked. A press of a key that is already held (no release
        since) is an OS auto-repeat and is dropped (rule ``"keyboard_autorepeat"``). With
        ``keyboard_repeat=True`` a repeat press is kept instead if at least ``P`` ns have
        passed since the last emitted press of that key. Releases always pass and un-hold
        the key; a release of a key that is not held passes too. The rate only matters for
        ``keyboard_repeat``; any rate > 0 enables auto-repeat filtering.
    any other topic (``screen``, ``window``, ``keyboard/state``, ``mouse/state``, unknown)
        At most one event per period, robust to jitter: the first event is kept, and
        ``due = t0 + P/2``; a later event at ``t`` is kept iff ``t >= due``, and then
        ``due = max(due + P, t + P/2)``. Other events are dropped (rule ``"rate_limit"``).
        A source at exactly the rate with jitter < P/4 keeps every event; kept events are at
        least ``P/2`` apart; any closed window of length ``T`` holds at most ``T/P + 3/2``
        kept events (so the long-run rate never exceeds the limit). The tighter ``T/P + 1``
        cannot hold together with the jitter guarantee: two frames ``P/2`` apart (jitter
        +P/4 then -P/4) must both be kept.

Time order with pending events: events of other topics are not a reason to flush. While a
``mouse/raw`` sum or a ``mouse`` move is pending, later events of other topics wait in a small
buffer (at most one period's worth) and are released in input order, with each pending event
placed where its LAST absorbed/kept move was. So ``mouse`` and ``mouse/raw`` limited together
both reach their rates, and the output is always the input order restricted to what is kept.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from heapq import heappop, heappush

from owa_event.account import Account
from owa_event.events import (
    KEYBOARD,
    MOUSE,
    MOUSE_RAW,
    Event,
    EventOrderError,
    Move,
    is_pure_move,
    move_event,
)

__all__ = ["RULE_AUTOREPEAT", "RULE_MOUSE_LATEST", "RULE_RATE_LIMIT", "resample"]

RULE_MOUSE_LATEST = "mouse_latest_per_period"
RULE_AUTOREPEAT = "keyboard_autorepeat"
RULE_RATE_LIMIT = "rate_limit"


def _period_ns(topic: str, rate: float) -> float:
    """Period in ns for ``rate`` in Hz (0 = unlimited); rejects negative / non-finite rates."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"rate for topic {topic!r} must be a number in Hz, got {rate!r}")
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate for topic {topic!r} must be finite and >= 0 Hz, got {rate!r}")
    return 1e9 / rate if rate > 0 else 0.0


class _Resampler:
    """Streaming state of one :func:`resample` call.

    Every input event gets its arrival number ``seq``. Emitted events wait in a heap keyed by
    ``(timestamp_ns, seq)`` and are released while their key is below every pending event's
    key (a pending raw sum or mouse move is keyed by its latest move), so the output is the
    input order restricted to kept events, with merged events at their last move's place.
    """

    __slots__ = (
        "account", "due", "held", "keyboard_repeat", "last_press", "mouse_pending", "mouse_seq", "mouse_t0",
        "periods", "raw_count", "raw_last", "raw_seq", "raw_sum_x", "raw_sum_y", "raw_t0", "ready", "seq",
    )  # fmt: skip

    def __init__(self, periods: dict[str, float], keyboard_repeat: bool, account: Account) -> None:
        self.periods = periods
        self.keyboard_repeat = keyboard_repeat
        self.account = account
        self.seq = 0
        self.ready: list[tuple[int, int, Event]] = []  # heap of (timestamp_ns, seq, event)
        # Pending raw-mouse accumulation.
        self.raw_t0 = 0
        #: The last absorbed move: an Event, or a Move tuple (made into an Event on flush).
        self.raw_last: Event | Move | None = None
        self.raw_seq = 0
        self.raw_sum_x = 0
        self.raw_sum_y = 0
        self.raw_count = 0
        # Pending absolute-mouse move.
        self.mouse_t0 = 0
        self.mouse_pending: Event | None = None
        self.mouse_seq = 0
        # Keyboard: held vk -> time of its last emitted press.
        self.held: set[object] = set()
        self.last_press: dict[object, int] = {}
        # Generic rate limit: topic -> due time (ns) of the next keepable event.
        self.due: dict[str, float] = {}

    # -- pending state -------------------------------------------------------------------
    def _ready(self, ev: Event, seq: int) -> None:
        heapq.heappush(self.ready, (ev.timestamp_ns, seq, ev))

    def flush_raw(self) -> None:
        last = self.raw_last
        if type(last) is tuple:
            last = move_event(last)
        if last is not None:
            if self.raw_count > 1:
                last = last.replace(last_x=self.raw_sum_x, last_y=self.raw_sum_y)
            self._ready(last, self.raw_seq)
            self.account.merge(MOUSE_RAW, self.raw_count - 1)
            self.raw_last = None

    def flush_mouse(self) -> None:
        if self.mouse_pending is not None:
            self._ready(self.mouse_pending, self.mouse_seq)
            self.mouse_pending = None

    def release(self, out: list[Event], final: bool = False) -> None:
        """Move every ready event that no pending event can precede into ``out``."""
        if final:
            self.flush_raw()
            self.flush_mouse()
        if not self.ready:
            return
        bound: tuple[int, int] | None = None
        last = self.raw_last
        if last is not None:
            bound = (last[0] if type(last) is tuple else last.timestamp_ns, self.raw_seq)
        if self.mouse_pending is not None:
            key = (self.mouse_pending.timestamp_ns, self.mouse_seq)
            bound = key if bound is None or key < bound else bound
        ready = self.ready
        while ready and (bound is None or (ready[0][0], ready[0][1]) < bound):
            out.append(heapq.heappop(ready)[2])

    # -- one event -----------------------------------------------------------------------
    def push(self, ev: Event) -> None:
        """Process one event (its outcome is released by :meth:`release`)."""
        self.seq += 1
        topic = ev.topic
        period = self.periods.get(topic, 0.0)
        if period <= 0:
            self._ready(ev, self.seq)
        elif topic == MOUSE_RAW:
            self._push_raw(ev, period)
        elif topic == MOUSE:
            self._push_mouse(ev, period)
        elif topic == KEYBOARD:
            self._push_keyboard(ev, period)
        else:
            self._push_generic(ev, period)

    def _push_raw(self, ev: Event, period: float) -> None:
        if not is_pure_move(ev.fields):
            self.flush_raw()
            self._ready(ev, self.seq)
            return
        t = ev.timestamp_ns
        if self.raw_last is not None and t < self.raw_t0 + period:
            self.raw_last = ev
            self.raw_seq = self.seq
            self.raw_sum_x += ev.fields.get("last_x", 0)
            self.raw_sum_y += ev.fields.get("last_y", 0)
            self.raw_count += 1
            return
        self.flush_raw()
        self.raw_t0 = t
        self.raw_last = ev
        self.raw_seq = self.seq
        self.raw_sum_x = ev.fields.get("last_x", 0)
        self.raw_sum_y = ev.fields.get("last_y", 0)
        self.raw_count = 1

    def _push_mouse(self, ev: Event, period: float) -> None:
        if ev.fields.get("event_type") != "move":
            self.flush_mouse()
            self._ready(ev, self.seq)
            return
        t = ev.timestamp_ns
        if self.mouse_pending is not None and t < self.mouse_t0 + period:
            self.mouse_pending = ev
            self.mouse_seq = self.seq
            self.account.drop(RULE_MOUSE_LATEST, MOUSE)
            return
        self.flush_mouse()
        self.mouse_t0 = t
        self.mouse_pending = ev
        self.mouse_seq = self.seq

    def _push_keyboard(self, ev: Event, period: float) -> None:
        f = ev.fields
        vk = f.get("vk")
        if type(vk) is not int:  # not a key code (a list, a string, ...): passed through, never tracked
            self._ready(ev, self.seq)
            return
        kind = f.get("event_type")
        if kind == "release":
            self.held.discard(vk)
        elif kind == "press":
            t = ev.timestamp_ns
            if vk in self.held:
                if not (self.keyboard_repeat and t - self.last_press[vk] >= period):
                    self.account.drop(RULE_AUTOREPEAT, KEYBOARD)
                    return
            self.held.add(vk)
            self.last_press[vk] = t
        self._ready(ev, self.seq)

    def _push_generic(self, ev: Event, period: float) -> None:
        topic = ev.topic
        t = ev.timestamp_ns
        due = self.due.get(topic)
        if due is None:
            self.due[topic] = t + period / 2
        elif t >= due:
            self.due[topic] = max(due + period, t + period / 2)
        else:
            self.account.drop(RULE_RATE_LIMIT, topic)
            return
        self._ready(ev, self.seq)


def resample(
    events: Iterable[Event | Move | list[Move]],
    rates: Mapping[str, float],
    *,
    keyboard_repeat: bool = False,
    account: Account | None = None,
) -> Iterator[Event]:
    """Rate-limit ``events`` (one episode, time-ordered, all topics) per topic.

    ``rates`` maps topic -> Hz (missing or 0 = keep every event). See the module docstring
    for the rules. Rates are validated eagerly (:class:`ValueError` for negative or
    non-finite ones); a decrease of ``timestamp_ns`` in the input raises :class:`ValueError`
    while iterating. ``account``, if given, gets every drop (``rule, topic``) and every merged raw
    mouse move as the output is consumed (input and output are the caller's to count).

    The input may hold :data:`~owa_event.events.Move` tuples (a read's pure raw moves), alone or in
    lists of consecutive ones, among the events: the output is the same as for their Events
    (:func:`~owa_event.events.move_event`); only the moves that are emitted are made into Events.
    """
    periods = {topic: _period_ns(topic, rate) for topic, rate in rates.items()}
    return _run(events, periods, keyboard_repeat, account if account is not None else Account())


def _run(
    events: Iterable[Event | Move | list[Move]],
    periods: dict[str, float],
    keyboard_repeat: bool,
    account: Account,
) -> Iterator[Event]:
    state = _Resampler(periods, keyboard_repeat, account)
    out: list[Event] = []
    ready = state.ready
    raw_period = periods.get(MOUSE_RAW, 0.0)
    raw_topic = MOUSE_RAW if raw_period > 0 else None
    limited = frozenset(topic for topic, period in periods.items() if period > 0)
    generic = limited - {MOUSE_RAW, MOUSE, KEYBOARD}  # topics under the generic rate limit
    dues = state.due
    prev_t = -(2**63)
    # The pending raw accumulation lives in locals while moves are absorbed (the hot case) and is
    # written back to ``state`` before anything else reads it (``synced`` says whether it is there).
    raw_end = -math.inf  # raw_t0 + raw_period of the pending accumulation (-inf: none pending)
    raw_last: Event | Move | None = None
    seq = raw_seq = sum_x = sum_y = count = raw_t0 = 0
    synced = True

    def sync() -> None:
        nonlocal synced
        state.seq, state.raw_last, state.raw_seq = seq, raw_last, raw_seq
        state.raw_sum_x, state.raw_sum_y, state.raw_count = sum_x, sum_y, count
        state.raw_t0 = raw_t0
        synced = True

    def general(ev: Event) -> None:
        """One event by the rules (``state``; its outcome, if released, in ``out``)."""
        nonlocal seq, raw_last, raw_seq, sum_x, sum_y, count, raw_t0, raw_end, synced
        if raw_last is not None:
            # While a raw sum is pending nothing after it can be released: a topic kept whole, or one
            # under the generic rate limit, is handled inline (what push, _push_generic and release do).
            topic = ev.topic
            if topic not in limited:
                seq += 1
                heappush(ready, (ev.timestamp_ns, seq, ev))
                synced = False
                return
            if topic in generic:
                seq += 1
                synced = False
                t, period = ev.timestamp_ns, periods[topic]
                due = dues.get(topic)
                if due is None:
                    dues[topic] = t + period / 2
                elif t >= due:
                    dues[topic] = max(due + period, t + period / 2)
                else:
                    account.drop(RULE_RATE_LIMIT, topic)
                    return
                heappush(ready, (t, seq, ev))
                return
        if not synced:
            sync()
        state.push(ev)
        state.release(out)
        seq, raw_last, raw_seq = state.seq, state.raw_last, state.raw_seq
        sum_x, sum_y, count, raw_t0 = state.raw_sum_x, state.raw_sum_y, state.raw_count, state.raw_t0
        raw_end = raw_t0 + raw_period if raw_last is not None and raw_topic is not None else -math.inf

    for ev in events:
        if type(ev) is not Event:  # Moves: pure relative raw moves (checked by the read), a run or one
            for move in ev if type(ev) is list else (ev,):
                t = move[0]
                if t < prev_t:
                    raise EventOrderError(
                        f"events out of time order: event #{move[5]} on {MOUSE_RAW!r} at {t} ns "
                        f"comes after one at {prev_t} ns"
                    )
                prev_t = t
                if t < raw_end:  # absorbed into the pending sum: the hot case
                    seq += 1
                    raw_last, raw_seq = move, seq
                    sum_x += move[1]
                    sum_y += move[2]
                    count += 1
                    synced = False
                elif raw_topic is not None:
                    # A new accumulation starts at this move; the pending one is flushed (what push,
                    # _push_raw and flush_raw do, inline).
                    seq += 1
                    if raw_last is not None:
                        last = move_event(raw_last) if type(raw_last) is tuple else raw_last
                        if count > 1:
                            last = last.replace(last_x=sum_x, last_y=sum_y)
                        heappush(ready, (last.timestamp_ns, raw_seq, last))
                        account.merge(MOUSE_RAW, count - 1)
                    raw_t0, raw_end = t, t + raw_period
                    raw_last, raw_seq, sum_x, sum_y, count = move, seq, move[1], move[2], 1
                    synced = False
                else:  # raw moves are not summed
                    general(move_event(move))
                    if out:
                        yield from out
                        out.clear()
                    continue
                # The pending sum is now at this move: what waits keyed below it can go out.
                if ready and (ready[0][0] < t or (ready[0][0] == t and ready[0][1] < seq)):
                    if state.mouse_pending is None:  # the bound is this move: release inline
                        while ready and (ready[0][0] < t or (ready[0][0] == t and ready[0][1] < seq)):
                            yield heappop(ready)[2]
                    else:
                        sync()
                        state.release(out)
                        yield from out
                        out.clear()
            continue
        t = ev.timestamp_ns
        if t < prev_t:
            raise EventOrderError(
                f"events out of time order: event #{ev.index} on {ev.topic!r} at {t} ns "
                f"comes after one at {prev_t} ns"
            )
        prev_t = t
        general(ev)
        if out:
            yield from out
            out.clear()
    if not synced:
        sync()
    state.release(out, final=True)
    yield from out
