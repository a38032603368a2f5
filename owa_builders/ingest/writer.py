"""Write one episode as an OWAMcap recording: ``<name>.mcap`` (mcap-owa-support's writer) plus one
video per image topic (PyAV: Matroska, time base 1/1000, integer-millisecond pts).

A screen message's ``media_ref`` is ``{"uri": <video file name, relative to the .mcap's folder>,
"pts_ns": pts_ms * 1_000_000}`` with ``pts_ms`` the frame's time in ms after the video's first
frame, so a frame loader finds every frame exactly. Files are written under temporary local names
(hidden, ``.tmp``) and moved into place when the episode is complete, videos first, the ``.mcap``
last: renamed in a local output folder, uploaded in one put each to a remote one (any fsspec URL,
:class:`~owa_builders.output.Destination`), so a recording that discovery finds is always complete.
The ``.mcap`` carries the episode's item count and left-out items as MCAP metadata
(:data:`META_NAME`), which a resumed ingestion reads back instead of writing the episode again.

:meth:`EpisodeWriter.check` refuses, before anything of an item is written, what would break the
recording: a topic changing message type, a video frame of another size, frames not strictly later
(by at least 1 ms) than the previous frame of their video, a span over the reader's limit.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from owa_event.events import SCREEN, TOPIC_TYPES
from owa_event.reader import MAX_SPAN_NS

from ..errors import EpisodeExistsError
from ..output import Destination
from .config import IngestionConfig
from .messages import ValueProblem, message_type_of
from .steps import FrameWrite, MessageWrite, Write

MS = 1_000_000
#: Name of the MCAP metadata record holding ``items`` (count) and ``problems`` (JSON list) of an episode.
META_NAME = "owa_ingest"
SCREEN_TYPE = TOPIC_TYPES[SCREEN]


@dataclass
class EpisodeStats:
    """What one written episode holds: ``recording`` (the .mcap, relative to the output folder),
    ``videos`` (relative paths), items, frames and messages per topic, first and last time (ns)."""

    name: str
    recording: str | None = None
    videos: list[str] = field(default_factory=list)
    items: int = 0
    frames: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    start_ns: int | None = None
    end_ns: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpisodeStats:
        return cls(**d)


class _Video:
    """One topic's video, opened at its first frame."""

    def __init__(self, path: str, uri: str, first: FrameWrite, config: IngestionConfig) -> None:
        import av

        self.path, self.uri = path, uri
        self.size = first.size
        self.first_ns = first.timestamp_ns
        self.last_pts_ms = -1
        self.frames = 0
        self.container = av.open(path, mode="w", format="matroska")
        rate = max(1, round(config.rate_hz or 30))
        stream = self.container.add_stream(config.video_codec, rate=rate)
        stream.width, stream.height = self.size
        formats = [f.name for f in (stream.codec_context.codec.video_formats or [])]
        stream.pix_fmt = "yuv420p" if not formats or "yuv420p" in formats else formats[0]
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = stream.time_base
        stream.codec_context.gop_size = rate  # a keyframe every second: cheap random access
        stream.codec_context.max_b_frames = 0
        if config.video_codec in ("libx264", "libx265"):
            stream.options = {"preset": "veryfast"}
        self.stream = stream

    def pts_ms(self, timestamp_ns: int) -> int:
        return (timestamp_ns - self.first_ns) // MS

    def add(self, frame: FrameWrite) -> int:
        """Encode ``frame``; its pts in ns."""
        import av

        pts = self.pts_ms(frame.timestamp_ns)
        image = frame.image[:, :, 0] if frame.pixel_format == "gray" else frame.image
        video_frame = av.VideoFrame.from_ndarray(image, format=frame.pixel_format)
        video_frame.pts = pts
        video_frame.time_base = self.stream.time_base
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.last_pts_ms = pts
        self.frames += 1
        return pts * MS

    def close(self, flush: bool) -> None:
        try:
            if flush:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            self.container.close()


