"""The event stage: one row per kept event, lossless by default.

Pipeline per recording: :func:`owa_event.pipeline.kept_events` (read -> keep topics -> select
intervals -> resample), then one row per event. Every message that goes in is a row or is
counted under a named rule (``messages_in == out + dropped + merged`` per topic).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from .account import RecordingReport
from .config import EventConfig
from .events import mcap_message_json
from .pipeline import Preset, RecordingRef, SeamRule, Stage, kept_episodes

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

    def __init__(self, config: EventConfig | None = None, *, batch_size: int = 8192) -> None:
        super().__init__(config if config is not None else EventConfig())
        self.batch_size = batch_size

    def schema(self) -> pa.Schema:
        return EVENT_SCHEMA

    def seam_rule(self) -> SeamRule:
        """``"any"`` without rate limits: a row is one message, made from it alone, so a recording
        cut anywhere in time gives the same rows; with rate limits the resampler's state (held keys,
        pending raw-mouse sums, periods) runs through an episode, so seams fall only between episodes."""
        return "episodes" if self.config.rates() else "any"

    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[pa.RecordBatch]:
        # The hot path: one list append per column per event, the row bytes built without a dict
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
