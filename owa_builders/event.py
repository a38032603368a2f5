"""Builder ``owa_builders/event`` (config ``event``): the event stage (:class:`owa_event.stage.EventStage`)."""

from __future__ import annotations

from dataclasses import dataclass

import datasets

from owa_event.config import EventConfig
from owa_event.stage import EventStage

from .builder import StageBuilder, builder_configs


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
