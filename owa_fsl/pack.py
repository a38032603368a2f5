"""Episode-aware packing: one episode's events -> fixed-length token sequences.

Invariants (tested):
- a sequence holds events of ONE episode (call :meth:`Packer.pack` once per episode), in time
  order, and is never cut by a batch or worker boundary (the packer sees the whole episode);
- every event given is in exactly one sequence, or counted in :class:`PackStats` under a named
  rule (``oversize`` when ``on_oversize="drop"``; ``frameless_sequence`` when sequences
  without a frame are dropped);
- ``len(input_ids) == len(attention_mask) == max_len``; real tokens are followed by padding;
- a sequence's timestamps are offsets from its ``base_ns`` (its first event's time): a new
  sequence starts before an offset would exceed the encoder's ``max_offset_ns()``, so any gap
  between events decodes exactly (at the encoder's resolution);
- ``images`` lists the frame references of the sequence's screen events, in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from owa_event.errors import OwaError
from owa_event.events import SCREEN, Event

from .encoders import EncodeError, EventEncoder, frame_ref
from .tokenizer import TokenTable


@dataclass
class PackedSequence:
    """One row of the FSL stage (before the episode columns are added)."""

    input_ids: list[int]
    attention_mask: list[int]
    images: list[tuple[str, int | None]]
    base_ns: int
    n_events: int
    n_tokens: int


@dataclass
class PackStats:
    """What packing did. Counters are keyed by topic."""

    events_in: Counter[str] = field(default_factory=Counter)
    events_packed: Counter[str] = field(default_factory=Counter)
    dropped: dict[str, Counter[str]] = field(default_factory=dict)  # rule -> topic -> count
    sequences: int = 0
    sequences_dropped_frameless: int = 0
    frames: int = 0
    tokens: int = 0
    padding: int = 0

    def drop(self, rule: str, topic: str, n: int = 1) -> None:
        self.dropped.setdefault(rule, Counter())[topic] += n

    def unaccounted(self) -> dict[str, int]:
        """Topics whose events in != packed + dropped (empty when all is accounted for)."""
        out = {}
        for topic, n in self.events_in.items():
            got = self.events_packed[topic] + sum(c[topic] for c in self.dropped.values())
            if got != n:
                out[topic] = n - got
        return out


class OversizeEventError(OwaError):
    """An event needs more tokens than a whole sequence holds."""


class Packer:
    """Packs episodes into sequences of exactly ``max_len`` tokens (padded with ``pad_id``)."""

    def __init__(
        self,
        encoder: EventEncoder,
        table: TokenTable,
        max_len: int,
        pad_id: int,
        *,
        drop_frameless: bool = False,
        on_oversize: Literal["error", "drop"] = "error",
        stats: PackStats | None = None,
    ) -> None:
        self.encoder = encoder
        self.table = table
        self.max_len = max_len
        self.pad_id = pad_id
        self.drop_frameless = drop_frameless
        self.on_oversize = on_oversize
        self.stats = stats if stats is not None else PackStats()
        self._max_offset = encoder.max_offset_ns()

    def _ids(self, event: Event, base_ns: int) -> list[int]:
        return self.table.ids(self.encoder.encode(event, base_ns))

    def pack(self, events: Iterable[Event], where: str = "") -> Iterator[PackedSequence]:
        """The sequences of one episode, in time order. ``where`` names the episode in errors."""
        stats = self.stats
        max_len = self.max_len
        ids: list[int] = []
        images: list[tuple[str, int | None]] = []
        members: Counter[str] = Counter()
        base = 0
        for event in events:
            topic = event.topic
            stats.events_in[topic] += 1
            t = event.timestamp_ns
            if not members or t - base > self._max_offset:
                if members:
                    yield from self._close(ids, images, members, base)
                    ids, images, members = [], [], Counter()
                base = t
            try:
                event_ids = self._ids(event, base)
            except EncodeError as exc:
                raise EncodeError(f"{where}: {exc}" if where else str(exc)) from None
            if len(event_ids) > max_len:
                if self.on_oversize == "error":
                    raise OversizeEventError(
                        f"{where}: event #{event.index} ({topic} at {t} ns) needs {len(event_ids)} tokens, "
                        f"more than max_sequence_length={max_len}"
                    )
                stats.drop("oversize", topic)
                continue
            if len(ids) + len(event_ids) > max_len:
                yield from self._close(ids, images, members, base)
                ids, images, members = [], [], Counter()
                base = t
                event_ids = self._ids(event, base)
            ids.extend(event_ids)
            members[topic] += 1
            if topic == SCREEN:
                images.append(frame_ref(event))
        if members:
            yield from self._close(ids, images, members, base)

    def _close(
        self, ids: list[int], images: list[tuple[str, int | None]], members: Counter[str], base: int
    ) -> Iterator[PackedSequence]:
        stats = self.stats
        if self.drop_frameless and not images:
            stats.sequences_dropped_frameless += 1
            for topic, n in members.items():
                stats.drop("frameless_sequence", topic, n)
            return
        n = len(ids)
        pad = self.max_len - n
        stats.sequences += 1
        stats.frames += len(images)
        stats.tokens += n
        stats.padding += pad
        stats.events_packed.update(members)
        yield PackedSequence(
            input_ids=ids + [self.pad_id] * pad,
            attention_mask=[1] * n + [0] * pad,
            images=images,
            base_ns=base,
            n_events=sum(members.values()),
            n_tokens=n,
        )
