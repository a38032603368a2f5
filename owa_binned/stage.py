"""The binned stage: one recording -> fixed-rate bins (state + actions) per episode.

Pipeline per recording: the event stage's kept events (read -> select -> keep topics ->
resample, per interval; :func:`owa_event.stage.kept_events`) -> :func:`owa_binned.bins.bin_events`
per interval. An episode is one kept interval (``interval_idx``, as in the event stage).

The first bin of an episode starts at the episode's first kept event (of any kept topic):
:func:`kept_events` does not expose the interval bounds, and for the default whole-recording
interval the two are the same when every topic is kept. Bins run through the bin holding the
episode's last kept event. An interval without any kept event has no bins.

Accounting: :class:`BinnedReport` is the event stage's :class:`EpisodeReport` (every message is a
kept event or counted as dropped/merged) plus :class:`BinStats` (every kept event has one fate
in the bins); ``report.unaccounted()`` checks both.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from owa_event.stage import EpisodeReport, kept_events

from .bins import BinStats, bin_events
from .config import BinnedConfig

#: Columns of a bin row (also the `datasets` schema, see owa_builders.binned).
BINNED_COLUMNS = ("episode_path", "interval_idx", "bin_idx", "timestamp_ns", "state", "actions")
INT32_MAX = 2**31 - 1


@dataclass
class BinnedReport(EpisodeReport):
    """The account of one recording: the event stage's, plus the bins' (:class:`BinStats`)."""

    bin_stats: BinStats = field(default_factory=BinStats)

    def unaccounted(self) -> dict[str, int]:
        """Topics not balanced in the event account or in the bins' account (empty when all is)."""
        out = dict(super().unaccounted())
        for topic, n in self.bin_stats.unaccounted().items():
            out[topic] = out.get(topic, 0) + n
        for topic in set(self.rows_out) | set(self.bin_stats.events_in):
            diff = self.rows_out[topic] - self.bin_stats.events_in[topic]
            if diff:
                out[topic] = out.get(topic, 0) + diff
        return out

    def summary_line(self) -> str:
        return f"{super().summary_line()}; bins: {self.bin_stats.summary()}"


def binned_batches(
    path: str,
    *,
    episode_path: str,
    root: str,
    config: BinnedConfig,
    report: BinnedReport | None = None,
    batch_size: int = 1024,
    **kwargs: Any,
) -> Iterator[dict[str, list[Any]]]:
    """The bin rows of one recording (:data:`BINNED_COLUMNS`) as column batches of at most
    ``batch_size`` rows; other arguments as :func:`owa_event.stage.kept_events`.

    ``state`` and ``actions`` hold ``Event.mcap_message_json()`` bytes (``McapMessage.model_validate_json``).
    """
    report = report if report is not None else BinnedReport(episode_path)
    period_ns = config.period_ns()
    state_topics, action_topics = list(config.state_topics), list(config.action_topics)
    columns = _empty()
    events = kept_events(path, episode_path=episode_path, root=root, config=config, report=report, **kwargs)
    for interval_idx, group in itertools.groupby(events, key=lambda item: item[0]):
        episode = (event for _, event in group)
        first = next(episode)
        bins = bin_events(
            itertools.chain([first], episode),
            first.timestamp_ns,
            None,
            period_ns,
            state_topics,
            action_topics,
            report.bin_stats,
            drop_empty=config.drop_empty_bins,
        )
        for b in bins:
            if b.bin_idx > INT32_MAX:
                raise ValueError(
                    f"{path} (interval {interval_idx}): more than {INT32_MAX} bins at fps={config.fps}; "
                    f"bin_idx is int32, lower fps"
                )
            columns["interval_idx"].append(interval_idx)
            columns["bin_idx"].append(b.bin_idx)
            columns["timestamp_ns"].append(b.start_ns)
            columns["state"].append([e.mcap_message_json() for e in b.state])
            columns["actions"].append([e.mcap_message_json() for e in b.actions])
            if len(columns["bin_idx"]) >= batch_size:
                columns["episode_path"] = [episode_path] * len(columns["bin_idx"])
                yield columns
                columns = _empty()
    if columns["bin_idx"]:
        columns["episode_path"] = [episode_path] * len(columns["bin_idx"])
        yield columns


def binned_rows(path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """The same rows as :func:`binned_batches`, one dict per bin."""
    for batch in binned_batches(path, **kwargs):
        for i in range(len(batch["bin_idx"])):
            yield {name: batch[name][i] for name in BINNED_COLUMNS}


def _empty() -> dict[str, list[Any]]:
    return {name: [] for name in BINNED_COLUMNS}
