"""The event stage: one row per kept event, lossless by default.

Pipeline per recording: :func:`owa_event.pipeline.kept_events` (read -> keep topics -> select
intervals -> resample), then one row per event. Every message that goes in is a row or is
counted under a named rule (``messages_in == out + dropped + merged`` per topic).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from .account import RecordingReport
from .config import EventConfig
from .pipeline import Preset, RecordingRef, Stage, kept_events

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

    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[pa.RecordBatch]:
        emit = report.account.emit
        columns = _Columns(recording.episode_path)
        for interval_idx, event in kept_events(
            recording, self.config, report, media_exists=self.media_exists
        ):
            columns.add(
                interval_idx, event.topic, event.timestamp_ns, event.message_type, event.mcap_message_json()
            )
            emit(event.topic)
            if len(columns) >= self.batch_size:
                yield columns.batch()
                columns = _Columns(recording.episode_path)
        if len(columns):
            yield columns.batch()


class _Columns:
    """The columns of one batch of event rows."""

    __slots__ = ("episode_path", "interval_idx", "topic", "timestamp_ns", "message_type", "mcap_message")

    def __init__(self, episode_path: str) -> None:
        self.episode_path = episode_path
        self.interval_idx: list[int] = []
        self.topic: list[str] = []
        self.timestamp_ns: list[int] = []
        self.message_type: list[str] = []
        self.mcap_message: list[bytes] = []

    def __len__(self) -> int:
        return len(self.timestamp_ns)

    def add(
        self, interval_idx: int, topic: str, timestamp_ns: int, message_type: str, message: bytes
    ) -> None:
        self.interval_idx.append(interval_idx)
        self.topic.append(topic)
        self.timestamp_ns.append(timestamp_ns)
        self.message_type.append(message_type)
        self.mcap_message.append(message)

    def batch(self) -> pa.RecordBatch:
        data: dict[str, Any] = {
            "episode_path": [self.episode_path] * len(self),
            "interval_idx": self.interval_idx,
            "topic": self.topic,
            "timestamp_ns": self.timestamp_ns,
            "message_type": self.message_type,
            "mcap_message": self.mcap_message,
        }
        return pa.RecordBatch.from_pydict(data, schema=EVENT_SCHEMA)
