"""Frame loading: ``{uri, pts_ns}`` references -> RGB frames. THE one frame loader used at training time.

::

    loader = FrameLoader("hf://datasets/org/name", output="numpy", resize=(448, 448))
    frames = loader.load([{"uri": "ep.mkv", "pts_ns": 0}, ("ep.mkv", 50_000_000)])

Semantics
---------
- **Which frame.** ``pts_ns`` is a presentation time on the video stream's own clock (the
  frame's ``pts * time_base`` in ns, as in OWAMcap ``media_ref`` and ``mediaref``). The loader
  returns the frame *displayed* at that time: the frame whose pts equals ``pts_ns``, and for a
  time between two frames the latest frame with ``pts <= pts_ns`` (a 1 ns tolerance absorbs
  rounding when ``time_base`` is not a whole number of ns). Times before the first frame, or
  more than one frame duration after the last frame (the last packet's duration, else the
  median frame interval), are *missing*.
- **Pixels.** RGB, uint8. ``output="numpy"``: ``(H, W, 3)`` array; ``"pil"``: ``PIL.Image`` in
  mode RGB; ``"torch"``: ``(3, H, W)`` uint8 tensor (torch imported on first use only).
  Without ``resize`` frames have the *decoded* size of the video, which for odd capture sizes
  is the padded size (a 1025x1017 capture is stored and returned as 1026x1018); cropping to
  ``source_shape`` is the caller's business. ``resize=(width, height)`` (PIL order) scales
  with swscale's bilinear filter.
- **Missing.** A video that does not exist or cannot be opened, a time outside the stream, or
  a frame the decoder cannot produce raises :class:`FrameLoadError` (a ``ValueError``) naming
  ``media_root``, ``uri`` and ``pts_ns``. With ``on_missing="placeholder"`` such a reference
  gets a black frame instead -- of the ``resize`` size, else of the video's size, else 1x1
  -- counted in ``loader.stats.placeholders``.
- **Where.** ``media_root`` is a local folder or any fsspec URL (``memory://``, ``hf://...``,
  ``s3://...``); ``uri`` is relative to it (a ``uri`` that is itself a URL is opened as is).
  Remote files are read through fsspec file objects handed to ``av.open``.

How (and why it is fast *and* right)
-----------------------------------
- **Real keyframes.** Some recordings flag every frame as a keyframe; seeking straight to a
  flagged frame then gives a wrong frame -- grey garbage, a later frame, or nothing, depending
  on the decoder (FFmpeg 8's H.264 and HEVC decoders drop frames until the next real
  keyframe). So the loader never trusts the flags: once per video it runs a demux-only pass
  (no decoding) and classifies every packet by its NAL units -- H.264 (AVCC or Annex-B): IDR
  (type 5), or a recovery-point SEI with ``recovery_frame_cnt == 0`` (open-GOP I frames);
  HEVC: IRAP (types 16..23: BLA/IDR/CRA). Other codecs fall back to the container's flags.
  The result (:class:`VideoIndex`: pts in decode order, random-access points, presentation
  order; a few bytes per frame) is cached per video. The pass reads the whole file once (for
  a remote root: the first touch of a video downloads it once).
- **Only the video.** The first video stream is decoded; other streams (audio, subtitles)
  are discarded in the demuxer (``AVDISCARD_ALL``) and never decoded.
- **One forward pass per video.** ``load`` groups references by video, dedups and sorts each
  video's targets by pts, seeks to the exact pts of the nearest *real* random-access point at
  or before the first target (skipping demuxed packets until that packet if the demuxer lands
  earlier) and decodes forward, converting only the requested frames. Frames of an open GOP's
  starting point that precede it are never returned.
- **Resume without seeking.** Each open video keeps its decoder state (and its last frame).
  When the next target (same call or a later call) is ahead of the decoder, decoding just
  continues unless a seek would skip more than ``resume_within`` (default 2) frames, i.e.
  unless the target's random-access point lies further ahead than that. A target in the GOP
  being decoded, or just past the next keyframe, is reached without a seek; one several GOPs
  ahead is reached by a seek to *its* keyframe (decoding the GOPs in between would only cost
  more: a seek costs about one frame's decoding). So time-ordered loading (FSL samples in
  order) runs at the decoder's sequential speed with one seek per video.
- **Bounded cache.** Open containers + decoder state live in one :class:`VideoCache` per
  loader: an LRU of at most ``max_open_videos`` open videos (evicted ones are closed) plus an
  LRU of small per-video indexes. Memory is bounded whatever the number of videos.
- **Processes.** A loader pickles as its configuration only (``__getstate__``), so each
  ``DataLoader`` worker builds its own cache. Before ``os.fork`` (a forking DataLoader)
  every loader closes its open videos, which a child could neither use nor close (their
  decoder threads do not exist there) and which would share file offsets with the parent;
  indexes are kept. A loader is not meant to be shared between threads (a lock serialises
  ``load`` calls if it is).
- **Speed notes.** Conversion to RGB reuses one swscale context per loader (PyAV's
  ``frame.to_ndarray(format=...)`` builds one per frame). Decoding uses slice threads by
  default (``thread_type``). Frames kept by the caller cost glibc page faults that can exceed
  the conversion itself; see :func:`tune_allocator` (``tune_allocator=True``).
  ``owa_builders.tools.frames_bench`` measures all of this against plain PyAV.
"""

