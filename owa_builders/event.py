"""The event stage's home in owa_builders: builder ``owa_builders/event`` (config ``event``) and its
:class:`~owa_builders.stages.StageSpec` (:class:`owa_event.stage.EventStage`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from owa_event.config import EventConfig
from owa_event.events import SCREEN, screen_ref
from owa_event.stage import EventStage

from .builder import StageBuilder, builder_configs
from .stages import StageSpec


@dataclass
class EventBuilderConfig(datasets.BuilderConfig, EventConfig):
    """The fields of :class:`owa_event.config.EventConfig` as a `datasets` builder config."""


class EventBuilder(StageBuilder):
    """OWAMcap recordings -> one row per event (``owa_event.stage.EVENT_SCHEMA``)."""

    STAGE = EventStage
    BUILDER_CONFIG_CLASS = EventBuilderConfig
    DEFAULT_CONFIG_NAME = next(iter(EventStage.presets))
    BUILDER_CONFIGS = builder_configs(EventStage, EventBuilderConfig)
    DATASET_NAME = "owa_builders/event"


class EventSpec(StageSpec):
    """Rows are events: screen frames are named in the screen messages' ``media_ref``."""

    stage = EventStage
    description = "one row per event, lossless"
    builder = EventBuilder
    time_column = "timestamp_ns"
    media_columns = ("topic", "mcap_message")
    topic_column = "topic"
    task_categories = ("robotics",)

    def media_uris(self, batch: pa.RecordBatch) -> Iterator[str]:
        from .training.transforms import event_from_mcap_message

        topics = batch.column(batch.schema.get_field_index("topic"))
        screens = batch.filter(pc.equal(topics, SCREEN))
        for message in screens.column(screens.schema.get_field_index("mcap_message")).to_pylist():
            ref = screen_ref(event_from_mcap_message(message))
            if ref is not None:
                yield ref[0]

    def summary(self, split: str, dataset: Any) -> str:
        from .summary import event_summary, format_event_summary

        return format_event_summary(event_summary(dataset.data.table), title=f"[{split}] event dataset")

    def rate_series(
        self, columns: Mapping[str, pa.Array], offsets_ns: Any, period_ns: int | None
    ) -> tuple[Any, pa.Array, Any]:
        return offsets_ns, columns["topic"], np.ones(len(offsets_ns))

    def preview_events(self, rows: list[dict[str, Any]]) -> list[Any]:
        from .publish.preview import preview_event

        return [preview_event(r["mcap_message"]) for r in rows]

    def transform(self) -> type:
        from .training.transforms import EventTransform

        return EventTransform


SPEC = EventSpec()
