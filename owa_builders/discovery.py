"""Finding recordings: a dataset root (local folder or fsspec URL) or explicit files -> splits of
:class:`~owa_event.pipeline.RecordingRef`. Plain Python + fsspec; builders, ``inspect``,
publishing and the Ray build all call it.

Rules:

- Only ``.mcap`` files are recordings (videos and everything else beside them are not); files
  and folders whose name starts with ``.`` or ``__`` are ignored.
- Splits come from folder names: the first folder in a recording's path (relative to the root)
  named like a split (``train``/``training``, ``validation``/``valid``/``val``/``dev``,
  ``test``/``testing``/``eval``/``evaluation``, any case) is its split. Without any split folder,
  every recording is in ``train``. Recordings outside split folders while others are inside are an
  error (say where they belong, or pass ``data_files``).
- ``data_files`` (a path/glob, a list, or ``{split: paths}``) lists recordings explicitly; the
  root is then ``data_dir`` when given, else the deepest folder holding them all.
- Order is deterministic: recordings sorted by path within each split, splits in the order
  train, validation, test, then others by name.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from owa_event.pipeline import RecordingRef

from .errors import NoRecordingsError

RECORDING_SUFFIX = ".mcap"
SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing", "eval", "evaluation"),
}
_SPLIT_OF_FOLDER = {alias: split for split, aliases in SPLIT_FOLDERS.items() for alias in aliases}
_SPLIT_ORDER = {split: i for i, split in enumerate(SPLIT_FOLDERS)}


@dataclass(frozen=True)
class Recordings:
    """The recordings of a dataset: ``root`` and ``{split: [RecordingRef, ...]}`` (non-empty splits)."""

    root: str
    splits: dict[str, list[RecordingRef]]

    def all(self) -> list[RecordingRef]:
        """Every recording, split after split."""
        return [r for refs in self.splits.values() for r in refs]

    def paths(self) -> dict[str, list[str]]:
        """``{split: [path, ...]}``."""
        return {split: [r.path for r in refs] for split, refs in self.splits.items()}


def is_recording(path: str) -> bool:
    """Only ``.mcap`` files are recordings."""
    return path.lower().endswith(RECORDING_SUFFIX)


def is_url(path: str) -> bool:
    return "://" in path


def normalize_root(data_dir: str | os.PathLike[str]) -> str:
    """An absolute local path (``~`` expanded) or the URL without a trailing slash."""
    data_dir = os.fspath(data_dir)
    if is_url(data_dir):
        return data_dir.rstrip("/")
    return os.path.abspath(os.path.expanduser(data_dir))


def find_recordings(
    data_dir: str | os.PathLike[str] | None = None,
    data_files: Any = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> Recordings:
    """The recordings under ``data_dir`` or in ``data_files`` (see the module docstring).

    Raises :class:`NoRecordingsError` naming the folder or files when there is nothing to convert,
    when ``data_dir`` does not exist, or when split folders are mixed with loose recordings.
    """
    if data_files is not None:
        return _from_files(data_files, data_dir, storage_options or {})
    if data_dir is None:
        raise NoRecordingsError(
            "no data given: pass data_dir= (a folder of .mcap recordings, optionally in train/ test/ ... "
            "subfolders) or data_files="
        )
    root = normalize_root(data_dir)
    files = _list_files(root, storage_options or {})
    return _from_folder(root, [f for f in files if is_recording(f)], str(data_dir))


def from_paths(
    paths: Mapping[str, Iterable[str]], data_dir: str | os.PathLike[str] | None = None
) -> Recordings:
    """Recordings from already resolved file paths/URLs by split (e.g. `datasets`' resolved data files):
    no globbing; only ``.mcap`` files are kept; the root is ``data_dir`` or the deepest common folder."""
    resolved = {
        str(split): sorted({os.fspath(p) for p in files if is_recording(os.fspath(p))})
        for split, files in paths.items()
    }
    resolved = {split: files for split, files in resolved.items() if files}
    if not resolved:
        raise NoRecordingsError("no .mcap recordings in the data files given")
    every = [p for files in resolved.values() for p in files]
    root = normalize_root(data_dir) if data_dir is not None else common_root(every)
    return Recordings(
        root,
        _ordered(
            {s: [RecordingRef(p, relative_path(p, root), root) for p in ps] for s, ps in resolved.items()}
        ),
    )


def _list_files(root: str, storage_options: Mapping[str, Any]) -> list[str]:
    """Every file under ``root`` (paths or URLs), hidden ones left out."""
    if not is_url(root):
        if not os.path.exists(root):
            raise NoRecordingsError(f"data_dir {root!r}: no such folder")
        if not os.path.isdir(root):
            raise NoRecordingsError(f"data_dir {root!r} is a file, not a folder of recordings")
        out = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            out.extend(os.path.join(folder, f) for f in files if not _hidden(f))
        return out
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **storage_options)
    try:
        if not fs.isdir(path):
            kind = "a file, not a folder of recordings" if fs.exists(path) else "no such folder"
            raise NoRecordingsError(f"data_dir {root!r}: {kind}")
        found = fs.find(path)
    except NoRecordingsError:
        raise
    except Exception as exc:  # fsspec backends raise many kinds (FileNotFoundError, HTTP errors, ...)
        raise NoRecordingsError(f"data_dir {root!r}: cannot list it ({type(exc).__name__}: {exc})") from exc
    prefix = path.rstrip("/") + "/"
    out = []
    for item in found:
        rel = item[len(prefix) :] if item.startswith(prefix) else posixpath.basename(item)
        if not any(_hidden(part) for part in rel.split("/")):
            out.append(root + "/" + rel)
    return out


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def _from_folder(root: str, files: list[str], shown: str) -> Recordings:
    if not files:
        raise NoRecordingsError(f"no .mcap recordings found in data_dir {shown!r}")
    by_split: dict[str, list[RecordingRef]] = {}
    loose: list[str] = []
    for path in files:
        rel = relative_path(path, root)
        split = next(
            (_SPLIT_OF_FOLDER[p.lower()] for p in rel.split("/")[:-1] if p.lower() in _SPLIT_OF_FOLDER), None
        )
        if split is None:
            loose.append(rel)
        else:
            by_split.setdefault(split, []).append(RecordingRef(path, rel, root))
    if by_split and loose:
        shown_loose = ", ".join(sorted(loose)[:5]) + (
            f" (and {len(loose) - 5} more)" if len(loose) > 5 else ""
        )
        raise NoRecordingsError(
            f"data_dir {shown!r} has split folders ({', '.join(sorted(by_split))}) and {len(loose)} recording(s) "
            f"outside them: {shown_loose}; move them into a split folder, or pass data_files="
        )
    if loose:
        by_split["train"] = [RecordingRef(_join(root, r), r, root) for r in loose]
    return Recordings(root, _ordered(by_split))


def _join(root: str, rel: str) -> str:
    return root + "/" + rel if is_url(root) else os.path.join(root, *rel.split("/"))


def split_order(split: str) -> tuple[int, str]:
    """Sort key of split names: train, validation, test, then the others by name."""
    return (_SPLIT_ORDER.get(split, len(_SPLIT_ORDER)), split)


def _ordered(by_split: dict[str, list[RecordingRef]]) -> dict[str, list[RecordingRef]]:
    names = sorted(by_split, key=split_order)
    return {s: sorted(by_split[s], key=lambda r: r.episode_path) for s in names}


def _from_files(data_files: Any, data_dir: Any, storage_options: Mapping[str, Any]) -> Recordings:
    if isinstance(data_files, (str, os.PathLike)):
        spec: dict[str, list[str]] = {"train": [os.fspath(data_files)]}
    elif isinstance(data_files, Mapping):
        spec = {str(k): [os.fspath(v)] if isinstance(v, (str, os.PathLike)) else [os.fspath(x) for x in v]
                for k, v in data_files.items()}  # fmt: skip
    elif isinstance(data_files, Iterable):
        spec = {"train": [os.fspath(x) for x in data_files]}
    else:
        raise NoRecordingsError(
            f"data_files must be a path, a list of paths or {{split: paths}}, got {data_files!r}"
        )
    base = normalize_root(data_dir) if data_dir is not None else os.getcwd()
    resolved: dict[str, list[str]] = {}
    for split, patterns in spec.items():
        paths: list[str] = []
        for pattern in patterns:
            paths.extend(_expand(pattern, base, storage_options))
        recordings = sorted({p for p in paths if is_recording(p)})
        if recordings:
            resolved[split] = recordings
    if not resolved:
        raise NoRecordingsError(f"no .mcap recordings in the data_files given ({_short(spec)})")
    return from_paths(resolved, data_dir)


def _expand(pattern: str, base: str, storage_options: Mapping[str, Any]) -> list[str]:
    """The files a path or glob names (relative patterns are relative to ``base``)."""
    if not is_url(pattern) and not os.path.isabs(os.path.expanduser(pattern)):
        pattern = _join(base, pattern) if is_url(base) else os.path.join(base, pattern)
    if not is_url(pattern):
        pattern = os.path.expanduser(pattern)
        if not any(c in pattern for c in "*?["):
            if not os.path.isfile(pattern):
                raise NoRecordingsError(f"data_files: {pattern!r} does not exist")
            return [os.path.abspath(pattern)]
        import glob

        return [os.path.abspath(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
    import fsspec

    fs, path = fsspec.core.url_to_fs(pattern, **storage_options)
    protocol = pattern.split("://", 1)[0]
    try:
        if any(c in path for c in "*?["):
            found = [p for p in fs.glob(path) if fs.isfile(p)]
        elif fs.isfile(path):
            found = [path]
        else:
            raise NoRecordingsError(f"data_files: {pattern!r} does not exist")
    except NoRecordingsError:
        raise
    except Exception as exc:
        raise NoRecordingsError(f"data_files: cannot list {pattern!r} ({type(exc).__name__}: {exc})") from exc
    return [p if is_url(p) else f"{protocol}://{p}" for p in found]


def _short(spec: Mapping[str, list[str]]) -> str:
    return "; ".join(
        f"{split}: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}" for split, paths in spec.items()
    )


def common_root(paths: Iterable[str]) -> str:
    """The deepest folder holding every path (local paths, or URLs of one filesystem)."""
    paths = list(paths)
    if not paths:
        return os.getcwd()
    if any(is_url(p) for p in paths):
        parts = [p.split("/")[:-1] for p in paths]
        prefix = []
        for segments in zip(*parts):
            if len(set(segments)) != 1:
                break
            prefix.append(segments[0])
        return "/".join(prefix)
    return os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])


def relative_path(path: str, root: str) -> str:
    """POSIX path of ``path`` relative to ``root``."""
    if is_url(path) or is_url(root):
        prefix = root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)
    return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
