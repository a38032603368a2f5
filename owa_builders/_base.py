"""What every owa-builders builder shares: finding recordings, the dataset root, the code hash.

Builders stay thin: they wire a config to stage functions; no stage logic lives here.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import datasets
import pyarrow as pa
from datasets.builder import Key
from datasets.data_files import DataFilesDict, get_data_patterns

from .registry import code_hash

logger = logging.getLogger("owa_builders")

RECORDING_SUFFIX = ".mcap"


class NoRecordingsError(FileNotFoundError):
    """No ``.mcap`` recording in the data given to a builder."""


def is_recording(path: str) -> bool:
    """Only ``.mcap`` files are recordings (videos and everything else beside them are not)."""
    return path.lower().endswith(RECORDING_SUFFIX)


def common_root(paths: Iterable[str]) -> str:
    """The deepest folder holding every path (local paths or URLs of one filesystem)."""
    paths = list(paths)
    if not paths:
        return os.getcwd()
    if any("://" in p for p in paths):
        parts = [p.split("/") for p in paths]
        prefix = []
        for segs in zip(*[p[:-1] for p in parts]):
            if len(set(segs)) != 1:
                break
            prefix.append(segs[0])
        return "/".join(prefix)
    return os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])


class RecordingBuilderMixin:
    """Shared parts of the stage builders. Mix in before ``datasets.GeneratorBasedBuilder``."""

    config: Any
    DATASET_NAME: str = "owa_builders"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("hash") is None:
            kwargs["hash"] = code_hash()
        # Registered names contain a "/" ("owa_builders/event"); `datasets` uses the dataset name
        # in cache file names, so keep it one path segment.
        kwargs["dataset_name"] = (kwargs.get("dataset_name") or self.DATASET_NAME).replace("/", "--")
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        # `datasets` sets config kwargs with setattr, bypassing __post_init__: validate here, once.
        self.config.validate(input_topics=None)
        self.reports: list[Any] = []

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes (num_proc) rebuild caches such as the tokenizer themselves.
        state = dict(self.__dict__)
        state.pop("_tokens", None)
        return state

    # -- data files ------------------------------------------------------------------------
    def recordings_by_split(self) -> tuple[dict[str, list[str]], str]:
        """``({split: sorted .mcap paths}, dataset root)``; raises :class:`NoRecordingsError`."""
        data_dir = self.config.data_dir
        data_files = self.config.data_files
        if data_files is None:
            if data_dir is None:
                raise NoRecordingsError(
                    "no data given: pass data_dir= (a folder of .mcap recordings, optionally in "
                    "train/ test/ ... subfolders) or data_files="
                )
            base = data_dir if "://" in data_dir else os.path.abspath(os.path.expanduser(data_dir))
            if "://" not in base and not os.path.isdir(base):
                raise NoRecordingsError(f"data_dir {data_dir!r} is not a folder")
            data_files = DataFilesDict.from_patterns(get_data_patterns(base), base_path=base)
        splits: dict[str, list[str]] = {}
        ignored = 0
        for split, files in data_files.items():
            recordings = sorted({str(f) for f in files if is_recording(str(f))})
            ignored += len(files) - len(recordings)
            if recordings:
                splits[str(split)] = recordings
        if not splits:
            where = data_dir if data_dir is not None else "the data_files given"
            raise NoRecordingsError(f"no .mcap recordings found in {where}")
        if data_dir is not None:
            root = data_dir if "://" in data_dir else os.path.abspath(os.path.expanduser(data_dir))
        else:
            root = common_root(f for files in splits.values() for f in files)
        logger.info(
            "owa_builders: %d recordings in %d split(s) under %s",
            sum(map(len, splits.values())),
            len(splits),
            root,
        )
        return splits, root

    def split_generators(self) -> list[datasets.SplitGenerator]:
        """One split generator per split; ``files`` is a list so each recording is one shard."""
        splits, root = self.recordings_by_split()
        self.check_topics(splits)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"files": files, "root": root})
            for split, files in splits.items()
        ]

    def column_tables(
        self,
        files: list[str],
        root: str,
        stage: str,
        new_report: Callable[[str], Any],
        batches: Callable[[str, Any], Iterable[dict[str, list[Any]]]],
        schema: pa.Schema,
    ) -> Iterator[tuple[Key, pa.Table]]:
        """Arrow tables of every recording, one shard each: ``batches(path, report)`` yields column
        batches; each recording's report (``new_report(episode_path)``) is kept and logged."""
        for shard, path in enumerate(files):
            report = new_report(relative_path(path, root))
            for i, batch in enumerate(batches(path, report)):
                yield episode_key(shard, i), pa.Table.from_pydict(batch, schema=schema)
            self.reports.append(report)
            logger.info("owa_builders %s: %s", stage, report.summary_line())

    def check_topics(self, splits: dict[str, list[str]]) -> None:
        """Reject config topics that are neither OWAMcap topics nor in any input (reads summaries only if needed)."""
        from owa_event.events import KNOWN_TOPICS

        named = self.config.named_topics()
        if named <= KNOWN_TOPICS:
            return
        from owa_event.reader import Recording

        topics: set[str] = set()
        for files in splits.values():
            for path in files:
                if "://" in path:
                    continue
                try:
                    with Recording(path, on_truncated="recover") as rec:
                        topics |= set(rec.summary.topics)
                except Exception:
                    continue
        self.config.validate(input_topics=topics)


def episode_key(shard: int, row: int) -> Key:
    """Deterministic row key: (recording index within the shard list, row index)."""
    return Key(shard, row)


def relative_path(path: str, root: str) -> str:
    """POSIX path of ``path`` relative to ``root``."""
    if "://" in path or "://" in root:
        prefix = root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)
    return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
