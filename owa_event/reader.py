"""Read an OWAMcap recording as a time-ordered stream of current-format :class:`Event` objects.

- Events come in MCAP log-time order (ns), whatever their order in the file.
- Legacy layouts (writers 0.3.x-0.5.0) are upgraded in-process (:mod:`owa_event.legacy`).
- Screen media references are rewritten to a URI relative to the *dataset root* (the folder the
  dataset is built from), with ``pts_ns``; data URIs and absolute URLs are kept as they are.
- Messages of types this package does not know are kept verbatim and counted.
- Bad input raises :class:`RecordingError` naming the file, the problem and, where it applies,
  the message (index in time order, topic, log time).
- A truncated file (no summary section, e.g. the recorder crashed) is recovered from its
  complete chunks with a warning saying how many messages were kept, unless
  ``on_truncated="error"``.
"""

from __future__ import annotations

import bisect
import os
import posixpath
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import orjson
from mcap.reader import make_reader
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader

from .errors import RecordingError, TruncatedRecordingWarning
from .events import KNOWN_TYPES, Event
from .legacy import SCREEN_TYPE, is_legacy_screen, upgrade_screen, upgrade_type

MCAP_MAGIC = b"\x89MCAP0\r\n"
#: Log times before 2000-01-01 are not real recording times (e.g. a zeroed clock).
MIN_LOG_TIME_NS = 946_684_800 * 10**9
#: A recording spanning more than this is taken to contain a log time outside its real span.
MAX_SPAN_NS = 7 * 24 * 3600 * 10**9

OnTruncated = Literal["recover", "error"]


@dataclass
class ReadStats:
    """What reading a recording saw. Counters are keyed by topic unless named otherwise."""

    messages: Counter[str] = field(default_factory=Counter)
    unknown_types: Counter[str] = field(default_factory=Counter)  # keyed by message type
    legacy_upgraded: Counter[str] = field(default_factory=Counter)  # keyed by original schema name
    media_uris: set[str] = field(default_factory=set)  # screen media URIs, relative to the dataset root
    recovered_messages: int | None = None  # set when a truncated file was recovered
    warnings: list[str] = field(default_factory=list)  # every warning issued while reading (text)


@dataclass(frozen=True)
class RecordingSummary:
    """The recording's shape, from the MCAP summary (or from recovery). Times in ns."""

    path: str
    writer: str
    topics: dict[str, str]  # topic -> schema name as written
    topic_counts: dict[str, int]  # topic -> number of messages
    message_count: int
    start_ns: int
    end_ns: int
    truncated: bool


@dataclass(frozen=True)
class _ChannelInfo:
    topic: str
    schema_name: str
    message_type: str  # upgraded
    known: bool
    screen: bool


def _is_relative_path(uri: str) -> bool:
    return not (
        uri.startswith("data:") or "://" in uri or uri.startswith("/") or (len(uri) > 1 and uri[1] == ":")
    )


