"""Episode-aware packing: one episode's events -> fixed-length token sequences.

Invariants (tested):
- a sequence holds events of ONE episode (call :meth:`Packer.pack` once per episode), in time
  order, and is never cut by a batch or worker boundary (the packer sees the whole episode);
- every event given is in exactly one sequence (counted out in the packer's
  :class:`~owa_event.account.Account`), or dropped under a named rule (``oversize`` when
  ``on_oversize="drop"``; ``frameless_sequence`` when sequences without a frame are dropped);
- ``len(input_ids) == len(attention_mask) == max_len``; real tokens are followed by padding;
- a sequence's timestamps are offsets from its ``base_ns`` (its first event's time): a new
  sequence starts before an offset would exceed the encoder's ``max_offset_ns()``, so any gap
  between events decodes exactly (at the encoder's resolution);
- ``images`` lists the frame references of the sequence's screen events, in order.
"""

from __future__ import annotations

import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Literal

from owa_event.account import Account
from owa_event.events import SCREEN, Event

from .encoders import EncodeError, EventEncoder, frame_ref
from .errors import OversizeEventError
from .tokenizer import TokenTable


@dataclass
class PackedSequence:
    """One row of the FSL stage (before the episode columns are added)."""

    ids: array.array[int]
    """Exactly ``max_len`` int32 ids: the ``n_tokens`` real ones, then padding (a buffer: rows are built
    from it without converting int by int)."""
    images: list[tuple[str, int | None]]
    base_ns: int
    n_events: int
    n_tokens: int
    frame_events: list[Event] = field(default_factory=list, compare=False, repr=False)
    """The screen events behind ``images``, in order (their other fields go into the rows)."""

    @property
    def input_ids(self) -> list[int]:
        """:attr:`ids` as a list."""
        return self.ids.tolist()

    @property
    def attention_mask(self) -> list[int]:
        """1 for each real token, then 0 for each padding id (``max_len`` in all)."""
        return [1] * self.n_tokens + [0] * (len(self.ids) - self.n_tokens)


@dataclass
class PackStats:
    """Sequence statistics of one or more :meth:`Packer.pack` runs (what happened to *events* is in
    the :class:`~owa_event.account.Account`)."""

    sequences: int = 0
    sequences_dropped_frameless: int = 0
    frames: int = 0
    tokens: int = 0
    """Real (non-padding) tokens."""
    padding: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


RULE_OVERSIZE = "oversize"
RULE_FRAMELESS = "frameless_sequence"


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
        account: Account | None = None,
        stats: PackStats | None = None,
    ) -> None:
        self.encoder = encoder
        self.table = table
        self.max_len = max_len
        self.pad_id = pad_id
        self.drop_frameless = drop_frameless
        self.on_oversize = on_oversize
        self.account = account if account is not None else Account()
        self.stats = stats if stats is not None else PackStats()
        self._max_offset = encoder.max_offset_ns()
        self._padding: array.array[int] = array.array("i")  # pad_id repeated (grown on first use)

    def pack(self, events: Iterable[Event], where: str = "") -> Iterator[PackedSequence]:
        """The sequences of one episode, in time order. ``where`` names the episode in errors."""
        max_len = self.max_len
        encode, append_ids = self.encoder.encode, self.table.append_ids
        ids: array.array[int] = array.array("i")
        images: list[tuple[str, int | None]] = []
        screens: list[Event] = []
        members: Counter[str] = Counter()
        base = 0
        for event in events:
            topic = event.topic
            t = event.timestamp_ns
            if not members or t - base > self._max_offset:
                if members:
                    yield from self._close(ids, images, screens, members, base)
                    ids, images, screens, members = array.array("i"), [], [], Counter()
                base = t
            start = len(ids)
            try:
                append_ids(ids, encode(event, base))
            except EncodeError as exc:
                raise EncodeError(f"{where}: {exc}" if where else str(exc)) from None
            n = len(ids) - start
            if n > max_len:
                if self.on_oversize == "error":
                    raise OversizeEventError(
                        f"{where}: event #{event.index} ({topic} at {t} ns) needs {n} tokens, "
                        f"more than max_sequence_length={max_len}"
                    )
                del ids[start:]
                self.account.drop(RULE_OVERSIZE, topic)
                continue
            if len(ids) > max_len:  # does not fit: it starts the next sequence (its times from itself)
                del ids[start:]
                yield from self._close(ids, images, screens, members, base)
                ids, images, screens, members = array.array("i"), [], [], Counter()
                base = t
                append_ids(ids, encode(event, base))
            members[topic] += 1
            if topic == SCREEN:
                images.append(frame_ref(event))
                screens.append(event)
        if members:
            yield from self._close(ids, images, screens, members, base)

    def _close(
        self,
        ids: array.array[int],
        images: list[tuple[str, int | None]],
        screens: list[Event],
        members: Counter[str],
        base: int,
    ) -> Iterator[PackedSequence]:
        """The sequence of ``ids`` (padded in place), or nothing when it is dropped (frameless)."""
        stats = self.stats
        if self.drop_frameless and not images:
            stats.sequences_dropped_frameless += 1
            for topic, n in members.items():
                self.account.drop(RULE_FRAMELESS, topic, n)
            return
        n = len(ids)
        pad = self.max_len - n
        stats.sequences += 1
        stats.frames += len(images)
        stats.tokens += n
        stats.padding += pad
        for topic, count in members.items():
            self.account.emit(topic, count)
        if pad:
            if len(self._padding) < pad:
                self._padding = array.array("i", [self.pad_id]) * self.max_len
            ids.extend(self._padding[:pad])
        yield PackedSequence(
            ids=ids,
            images=images,
            base_ns=base,
            n_events=sum(members.values()),
            n_tokens=n,
            frame_events=screens,
        )
