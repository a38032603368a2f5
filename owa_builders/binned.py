"""Builder ``owa_builders/binned`` (config ``binned``): the binned stage (:class:`owa_binned.stage.BinnedStage`)."""

from __future__ import annotations

from dataclasses import dataclass

import datasets

from owa_binned.config import BinnedConfig
from owa_binned.stage import BinnedStage

from .builder import StageBuilder, builder_configs


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
