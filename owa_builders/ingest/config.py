"""The ingestion's configuration: one dataclass, validated once, every problem reported together."""

from __future__ import annotations

import math
import os
import posixpath
import re
from dataclasses import dataclass, field, fields
from typing import Any

from owa_event.events import KNOWN_TOPICS, KNOWN_TYPES

from ..errors import ConfigError

#: Timestamp units of a source -> ns per unit.
TIME_UNITS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
#: 2025-01-01 00:00:00 UTC in ns: where relative timestamps start by default.
DEFAULT_TIME_ORIGIN_NS = 1_735_689_600 * 1_000_000_000
_NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]*$")


def episode_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name an episode (``None`` when it can): a relative POSIX path whose parts
    are letters, digits and ``_ . + = -`` (not starting with ``.`` or ``-``), so recordings stay inside
    the output folder and discovery sees them."""
    if not isinstance(name, str) or not name:
        return f"episode name must be a non-empty string, got {name!r}"
    if "\\" in name or name.startswith("/") or posixpath.normpath(name) != name:
        return f"episode name {name!r} must be a plain relative path (no '..', '//', leading '/' or '\\')"
    bad = [part for part in name.split("/") if not _NAME_PART.match(part)]
    if bad:
        return (
            f"episode name {name!r}: part {bad[0]!r} may only use letters, digits and '_ . + = -' "
            "(not starting with '.' or '-')"
        )
    return None


def default_message_type(topic: str) -> str:
    """The JSON message type of a topic without one in ``message_types``: ``ingest/<topic>``."""
    return f"ingest/{topic}"


@dataclass
class IngestionConfig:
    """How :func:`owa_builders.ingest.create_recordings_from_source` writes recordings."""

    output_dir: str
    """Folder the recordings go to: a local folder (created when absent) or any fsspec URL
    (``s3://bucket/prefix``, ``hf://datasets/org/name``, ``memory://...``; credentials go in
    ``storage_options=``, never here); per episode ``<name>.mcap`` and, per image
    topic, a video (``<name>.mkv`` for ``screen``, ``<name>.<topic>.mkv`` for others)."""

    episode_prefix: str = "episode_"
    """Prefix of the default episode names, ``<prefix><index:06d>``; may hold folders
    (``"train/ep_"`` puts the episodes in the ``train`` split)."""

    num_workers: int | None = None
    """Ray workers writing episodes in parallel; ``None``: one per CPU of the Ray cluster; ``0``: no
    Ray, everything in this process (for debugging and small data)."""

    batch_size: int = 1
    """Episodes per Ray task (>= 1); raise it when episodes are tiny, so per-task overhead stays small."""

    time_unit: str = "s"
    """Unit of the timestamps the items give: ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``."""

    time_origin_ns: int | None = DEFAULT_TIME_ORIGIN_NS
    """Added to every timestamp (ns since the epoch), so the items' timestamps are offsets from it
    (default 2025-01-01 UTC); ``None`` when they are already times since the epoch. OWAMcap log
    times must be after 2000-01-01."""

    rate_hz: float | None = None
    """Steps without their own ``timestamp`` are placed at ``origin + k / rate_hz`` (``k`` = the step's
    position in its episode, an item that is skipped keeping its place); ``None``: every step needs a
    ``timestamp``."""

    video_codec: str = "libx264"
    """Video encoder of the episode videos (any FFmpeg encoder PyAV has: ``libx264``, ``libx265``,
    ``mpeg4``, ...). Matroska, time base 1/1000, one frame per image step."""

    shuffle: bool = False
    """Shuffle the items (deterministically, with ``seed``) before they are grouped into episodes."""

    seed: int = 0
    """Seed of ``shuffle``."""

    max_items_per_episode: int | None = 1000
    """Items per episode with the default grouping (consecutive items, >= 1); ``None``: all items in
    one episode. A source's own ``group_items_into_episodes`` replaces the default grouping."""

    message_types: dict[str, str] = field(default_factory=dict)
    """Topic -> message type name (``domain/Type``, e.g. ``{"joints": "robot/JointState"}``) of the
    topics written as JSON messages. Non-desktop topics not listed get ``ingest/<topic>``."""

    on_bad_item: str = "error"
    """``"error"``: an item that fails validation or raises stops the run, naming its index.
    ``"skip"``: it is left out and counted (skipped: failed validation; failed: raised)."""

    overwrite: bool = False
    """Replace recordings of the same episode name already in ``output_dir`` (else: an error)."""

    resume: bool = False
    """Keep the episodes whose recording is already complete in ``output_dir`` (written by an earlier
    run of the same ingestion that stopped): they are read back (stats and left-out items, from the
    ``.mcap``'s metadata), not written again; the others are written. Excludes ``overwrite``."""

    def problems(self) -> list[str]:
        """Every problem of the config (empty when valid)."""
        p: list[str] = []
        out = self.output_dir
        if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
            p.append(f"output_dir must be a folder path, got {out!r}")
        if not isinstance(self.episode_prefix, str):
            p.append(f"episode_prefix must be a string, got {self.episode_prefix!r}")
        else:
            problem = episode_name_problem(f"{self.episode_prefix}000000")
            if problem:
                p.append(f"episode_prefix {self.episode_prefix!r} makes bad names: {problem}")
        if self.num_workers is not None and (not _is_int(self.num_workers) or self.num_workers < 0):
            p.append(f"num_workers must be None or an integer >= 0, got {self.num_workers!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            p.append(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.time_unit not in TIME_UNITS:
            p.append(f"time_unit must be one of {list(TIME_UNITS)}, got {self.time_unit!r}")
        if self.time_origin_ns is not None and (not _is_int(self.time_origin_ns) or self.time_origin_ns < 0):
            p.append(f"time_origin_ns must be None or an integer >= 0 (ns since the epoch), got {self.time_origin_ns!r}")  # fmt: skip
        rate = self.rate_hz
        if rate is not None:
            if (
                isinstance(rate, bool)
                or not isinstance(rate, (int, float))
                or not math.isfinite(rate)
                or rate <= 0
            ):
                p.append(f"rate_hz must be None or a finite number > 0, got {rate!r}")
            elif self.time_origin_ns is None:
                p.append("rate_hz places steps after time_origin_ns, which is None: give time_origin_ns")
        p += _codec_problems(self.video_codec)
        for name in ("shuffle", "overwrite", "resume"):
            if not isinstance(getattr(self, name), bool):
                p.append(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.resume is True and self.overwrite is True:
            p.append("resume keeps the episodes already written, overwrite replaces them: choose one")
        if not _is_int(self.seed):
            p.append(f"seed must be an integer, got {self.seed!r}")
        n = self.max_items_per_episode
        if n is not None and (not _is_int(n) or n < 1):
            p.append(f"max_items_per_episode must be None or an integer >= 1, got {n!r}")
        p += _message_type_problems(self.message_types)
        if self.on_bad_item not in ("error", "skip"):
            p.append(f"on_bad_item must be 'error' or 'skip', got {self.on_bad_item!r}")
        return p

    def validate(self) -> IngestionConfig:
        """Raise :class:`ConfigError` listing every problem at once; return the config."""
        problems = self.problems()
        if problems:
            raise ConfigError(problems, where="ingestion config")
        return self

    def message_type(self, topic: str) -> str:
        """The JSON message type written for ``topic``."""
        return self.message_types.get(topic) or default_message_type(topic)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _codec_problems(name: Any) -> list[str]:
    if not isinstance(name, str) or not name:
        return [f"video_codec must be an encoder name, got {name!r}"]
    import av

    try:
        codec = av.codec.Codec(name, "w")
    except Exception:
        return [f"video_codec {name!r}: no such video encoder in this PyAV/FFmpeg build"]
    if codec.type != "video":
        return [f"video_codec {name!r} is a {codec.type} encoder, not a video encoder"]
    return []


def _message_type_problems(types: Any) -> list[str]:
    if not isinstance(types, dict):
        return [f"message_types must be a dict topic -> 'domain/Type', got {types!r}"]
    p = []
    for topic, name in types.items():
        if not isinstance(topic, str) or not topic:
            p.append(f"message_types: topic {topic!r} must be a non-empty string")
        elif topic in KNOWN_TOPICS:
            p.append(f"message_types: {topic!r} is an OWAMcap topic with its own message type")
        if not isinstance(name, str) or name.count("/") < 1 or name.startswith("/") or name.endswith("/"):
            p.append(f"message_types[{topic!r}] must be a type name 'domain/Type', got {name!r}")
        elif name in KNOWN_TYPES:
            p.append(f"message_types[{topic!r}] = {name!r} is a desktop message type, not a JSON one")
    return p
