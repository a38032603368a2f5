"""The media a built dataset references: which video files, checked to be safe, found on disk.

Every stage's rows name screen frames as ``{uri, pts_ns}`` with ``uri`` relative to the
recordings' root (the build record's ``data_root``): the event stage in screen messages'
``media_ref``, the binned stage in its ``state`` messages, the FSL stage in ``images``.

Rows are untrusted: a ``uri`` is published only when it is a plain relative POSIX path that stays
inside the root (no ``..``, not absolute, not a URL, no backslash or drive letter, no hidden or
reserved name) and, once symlinks are resolved, still points inside the root. Anything else is an
:class:`UnsafeMediaPathError` naming the row's uri.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from ..errors import MissingMediaError, UnsafeMediaPathError
from ..stages import spec
from .source import BuiltFolder

#: Repo paths media may never take (the card, the repo's settings).
RESERVED = frozenset({"README.md", ".gitattributes", ".gitignore"})
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class MediaFile:
    """One referenced video: its path in the repo (= its uri) and on disk, and its size in bytes."""

    uri: str
    local_path: str
    size: int


def batch_uris(stage: str, batch: pa.RecordBatch) -> Iterator[str]:
    """The media uris one batch of ``stage`` rows references (repeats included; the stage's spec says
    where its rows name frames)."""
    return spec(stage).media_uris(batch)


def referenced_uris(built: BuiltFolder) -> list[str]:
    """Every distinct media uri the folder's rows reference, sorted; each checked by :func:`check_media_path`."""
    columns = list(spec(built.stage).media_columns)
    uris: set[str] = set()
    for split in built.splits.values():
        for batch in split.batches(columns):
            uris.update(batch_uris(built.stage, batch))
    for uri in uris:
        check_media_path(uri)
    return sorted(uris)


def check_media_path(uri: str) -> str:
    """``uri`` when it is a safe relative POSIX path inside the root; :class:`UnsafeMediaPathError` otherwise."""
    problem = None
    if not isinstance(uri, str) or not uri:
        problem = "is empty"
    elif "://" in uri or uri.startswith(("/", "~")) or _DRIVE.match(uri):
        problem = "is absolute or a URL"
    elif "\\" in uri or "\0" in uri:
        problem = "contains a backslash or NUL"
    elif any(part in ("", ".", "..") for part in uri.split("/")):
        problem = "has an empty, '.' or '..' path segment"
    elif any(part.startswith(".") for part in uri.split("/")) or uri in RESERVED:
        problem = "names a hidden or reserved file"
    elif posixpath.normpath(uri) != uri:
        problem = "is not a normalized path"
    if problem:
        raise UnsafeMediaPathError(
            f"media uri {uri!r} {problem}: only paths relative to the recordings' root, inside it, can be published"
        )
    return uri


def locate_media(data_root: str, uris: Iterable[str]) -> list[MediaFile]:
    """The files for ``uris`` under the local ``data_root``.

    Raises :class:`UnsafeMediaPathError` for a uri that resolves (through symlinks) outside the
    root, and :class:`MissingMediaError` listing every referenced file that does not exist.
    """
    if "://" in data_root:
        raise MissingMediaError(
            f"the recordings' root {data_root!r} is not a local folder: media can only be published from a local "
            "copy (publish without media, or build from local recordings)"
        )
    root = os.path.realpath(data_root)
    files: list[MediaFile] = []
    missing: list[str] = []
    for uri in uris:
        check_media_path(uri)
        path = os.path.realpath(os.path.join(root, *uri.split("/")))
        if os.path.commonpath([root, path]) != root:
            raise UnsafeMediaPathError(
                f"media uri {uri!r} resolves to {path}, outside the recordings' root {root}"
            )
        if not os.path.isfile(path):
            missing.append(uri)
            continue
        files.append(MediaFile(uri, path, os.path.getsize(path)))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise MissingMediaError(
            f"{len(missing)} video(s) referenced by the rows are not under the recordings' root {root}: {shown} "
            "(restore them, or publish without media)"
        )
    return files
