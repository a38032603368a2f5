"""The frame loader: ``{uri, pts_ns}`` references -> RGB frames, batched per video, one forward
decode per video, through a bounded :class:`~.cache.VideoCache` (semantics: see the package docstring).

:class:`FrameLoader` is a small state machine per open video (:class:`~.cache.OpenVideo`):
*positioned* (``valid_from`` set by a seek to a real random-access point) -> frames come out of the
decoder in presentation order (``pending``) -> a target is reached by continuing (resume) or by a
new seek. Anything FFmpeg raises sends the video back to *unpositioned* (the next target seeks);
what the decoder reports while decoding is kept per decode position (``OpenVideo.damage``), and a
frame is served only if nothing was reported between its random-access point and it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from ...errors import FrameLoadError, _rebuild_frame_load_error  # noqa: F401 - defined in errors.py, re-exported
from .cache import PROCESS, OpenVideo, VideoCache, tune_allocator
from .index import VideoIndex, build_index, to_ns, video_stream
from .integrity import SETTLE_PACKETS, decoder_options, truncated_tail
from .source import MediaRoot, NotAVideoError, UriError, open_container

__all__ = ["FrameLoadError", "FrameLoader", "FrameLoaderStats", "FrameRef"]

Output = Literal["pil", "numpy", "torch"]
OnMissing = Literal["error", "placeholder"]
_NEGATIVE = "invalid reference: pts_ns must be >= 0 (a presentation time in ns on the video's clock)"


# ------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------
def _checked(uri: Any, pts_ns: Any) -> tuple[str, int]:
    """``(uri, pts_ns)`` with their types checked (TypeError naming the value); the sign is not checked."""
    if not isinstance(uri, str) or not uri:
        raise TypeError(f"a frame reference's uri must be a non-empty str, got {uri!r}")
    if isinstance(pts_ns, bool) or not isinstance(pts_ns, (int, np.integer)):
        raise TypeError(f"a frame reference's pts_ns must be an int (ns), got {pts_ns!r}")
    return uri, int(pts_ns)


def _parts(ref: Any) -> tuple[str, int]:
    """``(uri, pts_ns)`` of any accepted reference form, types checked (a negative pts_ns passes)."""
    if isinstance(ref, FrameRef):
        return ref.uri, ref.pts_ns
    if isinstance(ref, Mapping):
        try:
            return _checked(ref["uri"], ref["pts_ns"])
        except KeyError as e:
            raise TypeError(
                f"a frame reference mapping needs 'uri' and 'pts_ns', got keys {sorted(ref)}"
            ) from e
    if isinstance(ref, (tuple, list)) and len(ref) == 2:
        return _checked(ref[0], ref[1])
    if hasattr(ref, "uri") and hasattr(ref, "pts_ns"):
        return _checked(ref.uri, ref.pts_ns)
    raise TypeError(
        f"cannot read a frame reference from {ref!r}: use FrameRef, (uri, pts_ns) or {{'uri', 'pts_ns'}}"
    )


@dataclass(frozen=True)
class FrameRef:
    """One frame: a video ``uri`` (relative to the media root) and a presentation time in ns (>= 0).

    A non-str/empty ``uri`` or a non-int ``pts_ns`` is a TypeError, a negative ``pts_ns`` a
    ValueError; both name the value.
    """

    uri: str
    pts_ns: int

    def __post_init__(self) -> None:
        uri, pts_ns = _checked(self.uri, self.pts_ns)
        if pts_ns < 0:
            raise ValueError(f"a frame reference's pts_ns must be >= 0 (ns), got {pts_ns} (uri={uri!r})")
        object.__setattr__(self, "pts_ns", pts_ns)

    @classmethod
    def coerce(cls, ref: Any) -> FrameRef:
        """A :class:`FrameRef` from a FrameRef, a ``(uri, pts_ns)`` pair, a mapping with ``uri`` and
        ``pts_ns``, or any object with those attributes (e.g. ``mediaref.MediaRef``)."""
        return ref if isinstance(ref, cls) else cls(*_parts(ref))


def _media_errors() -> tuple[type[BaseException], ...]:
    """What a damaged or unreadable video raises: FFmpeg's errors (``av.error.FFmpegError``, e.g.
    ``InvalidDataError``) and I/O errors of the file or file object."""
    import av

    return (av.error.FFmpegError, OSError, EOFError)


def _file_size(target: Any, fileobj: Any) -> int | None:
    """The file's size in bytes (bounds the index pass), or None if unknown."""
    try:
        if fileobj is None:
            return os.path.getsize(target)
        size = getattr(fileobj, "size", None)
        return int(size) if size is not None else None
    except (OSError, TypeError, ValueError):
        return None


