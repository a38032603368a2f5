"""One generic `datasets` builder that wires any stage (:class:`~owa_event.pipeline.Stage`) to
``load_dataset``. The per-stage builder modules (``event``, ``binned``, ``fsl``) only name their
stage and config class; no stage logic lives here.

What the builder adds to the stage:

- **configs**: the stage's presets become named ``BuilderConfig`` s; ``load_dataset`` keyword
  arguments override fields. Validation happens once, after the overrides, and reports every
  problem at once (unknown names get a "did you mean"): :class:`~owa_event.errors.ConfigError`;
- **discovery**: :func:`owa_builders.discovery.find_recordings` (data_dir / data_files, local or
  fsspec roots); each recording is one shard, so ``num_proc`` and streaming workers split them;
- **errors at the top**: errors of ours raised while generating reach the caller unwrapped (same
  class and message; `datasets` would otherwise hide them inside ``DatasetGenerationError``);
- **reports**: one :class:`~owa_event.account.RecordingReport` per recording, kept in
  ``builder.reports`` and written beside the prepared data (``owa_reports/``), so they survive
  worker processes (``num_proc``) and cache hits;
- **an empty result is an error of ours** naming what dropped everything, not `datasets`'
  ``Instruction "train" corresponds to no data!``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any, ClassVar

import datasets
import pyarrow as pa
from datasets.builder import Key

from owa_event.account import RecordingReport
from owa_event.pipeline import (
    RecordingRef,
    Stage,
    config_field_names,
    convert,
)

from .discovery import Recordings, find_recordings, from_paths, split_order
from .errors import EmptyDatasetError, OwaError, did_you_mean
from .registry import code_hash

logger = logging.getLogger("owa_builders")

#: Where each recording's report is written inside a prepared dataset's cache folder.
REPORTS_DIR = "owa_reports"
#: Fields of ``datasets.BuilderConfig`` that ``load_dataset`` keyword arguments may also set.
BUILDER_CONFIG_FIELDS = ("name", "version", "data_dir", "data_files", "description")


def builder_configs(
    stage: type[Stage], config_class: type[datasets.BuilderConfig]
) -> list[datasets.BuilderConfig]:
    """The stage's presets as builder configs (the first is the default)."""
    return [
        config_class(name=name, description=preset.description, **preset.fields)
        for name, preset in stage.presets.items()
    ]


class StageBuilder(datasets.ArrowBasedBuilder):
    """A `datasets` builder for one stage. Subclasses set :attr:`STAGE`, ``BUILDER_CONFIG_CLASS``
    (a dataclass deriving from ``datasets.BuilderConfig`` and the stage's config class),
    ``BUILDER_CONFIGS`` (:func:`builder_configs`) and :attr:`DATASET_NAME`."""

    STAGE: ClassVar[type[Stage]]
    DATASET_NAME: ClassVar[str]
    stage: Stage

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("hash") is None:
            kwargs["hash"] = code_hash()
        # Registered names contain a "/" ("owa_builders/event"); `datasets` uses the dataset name in
        # cache file names, so keep it one path segment.
        kwargs["dataset_name"] = (kwargs.get("dataset_name") or self.DATASET_NAME).replace("/", "--")
        self._streaming = False
        super().__init__(*args, **kwargs)
        self._reports: list[RecordingReport] | None = None
        self._split_reports: dict[str, list[RecordingReport]] = {}

    # -- config: validated once, after overrides ---------------------------------------------------
    def _create_builder_config(
        self,
        config_name: str | None = None,
        custom_features: Any = None,
        config_id: str | None = None,
        **config_kwargs: Any,
    ) -> tuple[datasets.BuilderConfig, str]:
        problems: list[str] = []
        names = [c.name for c in self.BUILDER_CONFIGS]
        if config_name is not None and config_name not in names:
            problems.append(
                f"unknown config {config_name!r}{did_you_mean(config_name, names)} (configs: {', '.join(names)})"
            )
            config_name = None
        field_names = config_field_names(self.STAGE.config_class)
        allowed = field_names | set(BUILDER_CONFIG_FIELDS)
        known = {k: v for k, v in config_kwargs.items() if k in allowed}
        config, config_id = super()._create_builder_config(config_name, custom_features, config_id, **known)
        # the preset's fields with `datasets`' overrides applied, plus the unknown names (reported there)
        values = {**{n: getattr(config, n) for n in field_names},
                  **{k: v for k, v in config_kwargs.items() if k not in allowed}}  # fmt: skip
        has_data = config.data_dir is not None or config.data_files is not None
        stage_config = self.STAGE.checked_config(
            values, problems=problems, also=BUILDER_CONFIG_FIELDS,
            recordings=(lambda: self._recordings(config).all()) if has_data else None,
            where=f"{self.DATASET_NAME} config {config.name!r}",
        )  # fmt: skip
        self.stage = self.STAGE(stage_config)
        extra = self.stage.fingerprint()
        if extra and isinstance(self.hash, str):
            self.hash = hashlib.sha256(f"{self.hash}\0{extra}".encode()).hexdigest()
        return config, config_id

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=f"OWAMcap recordings, owa-builders {self.STAGE.name} stage. "
            + json.dumps(self.stage.describe(), sort_keys=True, default=list),
            features=datasets.Features.from_arrow_schema(self.stage.schema()),
        )

    # -- discovery ----------------------------------------------------------------------------------
    def recordings(self) -> Recordings:
        """The recordings this builder converts, by split."""
        return self._recordings(self.config)

    def _recordings(self, config: datasets.BuilderConfig) -> Recordings:
        data_files = config.data_files
        if isinstance(data_files, datasets.data_files.DataFilesDict):  # resolved by load_dataset already
            return from_paths(
                {str(split): list(files) for split, files in data_files.items()}, config.data_dir
            )
        return find_recordings(config.data_dir, data_files, storage_options=self.storage_options)

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        self._streaming = isinstance(dl_manager, datasets.StreamingDownloadManager)
        recordings = self.recordings()
        if not self._streaming and self._output_dir:
            self.stage.save_artifacts(self._output_dir)
        logger.info(
            "owa_builders: %d recordings in %d split(s) under %s",
            len(recordings.all()),
            len(recordings.splits),
            recordings.root,
        )
        return [
            datasets.SplitGenerator(
                name=split, gen_kwargs={"recordings": list(enumerate(refs)), "split": split}
            )
            for split, refs in recordings.splits.items()
        ]

    # -- rows -----------------------------------------------------------------------------------------
    def _generate_tables(
        self, recordings: list[tuple[int, RecordingRef]], split: str
    ) -> Iterator[tuple[Key, pa.Table]]:
        for index, ref in recordings:
            report = RecordingReport(ref.episode_path)
            try:
                for i, batch in enumerate(convert(self.stage, ref, report)):
                    yield Key(index, i), pa.Table.from_batches([batch])
            except OwaError as exc:
                raise unwrapped(exc).with_traceback(exc.__traceback__) from None
            self._keep_report(split, index, report)

    def _keep_report(self, split: str, index: int, report: RecordingReport) -> None:
        logger.info("owa_builders %s: %s", self.STAGE.name, report.summary_line())
        if self._reports is None:
            self._reports = []
        self._reports.append(report)
        if (
            not self._streaming
            and self._output_dir
            and not datasets.utils.file_utils.is_remote_url(self._output_dir)
        ):
            folder = os.path.join(self._output_dir, REPORTS_DIR, split)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{index:06d}.json"), "w") as f:
                json.dump(report.to_dict(), f)

    def _prepare_split(self, split_generator: datasets.SplitGenerator, **kwargs: Any) -> None:
        super()._prepare_split(split_generator, **kwargs)
        if split_generator.split_info.num_examples == 0:
            reports = read_reports(self._output_dir).get(split_generator.name, [])
            raise EmptyDatasetError(empty_message(self.STAGE.name, split_generator.name, reports))

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        super().download_and_prepare(*args, **kwargs)
        if not datasets.utils.file_utils.is_remote_url(self._output_dir):
            by_split = read_reports(self._output_dir)
            self._split_reports = by_split
            self._reports = [r for reports in by_split.values() for r in reports]

    @property
    def split_reports(self) -> dict[str, list[RecordingReport]]:
        """The reports by split (after ``download_and_prepare``), recordings in order."""
        return dict(self._split_reports)

    @property
    def reports(self) -> list[RecordingReport]:
        """One report per recording converted (after ``download_and_prepare``, also on a cache hit;
        while streaming, those of the recordings read so far in this process)."""
        return list(self._reports or [])


