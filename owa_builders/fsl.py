"""The FSL (fixed sequence length) stage's home in owa_builders: builder ``owa_builders/fsl`` (configs
``fsl-internvl3``, ``fsl-smolvlm``) and its :class:`~owa_builders.stages.StageSpec`
(:class:`owa_fsl.stage.FslStage`). The expanded tokenizer is saved beside the prepared dataset
(``<cache dir>/tokenizer``) and is ``builder.stage.tokens``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from owa_fsl.config import FslConfig
from owa_fsl.stage import FslStage

from .builder import StageBuilder, builder_configs
from .stages import StageSpec


@dataclass
class FslBuilderConfig(datasets.BuilderConfig, FslConfig):
    """The fields of :class:`owa_fsl.config.FslConfig` as a `datasets` builder config."""


class FslBuilder(StageBuilder):
    """OWAMcap recordings -> packed token sequences with frame references (``owa_fsl.stage.FSL_SCHEMA``)."""

    STAGE = FslStage
    BUILDER_CONFIG_CLASS = FslBuilderConfig
    DEFAULT_CONFIG_NAME = next(iter(FslStage.presets))
    BUILDER_CONFIGS = builder_configs(FslStage, FslBuilderConfig)
    DATASET_NAME = "owa_builders/fsl"


class FslSpec(StageSpec):
    """Rows are fixed-length token sequences: frames are the ``images`` column; a sequence's time is its
    ``base_ns``; the card states token statistics and the collator of the config's image layout."""

    stage = FslStage
    description = "FSL, fixed sequence length: pre-tokenized sequences of a model's exact length"
    builder = FslBuilder
    time_column = "base_ns"
    media_columns = ("images",)
    token_rows = True
    task_categories = ("robotics", "image-text-to-text")
    preview_by_row = True
    inspect_front_only = True

    def media_uris(self, batch: pa.RecordBatch) -> Iterator[str]:
        images = batch.column(batch.schema.get_field_index("images"))
        yield from pc.struct_field(pc.list_flatten(images), "uri").to_pylist()

    def summary(self, split: str, dataset: Any) -> str:
        table = dataset.data.table
        tokens = pc.sum(pc.list_value_length(table["input_ids"])).as_py() or 0
        real = sum(sum(mask) for mask in dataset["attention_mask"])
        frames = pc.sum(pc.list_value_length(table["images"])).as_py() or 0
        events = pc.sum(table["n_events"]).as_py() or 0
        fill = real / tokens if tokens else 0.0
        return (
            f"[{split}] fsl dataset: {dataset.num_rows} sequences, {events} events, {frames} frame references, "
            f"{real} real tokens ({fill:.0%} of {tokens} slots)"
        )

    def card_values(self, built: Any, stats: Any, config_name: str) -> dict[str, Any]:
        from .publish import layout
        from .publish.card import image_layout, token_markdown

        return {
            "sequence_length": f"{stats.fsl.sequence_length:,}",
            "token_table": token_markdown(stats),
            "tokenizer_path": layout.tokenizer_path(config_name),
            "image_layout": image_layout(built),
            "collator": self.collator(built.config_name, built.record.get("config") or {}),
        }

    def preview_row(self, built: Any, row: dict[str, Any]) -> tuple[list[Any], str | None, dict[str, Any]]:
        from owa_event.events import screen_ref
        from owa_fsl.decode import decode_row
        from owa_fsl.tokenizer import FslTokens

        from .publish.preview import PreviewEvent, field_summary, token_text

        directory = built.tokenizer_dir()
        assert directory is not None
        tokens = FslTokens.load(directory)
        events = []
        for event in decode_row(row, tokens):
            ref = screen_ref(event)
            frame = (ref[0], ref[1]) if ref is not None and ref[1] is not None else None
            events.append(PreviewEvent(event.timestamp_ns, event.topic, field_summary(event.fields), frame))
        real = [int(t) for t, m in zip(row["input_ids"], row["attention_mask"]) if m]
        facts = {
            "tokens": len(row["input_ids"]),
            "real tokens": len(real),
            "padding": len(row["input_ids"]) - len(real),
            "frames": len(row["images"]),
            "events": int(row["n_events"]),
        }
        return events, token_text(real, tokens), facts

    def transform(self) -> type:
        from .training.transforms import FslTransform

        return FslTransform


SPEC = FslSpec()
