"""Measured facts of a built folder, for its dataset card: counts from the rows, accounts from the record.

Everything here is measured, never assumed: rows, episodes (distinct ``(episode_path,
interval_idx)``), recordings and hours per split come from the rows (hours: the kept time of
each recording from the build reports when present, else the span of each episode's rows); events
per topic, messages read and drops per rule come from the build's per-recording accounts. Stage
facts: FSL (fixed sequence length) token statistics per sequence, binned steps per episode, and for the event and binned
stages the average events per second over time since the episode start. One pass over the rows,
batch by batch (memory bounded by the number of episodes and seconds, not rows).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..stages import spec
from .source import BuiltFolder

#: Most points in an events-per-second series (adjacent seconds are merged beyond this).
MAX_SERIES_POINTS = 240
#: Histogram bins of the FSL sequence fill.
FILL_BINS = 20

NS = 1_000_000_000


@dataclass
class SplitStats:
    """Facts of one split."""

    rows: int
    episodes: int
    recordings: int
    hours: float


@dataclass
class FslStats:
    """Token statistics of FSL sequences (all splits together). Tokens are ids in ``input_ids``."""

    sequence_length: int  # tokens per sequence (padding included; every row has this many)
    real_tokens: dict[str, float]  # tokens that are not padding, per sequence: min, mean, median, max
    padding_share: float  # padding / all token slots
    image_token_share: float  # image-layout tokens / real tokens
    frames: dict[str, float]  # frames per sequence: min, mean, median, max
    events: dict[str, float]  # events per sequence: min, mean, median, max
    fill_histogram: list[int]  # sequences per fill bin (real / sequence_length), FILL_BINS bins over [0, 1]


@dataclass
class Stats:
    """Every fact the card of one built config states."""

    stage: str
    config_name: str
    splits: dict[str, SplitStats]
    events_per_topic: dict[str, int]  # events out of selection/resampling, per topic (reports)
    messages_in: dict[str, int]  # messages read, per topic (reports)
    dropped: dict[str, int]  # messages dropped, per rule (reports)
    warnings: int
    skipped_recordings: int
    series_bin_s: float = 1.0  # width of one point of `series` (s)
    series: dict[str, list[float]] = field(
        default_factory=dict
    )  # topic -> events/s per bin since episode start
    fsl: FslStats | None = None
    binned_fps: float | None = None
    media_files: int = 0
    media_bytes: int = 0

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.splits.values())

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.splits.values())

    @property
    def recordings(self) -> int:
        return sum(s.recordings for s in self.splits.values())

    @property
    def hours(self) -> float:
        return sum(s.hours for s in self.splits.values())


def summary(values: np.ndarray) -> dict[str, float]:
    """min, mean, median and max of ``values`` (zeros for none)."""
    if values.size == 0:
        return {"min": 0.0, "mean": 0.0, "median": 0.0, "max": 0.0}
    return {
        "min": float(values.min()),
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "max": float(values.max()),
    }


class _Series:
    """Events per second since the start of each episode, averaged over the episodes lasting that long."""

    def __init__(self) -> None:
        self.counts: dict[str, np.ndarray] = {}
        self.durations: dict[Any, int] = {}  # episode -> offset of its last event (ns)

    def add(self, offsets_ns: np.ndarray, topics: pa.Array, weights: np.ndarray) -> None:
        """Count events at ``offsets_ns`` (ns since their episode's start) under ``topics``, with ``weights``."""
        seconds = (offsets_ns // NS).astype(np.int64)
        encoded = pc.dictionary_encode(topics)
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        for code, topic in enumerate(encoded.dictionary.to_pylist()):
            mask = codes == code
            if not mask.any():
                continue
            secs, w = seconds[mask], weights[mask]
            counts = self.counts.get(topic, np.zeros(0, dtype=np.float64))
            size = int(secs.max()) + 1
            if size > counts.size:
                counts = np.concatenate([counts, np.zeros(size - counts.size)])
            np.add.at(counts, secs, w)
            self.counts[topic] = counts

    def result(self) -> tuple[float, dict[str, list[float]]]:
        if not self.counts or not self.durations:
            return 1.0, {}
        length = max(c.size for c in self.counts.values())
        covering = np.zeros(length)
        for last in self.durations.values():  # an episode covers every second up to its last event
            covering[: min(length, last // NS + 1)] += 1
        merge = max(1, -(-length // MAX_SERIES_POINTS))
        bins = -(-length // merge)
        cover = np.add.reduceat(covering, np.arange(0, length, merge))[:bins]
        out = {}
        for topic in sorted(self.counts):
            counts = np.concatenate([self.counts[topic], np.zeros(length - self.counts[topic].size)])
            summed = np.add.reduceat(counts, np.arange(0, length, merge))[:bins]
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = np.where(cover > 0, summed / np.maximum(cover, 1), 0.0)
            out[topic] = [round(float(x), 4) for x in rate]
        return float(merge), out


def measure(built: BuiltFolder) -> Stats:
    """The facts of ``built`` (one pass over its rows)."""
    reports = built.reports()
    events: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    kept_ns: dict[str, int] = {}
    for r in reports:
        account = r.get("account") or {}
        events.update(account.get("out") or {})
        messages.update(account.get("messages_in") or {})
        for rule, per_topic in (account.get("dropped") or {}).items():
            dropped[rule] += sum(per_topic.values())
        kept_ns[r.get("episode_path", "")] = int(r.get("kept_ns") or 0)
    series = _Series()
    fsl_parts: dict[str, list[np.ndarray]] = {"real": [], "frames": [], "events": [], "length": []}
    stage = built.stage
    stage_spec = spec(stage)
    period_ns = (built.record.get("describe") or {}).get("period_ns")
    split_stats: dict[str, SplitStats] = {}
    for name, split in built.splits.items():
        spans: dict[tuple[str, int], list[int]] = {}  # episode -> [first, last] time (ns)
        for batch in split.batches():
            cols = {n: batch.column(i) for i, n in enumerate(batch.schema.names)}
            times = np.asarray(cols[stage_spec.time_column].to_numpy(zero_copy_only=False), dtype=np.int64)
            starts = _episode_starts(cols["episode_path"], cols["interval_idx"], times, spans)
            if stage_spec.token_rows:
                _fsl_batch(cols, fsl_parts)
            points = stage_spec.rate_series(cols, times - starts, period_ns)
            if points is not None:
                series.add(*points)
        for ep, (first, last) in spans.items():
            series.durations[(name, ep)] = last - first
        recordings = {ep for ep, _ in spans}
        if kept_ns and recordings <= set(kept_ns):
            hours = sum(kept_ns[r] for r in recordings) / 3.6e12
        elif period_ns:  # rows are steps of period_ns: the last one lasts a period too
            hours = sum((s[1] - s[0]) + period_ns for s in spans.values()) / 3.6e12
        else:
            hours = sum(s[1] - s[0] for s in spans.values()) / 3.6e12
        split_stats[name] = SplitStats(split.num_rows, len(spans), len(recordings), hours)
    if not reports and stage_spec.topic_column:  # no accounts: count the event rows themselves
        for split in built.splits.values():
            for batch in split.batches([stage_spec.topic_column]):
                events.update(Counter(batch.column(0).to_pylist()))
    bin_s, rates = series.result()
    return Stats(
        stage=stage,
        config_name=built.config_name,
        splits=split_stats,
        events_per_topic=dict(sorted(events.items())),
        messages_in=dict(sorted(messages.items())),
        dropped=dict(sorted(dropped.items())),
        warnings=sum(len(r.get("warnings") or []) for r in reports),
        skipped_recordings=sum(1 for r in reports if r.get("skipped")),
        series_bin_s=bin_s,
        series=rates,
        fsl=_fsl_stats(fsl_parts, built) if stage_spec.token_rows else None,
        binned_fps=(NS / period_ns) if period_ns else None,
    )


def _episode_starts(
    paths: pa.Array, intervals: pa.Array, times: np.ndarray, spans: dict[tuple[str, int], list[int]]
) -> np.ndarray:
    """Each row's episode start (the first time seen for its episode, in row order); updates ``spans``."""
    keys = pc.binary_join_element_wise(paths, pc.cast(intervals, pa.string()), "\x00")
    encoded = pc.dictionary_encode(keys)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
    starts = np.empty(len(encoded.dictionary), dtype=np.int64)
    for code, key in enumerate(encoded.dictionary.to_pylist()):
        rows = order[bounds[code] : bounds[code + 1]]
        path, interval = key.rsplit("\x00", 1)
        episode = (path, int(interval))
        span = spans.get(episode)
        if span is None:
            span = spans[episode] = [int(times[rows[0]]), int(times[rows[0]])]
        span[1] = max(span[1], int(times[rows].max()))
        starts[code] = span[0]
    return starts[codes]


def _fsl_batch(cols: dict[str, pa.Array], parts: dict[str, list[np.ndarray]]) -> None:
    mask = cols["attention_mask"]
    lengths = pc.list_value_length(mask).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(mask).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    real = np.add.reduceat(flat, offsets[:-1]) if flat.size else np.zeros(len(lengths), dtype=np.int64)
    real = np.where(lengths > 0, real, 0)
    parts["real"].append(real)
    parts["length"].append(np.asarray(lengths, dtype=np.int64))
    parts["frames"].append(np.asarray(pc.list_value_length(cols["images"]).to_numpy(zero_copy_only=False)))
    parts["events"].append(np.asarray(cols["n_events"].to_numpy(zero_copy_only=False)))


def _fsl_stats(parts: dict[str, list[np.ndarray]], built: BuiltFolder) -> FslStats:
    real = np.concatenate(parts["real"]).astype(np.float64)
    length = np.concatenate(parts["length"]).astype(np.float64)
    frames = np.concatenate(parts["frames"]).astype(np.float64)
    image = (built.record.get("describe") or {}).get("image_tokens") or {}
    per_frame = len(image.get("prefix") or []) + int(image.get("count") or 0) + len(image.get("suffix") or [])
    fill = np.divide(real, length, out=np.zeros_like(real), where=length > 0)
    histogram, _ = np.histogram(np.clip(fill, 0.0, 1.0), bins=FILL_BINS, range=(0.0, 1.0))
    total_real = float(real.sum())
    return FslStats(
        sequence_length=int(length.max()) if length.size else 0,
        real_tokens=summary(real),
        padding_share=float(1.0 - total_real / length.sum()) if length.sum() else 0.0,
        image_token_share=float(frames.sum() * per_frame / total_real) if total_real else 0.0,
        frames=summary(frames),
        events=summary(np.concatenate(parts["events"]).astype(np.float64)),
        fill_histogram=[int(x) for x in histogram],
    )