def read_reports(directory: str) -> dict[str, list[RecordingReport]]:
    """The reports written beside prepared data: ``{split: [report, ...]}`` in recording order."""
    root = os.path.join(directory, REPORTS_DIR)
    out: dict[str, list[RecordingReport]] = {}
    if not os.path.isdir(root):
        return out
    for split in sorted(os.listdir(root), key=split_order):
        folder = os.path.join(root, split)
        out[split] = []
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name)) as f:
                out[split].append(RecordingReport.from_dict(json.load(f)))
    return out


def empty_message(stage: str, split: str, reports: list[RecordingReport]) -> str:
    """Why a split has no rows: each recording's account."""
    lines = "\n".join(f"  - {r.summary_line()}" for r in reports) or "  (no recording was converted)"
    return (
        f"the {stage} build of split {split!r} made no rows from its {len(reports)} recording(s); "
        f"what became of their messages:\n{lines}"
    )


# ------------------------------------------------------------------------------------------------
# Errors at the top
# ------------------------------------------------------------------------------------------------
_TWINS: dict[type, type] = {}


def unwrapped(exc: OwaError) -> OwaError:
    """``exc`` as an instance of a twin class deriving from both its own class and
    ``datasets``' ``DatasetGenerationError``, which `datasets` re-raises as it is instead of hiding it.

    The twin has the same name, module and message, so the last line of a traceback reads exactly
    like the original error, and ``except RecordingError`` (or ``except OwaError``) still catches
    it. It pickles back to a twin (worker processes).
    """
    cls = type(exc)
    if isinstance(exc, datasets.exceptions.DatasetGenerationError):
        return exc
    twin = _TWINS.get(cls)
    if twin is None:
        twin = type(
            cls.__name__, (cls, datasets.exceptions.DatasetGenerationError), {"__reduce__": _twin_reduce}
        )
        twin.__module__ = cls.__module__
        twin.__qualname__ = cls.__qualname__
        twin._owa_original = cls  # type: ignore[attr-defined]
        _TWINS[cls] = twin
    out = twin.__new__(twin, *exc.args)
    out.args = exc.args
    out.__dict__.update(exc.__dict__)
    return out


def _twin_reduce(self: Any) -> tuple[Any, ...]:
    return (_rebuild_twin, (self._owa_original, self.args, dict(self.__dict__)))


def _rebuild_twin(cls: type, args: tuple[Any, ...], state: dict[str, Any]) -> OwaError:
    original = cls.__new__(cls, *args)
    original.args = args
    original.__dict__.update(state)
    return unwrapped(original)