from __future__ import annotations

import bisect
import os
import posixpath
import statistics
import sys
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from owa_event.errors import OwaError

__all__ = [
    "FrameLoadError",
    "FrameLoader",
    "FrameLoaderStats",
    "FrameRef",
    "VideoCache",
    "VideoIndex",
    "build_index",
    "random_access_points",
    "tune_allocator",
]

Output = Literal["pil", "numpy", "torch"]
OnMissing = Literal["error", "placeholder"]
NS = 1_000_000_000
_SLACK_NS = 1  # rounding tolerance when matching a request to a frame time


class FrameLoadError(OwaError):
    """A frame reference that cannot be served (missing video, time outside the stream, decode failure).

    ``media_root``, ``uri``, ``pts_ns`` (None when no time was involved) and ``reason`` are kept
    as attributes; the message names them all.
    """

    def __init__(self, media_root: str, uri: str, pts_ns: int | None, reason: str) -> None:
        at = f" at pts_ns={pts_ns}" if pts_ns is not None else ""
        super().__init__(f"cannot load frame uri={uri!r}{at} from media_root={media_root!r}: {reason}")
        self.media_root, self.uri, self.pts_ns, self.reason = media_root, uri, pts_ns, reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.media_root, self.uri, self.pts_ns, self.reason))


# ------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameRef:
    """One frame: a video ``uri`` (relative to the media root) and a presentation time in ns."""

    uri: str
    pts_ns: int

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri:
            raise TypeError(f"FrameRef.uri must be a non-empty str, got {self.uri!r}")
        if isinstance(self.pts_ns, bool) or not isinstance(self.pts_ns, (int, np.integer)):
            raise TypeError(f"FrameRef.pts_ns must be an int (ns), got {self.pts_ns!r}")
        object.__setattr__(self, "pts_ns", int(self.pts_ns))

    @classmethod
    def coerce(cls, ref: Any) -> FrameRef:
        """A :class:`FrameRef` from a FrameRef, a ``(uri, pts_ns)`` pair, a mapping with ``uri`` and
        ``pts_ns``, or any object with those attributes (e.g. ``mediaref.MediaRef``)."""
        if isinstance(ref, cls):
            return ref
        if isinstance(ref, Mapping):
            try:
                return cls(ref["uri"], ref["pts_ns"])
            except KeyError as e:
                raise TypeError(
                    f"a frame reference mapping needs 'uri' and 'pts_ns', got keys {sorted(ref)}"
                ) from e
        if isinstance(ref, (tuple, list)) and len(ref) == 2:
            return cls(ref[0], ref[1])
        if hasattr(ref, "uri") and hasattr(ref, "pts_ns"):
            return cls(ref.uri, ref.pts_ns)
        raise TypeError(
            f"cannot read a frame reference from {ref!r}: use FrameRef, (uri, pts_ns) or {{'uri', 'pts_ns'}}"
        )


