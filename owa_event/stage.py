"""The event stage: one recording -> its kept events, as rows, with an exact account of the rest.

Pipeline per recording: read (:mod:`owa_event.reader`) -> select intervals
(:mod:`owa_event.intervals`) -> keep topics -> resample per interval (:mod:`owa_event.resample`).
Every message that goes in is either a row, or counted under a named rule in
:class:`EpisodeReport` (``messages_in == rows + dropped + merged``, per topic).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import EventConfig
from .errors import MissingMediaWarning, RecordingError, SkippedFileWarning
from .events import Event
from .reader import Recording
from .resample import ResampleStats, resample

#: Features of an event row (also the `datasets` schema, see owa_builders.event).
EVENT_COLUMNS = ("episode_path", "interval_idx", "topic", "timestamp_ns", "message_type", "mcap_message")


@dataclass
class EpisodeReport:
    """The account of one recording. Counters are keyed by topic."""

    episode_path: str
    messages_in: Counter[str] = field(default_factory=Counter)
    rows_out: Counter[str] = field(default_factory=Counter)
    dropped: dict[str, Counter[str]] = field(default_factory=dict)  # rule -> topic -> count
    merged: Counter[str] = field(default_factory=Counter)
    unknown_types: Counter[str] = field(default_factory=Counter)
    legacy_upgraded: Counter[str] = field(default_factory=Counter)
    missing_media: list[str] = field(default_factory=list)
    recovered_messages: int | None = None
    intervals: int = 0
    kept_ns: int = 0
    skipped: str | None = None

    def drop(self, rule: str, topic: str, n: int = 1) -> None:
        if n:
            self.dropped.setdefault(rule, Counter())[topic] += n

    def unaccounted(self) -> dict[str, int]:
        """Topics whose input is not exactly rows + drops + merges (empty when all is accounted for)."""
        out: dict[str, int] = {}
        for topic, n in self.messages_in.items():
            acc = self.rows_out[topic] + self.merged[topic] + sum(c[topic] for c in self.dropped.values())
            if acc != n:
                out[topic] = n - acc
        return out

    def summary_line(self) -> str:
        parts = [
            f"{self.episode_path}: {sum(self.messages_in.values())} messages in, {sum(self.rows_out.values())} events kept"
        ]
        if self.skipped:
            parts.append(f"SKIPPED ({self.skipped})")
        for rule, counts in sorted(self.dropped.items()):
            parts.append(f"dropped by {rule}: {sum(counts.values())}")
        if self.merged:
            parts.append(f"raw mouse moves summed: {sum(self.merged.values())}")
        if self.unknown_types:
            parts.append(f"unknown message types kept verbatim: {dict(self.unknown_types)}")
        if self.legacy_upgraded:
            parts.append(f"legacy messages upgraded: {sum(self.legacy_upgraded.values())}")
        if self.recovered_messages is not None:
            parts.append(f"truncated file: recovered {self.recovered_messages} messages")
        if self.missing_media:
            parts.append(f"missing video: {', '.join(self.missing_media)}")
        return "; ".join(parts)


def default_media_exists(root: str, uri: str) -> bool:
    """Whether ``uri`` (relative to the dataset root ``root``, local path or fsspec URL) exists."""
    if "://" in root:
        import fsspec

        fs, path = fsspec.core.url_to_fs(root.rstrip("/") + "/" + uri)
        return bool(fs.exists(path))
    return os.path.exists(os.path.join(root, uri))


def open_recording(path: str, episode_path: str, config: EventConfig) -> Recording:
    """Open ``path`` (local path or fsspec URL) as a :class:`Recording`."""
    if "://" in path:
        import fsspec

        stream = fsspec.open(path, "rb").open()
        try:
            return Recording(path, episode_path=episode_path, on_truncated=config.on_truncated, stream=stream)
        except BaseException:
            stream.close()
            raise
    return Recording(path, episode_path=episode_path, on_truncated=config.on_truncated)


def episode_events(
    recording: Recording, config: EventConfig, report: EpisodeReport
) -> Iterator[tuple[int, Event]]:
    """The kept events of one recording as ``(interval_idx, event)``, in time order per interval."""
    summary = recording.summary
    report.messages_in.update({t: n for t, n in summary.topic_counts.items()})
    keep = None if config.keep_topics is None else [t for t in summary.topics if t in set(config.keep_topics)]
    for topic, n in summary.topic_counts.items():
        if keep is not None and topic not in keep:
            report.drop("topic_not_kept", topic, n)
    selection = config.selection()
    if summary.message_count == 0:
        return
    if selection is None:
        intervals: tuple[tuple[int, int], ...] = ((summary.start_ns, summary.end_ns + 1),)
    else:
        needed = [t for t in summary.topics if t in selection.topics()]
        intervals = selection.select(recording.events(topics=needed), summary.start_ns, summary.end_ns)
    # The selection pass above already counted its events in recording.stats: count only the row pass.
    stats = recording.stats
    unknown_before, legacy_before = Counter(stats.unknown_types), Counter(stats.legacy_upgraded)
    rates = config.rates()
    resample_stats = ResampleStats()
    read_in_intervals: Counter[str] = Counter()
    report.intervals = len(intervals)
    for idx, (start, end) in enumerate(intervals):
        report.kept_ns += min(end, summary.end_ns + 1) - start
        events = recording.events(topics=keep, start_ns=start, end_ns=end)
        if rates:
            events = _counting(events, read_in_intervals)
            events = resample(events, rates, keyboard_repeat=config.keyboard_repeat, stats=resample_stats)
        for event in events:
            if not rates:
                read_in_intervals[event.topic] += 1
            report.rows_out[event.topic] += 1
            yield idx, event
    for topic, rules in resample_stats.dropped.items():
        for rule, n in rules.items():
            report.drop(rule, topic, n)
    report.merged.update(resample_stats.merged)
    kept_topics = summary.topics if keep is None else keep
    for topic in kept_topics:
        report.drop("outside_intervals", topic, summary.topic_counts.get(topic, 0) - read_in_intervals[topic])
    report.unknown_types.update(stats.unknown_types - unknown_before)
    report.legacy_upgraded.update(stats.legacy_upgraded - legacy_before)
    report.recovered_messages = stats.recovered_messages


def _counting(events: Iterator[Event], counter: Counter[str]) -> Iterator[Event]:
    for event in events:
        counter[event.topic] += 1
        yield event


def kept_events(
    path: str,
    *,
    episode_path: str,
    root: str,
    config: EventConfig,
    report: EpisodeReport | None = None,
    media_exists: Callable[[str, str], bool] = default_media_exists,
) -> Iterator[tuple[int, Event]]:
    """``(interval_idx, event)`` for every kept event of one recording, in time order per interval.

    ``root`` is the dataset root (local folder or fsspec URL); ``episode_path`` is the file's POSIX
    path relative to it. With ``config.on_bad_file == "skip"`` a bad file is validated first and
    skipped whole (nothing of it is yielded), with a :class:`SkippedFileWarning`. After the last
    event, screen media that do not exist are reported (:class:`MissingMediaWarning`).
    """
    report = report if report is not None else EpisodeReport(episode_path)
    if config.on_bad_file == "skip":
        try:
            with open_recording(path, episode_path, config) as recording:
                for _ in recording.events():
                    pass
        except (RecordingError, OSError) as exc:
            report.skipped = str(exc)
            warnings.warn(f"skipping bad recording {exc}", SkippedFileWarning, stacklevel=2)
            return
    with open_recording(path, episode_path, config) as recording:
        yield from episode_events(recording, config, report)
        uris = recording.stats.media_uris
    for uri in sorted(uris):
        if not uri.startswith("data:") and "://" not in uri and not media_exists(root, uri):
            report.missing_media.append(uri)
    if report.missing_media:
        warnings.warn(
            f"{path}: screen messages point to missing video {', '.join(report.missing_media)} "
            f"(the event rows are complete; frames cannot be loaded at training time)",
            MissingMediaWarning,
            stacklevel=2,
        )


def event_rows(
    path: str, *, episode_path: str, root: str, config: EventConfig, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """The event rows of one recording (:data:`EVENT_COLUMNS`); arguments as :func:`kept_events`."""
    for interval_idx, event in kept_events(
        path, episode_path=episode_path, root=root, config=config, **kwargs
    ):
        yield {
            "episode_path": episode_path,
            "interval_idx": interval_idx,
            "topic": event.topic,
            "timestamp_ns": event.timestamp_ns,
            "message_type": event.message_type,
            "mcap_message": event.mcap_message_json(),
        }


def event_batches(
    path: str, *, episode_path: str, root: str, config: EventConfig, batch_size: int = 8192, **kwargs: Any
) -> Iterator[dict[str, list[Any]]]:
    """The same rows as :func:`event_rows`, as column batches of at most ``batch_size`` rows."""

    def batch() -> dict[str, list[Any]]:  # the current columns (rebound, never copied, after each yield)
        return {"episode_path": [episode_path] * len(times), "interval_idx": intervals, "topic": topics,
                "timestamp_ns": times, "message_type": types, "mcap_message": messages}  # fmt: skip

    intervals, topics, times, types, messages = [], [], [], [], []  # type: ignore[var-annotated]

    for interval_idx, event in kept_events(
        path, episode_path=episode_path, root=root, config=config, **kwargs
    ):
        intervals.append(interval_idx)
        topics.append(event.topic)
        times.append(event.timestamp_ns)
        types.append(event.message_type)
        messages.append(event.mcap_message_json())
        if len(times) >= batch_size:
            yield batch()
            intervals, topics, times, types, messages = [], [], [], [], []
    if times:
        yield batch()
