"""Open videos and everything kept per process: the bounded :class:`VideoCache`, fork safety, and
:func:`tune_allocator`.

All process-global state of the frame loader lives in one object, :data:`PROCESS`: a weak set of
the live caches (so a fork can close their videos; bounded by the loaders alive) and the pid in
which the allocator was tuned. Nothing else in the package is global.

Fork safety: before ``os.fork`` every cache closes its open videos in the parent (a decoder with
worker threads cannot be closed -- nor used -- in a forked child, where those threads do not
exist, and a child would share file offsets with the parent); a child that still finds open
videos of its parent (the parent was busy loading at fork time) forgets them without touching
them. Indexes are kept: they are plain arrays.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

from .index import VideoIndex, video_stream
from .integrity import NO_PTS_FORMATS, FrameJudge, decoder_options

__all__ = ["PROCESS", "OpenVideo", "ProcessState", "VideoCache", "tune_allocator"]


class OpenVideo:
    """An open container + its video decoder state (position, frames decoded but not consumed)."""

    def __init__(self, uri: str, container: Any, fileobj: Any, index: VideoIndex, thread_type: str) -> None:
        self.uri = uri
        self.container = container
        self.fileobj = fileobj
        self.index = index
        self.stream = video_stream(container)
        self.codec_context = self.stream.codec_context
        if thread_type:
            self.codec_context.thread_type = thread_type
        self.codec_context.options = decoder_options(thread_type)  # before the decoder opens (first decode)
        self.demux: Iterator[Any] | None = None
        self.pending: deque[Any] = deque()
        self.next_pos = 0  # decode position of the next packet to feed
        self.valid_from: int | None = None  # pts of the random-access point decoding started at; None: seek
        self.last_pts: int | None = None  # pts of the last frame handed out of the decoder
        self.last_frame: Any = None
        self.eof = False
        self.packets_read = 0  # since the last seek: bounded (a demuxer never yields more than the index has)
        self.demux_error: str | None = None  # why the demuxer stopped early, since the last seek
        #: decode position -> what the decoder reported there (an error, or a frame flagged corrupt);
        #: a property of the file, kept while the video is open; at most one entry per frame
        self.damage: dict[int, str] = {}
        #: what libav signalled per decode position (errors, corrupt flags, contradicting timestamps)
        fmt = set(getattr(container.format, "name", "").split(","))
        self.judge = FrameJudge(index.position_of_pts, check_order=not fmt & NO_PTS_FORMATS)

    def unposition(self) -> None:
        """Forget the decoder position (after anything unexpected): the next target seeks."""
        self.demux = None
        self.pending.clear()
        self.last_frame = None
        self.last_pts = None
        self.valid_from = None
        self.eof = False

    def damage_between(self, first: int, last: int) -> str | None:
        """What the decoder reported at a decode position in ``[first, last]``, if anything."""
        for position, what in self.damage.items():
            if first <= position <= last:
                return what
        return self.judge.between(first, last)

    def close(self) -> None:
        self.demux = None
        self.pending.clear()
        self.last_frame = None
        try:
            self.container.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass
        if self.fileobj is not None:
            try:
                self.fileobj.close()
            except Exception:  # pragma: no cover
                pass


class VideoCache:
    """The loader's one bounded cache: an LRU of open videos (containers + decoder state), at most
    ``max_open`` (evicted videos are closed), and an LRU of per-video indexes (at most
    ``max_indexes``; small: a few ints per frame). Fork-safe (see the module docstring).
    """

    def __init__(self, max_open: int, max_indexes: int = 1024) -> None:
        if max_open < 1:
            raise ValueError(f"max_open_videos must be >= 1, got {max_open}")
        self.max_open = max_open
        self.max_indexes = max(max_indexes, max_open)
        self._open: OrderedDict[str, OpenVideo] = OrderedDict()
        self._indexes: OrderedDict[str, VideoIndex] = OrderedDict()
        self._pid = os.getpid()
        self.evictions = 0
        self.lock = threading.RLock()
        self._reformatter: Any = None  # swscale context (with its threads) shared by the loader's conversions
        PROCESS.caches.add(self)

    def reformatter(self) -> Any:
        """This process's ``av.video.reformatter.VideoReformatter``."""
        self._check_pid()
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        return self._reformatter

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self.forget()

    def forget(self) -> None:
        """In a forked child: drop the parent's open videos without closing (or freeing) them."""
        for video in self._open.values():
            _leak(video)
        self._open.clear()
        if self._reformatter is not None:
            _leak(self._reformatter)
            self._reformatter = None
        self._pid = os.getpid()

    def get(self, key: str) -> OpenVideo | None:
        self._check_pid()
        video = self._open.get(key)
        if video is not None:
            self._open.move_to_end(key)
        return video

    def put(self, key: str, video: OpenVideo) -> None:
        self._check_pid()
        old = self._open.pop(key, None)
        if old is not None and old is not video:
            old.close()
        self._open[key] = video
        while len(self._open) > self.max_open:
            _, evicted = self._open.popitem(last=False)
            evicted.close()
            self.evictions += 1
        self.put_index(key, video.index)

    def index(self, key: str) -> VideoIndex | None:
        idx = self._indexes.get(key)
        if idx is not None:
            self._indexes.move_to_end(key)
        return idx

    def put_index(self, key: str, index: VideoIndex) -> None:
        self._indexes[key] = index
        self._indexes.move_to_end(key)
        while len(self._indexes) > self.max_indexes:
            self._indexes.popitem(last=False)

    def open_keys(self) -> list[str]:
        """Keys of the open videos, least recently used first."""
        return list(self._open)

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, key: str) -> bool:
        return key in self._open

    def close(self) -> None:
        """Close every open video (indexes are kept) and free the swscale context."""
        self._check_pid()
        while self._open:
            _, video = self._open.popitem(last=False)
            video.close()
        self._reformatter = None