# ------------------------------------------------------------------------------------------
# Real random-access points from the bitstream
# ------------------------------------------------------------------------------------------
def _length_size(codec: str, extradata: bytes) -> int | None:
    """NAL length-prefix size for AVCC/hvcC extradata, or None for Annex-B (start codes)."""
    if not extradata or extradata.startswith(b"\x00\x00\x01") or extradata.startswith(b"\x00\x00\x00\x01"):
        return None
    if codec == "h264" and len(extradata) >= 7:
        return (extradata[4] & 3) + 1
    if codec == "hevc" and len(extradata) >= 23:
        return (extradata[21] & 3) + 1
    return None


def _nals_length_prefixed(data: memoryview, size: int) -> list[memoryview] | None:
    """The NAL units of a length-prefixed (AVCC/hvcC) access unit, or None if the lengths do not
    tile the packet exactly (then it is not length-prefixed)."""
    nals = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + size > end:
            return None
        n = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        if n == 0 or pos + n > end:
            return None
        nals.append(data[pos : pos + n])
        pos += n
    return nals


def _nals_annexb(data: bytes) -> Iterator[bytes]:
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        nal = data[start:end]
        if nal.endswith(b"\x00"):  # the 4-byte start code's leading zero
            nal = nal.rstrip(b"\x00")
        if nal:
            yield nal
        pos = nxt


def _h264_sei_is_recovery_point(nal: bytes | memoryview) -> bool:
    """Whether an H.264 SEI NAL carries a recovery point with ``recovery_frame_cnt == 0``."""
    rbsp = bytes(nal[1:]).replace(b"\x00\x00\x03", b"\x00\x00")
    pos, end = 0, len(rbsp)
    while pos < end and rbsp[pos] != 0x80:  # 0x80: rbsp trailing bits
        ptype = 0
        while pos < end and rbsp[pos] == 0xFF:
            ptype += 255
            pos += 1
        if pos >= end:
            return False
        ptype += rbsp[pos]
        pos += 1
        psize = 0
        while pos < end and rbsp[pos] == 0xFF:
            psize += 255
            pos += 1
        if pos >= end:
            return False
        psize += rbsp[pos]
        pos += 1
        if ptype == 6:  # recovery_point: recovery_frame_cnt is ue(v); a leading 1 bit means 0
            return pos < end and bool(rbsp[pos] & 0x80)
        pos += psize
    return False


def _classify(codec: str, nals: Iterable[bytes | memoryview]) -> bool | None:
    """True if the access unit is a real random-access point, False if not, None if no VCL NAL."""
    recovery = False
    for nal in nals:
        if len(nal) < 1:
            continue
        if codec == "h264":
            t = nal[0] & 0x1F
            if t == 6 and not recovery:
                recovery = _h264_sei_is_recovery_point(nal)
            elif 1 <= t <= 5:
                return t == 5 or recovery
        else:  # hevc
            t = (nal[0] >> 1) & 0x3F
            if t <= 31:  # VCL
                return 16 <= t <= 23  # IRAP: BLA_W_LP .. CRA, reserved IRAP
    return None


def random_access_points(codec: str, extradata: bytes | None, packets: Iterable[Any]) -> list[bool | None]:
    """For each packet (anything with the buffer protocol, e.g. ``av.Packet``), whether it is a real
    random-access point by its NAL units (H.264/HEVC only; None where it cannot tell)."""
    size = _length_size(codec, extradata or b"")
    out: list[bool | None] = []
    for packet in packets:
        out.append(_packet_is_rap(codec, size, packet))
    return out


