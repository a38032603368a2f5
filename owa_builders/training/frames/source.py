"""Where videos live: a dataset's ``uri`` -> the file to open, confined to the media root.

A dataset can come from anywhere, so its references must not make a training job read the
machine's other files. By default (``allow_outside_root=False``) a ``uri`` must be a relative
path that stays inside the media root:

- backslashes count as separators (datasets made on Windows), then the path is normalised
  (``a/./b``, ``a//b``, ``a/x/../b``); a path that still climbs out (``..``) is refused;
- absolute paths (``/x``, ``\\\\server\\x``, ``C:\\x``) are refused;
- a ``uri`` with a scheme (``file:``, ``s3://``, ``hf://``, ``http://``, ``data:``, ...) is a URL,
  outside the root, refused;
- a local root is checked after resolving symlinks (``os.path.realpath``): a symlink inside the
  root that points outside it is refused; a symlink to a file inside the root is fine;
- a NUL byte is refused.

A refused ``uri`` raises :class:`UriError` (the loader turns it into a ``FrameLoadError`` naming the
uri). With ``allow_outside_root=True`` (trusted datasets only) absolute paths are opened as local
files, URLs through fsspec, and ``..`` may leave the root.

A local file is handed to FFmpeg as its absolute, resolved path (never as a URL FFmpeg would
interpret); a remote one as an fsspec file object.

What counts as a video: a file whose container FFmpeg probes as one of
:data:`VIDEO_CONTAINERS` (Matroska/WebM, MP4/MOV, MPEG-TS, AVI, FLV) -- enforced with FFmpeg's
``format_whitelist``, so anything else is refused right after probing, before its demuxer reads
it. Refused: still images whatever their name (a PNG/JPEG/... renamed ``.mkv`` is probed as
``png_pipe``/``jpeg_pipe``/``image2``, not served as a one-frame video), GIFs, raw elementary
streams (no timestamps), and playlists or scripts (``hls``, ``concat``: they would open other
files). Inside an accepted container the video is the first video stream that is not an
attached picture (cover art); a container with only a cover is "no video stream". Any codec is
accepted inside an accepted container (a one-frame H.264 MKV is a video).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from ...errors import NotAVideoError, UriError

__all__ = ["VIDEO_CONTAINERS", "MediaRoot", "NotAVideoError", "UriError", "open_container"]

#: FFmpeg demuxer names of the containers the loader opens (see the module docstring).
VIDEO_CONTAINERS: tuple[str, ...] = (
    "matroska",
    "webm",
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "mj2",
    "mpegts",
    "avi",
    "flv",
)
_READS = "the loader reads video containers only (Matroska/WebM, MP4/MOV, MPEG-TS, AVI, FLV)"
#: Leading bytes of files that are often mistaken for (or renamed as) videos, for the error message.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "an image file (PNG)"),
    (b"\xff\xd8\xff", "an image file (JPEG)"),
    (b"GIF87a", "an image file (GIF)"),
    (b"GIF89a", "an image file (GIF)"),
    (b"II*\x00", "an image file (TIFF)"),
    (b"MM\x00*", "an image file (TIFF)"),
    (b"BM", "an image file (BMP)"),
    (b"qoif", "an image file (QOI)"),
    (b"#EXTM3U", "an HLS playlist"),
    (b"ffconcat", "an FFmpeg concat script"),
)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_DRIVE = re.compile(r"^[A-Za-z]:")


_OPT_IN = "pass allow_outside_root=True only for datasets you trust"


def inside_path(uri: str) -> str:
    """``uri`` as a normalised relative POSIX path that stays inside a root; :class:`UriError` if it
    is not one (absolute path, URL, ``..`` leaving the root, NUL byte, no file name)."""
    if "\x00" in uri:
        raise UriError("the uri contains a NUL byte")
    path = uri.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise UriError(f"the uri is an absolute path, outside media_root ({_OPT_IN})")
    if _SCHEME.match(path):
        raise UriError(f"the uri is a URL, outside media_root ({_OPT_IN})")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        raise UriError(f"the uri leaves media_root through '..' ({_OPT_IN})")
    if norm in (".", ""):
        raise UriError("the uri names no file")
    return norm


class MediaRoot:
    """Resolves and opens ``uri`` s against one media root (a local folder or an fsspec URL).

    Args:
        media_root: the dataset's root: a local folder (also ``file://...``) or an fsspec URL.
        storage_options: fsspec options for a remote root (and, with the opt-in, URL uris).
        allow_outside_root: also open absolute paths, URLs and ``..`` paths (trusted data only).
    """

    def __init__(
        self, media_root: str, storage_options: Mapping[str, Any], allow_outside_root: bool = False
    ) -> None:
        self.media_root = media_root
        self.storage_options = dict(storage_options)
        self.allow_outside_root = allow_outside_root
        self.local = "://" not in media_root or media_root.startswith("file://")
        self._fs: Any = None
        self._root_path = ""

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs, self._root_path = url_to_fs(self.media_root, **self.storage_options)
        return self._fs, self._root_path

    def _local_root(self) -> str:
        root = self.media_root[len("file://") :] if self.media_root.startswith("file://") else self.media_root
        return os.path.realpath(root)

    def open(self, uri: str) -> tuple[Any, Any]:
        """``(what to give av.open, file object to close or None)`` for ``uri``.

        Raises :class:`UriError` for a refused uri and FileNotFoundError for a missing file.
        """
        if self.allow_outside_root:
            opened = self._open_outside(uri)
            if opened is not None:
                return opened
        rel = inside_path(uri)
        if self.local:
            root = self._local_root()
            path = os.path.realpath(os.path.join(root, rel))
            if not self.allow_outside_root and os.path.commonpath([root, path]) != root:
                raise UriError(f"the uri resolves (through a symlink) outside media_root ({_OPT_IN})")
            if not os.path.isfile(path):
                raise FileNotFoundError(os.path.join(root, rel))
            return path, None
        fs, root_path = self._filesystem()
        return self._open_fs(fs, posixpath.join(root_path, rel) if root_path else rel)

    def _open_outside(self, uri: str) -> tuple[Any, Any] | None:
        """With the opt-in: a URL through fsspec, an absolute path as a local file, a ``..`` path
        relative to the root; None for a path inside the root (the normal route)."""
        path = uri.replace("\\", "/")
        if _SCHEME.match(path) and not _DRIVE.match(path):
            from fsspec.core import url_to_fs

            fs, fs_path = url_to_fs(uri, **self.storage_options)
            return self._open_fs(fs, fs_path)
        if path.startswith("/") or _DRIVE.match(path):
            local = os.path.abspath(uri)
            if not os.path.isfile(local):
                raise FileNotFoundError(local)
            return local, None
        norm = posixpath.normpath(path)
        if norm == ".." or norm.startswith("../"):
            if self.local:
                local = os.path.abspath(os.path.join(self._local_root(), norm))
                if not os.path.isfile(local):
                    raise FileNotFoundError(local)
                return local, None
            fs, root_path = self._filesystem()
            return self._open_fs(fs, posixpath.normpath(posixpath.join(root_path, norm)))
        return None

    @staticmethod
    def _open_fs(fs: Any, path: str) -> tuple[Any, Any]:
        try:
            f = fs.open(path, "rb")
        except (FileNotFoundError, IsADirectoryError) as e:
            raise FileNotFoundError(path) from e
        return f, f


def _what_is(target: Any, fileobj: Any) -> str | None:
    """What the file looks like from its first bytes (images, playlists), or None."""
    try:
        if fileobj is not None:
            fileobj.seek(0)
            head = fileobj.read(16)
            fileobj.seek(0)
        else:
            with open(target, "rb") as f:
                head = f.read(16)
    except Exception:  # pragma: no cover - only for the message
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "an image file (WebP)"
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    return None


def open_container(target: Any, fileobj: Any = None) -> Any:
    """``av.open`` for reading, restricted to :data:`VIDEO_CONTAINERS`; :class:`NotAVideoError` for
    anything else (FFmpeg stops after probing it). Other FFmpeg errors propagate."""
    import av

    try:
        return av.open(
            target,
            mode="r",
            metadata_errors="ignore",
            container_options={"format_whitelist": ",".join(VIDEO_CONTAINERS)},
        )
    except av.error.ArgumentError as e:  # EINVAL: the probed format is not on the whitelist
        what = _what_is(target, fileobj)
        raise NotAVideoError(
            f"not a video: {what}; {_READS}" if what else f"not a video container: {_READS}"
        ) from e