def _leak(obj: Any) -> None:
    """Keep ``obj`` alive forever: freeing a parent's threaded decoder in a forked child can hang."""
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


class ProcessState:
    """The frame loader's only process-global state: the live caches (weakly held, so bounded by the
    loaders alive) for the fork hooks, and the pid in which :func:`tune_allocator` succeeded."""

    def __init__(self) -> None:
        self.caches: weakref.WeakSet[VideoCache] = weakref.WeakSet()
        self.tuned_pid: int | None = None

    def allocator_tuned(self) -> bool:
        """Whether :func:`tune_allocator` succeeded in this process."""
        return self.tuned_pid == os.getpid()

    def before_fork(self) -> None:
        """In the parent, before ``os.fork``: close every idle cache's open videos."""
        for cache in list(self.caches):
            if cache.lock.acquire(blocking=False):
                try:
                    cache.close()
                finally:
                    cache.lock.release()

    def after_fork_in_child(self) -> None:
        """In the child: fresh locks (a parent thread may have held one), the parent's videos forgotten."""
        for cache in list(self.caches):
            cache.lock = threading.RLock()
            cache.forget()


PROCESS = ProcessState()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=PROCESS.before_fork, after_in_child=PROCESS.after_fork_in_child)


def tune_allocator(mmap_threshold: int = 32 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Make glibc's malloc keep freed frame buffers for reuse (process-wide; Linux/glibc only).

    A decoded RGB frame is a multi-MB buffer. glibc serves such buffers with fresh pages (mmap,
    or a heap it trims back to the OS as soon as a sample's frames are freed), so every frame
    a training loop *keeps* until its batch is done costs thousands of page faults -- measured at
    ~2-3 ms per 1080p frame, more than the RGB conversion itself. Raising ``M_MMAP_THRESHOLD``
    (frames come from the heap) and ``M_TRIM_THRESHOLD`` (freed heap memory up to that size is
    kept) removes that cost; the price is that up to ``trim_threshold`` bytes of freed memory
    stay resident. Returns whether it was applied. ``FrameLoader(tune_allocator=True)`` calls it
    once per process (e.g. in each DataLoader worker).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = bool(mallopt(m_mmap_threshold, int(mmap_threshold))) and bool(
        mallopt(m_trim_threshold, int(trim_threshold))
    )
    if ok:
        PROCESS.tuned_pid = os.getpid()
    return ok