def _packet_is_rap(codec: str, size: int | None, packet: Any) -> bool | None:
    if codec not in ("h264", "hevc"):
        return None
    data = memoryview(packet).cast("B")
    if size is not None:
        nals = _nals_length_prefixed(data, size)
        if nals is not None:
            return _classify(codec, nals)
    # Annex-B (start codes), also when a muxer stored it despite AVCC extradata
    return _classify(codec, _nals_annexb(bytes(data)))


# ------------------------------------------------------------------------------------------
# Per-video index (one demux-only pass, cached)
# ------------------------------------------------------------------------------------------
@dataclass
class VideoIndex:
    """What the loader knows about one video stream, from one demux-only pass.

    ``pts`` (stream time-base units) and ``rap`` are in decode (packet) order; ``order`` lists
    decode positions in presentation order, ``pts_ns`` the matching presentation times.
    """

    codec: str
    time_base: Fraction
    width: int
    height: int
    pts: np.ndarray  # int64, decode order
    rap: np.ndarray  # bool, decode order
    order: np.ndarray  # int64: decode positions sorted by pts
    pts_ns: np.ndarray  # int64: presentation times (ns), sorted
    end_ns: int  # last frame's pts_ns + one frame duration
    rap_source: str  # "bitstream", "flags" or "none"
    flagged_keyframes: int = 0
    position_of_pts: dict[int, int] = field(default_factory=dict, repr=False)
    rap_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def __post_init__(self) -> None:
        if not self.position_of_pts:
            pos: dict[int, int] = {}
            for i, p in enumerate(self.pts.tolist()):
                pos.setdefault(p, i)
            self.position_of_pts = pos
        self.rap_positions = np.flatnonzero(self.rap).astype(np.int64)
        raps = self.rap_positions
        #: typical distance (frames, decode order) between random-access points
        self.gop = int(np.median(np.diff(raps))) if len(raps) > 1 else max(1, len(self.pts))
        self._pts_ns_list = self.pts_ns.tolist()

    @property
    def frames(self) -> int:
        return len(self.pts)

    def locate(self, pts_ns: int) -> int | None:
        """Presentation position of the frame displayed at ``pts_ns``, or None if outside the stream."""
        j = bisect.bisect_right(self._pts_ns_list, pts_ns + _SLACK_NS) - 1
        if j < 0 or pts_ns > self.end_ns:
            return None
        return j

    def start_for(self, position: int) -> int | None:
        """Decode position of the latest real random-access point from which decoding reaches the
        packet at decode ``position`` correctly (at or before it in decode *and* presentation order)."""
        k = int(np.searchsorted(self.rap_positions, position, side="right")) - 1
        target = self.pts[position]
        while k >= 0 and self.pts[self.rap_positions[k]] > target:
            k -= 1  # a leading picture of that point: needs the previous one
        return int(self.rap_positions[k]) if k >= 0 else None

    def span_ns(self) -> tuple[int, int]:
        return (int(self.pts_ns[0]), int(self.end_ns)) if len(self.pts_ns) else (0, -1)


def _video_only(container: Any) -> Any:
    """The container's first video stream; every other stream (audio, subtitles, ...) is discarded
    by the demuxer itself, so its packets are not even read out."""
    video = container.streams.video[0]
    for stream in container.streams:
        if stream.index != video.index:
            try:
                stream.discard = type(stream.discard).all
            except Exception:  # pragma: no cover - older PyAV: the packets are then just skipped
                pass
    return video


def _to_ns(pts: int, tb: Fraction) -> int:
    num = pts * tb.numerator * NS
    return (2 * num + tb.denominator) // (2 * tb.denominator)  # round half up


