"""Builder ``owa_builders/binned``, config ``binned``: one row per fixed-rate bin of each episode.

Thin: wires :class:`BinnedBuilderConfig` to :func:`owa_binned.stage.binned_batches`. An
``ArrowBasedBuilder`` like the event builder (column batches, no per-row encoding).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datasets
import pyarrow as pa

from owa_binned.config import BinnedConfig, binned_config_of
from owa_binned.stage import BinnedReport, binned_batches

from ._base import RecordingBuilderMixin

BINNED_FEATURES = datasets.Features(
    {
        "episode_path": datasets.Value("string"),
        "interval_idx": datasets.Value("int32"),
        "bin_idx": datasets.Value("int32"),
        "timestamp_ns": datasets.Value("int64"),
        "state": datasets.List(datasets.Value("binary")),
        "actions": datasets.List(datasets.Value("binary")),
    }
)


@dataclass
class BinnedBuilderConfig(datasets.BuilderConfig, BinnedConfig):
    """BuilderConfig for the binned stage: the fields of :class:`owa_binned.config.BinnedConfig`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate(input_topics=None)


class BinnedBuilder(RecordingBuilderMixin, datasets.ArrowBasedBuilder):
    """OWAMcap recordings -> bin rows (``episode_path``, ``interval_idx``, ``bin_idx``,
    ``timestamp_ns`` = bin start, ``state`` and ``actions`` as McapMessage JSON bytes)."""

    BUILDER_CONFIG_CLASS = BinnedBuilderConfig
    BUILDER_CONFIGS = [
        BinnedBuilderConfig(
            name="binned",
            description="10 bins per second per episode: the latest screen at each bin start and the "
            "keyboard/mouse events inside the bin.",
        )
    ]
    DEFAULT_CONFIG_NAME = "binned"
    DATASET_NAME = "owa_builders/binned"

    def _info(self) -> datasets.DatasetInfo:
        c = self.config
        try:
            period_ns: int | None = c.period_ns()
        except ValueError:  # an invalid config is reported (all problems) right after _info
            period_ns = None
        about = {
            "stage": "binned",
            "fps": c.fps,
            "period_ns": period_ns,
            "state_topics": list(c.state_topics),
            "action_topics": list(c.action_topics),
            "drop_empty_bins": c.drop_empty_bins,
        }
        return datasets.DatasetInfo(
            description="OWAMcap recordings as fixed-rate bins (owa-builders binned stage). "
            + json.dumps(about),
            features=BINNED_FEATURES,
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        return self.split_generators()

    def _generate_tables(self, files: list[str], root: str) -> Iterator[tuple[Any, pa.Table]]:
        config = binned_config_of(self.config)
        return self.column_tables(
            files, root, "binned", BinnedReport,
            lambda path, report: binned_batches(path, episode_path=report.episode_path, root=root, config=config,
                                                report=report),
            BINNED_FEATURES.arrow_schema,
        )  # fmt: skip
