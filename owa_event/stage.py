"""The event stage: one row per kept event, lossless by default.

Pipeline per recording: :func:`owa_event.pipeline.kept_events` (read -> keep topics -> select
intervals -> resample), then one row per event. Every message that goes in is a row or is
counted under a named rule (``messages_in == out + dropped + merged`` per topic).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pyarrow as pa

from .account import RecordingReport
from .config import EventConfig
from .events import mcap_message_array, mcap_message_json
from .pipeline import Preset, RecordingRef, SeamRule, Stage, is_lossless, kept_episodes

#: The event rows' schema (the ``datasets`` features are derived from it).
EVENT_SCHEMA = pa.schema(
    [
        ("episode_path", pa.string()),  # POSIX path of the .mcap relative to the dataset root
        ("interval_idx", pa.int32()),  # which kept interval (episode) of the recording
        ("topic", pa.string()),
        ("timestamp_ns", pa.int64()),  # MCAP log time, ns since the epoch
        ("message_type", pa.string()),  # current type name; legacy names upgraded
        ("mcap_message", pa.binary()),  # mcap-owa-support McapMessage JSON
    ]
)


class EventStage(Stage):
    """Recordings -> event rows (:data:`EVENT_SCHEMA`)."""

    name = "event"
    config_class = EventConfig
    presets = {"event": Preset("One row per event, every topic, nothing resampled (lossless).")}

    def __init__(
        self, config: EventConfig | None = None, *, batch_size: int = 8192, columnar: bool = True
    ) -> None:
        """``batch_size``: rows per batch at most. ``columnar``: a lossless config's rows are built from
        the payload bytes by Arrow kernels (:meth:`_lossless_batches`); False makes them through
        :class:`~owa_event.events.Event` objects, as every other config does (same rows, slower)."""
        super().__init__(config if config is not None else EventConfig())
        self.batch_size = batch_size
        self.columnar = columnar

    def schema(self) -> pa.Schema:
        return EVENT_SCHEMA

    def seam_rule(self) -> SeamRule:
        """``"any"`` without rate limits: a row is one message, made from it alone, so a recording
        cut anywhere in time gives the same rows; with rate limits the resampler's state (held keys,
        pending raw-mouse sums, periods) runs through an episode, so seams fall only between episodes."""
        return "episodes" if self.config.rates() else "any"

    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[pa.RecordBatch]:
        if self.columnar and is_lossless(self.config) and recording.window is None:
            yield from self._lossless_batches(recording, report)
            return
        # The general path: one list append per column per event, the row bytes built without a dict
        # (events.mcap_message_json), what comes out counted per batch.
        episode_path, size, out = recording.episode_path, self.batch_size, report.account.out
        episodes = kept_episodes(recording, self.config, report, media_exists=self.media_exists)
        for interval_idx, events in episodes:
            topics: list[str] = []
            times: list[int] = []
            types: list[str] = []
            messages: list[bytes] = []
            for e in events:
                topic, t, mtype = e.topic, e.timestamp_ns, e.message_type
                topics.append(topic)
                times.append(t)
                types.append(mtype)
                messages.append(mcap_message_json(topic, t, e.data, mtype))
                if len(times) >= size:
                    out.update(topics)
                    yield _batch(episode_path, interval_idx, topics, times, types, messages)
                    topics, times, types, messages = [], [], [], []
            if times:
                out.update(topics)
                yield _batch(episode_path, interval_idx, topics, times, types, messages)

    def _lossless_batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[pa.RecordBatch]:
        """The lossless config's rows without an :class:`~owa_event.events.Event` per message: each chunk
        group's columns are built by Arrow kernels from the payload bytes (the same rows, byte for byte,
        as the general path: tests/test_event_stage.py)."""
        episode_path, size, out = recording.episode_path, self.batch_size, report.account.out
        episodes = kept_episodes(recording, self.config, report, media_exists=self.media_exists, batches=True)
        for interval_idx, batches in episodes:
            channels: list[tuple[int, str, str]] | None = None
            for batch in batches:
                if batch.channels is not channels:
                    channels = batch.channels
                    topic_of = {cid: topic for cid, topic, _ in channels}
                    topics = pa.array([c[1] for c in channels], pa.string())
                    types = pa.array([c[2] for c in channels], pa.string())
                    pairs = [(topic, mtype) for _, topic, mtype in channels]
                index = batch.channel_index
                n = len(batch.times)
                columns = [
                    pa.repeat(pa.scalar(episode_path, pa.string()), n),
                    pa.repeat(pa.scalar(interval_idx, pa.int32()), n),
                    topics.take(index),
                    batch.times,
                    types.take(index),
                    mcap_message_array(pairs, index, batch.times, batch.payloads),
                ]
                rows = pa.RecordBatch.from_arrays(columns, schema=EVENT_SCHEMA)
                for start in range(0, n, size):
                    for cid, k in Counter(batch.channel_ids[start : start + size]).items():
                        out[topic_of[cid]] += k
                    yield rows.slice(start, size)


def _batch(
    episode_path: str,
    interval_idx: int,
    topics: list[str],
    times: list[int],
    types: list[str],
    messages: list[bytes],
) -> pa.RecordBatch:
    n = len(times)
    columns = [[episode_path] * n, [interval_idx] * n, topics, times, types, messages]
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, EVENT_SCHEMA, strict=True)], schema=EVENT_SCHEMA
    )
