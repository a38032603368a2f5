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
  from one frame duration after the last frame on (the last packet's duration, else the
  median frame interval), are *missing*; so, in a truncated file (the header's video duration
  exceeds the frames), are times between frames of the last GOP (a lost frame's time).
- **Pixels.** RGB, uint8. ``output="numpy"``: ``(H, W, 3)`` array; ``"pil"``: ``PIL.Image`` in
  mode RGB; ``"torch"``: ``(3, H, W)`` uint8 tensor (torch imported on first use only).
  Without ``resize`` frames have the *decoded* size of the video, which for odd capture sizes
  is the padded size (a 1025x1017 capture is stored and returned as 1026x1018); cropping to
  ``source_shape`` is the caller's business. ``resize=(width, height)`` (PIL order) scales
  with swscale's bilinear filter.
- **Videos only.** Real video containers only (Matroska/WebM, MP4/MOV, MPEG-TS, AVI, FLV):
  an image renamed ``.mkv``, a GIF, a raw stream or a playlist is refused after probing, before
  FFmpeg reads it (rule in :mod:`.source`).
- **Missing.** A video that does not exist or cannot be opened, a time outside the stream, a
  negative time, a frame the decoder cannot produce, or one decoded from data the decoder
  reported damaged (an error or a corrupt flag between its random-access point and it) raises
  :class:`FrameLoadError` (a ``ValueError``) naming ``media_root``, ``uri`` and ``pts_ns``. With
  ``on_missing="placeholder"`` such a reference gets a black frame instead, counted in
  ``loader.stats.placeholders``, of the first size known among: ``resize``; the video's frame
  size (from its index); ``placeholder_size`` (for a video that cannot be opened); the size of
  the last frame this loader decoded (this call's, if it decoded any). If none is known, a
  :class:`FrameLoadError` asks for ``placeholder_size`` -- never a made-up 1x1 frame.
- **Damaged files.** Every FFmpeg or I/O error while opening, demuxing or decoding becomes a
  :class:`FrameLoadError` (or a placeholder) for the references it affects -- never another
  exception -- and the work is bounded: the index pass reads at most one packet per byte of the
  file, a positioned decoder at most ``2 * frames + 64`` packets, a frame at most three seeks.
  What libav reports is judged by :mod:`.integrity` (decode errors with ``err_detect=...explode``
  -- not with frame threads --, corrupt flags, timestamps contradicting the bitstream's order);
  damage the decoder does not report (concealed as plausible pixels) cannot be detected.
- **Where.** ``media_root`` is a local folder or any fsspec URL (``memory://``, ``hf://...``,
  ``s3://...``); ``uri`` is relative to it and confined to it: an absolute path, a URL
  (``file:``, ``s3://``, ...), a ``..`` path leaving the root or (local roots) a symlink
  resolving outside it is a :class:`FrameLoadError`, unless ``allow_outside_root=True``
  (trusted datasets only; rules in :mod:`.source`). Remote files are read through fsspec file
  objects handed to ``av.open``.

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
  ``devtools.bench_frames`` measures all of this against plain PyAV.

Modules
-------
- :mod:`.bitstream`: real random-access points from packet bytes (pure functions).
- :mod:`.index`: :class:`VideoIndex`, :func:`build_index` (one demux-only pass per video).
- :mod:`.cache`: :class:`VideoCache` (open videos, bounded), fork safety, :func:`tune_allocator`
  -- all process-global state, in one object.
- :mod:`.source`: a ``uri`` -> the file to open, confined to the media root.
- :mod:`.integrity`: :class:`~.integrity.FrameJudge` (what libav signalled, per decode position).
- :mod:`.loader`: :class:`FrameLoader`, :class:`FrameRef`, :class:`FrameLoadError`,
  :class:`FrameLoaderStats`.
"""

from .bitstream import random_access_points
from .cache import VideoCache, tune_allocator
from .index import VideoIndex, build_index
from .loader import FrameLoader, FrameLoadError, FrameLoaderStats, FrameRef

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