def _video_file(base: str, topic: str, used: set[str]) -> str:
    """The video file name of ``topic``: ``<base>.mkv`` for the screen, ``<base>.<topic>.mkv`` else."""
    stem = base if topic == SCREEN else f"{base}.{re.sub(r'[^A-Za-z0-9_.=+-]', '_', topic)}"
    name, n = f"{stem}.mkv", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.mkv"
    used.add(name)
    return name


class EpisodeWriter:
    """Writes episode ``name`` into ``root`` (see the module docstring). Use :meth:`check` then
    :meth:`write` per item, then :meth:`commit` (or :meth:`abort`)."""

    def __init__(self, root: str | Destination, name: str, config: IngestionConfig) -> None:
        self.dest = root if isinstance(root, Destination) else Destination(root)
        self.root, self.name, self.config = self.dest.url, name, config
        self.rel = f"{name}.mcap"
        self.final = self.dest.url_of(self.rel)
        self.folder = posixpath.dirname(self.rel)
        if self.dest.exists(self.rel) and not config.overwrite:
            raise EpisodeExistsError(
                f"{self.dest.shown if not self.dest.local else self.root}/{self.rel}: a recording of episode "
                f"{name!r} is already there (pass overwrite=True to replace it, or resume=True to keep it)"
            )
        self.tmp = self.dest.local_temp(self.rel)
        #: Left-out items of this episode (dicts), recorded in the .mcap's metadata.
        self.problems: list[dict[str, Any]] = []
        self._writer: Any = None
        self._videos: dict[str, _Video] = {}
        self._video_names: set[str] = set()
        self._types: dict[str, str] = {}
        self.stats = EpisodeStats(name)

    # -- per item --------------------------------------------------------------------------------
    def check(self, writes: list[Write]) -> None:
        """Raise :class:`ValueProblem` when ``writes`` cannot join this episode; nothing is written."""
        types = dict(self._types)
        last_pts = {topic: v.last_pts_ms for topic, v in self._videos.items()}
        first = {topic: v.first_ns for topic, v in self._videos.items()}
        sizes = {topic: v.size for topic, v in self._videos.items()}
        lo, hi = self.stats.start_ns, self.stats.end_ns
        for w in sorted((w for w in writes if isinstance(w, FrameWrite)), key=lambda w: w.timestamp_ns):
            self._check_type(types, w.topic, SCREEN_TYPE)
            start = first.setdefault(w.topic, w.timestamp_ns)
            size = sizes.setdefault(w.topic, w.size)
            if w.size != size:
                raise ValueProblem(f"topic {w.topic!r}: frame of {w.size[0]}x{w.size[1]}, the video is {size[0]}x{size[1]}")  # fmt: skip
            if self.config.video_codec in ("libx264", "libx265") and (size[0] % 2 or size[1] % 2):
                raise ValueProblem(
                    f"topic {w.topic!r}: frame size {size[0]}x{size[1]}: {self.config.video_codec} (yuv420p) needs "
                    "an even width and height; crop or pad in transform_item"
                )
            pts = (w.timestamp_ns - start) // MS
            if pts <= last_pts.get(w.topic, -1):
                raise ValueProblem(
                    f"topic {w.topic!r}: frame at {w.timestamp_ns} ns is not at least 1 ms after the previous "
                    f"frame of its video (frames must come in time order)"
                )
            last_pts[w.topic] = pts
        for w in writes:
            if isinstance(w, MessageWrite):
                self._check_type(types, w.topic, message_type_of(w.message))
            lo = w.timestamp_ns if lo is None else min(lo, w.timestamp_ns)
            hi = w.timestamp_ns if hi is None else max(hi, w.timestamp_ns)
        if lo is not None and hi is not None and hi - lo > MAX_SPAN_NS:
            raise ValueProblem(
                f"the episode would span {(hi - lo) / 3.6e12:.1f} h, more than a recording may "
                f"({MAX_SPAN_NS // 3_600_000_000_000} h): check the timestamps and time_unit"
            )

    @staticmethod
    def _check_type(types: dict[str, str], topic: str, type_name: str) -> None:
        known = types.setdefault(topic, type_name)
        if known != type_name:
            raise ValueProblem(
                f"topic {topic!r} already holds {known} messages in this episode, not {type_name}"
            )

    def write(self, writes: list[Write]) -> None:
        """Write one item's frames and messages (after :meth:`check`)."""
        from owa.core import MESSAGES

        if self._writer is None:
            from mcap_owa.highlevel import OWAMcapWriter

            self._writer = OWAMcapWriter(self.tmp)
        stats = self.stats
        for w in sorted(writes, key=lambda w: (w.timestamp_ns, isinstance(w, MessageWrite))):
            if isinstance(w, FrameWrite):
                video = self._videos.get(w.topic)
                if video is None:
                    name = _video_file(posixpath.basename(self.name), w.topic, self._video_names)
                    rel = posixpath.join(self.folder, name)
                    video = self._videos[w.topic] = _Video(self.dest.local_temp(rel), name, w, self.config)
                pts_ns = video.add(w)
                width, height = w.size
                message = MESSAGES[SCREEN_TYPE](
                    utc_ns=w.timestamp_ns, source_shape=(width, height), shape=(width, height),
                    media_ref={"uri": video.uri, "pts_ns": pts_ns},
                )  # fmt: skip
                stats.frames[w.topic] = stats.frames.get(w.topic, 0) + 1
            else:
                message = w.message
            self._types.setdefault(w.topic, type(message)._type)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # owa.core's type-name advice for custom types
                self._writer.write_message(message, topic=w.topic, timestamp=w.timestamp_ns)
            stats.messages[w.topic] = stats.messages.get(w.topic, 0) + 1
            stats.start_ns = w.timestamp_ns if stats.start_ns is None else min(stats.start_ns, w.timestamp_ns)
            stats.end_ns = w.timestamp_ns if stats.end_ns is None else max(stats.end_ns, w.timestamp_ns)
        stats.items += 1

    # -- the end -----------------------------------------------------------------------------------
    def commit(self) -> EpisodeStats:
        """Finish the files and move them into place (videos, then the .mcap); the episode's stats.
        An episode without any item writes no file (``stats.recording`` stays ``None``)."""
        if self._writer is None:
            self.abort()
            return self.stats
        for video in self._videos.values():
            video.close(flush=True)
        self.stats.videos = [posixpath.join(self.folder, v.uri) for v in self._videos.values()]
        self.stats.recording = self.rel
        meta = {"stats": json.dumps(self.stats.to_dict(), sort_keys=True),
                "problems": json.dumps(self.problems, sort_keys=True)}  # fmt: skip
        self._writer.write_metadata(META_NAME, meta)
        self._writer.finish()
        for video, rel in zip(self._videos.values(), self.stats.videos):
            self.dest.publish(video.path, rel)
        self.dest.publish(self.tmp, self.rel)
        return self.stats

    def abort(self) -> None:
        """Close and delete everything written so far."""
        for video in self._videos.values():
            try:
                video.close(flush=False)
            except Exception:
                pass
            _remove(video.path)
        if self._writer is not None:
            try:
                self._writer.finish()
            except Exception:
                pass
        _remove(self.tmp)


def read_episode(dest: Destination, name: str) -> tuple[EpisodeStats, list[dict[str, Any]]] | None:
    """The stats and left-out items of episode ``name`` already at ``dest`` (from its ``.mcap``'s
    :data:`META_NAME` metadata); ``None`` when there is no recording of it, or one without that record
    (not written by this ingestion, or unreadable: it is written again)."""
    from mcap.reader import make_reader

    rel = f"{name}.mcap"
    if not dest.exists(rel):
        return None
    try:
        with dest.open(rel) as f:
            for meta in make_reader(f).iter_metadata():
                if meta.name == META_NAME:
                    stats = EpisodeStats.from_dict(json.loads(meta.metadata["stats"]))
                    return stats, list(json.loads(meta.metadata["problems"]))
    except Exception:  # a damaged or foreign file: not done
        return None
    return None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