def build_index(container: Any, stream: Any) -> VideoIndex:
    """Index ``stream`` with a demux-only pass (no decoding); leaves ``container`` at end of file."""
    cc = stream.codec_context
    codec = cc.name
    extradata = bytes(cc.extradata or b"")
    size = _length_size(codec, extradata)
    pts_l: list[int] = []
    rap_l: list[bool | None] = []
    flag_l: list[bool] = []
    dur_l: list[int] = []
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        p = packet.pts if packet.pts is not None else packet.dts
        if p is None:
            continue
        pts_l.append(int(p))
        flag_l.append(bool(packet.is_keyframe))
        rap_l.append(_packet_is_rap(codec, size, packet))
        dur_l.append(int(packet.duration or 0))
    tb = stream.time_base or Fraction(1, 1000)
    if any(r for r in rap_l):
        rap = np.array([bool(r) for r in rap_l], dtype=bool)
        source = "bitstream"
    elif any(flag_l):
        rap = np.array(flag_l, dtype=bool)
        source = "flags"
    else:
        rap = np.zeros(len(pts_l), dtype=bool)
        source = "none"
    pts = np.array(pts_l, dtype=np.int64)
    order = np.argsort(pts, kind="stable").astype(np.int64)
    pts_ns = np.array([_to_ns(int(p), tb) for p in pts[order]], dtype=np.int64)
    end_ns = -1
    if len(pts):
        last = int(order[-1])
        dur = dur_l[last]
        if dur > 0:
            dur_ns = _to_ns(dur, tb)
        elif len(pts_ns) > 1:
            dur_ns = int(statistics.median(np.diff(pts_ns).tolist()))
        else:
            dur_ns = 0
        end_ns = int(pts_ns[-1]) + dur_ns
    return VideoIndex(
        codec=codec,
        time_base=Fraction(tb),
        width=int(cc.width or 0),
        height=int(cc.height or 0),
        pts=pts,
        rap=rap,
        order=order,
        pts_ns=pts_ns,
        end_ns=end_ns,
        rap_source=source,
        flagged_keyframes=int(sum(flag_l)),
    )


# ------------------------------------------------------------------------------------------
# Open videos and the cache
# ------------------------------------------------------------------------------------------
class _OpenVideo:
    """An open container + its video decoder state (position, frames decoded but not consumed)."""

    def __init__(self, uri: str, container: Any, fileobj: Any, index: VideoIndex, thread_type: str) -> None:
        self.uri = uri
        self.container = container
        self.fileobj = fileobj
        self.index = index
        self.stream = _video_only(container)
        self.codec_context = self.stream.codec_context
        if thread_type:
            self.codec_context.thread_type = thread_type
        self.demux: Iterator[Any] | None = None
        self.pending: deque[Any] = deque()
        self.next_pos = 0  # decode position of the next packet to feed
        self.valid_from: int | None = (
            None  # pts of the random-access point decoding started at; None: must seek
        )
        self.last_pts: int | None = None  # pts of the last frame handed out of the decoder
        self.last_frame: Any = None
        self.eof = False

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
    ``max_indexes``; small: a few ints per frame).

    Fork-safe: before ``os.fork`` every cache closes its open videos in the parent (a decoder
    with worker threads cannot be closed -- nor used -- in a forked child, where those threads do
    not exist); a child that still finds open videos of its parent (the parent was busy loading
    at fork time) forgets them without touching them.
    """

    def __init__(self, max_open: int, max_indexes: int = 1024) -> None:
        if max_open < 1:
            raise ValueError(f"max_open_videos must be >= 1, got {max_open}")
        self.max_open = max_open
        self.max_indexes = max(max_indexes, max_open)
        self._open: OrderedDict[str, _OpenVideo] = OrderedDict()
        self._indexes: OrderedDict[str, VideoIndex] = OrderedDict()
        self._pid = os.getpid()
        self.evictions = 0
        self.lock = threading.RLock()
        self._reformatter: Any = None  # swscale context (with its threads) shared by the loader's conversions
        _LIVE_CACHES.add(self)

    def reformatter(self) -> Any:
        """This process's ``av.video.reformatter.VideoReformatter``."""
        self._check_pid()
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        return self._reformatter

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self._forget()

    def _forget(self) -> None:
        """In a forked child: drop the parent's open videos without closing (or freeing) them."""
        for video in self._open.values():
            _leak(video)
        self._open.clear()
        if self._reformatter is not None:
            _leak(self._reformatter)
            self._reformatter = None
        self._pid = os.getpid()

    def get(self, key: str) -> _OpenVideo | None:
        self._check_pid()
        video = self._open.get(key)
        if video is not None:
            self._open.move_to_end(key)
        return video

    def put(self, key: str, video: _OpenVideo) -> None:
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


