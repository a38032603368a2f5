"""Fixed-rate bins computed on columns: the binned stage's lossless path, without an Event per message.

:func:`bin_batches` gives, for one episode read as :class:`~owa_event.reader.MessageBatch` es (the
lossless read, :meth:`owa_event.reader.Recording.message_batches`), exactly what
:func:`owa_binned.bins.bin_events` gives for the Events of the same messages with ``end_ns=None`` and
the bins starting at the first message: the same bins (index, start, state and action messages as
McapMessage JSON, byte for byte), every message's fate in the account, the same :class:`BinCounts`
and the same errors (:class:`~owa_binned.errors.EmptyRunError`, time order). ``bin_events`` stays the
reference and the path of every other config (tests/test_binned_columnar.py compares the two).

Everything is done per chunk group on arrays: the bin of each message is ``(t - start) // period``
(integer ns); actions are grouped into bins by offsets into one binary array
(:func:`owa_event.events.mcap_message_array`); a bin's state is found per state topic by a binary
search of the bin start among that topic's times (``side="right"``: ties go to the last message);
a state message's fate follows from the range of bins it is the state of, ``[ceil of its time,
ceil of the next message of its topic)`` in bins.

Streaming and memory: the messages of the last (open) bin of a chunk group are held back and
binned with the next group; besides, one message per state topic (the latest, with its fate so far)
is carried. Memory is one chunk group plus one bin, and bins are made ``max_bins`` at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from owa_event.account import Account
from owa_event.events import EventOrderError, mcap_message_array
from owa_event.reader import MessageBatch

from .bins import (
    RULE_NOT_BINNED,
    RULE_STATE_ONLY_IN_DROPPED_BINS,
    RULE_STATE_UNUSED,
    BinCounts,
    check_period,
    check_roles,
)
from .errors import EmptyRunError

#: Role codes per message beyond the state topics' positions ``0 .. len(state topics) - 1``.
_ACTION = -1
_OTHER = -2


class BinChunk(NamedTuple):
    """Consecutive emitted bins of one episode, as columns (``bin_idx`` increasing)."""

    bin_idx: np.ndarray
    """int64, counts from the episode start."""
    start_ns: np.ndarray
    """int64, each bin's start (ns): episode start + ``bin_idx`` * period."""
    state: pa.ListArray
    """list<binary>: McapMessage JSON of the latest state message of each state topic at or before the
    start, in state-topic order."""
    actions: pa.ListArray
    """list<binary>: McapMessage JSON of the action messages in ``[start, start + period)``, in time order."""


class _Pending(NamedTuple):
    """The latest state message of one topic binned so far, and whether it was the state of an
    emitted / a dropped bin yet."""

    time: int
    message: pa.Array  # length 1
    emitted: bool
    dropped: bool


def bin_batches(
    batches: Iterable[MessageBatch],
    period_ns: int,
    state_topics: Sequence[str],
    action_topics: Sequence[str],
    account: Account | None = None,
    counts: BinCounts | None = None,
    *,
    drop_empty: bool = False,
    max_empty_run: int | None = None,
    max_bins: int = 65536,
) -> Iterator[BinChunk]:
    """The bins of one episode given as time-ordered message batches, streamed as :class:`BinChunk` s
    of at most ``max_bins`` bins: :func:`owa_binned.bins.bin_events` of the same messages with
    ``start_ns`` = the first message's time and ``end_ns=None`` (see its docstring for the rules).
    Nothing (no episode) for batches without a message. ``account`` gets each message's fate;
    counting what goes in is the caller's. The messages span less than ``2**62`` ns (146 years; a
    recording's log times lie in 2000-2100)."""
    check_period(period_ns)
    check_roles(state_topics, action_topics)
    binner = _Binner(
        period_ns,
        list(dict.fromkeys(state_topics)),
        frozenset(action_topics),
        account if account is not None else Account(),
        counts if counts is not None else BinCounts(),
        drop_empty,
        max_empty_run,
        max(1, max_bins),
    )
    for batch in batches:
        if len(batch.times):
            yield from binner.add(batch)
    yield from binner.finish()