def _size(name: str, value: Any) -> tuple[int, int] | None:
    """A validated ``(width, height)`` pair of positive ints, or None."""
    if value is None:
        return None
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(f"{name} must be a (width, height) pair of positive ints, got {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class _Hole:
    """A reference of a ``load`` call that gets a placeholder once the call is decoded."""

    uri: str
    pts_ns: int
    reason: str
    size: tuple[int, int] | None  # the video's frame size, when known


@dataclass
class FrameLoaderStats:
    """Counters of one loader (per process)."""

    frames: int = 0  # references served (frames + placeholders)
    placeholders: int = 0  # black frames returned for missing references
    decoded: int = 0  # frames that came out of a decoder (requested or not)
    converted: int = 0  # frames converted to RGB (requested, deduplicated)
    seeks: int = 0  # container seeks
    resumed: int = 0  # requested frames reached by continuing a positioned decoder (no seek)
    cache_hits: int = 0  # per (load call, video): the video was already open
    cache_misses: int = 0  # per (load call, video): the video had to be opened
    evictions: int = 0  # open videos closed to stay within max_open_videos
    indexes_built: int = 0  # demux-only index passes
    decode_errors: int = 0  # errors FFmpeg reported while demuxing/decoding (damaged videos)
    damaged: int = (
        0  # decoded frames refused: libav reported damage between their random-access point and them
    )

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0)


