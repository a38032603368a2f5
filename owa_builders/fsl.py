"""Builder ``owa_builders/fsl`` (configs ``fsl-internvl3``, ``fsl-smolvlm``): the FSL stage
(:class:`owa_fsl.stage.FslStage`). The expanded tokenizer is saved beside the prepared dataset
(``<cache dir>/tokenizer``) and is ``builder.stage.tokens``."""

from __future__ import annotations

from dataclasses import dataclass

import datasets

from owa_fsl.config import FslConfig
from owa_fsl.stage import FslStage

from .builder import StageBuilder, builder_configs


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
