"""Build a stage into a folder, and read such a folder back: the Python side of ``owa-builders build``.

A built folder (``build(..., output=DIR)``) holds:

- the dataset, as `datasets` saves it (``DatasetDict.save_to_disk``; ``datasets.load_from_disk(DIR)``);
- the stage's artifacts (FSL: the expanded tokenizer in ``DIR/tokenizer``);
- :data:`BUILD_RECORD` (``owa_build.json``): stage, config name and fields, package version, data
  root, and every recording's report -- what ``inspect``, ``decode`` and publishing read.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from owa_event.account import RecordingReport
from owa_event.errors import OwaError, OwaWarning
from owa_event.pipeline import config_dict

from .registry import BUILDERS, PREFIX

#: The record of a build, written into the output folder.
BUILD_RECORD = "owa_build.json"
#: Stage name -> registered builder name.
STAGES: dict[str, str] = {name[len(PREFIX) :]: name for name in BUILDERS}


class BuildFolderError(OwaError):
    """A folder that is not a complete build of ``owa-builders build``."""


@dataclass
class BuildResult:
    """What :func:`build` made: the dataset (a ``DatasetDict``), the builder and its reports."""

    dataset: Any
    builder: Any
    reports: list[RecordingReport] = field(default_factory=list)
    output: str | None = None


def build(
    stage: str,
    data_dir: str | None = None,
    output: str | os.PathLike[str] | None = None,
    *,
    config: str | None = None,
    options: dict[str, Any] | None = None,
    data_files: Any = None,
    num_proc: int | None = None,
    cache_dir: str | None = None,
) -> BuildResult:
    """Build ``stage`` (``event``, ``binned``, ``fsl``) through `datasets`; save it to ``output`` when given.

    Our warnings are not printed while building: each is kept in its recording's report (see
    :func:`owa_builders.cli`), which also works with ``num_proc`` and on a cache hit.
    """
    import datasets

    if stage not in STAGES:
        from owa_event.errors import did_you_mean

        raise BuildFolderError(
            f"unknown stage {stage!r}{did_you_mean(stage, STAGES)} (stages: {', '.join(STAGES)})"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OwaWarning)
        builder = datasets.load_dataset_builder(
            STAGES[stage],
            config,
            data_dir=data_dir,
            data_files=data_files,
            cache_dir=cache_dir,
            **(options or {}),
        )
        builder.download_and_prepare(num_proc=num_proc)
        dataset = builder.as_dataset()
    result = BuildResult(dataset, builder, builder.reports)
    if output is not None:
        result.output = save(result, os.fspath(output))
    return result


def save(result: BuildResult, output: str) -> str:
    """Save a build into ``output``: the dataset, the stage's artifacts and :data:`BUILD_RECORD`."""
    from . import __version__

    builder = result.builder
    result.dataset.save_to_disk(output)
    builder.stage.save_artifacts(output)
    record = {
        "stage": builder.STAGE.name,
        "builder": builder.DATASET_NAME,
        "config_name": builder.config.name,
        "config": config_dict(builder.stage.config, builder.STAGE.config_class),
        "describe": builder.stage.describe(),
        "version": __version__,
        "data_root": builder.config.data_dir,
        "splits": {split: ds.num_rows for split, ds in result.dataset.items()},
        "reports": [r.to_dict() for r in result.reports],
    }
    with open(os.path.join(output, BUILD_RECORD), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True, default=list)
    return output


def read_record(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The :data:`BUILD_RECORD` of a built folder; :class:`BuildFolderError` when it is not one."""
    folder = os.fspath(folder)
    path = os.path.join(folder, BUILD_RECORD)
    if not os.path.isdir(folder):
        raise BuildFolderError(
            f"{folder}: no such folder (expected the output of `owa-builders build ... -o DIR`)"
        )
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        raise BuildFolderError(
            f"{folder}: no {BUILD_RECORD}: not a folder written by `owa-builders build ... -o DIR`"
        ) from None
    except (OSError, ValueError) as exc:
        raise BuildFolderError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(record, dict) or "stage" not in record:
        raise BuildFolderError(f"{path}: not a build record")
    return record