# ------------------------------------------------------------------------------------------
# The loader
# ------------------------------------------------------------------------------------------
class FrameLoader:
    """Load frames for ``{uri, pts_ns}`` references, batched per video, through a bounded video cache.

    Args:
        media_root: local folder or fsspec URL the references' ``uri`` are relative to (and confined
            to, unless ``allow_outside_root``).
        output: ``"pil"`` (RGB images), ``"numpy"`` (``(H, W, 3)`` uint8) or ``"torch"``
            (``(3, H, W)`` uint8 tensors; torch imported lazily).
        resize: ``(width, height)`` to scale every frame to, or None for the decoded size.
        max_open_videos: open videos kept (LRU); evicted ones are closed.
        on_missing: ``"error"`` (raise :class:`FrameLoadError`) or ``"placeholder"`` (black frame,
            counted in ``stats.placeholders``, of the first size known among: ``resize``, the
            video's frame size, ``placeholder_size``, the last frame this loader decoded -- this
            call's if it decoded any; none known: a :class:`FrameLoadError` asking for
            ``placeholder_size``).
        storage_options: passed to fsspec for remote roots / URL uris.
        resume_within: a target ahead of the decoder is reached by decoding forward unless a
            seek to its random-access point would skip more than this many frames (0: seek
            whenever that saves any decoding).
        thread_type: decoder threading: ``"SLICE"`` (PyAV's default; no added latency, cheap
            seeks), ``"AUTO"``/``"FRAME"`` (frame threads: faster sequential decoding of
            single-slice streams on idle cores, but every seek drains the thread pipeline and each
            thread holds frames), ``"NONE"``, or ``""`` to leave the codec context untouched.
        tune_allocator: call :func:`tune_allocator` once per process (glibc: frame buffers kept
            by the caller stop costing page faults; freed memory stays resident up to 512 MiB).
        placeholder_size: ``(width, height)`` of placeholders for videos that cannot be opened
            (missing, refused, not a video), when ``resize`` is not given.
        allow_outside_root: also serve absolute paths, URLs (``file:``, ``s3://``, ...) and ``..``
            paths that leave ``media_root`` (off: such a ``uri`` is a :class:`FrameLoadError`; see
            :mod:`.source`). Only for datasets you trust.
    """

    def __init__(
        self,
        media_root: str | os.PathLike[str],
        *,
        output: Output = "pil",
        resize: tuple[int, int] | None = None,
        max_open_videos: int = 4,
        on_missing: OnMissing = "error",
        storage_options: Mapping[str, Any] | None = None,
        resume_within: int = 2,
        thread_type: str = "SLICE",
        tune_allocator: bool = False,
        allow_outside_root: bool = False,
        placeholder_size: tuple[int, int] | None = None,
    ) -> None:
        if output not in ("pil", "numpy", "torch"):
            raise ValueError(f"output must be 'pil', 'numpy' or 'torch', got {output!r}")
        if on_missing not in ("error", "placeholder"):
            raise ValueError(f"on_missing must be 'error' or 'placeholder', got {on_missing!r}")
        resize = _size("resize", resize)
        placeholder_size = _size("placeholder_size", placeholder_size)
        if isinstance(max_open_videos, bool) or not isinstance(max_open_videos, int) or max_open_videos < 1:
            raise ValueError(f"max_open_videos must be an int >= 1, got {max_open_videos!r}")
        if isinstance(resume_within, bool) or not isinstance(resume_within, int) or resume_within < 0:
            raise ValueError(f"resume_within must be an int >= 0, got {resume_within!r}")
        self.media_root = os.fspath(media_root)
        self.output: Output = output
        self.resize = resize
        self.max_open_videos = max_open_videos
        self.on_missing: OnMissing = on_missing
        self.storage_options = dict(storage_options or {})
        self.resume_within = resume_within
        self.thread_type = thread_type
        self.tune_allocator = bool(tune_allocator)
        self.allow_outside_root = bool(allow_outside_root)
        self.placeholder_size = placeholder_size
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.stats = FrameLoaderStats()
        self.cache = VideoCache(self.max_open_videos)
        self._last_size: tuple[int, int] | None = None  # (width, height) of the last converted frame
        self._source = MediaRoot(self.media_root, self.storage_options, self.allow_outside_root)

    # -- pickling: configuration only (each process builds its own cache) -----------------------
    _CONFIG = (
        "media_root",
        "output",
        "resize",
        "max_open_videos",
        "on_missing",
        "storage_options",
        "resume_within",
        "thread_type",
        "tune_allocator",
        "allow_outside_root",
        "placeholder_size",
    )

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._CONFIG}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return (
            f"FrameLoader({self.media_root!r}, output={self.output!r}, resize={self.resize!r}, "
            f"max_open_videos={self.max_open_videos}, on_missing={self.on_missing!r}"
            + (", allow_outside_root=True" if self.allow_outside_root else "")
            + ")"
        )

    def close(self) -> None:
        """Close every open video (the loader stays usable)."""
        with self.cache.lock:
            self.cache.close()

    def __enter__(self) -> FrameLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.cache.close()
        except Exception:
            pass

    # -- public API --------------------------------------------------------------------------
    def load(self, refs: Iterable[Any]) -> list[Any]:
        """Frames for ``refs`` (FrameRef, ``(uri, pts_ns)`` or ``{"uri", "pts_ns"}``), in the order given.

        A malformed reference (wrong types) is a TypeError; a negative ``pts_ns`` is an invalid
        reference: a :class:`FrameLoadError` (or a counted placeholder).
        """
        parts = [_parts(r) for r in refs]  # TypeError for a malformed reference
        if self.on_missing == "error":  # before any I/O: the error does not depend on the video
            for slot, (uri, pts_ns) in enumerate(parts):
                if pts_ns < 0:
                    raise FrameLoadError(self.media_root, uri, pts_ns, _NEGATIVE, ref_index=slot)
        if self.tune_allocator and not PROCESS.allocator_tuned():
            tune_allocator()
        out: list[Any] = [None] * len(parts)
        groups: dict[str, list[tuple[int, int]]] = {}
        for slot, (uri, pts_ns) in enumerate(parts):
            groups.setdefault(uri, []).append((pts_ns, slot))
        with self.cache.lock:
            for uri, items in groups.items():
                self._load_video(uri, items, out)
            self.stats.evictions = self.cache.evictions
            for slot, hole in enumerate(out):
                if isinstance(hole, _Hole):
                    out[slot] = self._placeholder(slot, hole)
        self.stats.frames += len(parts)
        return out

    def load_one(self, uri: str, pts_ns: int) -> Any:
        """One frame (``load([(uri, pts_ns)])[0]``)."""
        return self.load([(uri, pts_ns)])[0]

    def index(self, uri: str) -> VideoIndex:
        """The (cached) index of one video: frame times, real random-access points."""
        with self.cache.lock:
            video = self.cache.get(uri)
            if video is not None:
                return video.index
            idx = self.cache.index(uri)
            if idx is not None:
                return idx
            return self._open(uri).index

    # -- opening -----------------------------------------------------------------------------
    def _error(self, uri: str, pts_ns: int | None, reason: str) -> FrameLoadError:
        return FrameLoadError(self.media_root, uri, pts_ns, reason)

    def _open(self, uri: str) -> OpenVideo:
        """Open ``uri`` (index it if needed) and put it in the cache."""
        try:
            target, fileobj = self._source.open(uri)
        except UriError as e:
            raise self._error(uri, None, e.reason) from None
        except FileNotFoundError as e:
            raise self._error(uri, None, f"video not found ({e})") from None
        except Exception as e:
            raise self._error(uri, None, f"cannot open video ({type(e).__name__}: {e})") from e
        try:
            container = open_container(target, fileobj)
        except Exception as e:
            if fileobj is not None:
                fileobj.close()
            if isinstance(e, NotAVideoError):
                raise self._error(uri, None, e.reason) from e
            raise self._error(uri, None, f"cannot open video ({type(e).__name__}: {e})") from e
        try:
            stream = video_stream(container)
            if stream is None:
                what = "only an attached picture" if container.streams.video else "none"
                raise self._error(uri, None, f"no video stream ({what})")
            index = self.cache.index(uri)
            if index is None:
                try:
                    index = build_index(container, stream, max_packets=_file_size(target, fileobj))
                except Exception as e:
                    raise self._error(uri, None, f"cannot read video ({type(e).__name__}: {e})") from e
                self.stats.indexes_built += 1
            if index.frames == 0:
                raise self._error(uri, None, "the video stream has no frames")
            video = OpenVideo(uri, container, fileobj, index, self.thread_type)
        except BaseException as e:
            container.close()
            if fileobj is not None:
                fileobj.close()
            if isinstance(e, Exception) and not isinstance(e, FrameLoadError):
                raise self._error(uri, None, f"cannot open video ({type(e).__name__}: {e})") from e
            raise
        self.cache.put(uri, video)
        return video

    # -- loading -----------------------------------------------------------------------------
    def _load_video(self, uri: str, items: list[tuple[int, int]], out: list[Any]) -> None:
        video = self.cache.get(uri)
        if video is not None:
            self.stats.cache_hits += 1
        else:
            try:
                video = self._open(uri)
            except FrameLoadError as e:
                for pts_ns, slot in items:
                    self._missing(out, slot, uri, pts_ns, e.reason, None)
                self.stats.evictions = self.cache.evictions
                return
            self.stats.cache_misses += 1
        idx = video.index
        size = (idx.width, idx.height) if idx.width and idx.height else None
        targets: dict[int, list[tuple[int, int]]] = {}  # presentation position -> [(slot, pts_ns)]
        for pts_ns, slot in items:
            j = idx.locate(pts_ns) if pts_ns >= 0 else None
            if pts_ns < 0:
                self._missing(out, slot, uri, pts_ns, _NEGATIVE, size)
            elif j is None:
                first, end = idx.span_ns()
                reason = f"outside the video stream (frames span {first}..{end} ns)"
                self._missing(out, slot, uri, pts_ns, reason, size)
            elif (lost := truncated_tail(idx, j, pts_ns)) is not None:
                self.stats.damaged += 1
                self._missing(out, slot, uri, pts_ns, lost, size)
            else:
                targets.setdefault(j, []).append((slot, pts_ns))
        for j in sorted(targets):
            wanted = targets[j]
            try:
                image = self._convert(self._frame_at(video, j))
            except Exception as e:
                if isinstance(e, FrameLoadError):
                    reason = e.reason
                elif isinstance(e, _media_errors()):  # from FFmpeg or the file: never escapes as such
                    video.unposition()
                    self.stats.decode_errors += 1
                    reason = f"cannot decode the video ({type(e).__name__}: {e})"
                else:
                    raise
                for slot, pts_ns in wanted:
                    self._missing(out, slot, uri, pts_ns, reason, size)
                continue
            self.stats.converted += 1
            out[wanted[0][0]] = image
            for slot, _ in wanted[1:]:
                out[slot] = self._copy(image)

    def _frame_at(self, video: OpenVideo, j: int) -> Any:
        """The decoded frame at presentation position ``j``."""
        idx = video.index
        pos = int(idx.order[j])
        t = int(idx.pts[pos])
        start = idx.start_for(pos)
        if start is None:
            raise self._error(video.uri, idx.time_ns(j), "no random-access point at or before this frame")
        if video.last_frame is not None and video.last_pts == t:
            self.stats.resumed += 1
            return self._checked_frame(video, j, start, pos, video.last_frame)
        if self._can_resume(video, t, start):
            self.stats.resumed += 1
        else:
            self._seek(video, start)
        frame = self._advance_to(video, t)
        if (
            frame is None
        ):  # the decoder skipped it: retry from the previous, then the first, random-access point
            k = int(np.searchsorted(idx.rap_positions, start, side="left")) - 1
            retries = [int(idx.rap_positions[k])] if k >= 0 else []
            if k > 0:
                retries.append(int(idx.rap_positions[0]))
            for retry in retries:
                self._seek(video, retry)
                frame = self._advance_to(video, t)
                if frame is not None:
                    break
        if frame is not None and video.judge.suspect_between(start, pos):
            # an error the seek may have caused: decode the frame again from the previous point
            k = int(np.searchsorted(idx.rap_positions, start, side="left")) - 1
            if k >= 0:
                self._seek(video, int(idx.rap_positions[k]))
                frame = self._advance_to(video, t)
        if frame is None:
            video.valid_from = None
            bad = video.damage_between(start, pos)
            if video.demux_error:
                detail = f" (the demuxer stopped: {video.demux_error})"
            else:
                detail = f" (damaged data: {bad})" if bad else ""
            raise self._error(
                video.uri, idx.time_ns(j), f"the decoder produced no frame at this time{detail}"
            )
        return self._checked_frame(video, j, start, pos, frame)

    def _checked_frame(self, video: OpenVideo, j: int, start: int, pos: int, frame: Any) -> Any:
        """``frame`` (presentation position ``j``, decode position ``pos``), unless the decoder reported
        damage between its random-access point ``start`` and it: it cannot be vouched for."""
        bad = video.damage_between(start, pos)
        if bad is None and video.judge.suspect_between(start, pos):
            bad = "a decoding error no decode from an earlier random-access point cleared"
        if bad is not None:
            self.stats.damaged += 1
            reason = f"the video is damaged between this frame's random-access point and it ({bad})"
            raise self._error(video.uri, video.index.time_ns(j), reason)
        return frame

    def _can_resume(self, video: OpenVideo, t: int, start: int) -> bool:
        if video.valid_from is None or t < video.valid_from:
            return False
        if video.last_pts is not None and t <= video.last_pts:
            return False
        if video.pending and video.pending[-1].pts is not None and video.pending[-1].pts >= t:
            return True
        if video.eof:
            return False
        return start - video.next_pos <= self.resume_within

    def _seek(self, video: OpenVideo, start: int) -> None:
        """Position the decoder on the random-access point at decode position ``start``."""
        idx = video.index
        start_pts = int(idx.pts[start])
        for attempt in range(2):
            self.stats.seeks += 1
            video.unposition()
            video.packets_read = 0
            video.demux_error = None
            if attempt == 0:
                try:
                    video.container.seek(start_pts, stream=video.stream, backward=True, any_frame=False)
                except Exception:
                    continue
            else:  # the demuxer landed after the point: start over from the first packet
                self._reopen(video)
            video.codec_context.flush_buffers()
            video.judge.restart(start_pts, self._first_gop(idx, start))
            video.demux = video.container.demux(video.stream)
            while (packet := self._read_packet(video)) is not None:
                p = packet.pts if packet.pts is not None else packet.dts
                k = idx.position_of_pts.get(int(p)) if p is not None else None
                if k is None or k < start:
                    continue
                if k > start:
                    break
                video.valid_from = start_pts
                self._feed(video, packet, k)
                return
        raise self._error(
            video.uri,
            to_ns(start_pts, idx.time_base),
            "cannot position the demuxer on a random-access point",
        )

    @staticmethod
    def _first_gop(idx: VideoIndex, start: int) -> tuple[int, int]:
        """Decode positions from the random-access point ``start`` to the next one, where an error
        may come from the seek itself (none when ``start`` is the video's first point)."""
        k = int(np.searchsorted(idx.rap_positions, start, side="right"))
        if k <= 1:
            return (0, 0)
        return (start, int(idx.rap_positions[k]) if k < len(idx.rap_positions) else idx.frames)

    def _reopen(self, video: OpenVideo) -> None:
        video.demux = None
        video.container.close()
        try:
            if video.fileobj is not None:
                video.fileobj.seek(0)
                video.container = open_container(video.fileobj, video.fileobj)
            else:
                target, _ = self._source.open(video.uri)
                video.container = open_container(target)
        except (UriError, NotAVideoError) as e:  # the file changed since it was opened
            raise self._error(video.uri, None, f"cannot reopen the video: {e.reason}") from e
        stream = video_stream(video.container)
        if stream is None:
            raise self._error(video.uri, None, "no video stream after reopening the file")
        video.stream = stream
        video.codec_context = video.stream.codec_context
        if self.thread_type:
            video.codec_context.thread_type = self.thread_type
        video.codec_context.options = decoder_options(self.thread_type)

    def _read_packet(self, video: OpenVideo) -> Any:
        """The next packet of the video stream, or None at its end -- also when the demuxer fails
        (why: ``video.demux_error``) or yields more packets than the index has (it would loop)."""
        if video.demux is None:
            return None
        if video.packets_read > 2 * video.index.frames + 64:
            video.demux_error = "the demuxer returned more packets than the video has"
            video.demux = None
            return None
        try:
            packet = next(video.demux, None)
        except Exception as e:
            if not isinstance(e, _media_errors()):
                raise
            video.demux_error = f"{type(e).__name__}: {e}"
            video.demux = None
            return None
        video.packets_read += 1
        if packet is None or packet.size == 0:  # the end (PyAV ends with an empty flush packet)
            video.demux = None
            return None
        return packet

    def _feed(self, video: OpenVideo, packet: Any, position: int | None) -> None:
        """Decode one packet (None: flush the decoder). A decoding error is recorded as damage at the
        packet's decode position (unknown: the next expected one) and decoding goes on."""
        where = position if position is not None else max(video.next_pos - (packet is None), 0)
        if position is not None:
            video.next_pos = position + 1
        if packet is not None:
            video.judge.packet(packet, position)
        try:
            frames = video.codec_context.decode(packet)
        except Exception as e:
            if not isinstance(e, _media_errors()):
                raise
            self.stats.decode_errors += 1
            if video.judge.error(e, position):  # False: a leading picture's (expected, never served)
                video.damage.setdefault(where, f"{type(e).__name__}: {e}")
            return
        self._queue(video, frames)

    def _queue(self, video: OpenVideo, frames: list[Any]) -> None:
        for frame in frames:
            self.stats.decoded += 1
            video.judge.frame(frame)  # corrupt flags, timestamps contradicting the bitstream's order
            if frame.pts is None or (video.valid_from is not None and frame.pts < video.valid_from):
                continue  # leading pictures of the starting point (possibly broken): never returned
            video.pending.append(frame)

    def _fill(self, video: OpenVideo) -> None:
        """Decode until a frame is pending or the stream ends."""
        while not video.pending and not video.eof:
            self._feed_next(video)

    def _feed_next(self, video: OpenVideo) -> None:
        """Feed the next packet (at the end: flush the decoder)."""
        packet = self._read_packet(video)
        if packet is None:
            video.eof = True
            self._feed(video, None, None)
            return
        p = packet.pts if packet.pts is not None else packet.dts
        self._feed(video, packet, video.index.position_of_pts.get(int(p)) if p is not None else None)

    def _settle(self, video: OpenVideo, position: int) -> None:
        """Decode on (a bounded number of packets) until every packet decoded before the frame at
        decode ``position`` has come out of the decoder: their frames can show its timestamp wrong."""
        self._fill(video)  # the next frame out
        for _ in range(SETTLE_PACKETS):
            if video.eof or video.judge.settled(position):
                return
            self._feed_next(video)

    def _next_frame(self, video: OpenVideo) -> Any:
        self._fill(video)
        if not video.pending:
            return None
        frame = video.pending.popleft()
        video.last_pts = frame.pts
        video.last_frame = frame
        return frame

    def _advance_to(self, video: OpenVideo, t: int) -> Any:
        while True:
            frame = self._next_frame(video)
            if frame is None:
                return None
            if frame.pts == t:
                # the frames out next can show this one's timestamp to be wrong (integrity: pts_order)
                where = video.index.position_of_pts.get(int(t))
                if where is not None:
                    self._settle(video, where)
                return frame
            if frame.pts > t:
                return None

    # -- output ------------------------------------------------------------------------------
    def _convert(self, frame: Any) -> Any:
        # One reformatter per loader: its swscale context (and thread pool) is set up once, not per
        # frame as with frame.to_ndarray(format=...) -- same pixels, a fraction of the setup cost.
        width, height = self.resize or (None, None)
        rgb = self.cache.reformatter().reformat(frame, width=width, height=height, format="rgb24")
        self._last_size = (rgb.width, rgb.height)
        return self._wrap(np.ascontiguousarray(rgb.to_ndarray()))

    def _wrap(self, arr: np.ndarray) -> Any:
        if self.output == "numpy":
            return arr
        if self.output == "pil":
            from PIL import Image

            return Image.fromarray(arr)  # (H, W, 3) uint8 -> mode RGB
        import torch

        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    def _copy(self, image: Any) -> Any:
        if self.output == "numpy":
            return image.copy()
        if self.output == "pil":
            return image.copy()
        return image.clone()

    def _missing(
        self, out: list[Any], slot: int, uri: str, pts_ns: int, reason: str, size: tuple[int, int] | None
    ) -> None:
        """Reference ``slot`` cannot be served: raise, or mark it for a placeholder (``size``: the
        video's frame size, when known). Placeholders are made once the whole call is decoded."""
        if self.on_missing == "error":
            raise FrameLoadError(self.media_root, uri, pts_ns, reason, ref_index=slot)
        out[slot] = _Hole(uri, pts_ns, reason, size)

    def _placeholder(self, slot: int, hole: _Hole) -> Any:
        """A counted black frame for ``hole``, of the first size known among: ``resize``, the video's
        frame size, ``placeholder_size``, the last frame this loader decoded (this call's if any)."""
        size = self.resize or hole.size or self.placeholder_size or self._last_size
        if size is None:
            raise FrameLoadError(
                self.media_root,
                hole.uri,
                hole.pts_ns,
                f"{hole.reason}; a placeholder's size is unknown (no frame of this video or of this loader "
                "decoded yet): pass placeholder_size=(width, height) or resize=(width, height)",
                ref_index=slot,
            )
        self.stats.placeholders += 1
        width, height = size
        return self._wrap(np.zeros((height, width, 3), dtype=np.uint8))
