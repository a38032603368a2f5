"""The Parquet layout of a published (or distributed-built) dataset: THE one place that names files.

A config is one folder; each split is ``count`` Parquet shards, numbered from 0, named as
`datasets`' own ``push_to_hub`` names them, so one glob per split finds them on the Hub::

    <config>/<split>-00000-of-00004.parquet ... <config>/<split>-00003-of-00004.parquet

Beside the shards, in the same folder: ``tokenizer/`` (FSL: the expanded tokenizer),
``owa_build.json`` (the build record) and ``plots/`` (the card's images). Screen videos live at
the repo root at the same relative paths as under the recordings' root, so frame URIs in the rows
resolve against ``hf://datasets/<repo>`` unchanged.

Invariants: shard ``i`` of ``n`` holds rows ``[i * rows // n, (i + 1) * rows // n)`` of the split,
in order (contiguous, as ``Dataset.shard(contiguous=True)``), so reading the shards in name order
gives the rows in the build's order. Names are validated: a config name is a single path segment,
a split name is a word (``datasets`` rejects others).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from owa_fsl.tokenizer import TOKENIZER_DIR

from ..errors import LayoutError

#: Shard file name inside its config folder.
SHARD_NAME = "{split}-{index:05d}-of-{count:05d}.parquet"
#: Folder of the expanded tokenizer inside a config folder (FSL): the one owa_fsl.tokenizer names.
TOKENIZER_FOLDER = TOKENIZER_DIR
#: The build record inside a config folder: the one owa_builders.output writes.
RECORD_NAME = "owa_build.json"
#: Folder of the card's images inside a config folder.
PLOTS_FOLDER = "plots"
#: Largest shard written by default (bytes of Arrow data; Parquet files are smaller).
DEFAULT_MAX_SHARD_BYTES = 256 * 2**20
#: Shards written by default when the data allows it (one per data-parallel reader)...
DEFAULT_MIN_SHARDS = 16
#: ...but no shard smaller than this (bytes of Arrow data) just to reach that number.
DEFAULT_MIN_SHARD_BYTES = 8 * 2**20

_SHARD_RE = re.compile(r"^(?P<split>\w+(?:\.\w+)*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
_SPLIT_RE = re.compile(r"^\w+(?:\.\w+)*$")  # as datasets: words joined by dots
_CONFIG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass(frozen=True, order=True)
class ShardName:
    """The parts of one shard's path: ``<config>/<split>-<index>-of-<count>.parquet``."""

    config: str
    split: str
    index: int
    count: int

    @property
    def path(self) -> str:
        return shard_path(self.config, self.split, self.index, self.count)


def check_config_name(config: str) -> str:
    """``config`` when it can be a config folder (one path segment: letters, digits, ``. _ -``)."""
    if not isinstance(config, str) or not _CONFIG_RE.match(config) or config in (".", ".."):
        raise LayoutError(
            f"config name {config!r} cannot name a folder of the repo: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit)"
        )
    return config


def check_split_name(split: str) -> str:
    """``split`` when `datasets` accepts it as a split name (a word: letters, digits, ``_``)."""
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise LayoutError(
            f"split name {split!r} is not a word (letters, digits, '_'), as `datasets` requires"
        )
    return split


def shard_path(config: str, split: str, index: int, count: int) -> str:
    """``<config>/<split>-<index:05d>-of-<count:05d>.parquet`` (POSIX, relative to the repo/folder)."""
    check_config_name(config)
    check_split_name(split)
    if not 0 <= index < count or count > 99_999:
        raise LayoutError(f"shard {index} of {count}: need 0 <= index < count <= 99999")
    return f"{config}/" + SHARD_NAME.format(split=split, index=index, count=count)


def shard_paths(config: str, split: str, count: int) -> list[str]:
    """Every shard path of one split, in row order."""
    return [shard_path(config, split, i, count) for i in range(count)]