_TUNED_PID: int | None = None


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
    global _TUNED_PID
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
        _TUNED_PID = os.getpid()
    return ok


def _leak(obj: Any) -> None:
    """Keep ``obj`` alive forever: freeing a parent's threaded decoder in a forked child can hang."""
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


_LIVE_CACHES: weakref.WeakSet[VideoCache] = weakref.WeakSet()


def _before_fork() -> None:
    for cache in list(_LIVE_CACHES):
        if cache.lock.acquire(blocking=False):
            try:
                cache.close()
            finally:
                cache.lock.release()


def _after_fork_in_child() -> None:
    for cache in list(_LIVE_CACHES):
        cache.lock = threading.RLock()  # it may have been held by another thread of the parent
        cache._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


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
        media_root: local folder or fsspec URL the references' ``uri`` are relative to.
        output: ``"pil"`` (RGB images), ``"numpy"`` (``(H, W, 3)`` uint8) or ``"torch"``
            (``(3, H, W)`` uint8 tensors; torch imported lazily).
        resize: ``(width, height)`` to scale every frame to, or None for the decoded size.
        max_open_videos: open videos kept (LRU); evicted ones are closed.
        on_missing: ``"error"`` (raise :class:`FrameLoadError`) or ``"placeholder"`` (black frame,
            counted in ``stats.placeholders``).
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
    ) -> None:
        if output not in ("pil", "numpy", "torch"):
            raise ValueError(f"output must be 'pil', 'numpy' or 'torch', got {output!r}")
        if on_missing not in ("error", "placeholder"):
            raise ValueError(f"on_missing must be 'error' or 'placeholder', got {on_missing!r}")
        if resize is not None:
            if (
                not isinstance(resize, (tuple, list))
                or len(resize) != 2
                or not all(
                    isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in resize
                )
            ):
                raise ValueError(f"resize must be a (width, height) pair of positive ints, got {resize!r}")
            resize = (int(resize[0]), int(resize[1]))
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
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.stats = FrameLoaderStats()
        self.cache = VideoCache(self.max_open_videos)
        self._fs: Any = None
        self._root_path: str | None = None
        self._local = "://" not in self.media_root or self.media_root.startswith("file://")

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
    )

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._CONFIG}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return (
            f"FrameLoader({self.media_root!r}, output={self.output!r}, resize={self.resize!r}, "
            f"max_open_videos={self.max_open_videos}, on_missing={self.on_missing!r})"
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
        """Frames for ``refs`` (FrameRef, ``(uri, pts_ns)`` or ``{"uri", "pts_ns"}``), in the order given."""
        refs = [FrameRef.coerce(r) for r in refs]
        if self.tune_allocator and _TUNED_PID != os.getpid():
            tune_allocator()
        out: list[Any] = [None] * len(refs)
        groups: dict[str, list[tuple[int, int]]] = {}
        for slot, ref in enumerate(refs):
            groups.setdefault(ref.uri, []).append((ref.pts_ns, slot))
        with self.cache.lock:
            for uri, items in groups.items():
                self._load_video(uri, items, out)
            self.stats.evictions = self.cache.evictions
        self.stats.frames += len(refs)
        return out

    def load_one(self, uri: str, pts_ns: int) -> Any:
        """One frame (``load([(uri, pts_ns)])[0]``)."""
        return self.load([FrameRef(uri, pts_ns)])[0]

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

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs, self._root_path = url_to_fs(self.media_root, **self.storage_options)
        return self._fs, self._root_path or ""

    def _open_file(self, uri: str) -> tuple[Any, Any]:
        """(what to give av.open, file object to close or None); FileNotFoundError if absent."""
        if "://" in uri:  # the uri is itself a URL
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(uri, **self.storage_options)
        elif self._local:
            root = (
                self.media_root[len("file://") :]
                if self.media_root.startswith("file://")
                else self.media_root
            )
            path = os.path.join(root, uri)
            if not os.path.isfile(path):
                raise FileNotFoundError(path)
            return path, None
        else:
            fs, root = self._filesystem()
            path = posixpath.join(root, uri.lstrip("/")) if root else uri
        try:
            f = fs.open(path, "rb")
        except (FileNotFoundError, IsADirectoryError) as e:
            raise FileNotFoundError(path) from e
        return f, f

    def _open(self, uri: str) -> _OpenVideo:
        """Open ``uri`` (index it if needed) and put it in the cache."""
        import av

        try:
            target, fileobj = self._open_file(uri)
        except FileNotFoundError as e:
            raise self._error(uri, None, f"video not found ({e})") from None
        except Exception as e:
            raise self._error(uri, None, f"cannot open video ({type(e).__name__}: {e})") from e
        try:
            container = av.open(target, mode="r", metadata_errors="ignore")
        except Exception as e:
            if fileobj is not None:
                fileobj.close()
            raise self._error(uri, None, f"cannot open video ({type(e).__name__}: {e})") from e
        try:
            if not container.streams.video:
                raise self._error(uri, None, "no video stream")
            stream = _video_only(container)
            index = self.cache.index(uri)
            if index is None:
                try:
                    index = build_index(container, stream)
                except Exception as e:
                    raise self._error(uri, None, f"cannot read video ({type(e).__name__}: {e})") from e
                self.stats.indexes_built += 1
            if index.frames == 0:
                raise self._error(uri, None, "the video stream has no frames")
            video = _OpenVideo(uri, container, fileobj, index, self.thread_type)
        except BaseException:
            container.close()
            if fileobj is not None:
                fileobj.close()
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
                    out[slot] = self._missing(self._error(uri, pts_ns, e.reason), None)
                self.stats.evictions = self.cache.evictions
                return
            self.stats.cache_misses += 1
        idx = video.index
        size = (idx.width, idx.height) if idx.width and idx.height else None
        targets: dict[int, list[int]] = {}
        for pts_ns, slot in items:
            j = idx.locate(pts_ns)
            if j is None:
                first, end = idx.span_ns()
                err = self._error(uri, pts_ns, f"outside the video stream (frames span {first}..{end} ns)")
                out[slot] = self._missing(err, size)
            else:
                targets.setdefault(j, []).append(slot)
        for j in sorted(targets):
            slots = targets[j]
            try:
                frame = self._frame_at(video, j)
            except FrameLoadError as e:
                for slot in slots:
                    out[slot] = self._missing(e, size)
                continue
            image = self._convert(frame)
            self.stats.converted += 1
            out[slots[0]] = image
            for slot in slots[1:]:
                out[slot] = self._copy(image)

    def _frame_at(self, video: _OpenVideo, j: int) -> Any:
        """The decoded frame at presentation position ``j``."""
        idx = video.index
        pos = int(idx.order[j])
        t = int(idx.pts[pos])
        if video.last_frame is not None and video.last_pts == t:
            self.stats.resumed += 1
            return video.last_frame
        start = idx.start_for(pos)
        if start is None:
            raise self._error(
                video.uri, idx._pts_ns_list[j], "no random-access point at or before this frame"
            )
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
        if frame is None:
            video.valid_from = None
            raise self._error(video.uri, idx._pts_ns_list[j], "the decoder produced no frame at this time")
        return frame

    def _can_resume(self, video: _OpenVideo, t: int, start: int) -> bool:
        if video.valid_from is None or t < video.valid_from:
            return False
        if video.last_pts is not None and t <= video.last_pts:
            return False
        if video.pending and video.pending[-1].pts is not None and video.pending[-1].pts >= t:
            return True
        if video.eof:
            return False
        return start - video.next_pos <= self.resume_within

    def _seek(self, video: _OpenVideo, start: int) -> None:
        """Position the decoder on the random-access point at decode position ``start``."""
        idx = video.index
        start_pts = int(idx.pts[start])
        for attempt in range(2):
            self.stats.seeks += 1
            video.pending.clear()
            video.last_frame = None
            video.last_pts = None
            video.valid_from = None
            video.eof = False
            if attempt == 0:
                try:
                    video.container.seek(start_pts, stream=video.stream, backward=True, any_frame=False)
                except Exception:
                    continue
            else:  # the demuxer landed after the point: start over from the first packet
                self._reopen(video)
            video.codec_context.flush_buffers()
            video.demux = video.container.demux(video.stream)
            for packet in video.demux:
                if packet.size == 0:
                    break
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
            _to_ns(start_pts, idx.time_base),
            "cannot position the demuxer on a random-access point",
        )

    def _reopen(self, video: _OpenVideo) -> None:
        import av

        video.demux = None
        video.container.close()
        if video.fileobj is not None:
            video.fileobj.seek(0)
            video.container = av.open(video.fileobj, mode="r", metadata_errors="ignore")
        else:
            target, _ = self._open_file(video.uri)
            video.container = av.open(target, mode="r", metadata_errors="ignore")
        video.stream = _video_only(video.container)
        video.codec_context = video.stream.codec_context
        if self.thread_type:
            video.codec_context.thread_type = self.thread_type

    def _feed(self, video: _OpenVideo, packet: Any, position: int | None) -> None:
        frames = video.codec_context.decode(packet)
        if position is not None:
            video.next_pos = position + 1
        self._queue(video, frames)

    def _queue(self, video: _OpenVideo, frames: list[Any]) -> None:
        for frame in frames:
            self.stats.decoded += 1
            if frame.pts is None or (video.valid_from is not None and frame.pts < video.valid_from):
                continue  # leading pictures of the starting point (possibly broken): never returned
            video.pending.append(frame)

    def _next_frame(self, video: _OpenVideo) -> Any:
        idx = video.index
        while not video.pending:
            if video.eof or video.demux is None:
                return None
            packet = next(video.demux, None)
            if packet is None or packet.size == 0:
                video.eof = True
                self._queue(video, video.codec_context.decode(None))
                continue
            p = packet.pts if packet.pts is not None else packet.dts
            self._feed(video, packet, idx.position_of_pts.get(int(p)) if p is not None else None)
        frame = video.pending.popleft()
        video.last_pts = frame.pts
        video.last_frame = frame
        return frame

    def _advance_to(self, video: _OpenVideo, t: int) -> Any:
        while True:
            frame = self._next_frame(video)
            if frame is None:
                return None
            if frame.pts == t:
                return frame
            if frame.pts > t:
                return None

    # -- output ------------------------------------------------------------------------------
    def _convert(self, frame: Any) -> Any:
        # One reformatter per loader: its swscale context (and thread pool) is set up once, not per
        # frame as with frame.to_ndarray(format=...) -- same pixels, a fraction of the setup cost.
        width, height = self.resize or (None, None)
        rgb = self.cache.reformatter().reformat(frame, width=width, height=height, format="rgb24")
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

    def _missing(self, error: FrameLoadError, size: tuple[int, int] | None) -> Any:
        if self.on_missing == "error":
            raise error
        self.stats.placeholders += 1
        width, height = self.resize or size or (1, 1)
        return self._wrap(np.zeros((height, width, 3), dtype=np.uint8))
