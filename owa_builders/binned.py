"""The binned stage's home in owa_builders: builder ``owa_builders/binned`` (config ``binned``) and its
:class:`~owa_builders.stages.StageSpec` (:class:`owa_binned.stage.BinnedStage`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from owa_binned.config import BinnedConfig
from owa_binned.stage import BinnedStage
from owa_event.events import screen_ref

from .builder import StageBuilder, builder_configs
from .stages import StageSpec

NS = 1_000_000_000


@dataclass
class BinnedBuilderConfig(datasets.BuilderConfig, BinnedConfig):
    """The fields of :class:`owa_binned.config.BinnedConfig` as a `datasets` builder config."""


class BinnedBuilder(StageBuilder):
    """OWAMcap recordings -> one row per fixed-rate bin (``owa_binned.stage.BINNED_SCHEMA``)."""

    STAGE = BinnedStage
    BUILDER_CONFIG_CLASS = BinnedBuilderConfig
    DEFAULT_CONFIG_NAME = next(iter(BinnedStage.presets))
    BUILDER_CONFIGS = builder_configs(BinnedStage, BinnedBuilderConfig)
    DATASET_NAME = "owa_builders/binned"


class BinnedSpec(StageSpec):
    """Rows are bins of ``period_ns``: frames are named in the ``state`` messages' ``media_ref``; the card's
    series is the actions per second."""

    stage = BinnedStage
    description = "one row per fixed-rate step (bin) of an episode"
    builder = BinnedBuilder
    time_column = "timestamp_ns"
    media_columns = ("state",)
    task_categories = ("robotics", "reinforcement-learning")

    def media_uris(self, batch: pa.RecordBatch) -> Iterator[str]:
        from .training.transforms import event_from_mcap_message

        states = batch.column(batch.schema.get_field_index("state"))
        for message in pc.list_flatten(states).to_pylist():
            if b"media_ref" in message:
                ref = screen_ref(event_from_mcap_message(message))
                if ref is not None:
                    yield ref[0]

    def rate_series(
        self, columns: Mapping[str, pa.Array], offsets_ns: Any, period_ns: int | None
    ) -> tuple[Any, pa.Array, Any]:
        actions = pc.list_value_length(columns["actions"]).to_numpy(zero_copy_only=False)
        bin_idx = np.asarray(columns["bin_idx"].to_numpy(zero_copy_only=False), dtype=np.int64)
        topic = pa.array(["actions"] * len(bin_idx))
        return bin_idx * int(period_ns or NS), topic, np.asarray(actions, dtype=np.float64)

    def card_values(self, built: Any, stats: Any, config_name: str) -> dict[str, Any]:
        from .publish.card import number

        return {"fps": number(stats.binned_fps or 0)}

    def preview_events(self, rows: list[dict[str, Any]]) -> list[Any]:
        from .publish.preview import preview_event

        events: list[Any] = []
        seen: set[tuple[int, str]] = set()
        for r in rows:
            for message in r["state"]:
                event = preview_event(message)
                if (event.timestamp_ns, event.topic) not in seen:  # a state repeats until the next screen
                    seen.add((event.timestamp_ns, event.topic))
                    events.append(event)
            events += [preview_event(m) for m in r["actions"]]
        events.sort(key=lambda e: e.timestamp_ns)
        return events

    def transform(self) -> type:
        from .training.transforms import BinnedTransform

        return BinnedTransform


SPEC = BinnedSpec()