def parse_shard_path(path: str) -> ShardName | None:
    """The parts of a shard path (``<config>/<split>-i-of-n.parquet``), or None for any other path."""
    config, sep, name = path.replace(os.sep, "/").rpartition("/")
    if not sep or "/" in config:
        return None
    match = _SHARD_RE.match(name)
    if not match or not _CONFIG_RE.match(config):
        return None
    index, count = int(match["index"]), int(match["count"])
    if not 0 <= index < count:
        return None
    return ShardName(config, match["split"], index, count)


def split_pattern(config: str, split: str) -> str:
    """The ``data_files`` glob of one split in the card: ``<config>/<split>-*``."""
    return f"{check_config_name(config)}/{check_split_name(split)}-*"


def data_files(config: str, splits: list[str]) -> list[dict[str, str]]:
    """The card's ``data_files`` of one config: ``[{"split": s, "path": "<config>/<s>-*"}, ...]``."""
    return [{"split": split, "path": split_pattern(config, split)} for split in splits]


def tokenizer_path(config: str) -> str:
    """The expanded tokenizer's folder of an FSL config: ``<config>/tokenizer``."""
    return f"{check_config_name(config)}/{TOKENIZER_FOLDER}"


def record_path(config: str) -> str:
    """The build record of a config: ``<config>/owa_build.json``."""
    return f"{check_config_name(config)}/{RECORD_NAME}"


def plot_path(config: str, name: str) -> str:
    """A card image of a config: ``<config>/plots/<name>``."""
    return f"{check_config_name(config)}/{PLOTS_FOLDER}/{name}"


def row_ranges(num_rows: int, count: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each of ``count`` contiguous shards of ``num_rows`` rows (sizes differ by <= 1)."""
    if count < 1:
        raise LayoutError(f"a split needs at least one shard, got {count}")
    return [(i * num_rows // count, (i + 1) * num_rows // count) for i in range(count)]


def default_num_shards(
    num_bytes: int,
    num_rows: int,
    *,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    min_shards: int = DEFAULT_MIN_SHARDS,
    min_shard_bytes: int = DEFAULT_MIN_SHARD_BYTES,
) -> int:
    """Shards for one split of ``num_bytes`` (Arrow bytes) in ``num_rows`` rows.

    Enough that no shard exceeds ``max_shard_bytes``; at least ``min_shards`` (so that as many
    data-parallel readers each get a shard when streaming) when that keeps every shard above
    ``min_shard_bytes``; never more shards than rows, never fewer than one.
    """
    if num_rows <= 0:
        return 1
    by_size = math.ceil(num_bytes / max_shard_bytes)
    spread = min(min_shards, math.ceil(num_bytes / min_shard_bytes))
    return max(1, min(num_rows, max(by_size, spread)))


def find_shards(folder: str | os.PathLike[str], config: str) -> dict[str, list[str]]:
    """The complete shard sets in ``folder/<config>/``: ``{split: [path relative to folder, ...]}``.

    Raises :class:`LayoutError` naming the folder when a split's shards disagree on their count or
    one is missing (a build that did not finish), or when there is no shard at all.
    """
    folder = os.fspath(folder)
    base = os.path.join(folder, check_config_name(config))
    names = sorted(os.listdir(base)) if os.path.isdir(base) else []
    found: dict[str, list[ShardName]] = {}
    for name in names:
        shard = parse_shard_path(f"{config}/{name}")
        if shard is not None:
            found.setdefault(shard.split, []).append(shard)
    if not found:
        raise LayoutError(
            f"{base}: no Parquet shards named like {SHARD_NAME.format(split='train', index=0, count=1)}"
        )
    out: dict[str, list[str]] = {}
    for split, shards in found.items():
        counts = sorted({s.count for s in shards})
        if len(counts) > 1:
            raise LayoutError(
                f"{base}: the {split!r} shards disagree on their count ({counts}): mixed builds"
            )
        missing = sorted(set(range(counts[0])) - {s.index for s in shards})
        if missing:
            raise LayoutError(
                f"{base}: split {split!r} misses shard(s) {missing[:10]} of {counts[0]}: the build did not finish"
            )
        out[split] = [s.path for s in sorted(shards)]
    return out
