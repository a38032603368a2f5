"""The binned stage: one recording -> fixed-rate bins (state + actions) per episode.

Pipeline per recording: the shared front (:func:`owa_event.pipeline.kept_events`: read -> keep
topics -> select intervals -> resample) -> :func:`owa_binned.bins.bin_events` per interval. An
episode is one kept interval (``interval_idx``, as in the event stage).

The first bin of an episode starts at the episode's first kept event (of any kept topic); bins run
through the bin holding the episode's last kept event. An interval without any kept event has no
bins. Every message has one fate in the recording's account: dropped before binning (topic,
interval, rate), or one of :data:`owa_binned.bins.FATES`.

A lossless config (no topic filter, intervals nor rates: :func:`owa_event.pipeline.is_lossless`) on a
whole recording takes the columnar path (:func:`columnar_rows`: message batches binned on arrays by
:mod:`owa_binned.columnar`, no Event per message); every other config bins Events (:func:`event_rows`,
the reference). The two give the same rows, batches, account and errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from owa_event.account import Account, RecordingReport
from owa_event.events import Event, mcap_message_json
from owa_event.pipeline import Preset, RecordingRef, SeamRule, Stage, is_lossless, kept_episodes
from owa_event.reader import MessageBatch

from .bins import BinCounts, bin_events
from .columnar import BinChunk, bin_batches
from .config import BinnedConfig

#: The bin rows' schema (the ``datasets`` features are derived from it).
BINNED_SCHEMA = pa.schema(
    [
        ("episode_path", pa.string()),
        ("interval_idx", pa.int32()),
        ("bin_idx", pa.int32()),  # counts from the episode start; keeps its gaps when empty bins are dropped
        ("timestamp_ns", pa.int64()),  # the bin's start: episode start + bin_idx * period
        (
            "state",
            pa.list_(pa.binary()),
        ),  # McapMessage JSON of the latest state events at or before the start
        ("actions", pa.list_(pa.binary())),  # McapMessage JSON of the action events in [start, end)
    ]
)
INT32_MAX = 2**31 - 1


class BinnedStage(Stage):
    """Recordings -> bin rows (:data:`BINNED_SCHEMA`)."""

    name = "binned"
    config_class = BinnedConfig
    presets = {
        "binned": Preset(
            "10 bins per second per episode: the latest screen at each bin start and the keyboard/mouse "
            "events inside the bin."
        )
    }

    def __init__(
        self, config: BinnedConfig | None = None, *, batch_size: int = 1024, columnar: bool = True
    ) -> None:
        """``batch_size``: rows per batch (every batch but the last has exactly that many). ``columnar``: a
        lossless config (no topic filter, intervals nor rates) is binned on columns, without an
        :class:`~owa_event.events.Event` per message (:func:`owa_binned.columnar.bin_batches`); False
        bins Events with :func:`~owa_binned.bins.bin_events`, as every other config does (same rows)."""
        super().__init__(config if config is not None else BinnedConfig())
        self.batch_size = batch_size
        self.columnar = columnar

    def schema(self) -> pa.Schema:
        return BINNED_SCHEMA

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "period_ns": self.config.period_ns()}

    def seam_rule(self) -> SeamRule:
        """``"episodes"``: the bin grid starts at an episode's first kept event and every bin carries
        the latest state event, however old, so a seam inside an episode would change the bins;
        :func:`~owa_binned.bins.bin_events` runs once per episode and nothing crosses into the next."""
        return "episodes"

    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[pa.RecordBatch]:
        config: BinnedConfig = self.config  # type: ignore[assignment]
        counts = BinCounts()
        columnar = self.columnar and is_lossless(config) and recording.window is None
        episodes = kept_episodes(recording, config, report, media_exists=self.media_exists, batches=columnar)
        make_rows = columnar_rows if columnar else event_rows
        yield from make_rows(
            episodes,  # type: ignore[arg-type]
            recording.path,
            recording.episode_path,
            config,
            lambda: _roles(config, report.substitutions),
            report.account,
            counts,
            self.batch_size,
        )
        report.count("episodes", counts.episodes)
        report.count("bins", counts.bins)
        report.count("empty_bins_dropped", counts.empty_bins_dropped)


def event_rows(
    episodes: Iterable[tuple[int, Iterator[Event]]],
    path: str,
    episode_path: str,
    config: BinnedConfig,
    roles: Callable[[], tuple[list[str], list[str]]],
    account: Account,
    counts: BinCounts,
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """The bin rows of ``episodes`` (``(interval_idx, events)``) through :func:`~owa_binned.bins.bin_events`
    on Events: the reference path, and that of every config the columnar one does not take. ``roles()``
    gives the (state, action) topics once an episode has started (topic substitutions are known then)."""
    period_ns = config.period_ns()
    columns = _empty()
    for interval_idx, episode in episodes:
        first = next(episode, None)
        if first is None:  # an interval without any kept event has no bins
            continue
        bins = bin_events(
            itertools.chain([first], episode),
            first.timestamp_ns,
            None,
            period_ns,
            *roles(),
            account,
            counts,
            drop_empty=config.drop_empty_bins,
            max_empty_run=config.max_empty_run(),
        )
        for b in bins:
            if b.bin_idx > INT32_MAX:
                raise ValueError(_overflow(path, interval_idx, config.fps))
            columns["interval_idx"].append(interval_idx)
            columns["bin_idx"].append(b.bin_idx)
            columns["timestamp_ns"].append(b.start_ns)
            columns["state"].append(
                [mcap_message_json(e.topic, e.timestamp_ns, e.data, e.message_type) for e in b.state]
            )
            columns["actions"].append(
                [mcap_message_json(e.topic, e.timestamp_ns, e.data, e.message_type) for e in b.actions]
            )
            if len(columns["bin_idx"]) >= batch_size:
                yield _batch(columns, episode_path)
                columns = _empty()
    if columns["bin_idx"]:
        yield _batch(columns, episode_path)


def columnar_rows(
    episodes: Iterable[tuple[int, Iterator[MessageBatch]]],
    path: str,
    episode_path: str,
    config: BinnedConfig,
    roles: Callable[[], tuple[list[str], list[str]]],
    account: Account,
    counts: BinCounts,
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """:func:`event_rows` of episodes read as message batches (the lossless read), binned on columns by
    :func:`~owa_binned.columnar.bin_batches`: the same rows, batches, account and errors, without an
    :class:`~owa_event.events.Event` per message (tests/test_binned_columnar.py)."""
    chunks = (
        (interval_idx, chunk)
        for interval_idx, batches in episodes
        for chunk in bin_batches(
            batches,
            config.period_ns(),
            *roles(),
            account,
            counts,
            drop_empty=config.drop_empty_bins,
            max_empty_run=config.max_empty_run(),
        )
    )
    yield from chunk_rows(chunks, path, episode_path, config.fps, batch_size)


def chunk_rows(
    chunks: Iterable[tuple[int, BinChunk]], path: str, episode_path: str, fps: float, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Bin rows from ``(interval_idx, chunk)``, in batches of exactly ``batch_size`` rows (the last may
    be shorter), as :func:`event_rows` batches them."""
    held: list[pa.RecordBatch] = []
    n_held = 0
    for interval_idx, chunk in chunks:
        if chunk.bin_idx[-1] > INT32_MAX:
            raise ValueError(_overflow(path, interval_idx, fps))
        n = len(chunk.bin_idx)
        columns = [
            pa.repeat(pa.scalar(episode_path, pa.string()), n),
            pa.repeat(pa.scalar(interval_idx, pa.int32()), n),
            pa.array(chunk.bin_idx.astype(np.int32)),
            pa.array(chunk.start_ns),
            chunk.state,
            chunk.actions,
        ]
        held.append(pa.RecordBatch.from_arrays(columns, schema=BINNED_SCHEMA))
        n_held += n
        if n_held >= batch_size:
            rows = pa.concat_batches(held)
            full = n_held - n_held % batch_size
            for start in range(0, full, batch_size):
                yield rows.slice(start, batch_size)
            held = [rows.slice(full)] if full < n_held else []
            n_held -= full
    if n_held:
        yield pa.concat_batches(held)


def _overflow(path: str, interval_idx: int, fps: float) -> str:
    return (
        f"{path} (interval {interval_idx}): more than {INT32_MAX} bins at fps={fps}; bin_idx is int32, "
        f"lower fps"
    )


def _roles(config: BinnedConfig, substitutions: dict[str, str]) -> tuple[list[str], list[str]]:
    """``(state topics, action topics)``: a topic that served for another (``topic_fallbacks``) takes its role."""
    out = []
    for topics in (config.state_topics, config.action_topics):
        role = list(topics)
        role += [used for wanted, used in substitutions.items() if wanted in topics and used not in role]
        out.append(role)
    return out[0], out[1]


def _empty() -> dict[str, list[Any]]:
    return {name: [] for name in BINNED_SCHEMA.names if name != "episode_path"}


def _batch(columns: dict[str, list[Any]], episode_path: str) -> pa.RecordBatch:
    n = len(columns["bin_idx"])
    return pa.RecordBatch.from_pydict({"episode_path": [episode_path] * n, **columns}, schema=BINNED_SCHEMA)
