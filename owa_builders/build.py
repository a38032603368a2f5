"""Build a stage on this machine, through `datasets`: the Python side of ``owa-builders build``.

With ``output`` (a local folder or any fsspec URL), the build is written in THE layout of a build
(:mod:`owa_builders.output`, the same as the Ray build's: one Parquet shard per recording with its
footer, the stage's artifacts, :data:`~owa_builders.output.RECORD_NAME` last); read it back with
:func:`owa_builders.output.load_build`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from owa_event.account import RecordingReport
from owa_event.errors import OwaWarning

from .output import (
    RECORD_NAME,
    BuildFolderError,
    BuildRecord,
    Destination,
    config_fingerprint,
    episode_ranges,
    finish_build,
    input_fingerprint,
    read_record,
    shard_name,
    start_build,
    write_shard,
)
from .registry import BUILDERS, PREFIX

#: The record of a build, written at the output's root (:mod:`owa_builders.output`).
BUILD_RECORD = RECORD_NAME
#: Stage name -> registered builder name.
STAGES: dict[str, str] = {name[len(PREFIX) :]: name for name in BUILDERS}


__all__ = [
    "BUILD_RECORD",
    "STAGES",
    "BuildFolderError",
    "BuildRecord",
    "BuildResult",
    "build",
    "read_record",
    "save",
]


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
    storage_options: dict[str, Any] | None = None,
) -> BuildResult:
    """Build ``stage`` (``event``, ``binned``, ``fsl``) through `datasets`; write it to ``output`` (a
    folder or URL) when given. ``storage_options`` go to fsspec for the recordings and the output.

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
            **({"storage_options": dict(storage_options)} if storage_options else {}),  # datasets adds to it
            **(options or {}),
        )
        builder.download_and_prepare(num_proc=num_proc)
        dataset = builder.as_dataset()
    result = BuildResult(dataset, builder, builder.reports)
    if output is not None:
        result.output = save(result, os.fspath(output), storage_options)
    return result


def save(result: BuildResult, output: str, storage_options: dict[str, Any] | None = None) -> str:
    """Write a build to ``output`` (local folder or URL) in THE layout (:mod:`owa_builders.output`):
    one shard per recording (its footer: fingerprints and report), the artifacts, the record last."""
    builder = result.builder
    stage = builder.stage
    dest = Destination(output, storage_options)
    config_name = builder.config.name
    start_build(dest, stage, config_name)
    fingerprint = config_fingerprint(stage)
    schema = stage.schema()
    reports = builder.split_reports
    metas: dict[str, list[dict[str, Any]]] = {}
    for split, refs in builder.recordings().splits.items():
        table = result.dataset[split].data.table
        by_episode = {r.episode_path: r for r in reports.get(split, [])}
        metas[split] = []
        order = [ref.episode_path for ref in refs]
        for index, (ref, (a, b)) in enumerate(zip(refs, episode_ranges(table.column("episode_path"), order))):
            report = by_episode.get(ref.episode_path) or RecordingReport(ref.episode_path)
            meta = {"split": split, "index": index, "count": len(refs), "episode_path": ref.episode_path,
                    "path": ref.path, "input": input_fingerprint(ref.path, storage_options),
                    "config": fingerprint, "report": report.to_dict()}  # fmt: skip
            part = table.slice(a, b - a).replace_schema_metadata(None).cast(schema)
            rel = f"{config_name}/{shard_name(split, index, len(refs))}"
            rows = write_shard(dest, rel, schema, part.to_batches(), lambda meta=meta: meta)
            metas[split].append({**meta, "rows": rows})
        dest.remove_temp_files(config_name)
    finish_build(dest, stage, config_name, builder.config.data_dir, fingerprint, metas, "local")
    return dest.url
