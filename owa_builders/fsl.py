"""Builder ``owa_builders/fsl``, configs ``fsl-internvl3`` and ``fsl-smolvlm``: pre-tokenized,
fixed-length sequences straight from MCAP (no intermediate dataset, never opening a video).

Thin: wires :class:`FslBuilderConfig` to :func:`owa_fsl.stage.fsl_rows`. The expanded tokenizer
is saved beside the prepared dataset (``<cache dir>/tokenizer``) and available as
``builder.tokens.tokenizer``, so token ids can always be interpreted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from owa_event.config import event_config_of  # noqa: F401  (re-exported for symmetry)
from owa_event.stage import EpisodeReport
from owa_fsl.config import FslConfig
from owa_fsl.pack import PackStats
from owa_fsl.stage import fsl_rows
from owa_fsl.tokenizer import TOKENIZER_DIR, FslTokens

from ._base import RecordingBuilderMixin, episode_key, relative_path
from .registry import code_hash

logger = logging.getLogger("owa_builders")


BATCH_ROWS = 64


def fsl_features(debug_text: bool = False) -> datasets.Features:
    """The FSL schema: plain `datasets` types only, so a published copy loads without this package."""
    features = {
        "input_ids": datasets.List(datasets.Value("int32")),
        "attention_mask": datasets.List(datasets.Value("int8")),
        "images": datasets.List({"uri": datasets.Value("string"), "pts_ns": datasets.Value("int64")}),
        "episode_path": datasets.Value("string"),
        "interval_idx": datasets.Value("int32"),
        "base_ns": datasets.Value("int64"),
        "n_events": datasets.Value("int32"),
    }
    if debug_text:
        features["text"] = datasets.Value("string")
    return datasets.Features(features)


@dataclass
class FslBuilderConfig(datasets.BuilderConfig, FslConfig):
    """BuilderConfig for the FSL stage: the fields of :class:`owa_fsl.config.FslConfig`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate(input_topics=None)


class FslBuilder(RecordingBuilderMixin, datasets.ArrowBasedBuilder):
    """OWAMcap recordings -> packed token sequences with frame references."""

    BUILDER_CONFIG_CLASS = FslBuilderConfig
    BUILDER_CONFIGS = [
        FslBuilderConfig(
            name="fsl-internvl3",
            tokenizer_name="OpenGVLab/InternVL3-1B-hf",
            image_preset="internvl3",
            description="Sequences for InternVL3: each frame is <img> + 256 x <IMG_CONTEXT> + </img>.",
        ),
        FslBuilderConfig(
            name="fsl-smolvlm",
            tokenizer_name="HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
            image_preset="smolvlm",
            description="Sequences for SmolVLM2: each frame is <fake_token_around_image><global-img> "
            "+ 64 x <image> + <fake_token_around_image>.",
        ),
    ]
    DEFAULT_CONFIG_NAME = "fsl-internvl3"
    DATASET_NAME = "owa_builders/fsl"

    _tokens: FslTokens | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A local tokenizer's files are part of the cache fingerprint: a changed tokenizer at the
        # same path must not reuse sequences built with the old ids.
        name = kwargs.get("tokenizer_name")
        if name is None:
            wanted = kwargs.get("config_name") or self.DEFAULT_CONFIG_NAME
            name = next((c.tokenizer_name for c in self.BUILDER_CONFIGS if c.name == wanted), None)
        if isinstance(name, str) and os.path.isdir(name):
            digest = hashlib.sha256((kwargs.get("hash") or code_hash()).encode())
            for path in sorted(Path(name).iterdir()):
                if path.is_file():
                    digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
            kwargs["hash"] = digest.hexdigest()
        super().__init__(*args, **kwargs)

    @property
    def tokens(self) -> FslTokens:
        """The expanded tokenizer and id table (loaded once per process)."""
        if self._tokens is None:
            self._tokens = self.config.build_tokens()
        return self._tokens

    def _info(self) -> datasets.DatasetInfo:
        c = self.config
        about = {
            "stage": "fsl",
            "tokenizer_name": c.tokenizer_name,
            "encoder_type": c.encoder_type,
            "time_resolution_ns": c.time_resolution_ns,
            "max_sequence_length": c.max_sequence_length,
            "image_tokens": c.image_tokens().__dict__ if c.image_preset or c.image_token else None,
            "tokenizer_dir": TOKENIZER_DIR,
        }
        return datasets.DatasetInfo(
            description="OWAMcap recordings as pre-tokenized fixed-length sequences (owa-builders fsl stage). "
            + json.dumps(about, default=list),
            features=fsl_features(c.debug_text),
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        tokens = self.tokens  # fail early on a bad tokenizer, before any recording is read
        if not isinstance(dl_manager, datasets.StreamingDownloadManager) and self._output_dir:
            tokens.save(os.path.join(self._output_dir, TOKENIZER_DIR))
        return self.split_generators()

    def _generate_tables(self, files: list[str], root: str) -> Iterator[tuple[Any, pa.Table]]:
        tokens = self.tokens
        schema = self.info.features.arrow_schema
        for shard, path in enumerate(files):
            report = EpisodeReport(relative_path(path, root))
            stats = PackStats()
            batch: list[dict[str, Any]] = []
            i = 0
            for row in fsl_rows(
                path,
                episode_path=report.episode_path,
                root=root,
                config=self.config,
                tokens=tokens,
                report=report,
                pack_stats=stats,
            ):
                batch.append(row)
                if len(batch) >= BATCH_ROWS:
                    yield episode_key(shard, i), pa.Table.from_pylist(batch, schema=schema)
                    batch, i = [], i + 1
            if batch:
                yield episode_key(shard, i), pa.Table.from_pylist(batch, schema=schema)
            report.pack_stats = stats  # type: ignore[attr-defined]
            self.reports.append(report)
            logger.info(
                "owa_builders fsl: %s; %d sequences, %d frames",
                report.summary_line(),
                stats.sequences,
                stats.frames,
            )