class Recording:
    """An open OWAMcap file. Use as a context manager; iterate with :meth:`events`.

    ``episode_path`` is the POSIX path of the file relative to the dataset root; screen URIs are
    rebased from the file's folder onto the root with it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        episode_path: str | None = None,
        on_truncated: OnTruncated = "recover",
        stream: IO[bytes] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.episode_path = episode_path if episode_path is not None else posixpath.basename(self.path)
        self._episode_dir = posixpath.dirname(self.episode_path)
        self.stats = ReadStats()
        self._owns_stream = stream is None
        self._file: IO[bytes] = stream if stream is not None else open(self.path, "rb")
        try:
            self._open(on_truncated)
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _open(self, on_truncated: OnTruncated) -> None:
        f = self._file
        head = f.read(len(MCAP_MAGIC))
        if not head:
            raise RecordingError(self.path, "empty file (0 bytes): not an OWAMcap recording")
        if head != MCAP_MAGIC:
            raise RecordingError(self.path, "not an MCAP file (bad magic bytes)")
        f.seek(0)
        self._reader = make_reader(f)
        try:
            header = self._reader.get_header()
        except Exception as exc:  # any failure to decode untrusted bytes (struct.error, EndOfFile, ...)
            raise RecordingError(self.path, f"unreadable MCAP header: {exc}") from exc
        if header.profile != "owa":
            raise RecordingError(
                self.path, f"not an OWAMcap recording: MCAP profile is {header.profile!r}, expected 'owa'"
            )
        self._writer = header.library
        summary = None
        try:
            summary = self._reader.get_summary()
        except Exception:  # no readable summary: recover from the complete chunks
            summary = None
        self._recovered: list[tuple[int, int, bytes]] | None = None
        if summary is None or summary.statistics is None:
            if on_truncated == "error":
                raise RecordingError(
                    self.path, "truncated MCAP file: no summary section (the recorder may have crashed)"
                )
            schemas, channels, messages = self._recover()
            channel_counts: dict[int, int] = dict(Counter(cid for _, cid, _ in messages))
        else:
            schemas, channels = summary.schemas, summary.channels
            stats = summary.statistics
            self._count = stats.message_count
            self._start_ns, self._end_ns = stats.message_start_time, stats.message_end_time
            channel_counts = dict(stats.channel_message_counts)
        self._channels = {
            cid: self._channel_info(ch, schemas.get(ch.schema_id)) for cid, ch in channels.items()
        }
        self.summary = RecordingSummary(
            path=self.path,
            writer=self._writer,
            topics={info.topic: info.schema_name for info in self._channels.values()},
            topic_counts=self._topic_counts(channel_counts),
            message_count=self._count,
            start_ns=self._start_ns,
            end_ns=self._end_ns,
            truncated=self._recovered is not None,
        )
        if self._count:
            self._check_span()

    def _topic_counts(self, channel_counts: dict[int, int]) -> dict[str, int]:
        counts = {info.topic: 0 for info in self._channels.values()}
        for cid, n in channel_counts.items():
            if cid in self._channels:
                counts[self._channels[cid].topic] += n
        return counts

    def _channel_info(self, channel: Channel, schema: Schema | None) -> _ChannelInfo:
        if channel.message_encoding != "json":
            raise RecordingError(
                self.path,
                f"topic {channel.topic!r} uses message encoding {channel.message_encoding!r}, expected 'json'",
            )
        name = schema.name if schema is not None else ""
        mtype = upgrade_type(name)
        return _ChannelInfo(
            topic=channel.topic,
            schema_name=name,
            message_type=mtype,
            known=mtype in KNOWN_TYPES,
            screen=mtype == SCREEN_TYPE,
        )

    def _recover(self) -> tuple[dict[int, Schema], dict[int, Channel], list[tuple[int, int, bytes]]]:
        """Read every complete record of a truncated file; keep the messages, in time order."""
        self._file.seek(0)
        schemas: dict[int, Schema] = {}
        channels: dict[int, Channel] = {}
        messages: list[tuple[int, int, bytes]] = []
        problem = "end of file"
        try:
            for record in StreamReader(self._file, validate_crcs=True).records:
                if isinstance(record, Message):
                    messages.append((record.log_time, record.channel_id, record.data))
                elif isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = record
        except Exception as exc:  # struct.error, OverflowError, ZstdError, ... on a cut record
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        messages.sort(key=lambda m: m[0])
        self._recovered = messages
        self._count = len(messages)
        self._start_ns = messages[0][0] if messages else 0
        self._end_ns = messages[-1][0] if messages else 0
        self.stats.recovered_messages = len(messages)
        if not messages:
            raise RecordingError(
                self.path, f"truncated MCAP file with no complete chunk to recover ({problem})"
            )
        note = (
            f"{self.path}: truncated MCAP file (no summary section; stopped at {problem}); "
            f"recovered {len(messages)} messages from its complete chunks, "
            f"{(self._end_ns - self._start_ns) / 1e9:.1f} s of recording"
        )
        self.stats.warnings.append(note)
        warnings.warn(note, TruncatedRecordingWarning, stacklevel=3)
        return schemas, channels, messages

    def _check_span(self) -> None:
        """Reject log times outside the recording's real span (zeroed clocks, dates years ahead)."""
        if self._start_ns >= MIN_LOG_TIME_NS and self._end_ns - self._start_ns <= MAX_SPAN_NS:
            return
        times = sorted(t for t, _, _ in self._raw(None, None, None))
        # The real span is the largest run of times without a gap longer than MAX_SPAN_NS.
        best_lo, best_hi, lo = 0, 0, 0
        for i in range(1, len(times) + 1):
            if i == len(times) or times[i] - times[i - 1] > MAX_SPAN_NS or times[i] < MIN_LOG_TIME_NS:
                if i - lo > best_hi - best_lo and times[lo] >= MIN_LOG_TIME_NS:
                    best_lo, best_hi = lo, i
                lo = i
        outliers = [(i, t) for i, t in enumerate(times) if not (best_lo <= i < best_hi)]
        if not outliers:  # long but continuous (no gap > MAX_SPAN_NS): every time is in the real span
            return
        shown = ", ".join(f"message #{i} at log time {t} ns" for i, t in outliers[:3])
        more = f" (and {len(outliers) - 3} more)" if len(outliers) > 3 else ""
        raise RecordingError(
            self.path,
            f"{len(outliers)} log time(s) outside the recording's span: {shown}{more}; "
            f"log times must be after 2000-01-01 and the recording may span at most "
            f"{MAX_SPAN_NS // 3_600_000_000_000} h",
        )

    # -- reading ---------------------------------------------------------------------------
    def _raw(
        self, topics: Iterable[str] | None, start_ns: int | None, end_ns: int | None
    ) -> Iterator[tuple[int, int, bytes]]:
        """(log_time, channel_id, data) in log-time order; ``end_ns`` exclusive."""
        if self._recovered is not None:
            wanted = (
                None if topics is None else {c for c, i in self._channels.items() if i.topic in set(topics)}
            )
            msgs = self._recovered
            lo = 0 if start_ns is None else bisect.bisect_left(msgs, start_ns, key=lambda m: m[0])
            hi = len(msgs) if end_ns is None else bisect.bisect_left(msgs, end_ns, key=lambda m: m[0])
            for m in msgs[lo:hi]:
                if wanted is None or m[1] in wanted:
                    yield m
            return
        try:
            for _, channel, message in self._reader.iter_messages(
                topics=list(topics) if topics is not None else None,
                starting_at=start_ns,
                ending_before=end_ns,
                log_time_order=True,
            ):
                yield message.log_time, channel.id, message.data
        except Exception as exc:  # McapError, struct.error, ZstdError, KeyError, ... on damaged bytes
            raise RecordingError(self.path, f"corrupt MCAP data: {type(exc).__name__}: {exc}") from exc

    def events(
        self,
        topics: Iterable[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> Iterator[Event]:
        """Events of ``topics`` (all when None) with ``start_ns <= timestamp_ns < end_ns``, in time order.

        Every message is parsed (invalid JSON raises :class:`RecordingError` naming the message).
        """
        channels = self._channels
        stats = self.stats
        loads = orjson.loads
        index = 0
        for log_time, channel_id, data in self._raw(topics, start_ns, end_ns):
            info = channels.get(channel_id)
            if info is None:
                raise RecordingError(
                    self.path, f"message #{index} at log time {log_time} ns has unknown channel {channel_id}"
                )
            try:
                fields = loads(data)
            except orjson.JSONDecodeError as exc:
                raise RecordingError(
                    self.path,
                    f"message #{index} (topic {info.topic!r}, log time {log_time} ns) is not valid JSON: {exc}",
                ) from None
            if not isinstance(fields, dict):
                raise RecordingError(
                    self.path,
                    f"message #{index} (topic {info.topic!r}, log time {log_time} ns) is not a JSON object",
                )
            stats.messages[info.topic] += 1
            if not info.known:
                stats.unknown_types[info.message_type] += 1
            elif info.message_type != info.schema_name:
                stats.legacy_upgraded[info.schema_name] += 1
            if info.screen:
                data, fields = self._screen(data, fields, info, index, log_time)
            yield Event(info.topic, log_time, info.message_type, data, fields, index)
            index += 1

    def _screen(
        self, data: bytes, fields: dict[str, Any], info: _ChannelInfo, index: int, log_time: int
    ) -> tuple[bytes, dict[str, Any]]:
        changed = False
        if is_legacy_screen(fields):
            try:
                fields = upgrade_screen(fields)
            except ValueError as exc:
                raise RecordingError(
                    self.path, f"message #{index} (topic {info.topic!r}, log time {log_time} ns): {exc}"
                ) from None
            if info.message_type == info.schema_name:
                self.stats.legacy_upgraded[info.schema_name + " (screen payload)"] += 1
            changed = True
        ref = fields.get("media_ref")
        if isinstance(ref, dict) and isinstance(ref.get("uri"), str):
            uri = ref["uri"]
            if _is_relative_path(uri):
                rebased = posixpath.normpath(posixpath.join(self._episode_dir, uri.replace("\\", "/")))
                if rebased != uri:
                    fields = {**fields, "media_ref": {**ref, "uri": rebased}}
                    changed = True
                uri = rebased
            self.stats.media_uris.add(uri)
        return (orjson.dumps(fields) if changed else data), fields

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_stream:
            self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
