"""Where a distributed build puts its rows: Parquet shards in the publish layout, one per recording.

Layout of an output folder (the same as the publish step's, so it loads with
``datasets.load_dataset("parquet", data_dir=<output>/<config_name>)`` and can be pushed as it is):

- ``<config_name>/<split>-{i:05d}-of-{n:05d}.parquet``: recording ``i`` (0-based, in discovery
  order: sorted by ``episode_path``) of the ``n`` recordings of ``split``; sorted file names give
  the single-machine row order. A recording without rows (skipped, or everything dropped) still has
  its shard, with no rows, so the numbering has no holes.
- ``owa_build.json`` (:data:`owa_builders.build.BUILD_RECORD`) and the stage's artifacts
  (FSL: ``tokenizer/``), written last by the driver.

A shard is written under a temporary name (hidden, ending in ``.tmp``: neither `datasets`' file
patterns nor :func:`shard_files` ever take it) and renamed into place when complete, so a
final name always holds a complete shard. Each shard's Parquet footer holds :data:`SHARD_META_KEY`:
JSON with the recording, its input fingerprint (size + mtime, or the remote file's identity), the
config fingerprint and the recording's report, which is what makes a rerun resumable.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import uuid
from typing import Any

from ..publish import layout as publish_layout
from ..publish.layout import LayoutError  # noqa: F401  (the layout's error, raised here too)

#: Footer key of the shard's own record (JSON).
SHARD_META_KEY = "owa_shard"
#: Most recordings per split the 5-digit shard numbering (`datasets`' sharded-file pattern) allows.
MAX_SHARDS = 99_999
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")


def shard_name(split: str, index: int, count: int) -> str:
    """``<split>-{index:05d}-of-{count:05d}.parquet``: the shard of recording ``index`` of ``count``,
    named by the publish layout (:func:`owa_builders.publish.layout.shard_path`), the one place that
    names shards."""
    return posixpath.basename(publish_layout.shard_path("x", split, index, count))


def check_config_folder(name: str) -> str:
    """``name`` when it can be the config's folder (:func:`owa_builders.publish.layout.check_config_name`)."""
    return publish_layout.check_config_name(name)


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """``(split, index, count)`` of a final shard name; ``None`` for any other file name."""
    parsed = publish_layout.parse_shard_path(f"x/{name}")
    return None if parsed is None else (parsed.split, parsed.index, parsed.count)


def temp_path(final: str) -> str:
    """A unique temporary name beside ``final`` (hidden, ``.tmp``; a reader never takes it for a shard)."""
    folder, name = os.path.split(final)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file made by :func:`temp_path`."""
    return bool(_TEMP_RE.match(name))


def shard_files(folder: str) -> list[str]:
    """Every final shard name in ``folder``, sorted (empty when the folder does not exist)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if parse_shard_name(n) is not None)


def temp_files(folder: str) -> list[str]:
    """Every temporary file of :func:`temp_path` in ``folder`` (left by a crashed worker or run)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if is_temp_name(n))


def read_shard_meta(path: str) -> dict[str, Any] | None:
    """The :data:`SHARD_META_KEY` record of a shard, with ``rows``; ``None`` when the file is not a
    readable shard of ours (then it is converted again)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        raw = (meta.metadata or {}).get(SHARD_META_KEY.encode())
        if raw is None:
            return None
        record = json.loads(raw)
    except Exception:  # a damaged or foreign file: not a shard we can trust
        return None
    if not isinstance(record, dict):
        return None
    record["rows"] = meta.num_rows
    return record