class _Binner:
    """The state of :func:`bin_batches` between chunk groups."""

    def __init__(
        self,
        period: int,
        states: list[str],
        actions: frozenset[str],
        account: Account,
        counts: BinCounts,
        drop_empty: bool,
        max_empty_run: int | None,
        max_bins: int,
    ) -> None:
        self.period, self.states, self.actions = period, states, actions
        # for int64 arithmetic: a longer bin than 2**62 ns holds any episode (spans are < 2**62 ns) in bin 0
        self.np_period = min(period, 2**62)
        self.account, self.counts = account, counts
        self.drop_empty, self.max_empty_run, self.max_bins = drop_empty, max_empty_run, max_bins
        self.channels: list[tuple[int, str, str]] | None = None
        self.started = False
        self.start = 0
        self.next_k = 0  # the first bin not yet emitted or dropped
        self.index = 0  # position (in the episode's read) of the first held message
        self.pending: list[_Pending | None] = [None] * len(states)
        # the held-back messages (those of the open bin ``held_k``), in segments (one per batch, joined once
        # a bin completes: a bin spanning many batches costs no repeated copies): times, channel index, JSON
        self.held: list[tuple[np.ndarray, np.ndarray, pa.Array]] = []
        self.held_k: int | None = None

    def _set_channels(self, channels: list[tuple[int, str, str]]) -> None:
        self.channels = channels
        order = {topic: i for i, topic in enumerate(self.states)}
        self.topics = [topic for _, topic, _ in channels]
        self.pairs = [(topic, mtype) for _, topic, mtype in channels]
        roles = [order.get(t, _ACTION if t in self.actions else _OTHER) for t in self.topics]
        self.role_of = np.array(roles, np.int16)

    def add(self, batch: MessageBatch) -> Iterator[BinChunk]:
        if batch.channels is not self.channels:
            if self.channels is not None and self.held:  # held messages refer to the old channels
                raise ValueError("every batch of one episode must come from one read (the same channel list)")
            self._set_channels(batch.channels)
        times = batch.times.to_numpy()
        cidx = np.asarray(batch.channel_index.to_numpy(zero_copy_only=False), np.int32)
        json = mcap_message_array(self.pairs, batch.channel_index, batch.times, batch.payloads)
        # actions are output and other topics are not binned, whatever their bins: counted at once
        per_channel = np.bincount(cidx, minlength=len(self.topics))
        for c in np.flatnonzero(per_channel):
            role = self.role_of[c]
            if role == _ACTION:
                self.account.emit(self.topics[c], int(per_channel[c]))
            elif role == _OTHER:
                self.account.drop(RULE_NOT_BINNED, self.topics[c], int(per_channel[c]))
        if not self.started:  # the episode's first message: the first bin starts at it
            self.started = True
            self.counts.episodes += 1
            self.start = int(times[0])
        self.held.append((times, cidx, json))
        if self.held_k is not None and (int(times[-1]) - self.start) // self.np_period == self.held_k:
            return  # still the open bin: nothing completes (order is checked when the bin is binned)
        yield from self._round(*self._take_held(), final=False)

    def finish(self) -> Iterator[BinChunk]:
        if self.held:
            yield from self._round(*self._take_held(), final=True)

    def _take_held(self) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        held, self.held = self.held, []
        if len(held) == 1:
            return held[0]
        times, cidx, json = zip(*held, strict=True)
        return np.concatenate(times), np.concatenate(cidx), pa.concat_arrays(json)

    def _round(self, t: np.ndarray, cidx: np.ndarray, json: pa.Array, *, final: bool) -> Iterator[BinChunk]:
        """Bin the messages ``t`` (the held ones first): every bin before the last message's (through
        it when ``final``); hold the rest back."""
        disorder = self._order_error(t, cidx)
        if disorder is not None:  # bin what came before it (the bins it closed), then raise
            i, order_error = disorder
            t, cidx, json, final = t[:i], cidx[:i], json.slice(0, i), False
        period, start, next_k = self.np_period, self.start, self.next_k
        k = (t - start) // period
        k_end = int(k[-1]) + 1 if final else int(k[-1])
        cut = len(t) if final else int(np.searchsorted(k, k_end, "left"))
        if cut < len(t):
            self.held, self.held_k = [(t[cut:], cidx[cut:], json.slice(cut))], k_end
        error: Exception | None = None if disorder is None else order_error
        if cut == 0:  # one bin so far: nothing is complete
            if error is not None:
                raise error
            return
        if not self.drop_empty and self.max_empty_run is not None:
            starts_at = np.flatnonzero(np.diff(k)) + 1  # where a new occupied bin begins
            occupied = k[np.concatenate([[0], starts_at])]
            bad = np.flatnonzero(np.diff(occupied) - 1 > self.max_empty_run)
            if len(bad):  # the bins up to the gap are made, then the error (as bin_events does)
                j = int(bad[0])
                n = int(occupied[j + 1] - occupied[j] - 1)
                first = start + (int(occupied[j]) + 1) * self.period
                error = EmptyRunError(
                    f"{n} consecutive bins from {first} ns ({n * self.period / 1e9:.0f} s) hold no event at "
                    f"all: more than the {self.max_empty_run} empty bins allowed in a row; set "
                    f"drop_empty_bins=True, cut the episode with an Inactivity interval, or raise max_gap_s"
                )
                k_end = int(occupied[j]) + 1
                cut = int(np.searchsorted(k, k_end, "left"))
        roles = self.role_of[cidx[:cut]]
        kc, tc, jc = k[:cut], t[:cut], json.slice(0, cut)
        is_action = roles == _ACTION
        ka = kc[is_action]
        actions = jc.filter(pa.array(is_action)) if len(ka) < cut else jc
        if self.drop_empty:
            emitted = ka[np.concatenate([[True], ka[1:] != ka[:-1]])] if len(ka) else ka
            self.counts.empty_bins_dropped += (k_end - next_k) - len(emitted)
        else:
            emitted = None
        # state candidates per topic: the carried message, then this round's
        cand_t: list[np.ndarray] = []
        cand_j: list[pa.Array] = []
        for s in range(len(self.states)):
            mine = roles == s
            ts, js = tc[mine], (jc.filter(pa.array(mine)) if mine.any() else None)
            held = self.pending[s]
            if held is not None:
                ts = np.concatenate([[held.time], ts])
                js = held.message if js is None else pa.concat_arrays([held.message, js])
            cand_t.append(ts)
            cand_j.append(js if js is not None else pa.array([], pa.binary()))
        if error is None:
            self._state_fates(cand_t, cand_j, k_end, emitted, final)
        self.next_k = k_end
        self.index += cut
        bases = np.cumsum([0] + [len(c) for c in cand_t[:-1]])
        all_states = pa.concat_arrays(cand_j) if len(cand_j) > 1 else (cand_j[0] if cand_j else None)
        if emitted is not None:
            pieces: Iterable[np.ndarray] = (
                emitted[i : i + self.max_bins] for i in range(0, len(emitted), self.max_bins)
            )
        else:
            pieces = (
                np.arange(i, min(i + self.max_bins, k_end), dtype=np.int64)
                for i in range(next_k, k_end, self.max_bins)
            )
        for bins in pieces:
            if not len(bins):
                continue
            self.counts.bins += len(bins)
            bin_starts = start + bins * period
            offsets = np.searchsorted(ka, bins, "left")
            offsets = np.append(offsets, np.searchsorted(ka, bins[-1], "right")).astype(np.int32)
            action_lists = pa.ListArray.from_arrays(pa.array(offsets), actions)
            yield BinChunk(
                bins, bin_starts, self._state_lists(bin_starts, cand_t, bases, all_states), action_lists
            )
        if error is not None:
            raise error

    def _state_fates(
        self,
        cand_t: list[np.ndarray],
        cand_j: list[pa.Array],
        k_end: int,
        emitted: np.ndarray | None,
        final: bool,
    ) -> None:
        """Mark each state candidate with the bins ``[next_k, k_end)`` it is the state of; count the
        fates of those that no later bin can have as state (all but the latest, all when ``final``);
        carry the latest."""
        period, start, next_k = self.np_period, self.start, self.next_k
        for s, (ts, js) in enumerate(zip(cand_t, cand_j, strict=True)):
            if not len(ts):
                continue
            first = -((start - ts) // period)  # ceil: the first bin whose start is at or after the message
            lo = np.maximum(first, next_k)
            hi = np.minimum(np.append(first[1:], k_end), k_end)
            span = np.maximum(hi - lo, 0)
            if emitted is None:  # every bin is emitted
                out = span > 0
                dropped = np.zeros(len(ts), bool)
            else:
                n_out = np.searchsorted(emitted, hi, "left") - np.searchsorted(emitted, lo, "left")
                n_out = np.where(span > 0, n_out, 0)
                out, dropped = n_out > 0, span > n_out
            held = self.pending[s]
            if held is not None:
                out[0] |= held.emitted
                dropped[0] |= held.dropped
            done = len(ts) if final else len(ts) - 1
            topic = self.states[s]
            n_emit = int(out[:done].sum())
            n_dropped = int((dropped[:done] & ~out[:done]).sum())
            self.account.emit(topic, n_emit)
            self.account.drop(RULE_STATE_ONLY_IN_DROPPED_BINS, topic, n_dropped)
            self.account.drop(RULE_STATE_UNUSED, topic, done - n_emit - n_dropped)
            self.pending[s] = (
                None
                if final
                else _Pending(int(ts[-1]), js.take(pa.array([len(ts) - 1])), bool(out[-1]), bool(dropped[-1]))
            )

    def _state_lists(
        self, bin_starts: np.ndarray, cand_t: list[np.ndarray], bases: np.ndarray, all_states: Any
    ) -> pa.ListArray:
        """Each bin's state: per state topic (in order) the latest candidate at or before its start."""
        n = len(bin_starts)
        if all_states is None or not len(all_states):
            return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.binary()))
        picks = np.empty((n, len(cand_t)), np.int64)
        for s, ts in enumerate(cand_t):
            idx = np.searchsorted(ts, bin_starts, "right") - 1
            picks[:, s] = np.where(idx >= 0, idx + bases[s], -1)
        present = picks >= 0
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(present.sum(axis=1), out=offsets[1:])
        values = all_states.take(pa.array(picks[present]))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def _order_error(self, t: np.ndarray, cidx: np.ndarray) -> tuple[int, EventOrderError] | None:
        """The position of the first message earlier than the one before it, and :class:`EventOrderError`
        (bin_events' message); None when ``t`` is in order."""
        back = np.flatnonzero(t[1:] < t[:-1])
        if not len(back):
            return None
        i = int(back[0]) + 1
        ti = int(t[i])
        where, limit = (
            ("the episode start", self.start) if ti < self.start else ("the event before it", int(t[i - 1]))
        )
        return i, EventOrderError(
            f"event {self.index + i} ({self.topics[cidx[i]]!r} at {ti}) is before {where} ({limit}): "
            f"events must be time-ordered and at or after start_ns"
        )
