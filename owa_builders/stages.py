"""The stages: the one mapping name -> stage, and what ``owa_builders`` knows about each one.

:data:`STAGES` is the only list of stages. Each names the module that is the stage's home in this
package (``owa_builders/<stage>.py``): its `datasets` builder and its :class:`StageSpec` (``SPEC``),
which answers everything consumers ask about a stage -- its stage class and presets, its time
column, the media its rows reference, its CLI summary, its events-per-second series and token
statistics for the dataset card, its card template and values, its preview, its training
transform and, per preset, its collator. The registry, the CLI, ``inspect``, the Ray build,
``publish`` and ``training`` look a stage up here and ask its spec; none of them branches on a
stage's name.

A new stage: its package (config + :class:`~owa_event.pipeline.Stage`), its home module here
(builder + spec) and its card template (``dataset_cards/<stage>.md``), plus one line below.

The home modules are imported on first use (by name, so ``import owa_builders`` stays light and
the spec's hooks may use the consumers' helpers without an import cycle).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pyarrow as pa

from owa_event.pipeline import Preset, Stage

from .errors import UnknownStageError, did_you_mean

#: Stage name -> the module that is its home in owa_builders (its builder and its ``SPEC``).
STAGES: dict[str, str] = {
    "event": "owa_builders.event",
    "binned": "owa_builders.binned",
    "fsl": "owa_builders.fsl",
}
#: Registered `datasets` names are ``owa_builders/<stage>``.
PREFIX = "owa_builders/"


class StageSpec:
    """What owa_builders knows about one stage, beside the stage itself.

    Subclasses (one per stage, in the stage's home module) set the class attributes and override
    the hooks whose default does not fit. Hooks receive plain Arrow batches, rows (dicts) or a built
    folder (:class:`owa_builders.publish.source.BuiltFolder`), never a stage name.
    """

    #: The stage class (its ``name``, ``config_class``, ``presets``).
    stage: ClassVar[type[Stage]]
    #: What one row is, in a few words (the CLI's help).
    description: ClassVar[str]
    #: The stage's `datasets` builder (a :class:`owa_builders.builder.StageBuilder`).
    builder: ClassVar[type]
    #: The column holding each row's time (ns since the epoch): episode spans and hours.
    time_column: ClassVar[str] = "timestamp_ns"
    #: The columns :meth:`media_uris` reads.
    media_columns: ClassVar[tuple[str, ...]] = ()
    #: The column naming each row's topic, when rows are events (counted when a build has no accounts).
    topic_column: ClassVar[str | None] = None
    #: Whether rows are token sequences (``input_ids``, ``attention_mask``, ``images``, ``n_events``):
    #: the card then states token statistics.
    token_rows: ClassVar[bool] = False
    #: Hub task categories of the stage's datasets.
    task_categories: ClassVar[tuple[str, ...]] = ("robotics",)
    #: Whether ``inspect`` shows only the shared front's account (read -> keep -> select -> resample):
    #: the stage's rows need something inspect does not load (the FSL tokenizer).
    inspect_front_only: ClassVar[bool] = False
    #: Whether a preview shows one row (a sequence) rather than one episode.
    preview_by_row: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def presets(self) -> Mapping[str, Preset]:
        return self.stage.presets

    @property
    def builder_name(self) -> str:
        """The name ``load_dataset`` knows the stage by (``owa_builders/<stage>``)."""
        return PREFIX + self.name

    @property
    def card_template(self) -> str:
        """The card template's file name in ``dataset_cards/``."""
        return f"{self.name}.md"

    # -- media ---------------------------------------------------------------------------------
    def media_uris(self, batch: pa.RecordBatch) -> Iterator[str]:
        """The media uris one batch of rows (at least :attr:`media_columns`) references (repeats included)."""
        return iter(())

    # -- summaries ---------------------------------------------------------------------------
    def summary(self, split: str, dataset: Any) -> str:
        """What the CLI prints about one split (a ``datasets.Dataset``) of a fresh build."""
        return f"[{split}] {self.name} dataset: {dataset.num_rows} rows, {len(set(dataset['episode_path']))} recordings"

    def rate_series(
        self, columns: Mapping[str, pa.Array], offsets_ns: Any, period_ns: int | None
    ) -> tuple[Any, pa.Array, Any] | None:
        """The card's events-per-second series of one batch: ``(offsets_ns, topics, weights)`` (ns since
        the episode start, the series each point counts in, how much it counts), or None for no series."""
        return None

    def card_values(self, built: Any, stats: Any, config_name: str) -> dict[str, Any]:
        """The stage's own placeholders of its card template (beside the shared ones), for the card section
        of ``config_name`` (:class:`owa_builders.publish.stats.Stats` in ``stats``)."""
        return {}

    def collator(self, config_name: str, config: Mapping[str, Any]) -> str | None:
        """The name of the training collator (``owa_builders.training.batching``) for a built config: that
        of the preset the config's image layout comes from (else of ``config_name``'s preset, else the
        first preset's); None for a stage without collators."""
        matching = [
            p
            for p in self.presets.values()
            if p.collator and p.fields.get("image_preset") == config.get("image_preset")
        ]
        if matching:
            return matching[0].collator
        preset = self.presets.get(config_name)
        if preset is not None and preset.collator:
            return preset.collator
        return next((p.collator for p in self.presets.values() if p.collator), None)

    # -- preview ------------------------------------------------------------------------------
    def preview_events(self, rows: list[dict[str, Any]]) -> list[Any]:
        """An episode's rows as :class:`owa_builders.publish.preview.PreviewEvent` s, in time order."""
        raise NotImplementedError(f"the {self.name} stage has no episode preview")

    def preview_row(self, built: Any, row: dict[str, Any]) -> tuple[list[Any], str | None, dict[str, Any]]:
        """One row (:attr:`preview_by_row` stages): its events, its token text and its facts."""
        raise NotImplementedError(f"the {self.name} stage has no row preview")

    # -- training -----------------------------------------------------------------------------
    def transform(self) -> type:
        """The training transform class (``owa_builders.training.transforms``) for the stage's rows."""
        raise NotImplementedError(f"the {self.name} stage has no training transform")


def names() -> list[str]:
    """Every stage name, in :data:`STAGES` order."""
    return list(STAGES)


@functools.cache
def spec(name: str) -> StageSpec:
    """The :class:`StageSpec` of stage ``name``; :class:`UnknownStageError` (with a "did you mean") otherwise."""
    if name not in STAGES:
        raise UnknownStageError(
            f"unknown stage {name!r}{did_you_mean(str(name), STAGES)} (stages: {', '.join(STAGES)})"
        )
    found = importlib.import_module(STAGES[name]).SPEC
    assert isinstance(found, StageSpec) and found.name == name, f"{STAGES[name]}.SPEC is not the {name} stage"
    return found


def specs() -> list[StageSpec]:
    """Every stage's spec, in :data:`STAGES` order."""
    return [spec(name) for name in STAGES]


def stage_class(name: str) -> type[Stage]:
    """The :class:`~owa_event.pipeline.Stage` subclass of stage ``name``."""
    return spec(name).stage
