"""Read an OWAMcap recording as a time-ordered stream of current-format :class:`Event` objects.

- Events come in MCAP log-time order (ns), whatever their order in the file; the bytes are read
  chunk by chunk by :mod:`owa_event.mcap_chunks` (one decompress per chunk, CRCs checked, chunk
  indexes cross-checked), ``mcap`` parses the header and summary.
- Legacy layouts (writers 0.3.x-0.5.0) are upgraded in-process (:mod:`owa_event.legacy`).
- Screen media references are rewritten to a URI relative to the *dataset root* (the folder the
  dataset is built from), with ``pts_ns``; data URIs and absolute URLs are kept as they are.
- Messages of types this package does not know are kept verbatim and counted.
- :meth:`Recording.message_batches` gives the same messages a chunk group at a time as columns,
  without an :class:`Event` per message (the event stage's lossless path); the checks and errors are
  those of :meth:`Recording.events`.
- Counts and times come from what is read, never from what the file claims (the Statistics
  record): :meth:`Recording.census` counts every message without parsing it; a Statistics record
  that disagrees is a warning (an error with ``on_truncated="error"``).
- Bad input raises :class:`RecordingError` naming the file, the problem and, where it applies,
  the message (index in time order, topic, log time). Log times must lie in
  [:data:`MIN_LOG_TIME_NS`, :data:`MAX_LOG_TIME_NS`), and consecutive messages may be at most
  :data:`MAX_SPAN_NS` apart (checked on what is read, as it is read).
- A truncated file (the recorder crashed) is recovered from its complete records with a warning
  saying how many messages were kept, unless ``on_truncated="error"``. A summary section that is
  damaged is not trusted: the file is read record by record, with a warning.
"""

from __future__ import annotations

import math
import os
import posixpath
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import IO, Any, Literal, NamedTuple

import orjson

from .errors import DamagedRecordingWarning, RecordingError, TruncatedRecordingWarning
from .events import KNOWN_TYPES, MAX_SUMMED_DELTA, MOUSE_RAW, Event, Move, PayloadError, dump_payload
from .legacy import SCREEN_TYPE, is_legacy_screen, upgrade_screen, upgrade_type
from .mcap_chunks import McapScan, McapScanError

MCAP_MAGIC = b"\x89MCAP0\r\n"
_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)
#: Log times before 2000-01-01 are not real recording times (e.g. a zeroed clock).
MIN_LOG_TIME_NS = 946_684_800 * 10**9
#: Log times from 2100-01-01 on are not real recording times either (and stay far below int64's end).
MAX_LOG_TIME_NS = 4_102_444_800 * 10**9
#: Two consecutive messages further apart than this: one of them is outside the recording's real span
#: (a clock jump), not a pause.
MAX_SPAN_NS = 7 * 24 * 3600 * 10**9
#: At most this many Moves per list given by ``Recording.events(moves=True)`` (bounds what a run holds).
MOVE_RUN_LIMIT = 4096
#: Screen ``media_ref.pts_ns`` must be below this (int64).
MAX_PTS_NS = 2**63

OnTruncated = Literal["recover", "error"]
#: Why a complete file is read record by record without being damaged (no index to use).
_NO_INDEX_REASONS = (
    "file written without a summary section",
    "the summary has no chunk indexes",
    "the summary has no channel records",
)


@dataclass
class ReadStats:
    """What reading a recording saw (counters of the messages *parsed*, keyed by topic unless named)."""

    messages: Counter[str] = field(default_factory=Counter)
    unknown_types: Counter[str] = field(default_factory=Counter)  # keyed by message type
    legacy_upgraded: Counter[str] = field(default_factory=Counter)  # keyed by original schema name
    media_uris: set[str] = field(default_factory=set)  # screen media URIs, relative to the dataset root
    outside_media: set[str] = field(default_factory=set)  # screen media URIs outside the dataset root
    recovered_messages: int | None = None  # set when a truncated file was recovered
    warnings: list[str] = field(default_factory=list)  # every warning issued while reading (text)


@dataclass(frozen=True)
class Census:
    """What a recording really holds, counted from its bytes: messages per topic and the log-time
    range (ns, inclusive; both 0 when there is no message)."""

    topic_counts: dict[str, int]
    message_count: int
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class RecordingSummary:
    """The recording's shape as read (:class:`Census`), with its writer and topics. Times in ns."""

    path: str
    writer: str
    topics: dict[str, str]  # topic -> schema name as written
    topic_counts: dict[str, int]  # topic -> number of messages read
    message_count: int
    start_ns: int
    end_ns: int
    truncated: bool


class MessageBatch(NamedTuple):
    """Consecutive messages of a recording in time order, as columns (:meth:`Recording.message_batches`).

    ``times`` (ns) is an Arrow int64 array; ``channel_index`` (Arrow int32) indexes
    :attr:`Recording.channel_list`; ``payloads`` are the JSON payloads in the current format (screen
    URIs rebased, legacy payloads upgraded), exactly the ``data`` of the events :meth:`Recording.events`
    makes."""

    times: Any
    channel_ids: list[int]
    channel_index: Any
    payloads: Sequence[bytes]
    channels: list[tuple[int, str, str]]  # Recording.channel_list (the same list for every batch of a read)


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
        self.on_truncated = on_truncated
        self.stats = ReadStats()
        self._census: Census | None = None
        self._uris: dict[str, tuple[str, set[str] | None]] = {}  # screen URI as written -> _rebase(uri)
        self._owns_stream = stream is None
        try:
            self._file: IO[bytes] = stream if stream is not None else open(self.path, "rb")
        except OSError as exc:
            raise RecordingError(self.path, f"cannot open: {exc.strerror or exc}") from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _open(self) -> None:
        f = self._file
        head = f.read(len(MCAP_MAGIC))
        if not head:
            raise RecordingError(self.path, "empty file (0 bytes): not an OWAMcap recording")
        if head != MCAP_MAGIC:
            raise RecordingError(self.path, "not an MCAP file (bad magic bytes)")
        with self._read_errors():
            self._scan = McapScan(f, self.path)
        scan = self._scan
        if scan.header is None:
            raise RecordingError(self.path, "unreadable MCAP header")
        if scan.header.profile != "owa":
            raise RecordingError(
                self.path,
                f"not an OWAMcap recording: MCAP profile is {scan.header.profile!r}, expected 'owa'",
            )
        self.writer = scan.header.library
        self.truncated = scan.mode == "stream" and scan.stopped_by is not None
        if self.truncated:
            if self.on_truncated == "error":
                raise RecordingError(
                    self.path, f"truncated MCAP file ({scan.stopped_by}; the recorder may have crashed)"
                )
            n = len(scan._stream_messages or ())
            if n == 0:
                raise RecordingError(
                    self.path, f"truncated MCAP file with no complete record to recover ({scan.stopped_by})"
                )
            self.stats.recovered_messages = n
            self._warn(
                f"{self.path}: truncated MCAP file (stopped at {scan.stopped_by}); recovered {n} messages from its "
                f"complete records",
                TruncatedRecordingWarning,
            )
        elif (
            scan.mode == "stream"
            and scan.fallback_reason
            and not scan.fallback_reason.startswith(_NO_INDEX_REASONS)
        ):
            self._strict_or_warn(
                f"its summary section cannot be trusted ({scan.fallback_reason}); read record by record"
            )
        self._channels = {
            cid: self._channel_info(ch, scan.schemas.get(ch.schema_id)) for cid, ch in scan.channels.items()
        }
        self.topics: dict[str, str] = {info.topic: info.schema_name for info in self._channels.values()}

    def _channel_info(self, channel: Any, schema: Any) -> _ChannelInfo:
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

    @contextmanager
    def _read_errors(self) -> Iterator[None]:
        """Damaged bytes and failing reads, from the scan or the file, as :class:`RecordingError` naming the file."""
        try:
            yield
        except McapScanError as exc:
            raise RecordingError(self.path, f"corrupt MCAP data: {exc.problem}") from None
        except OSError as exc:
            raise RecordingError(self.path, f"cannot read: {exc}") from None

    def _warn(self, text: str, category: type[Warning] = DamagedRecordingWarning) -> None:
        self.stats.warnings.append(text)
        warnings.warn(text, category, stacklevel=3)

    def _strict_or_warn(self, problem: str) -> None:
        """A claim of the file that its contents contradict: an error with ``on_truncated="error"``."""
        if self.on_truncated == "error":
            raise RecordingError(self.path, problem)
        self._warn(f"{self.path}: {problem}")

    # -- what the recording holds --------------------------------------------------------------
    def census(self) -> Census:
        """Every message counted from the bytes (none parsed), log-time range checked; cached."""
        if self._census is None:
            with self._read_errors():
                stream = self._scan.messages(ordered=False)
                deque(stream, maxlen=0)  # the per-message loop runs in C
            first, last = stream.start_ns, stream.end_ns
            if (
                first is not None
                and last is not None
                and not (MIN_LOG_TIME_NS <= first and last < MAX_LOG_TIME_NS and last - first <= MAX_SPAN_NS)
            ):
                deque(self.events(), maxlen=0)  # names the message (gaps need the times in order)
            self._set_census(stream.counts, first or 0, last or 0)
        return self._census  # type: ignore[return-value]

    def _topic_counts(self, channel_counts: Counter[int]) -> dict[str, int]:
        """Per-channel counts as per-topic counts (every topic of the file, 0 included)."""
        counts = {topic: 0 for topic in self.topics}
        for cid, n in channel_counts.items():
            info = self._channels.get(cid)
            if info is None:
                raise RecordingError(
                    self.path, f"{n} message(s) of unknown channel {cid} (no channel record)"
                )
            counts[info.topic] += n
        return counts

    def _set_census(self, channel_counts: Counter[int], first: int, last: int) -> None:
        counts = self._topic_counts(channel_counts)
        self._census = Census(counts, sum(counts.values()), first, last)
        stats = self._scan.statistics
        if stats is not None:
            read = self._census.message_count
            read_per_channel = {cid: n for cid, n in channel_counts.items() if n}
            claimed_per_channel = {cid: n for cid, n in stats.channel_message_counts.items() if n}
            if (
                stats.message_count != read
                or (stats.channel_message_counts and claimed_per_channel != read_per_channel)
                or (read and (stats.message_start_time, stats.message_end_time) != (first, last))
            ):
                claimed, found = f"{stats.message_count} messages", f"{read}"
                if stats.channel_message_counts and claimed_per_channel != read_per_channel:
                    claimed += f" (per channel id {dict(sorted(claimed_per_channel.items()))})"
                    found += f" (per channel id {dict(sorted(read_per_channel.items()))})"
                self._strict_or_warn(
                    f"its Statistics record claims {claimed} in [{stats.message_start_time}, "
                    f"{stats.message_end_time}] ns, but {found} were read in [{first}, {last}] ns; the counts "
                    f"read are used"
                )

    @property
    def summary(self) -> RecordingSummary:
        """:meth:`census` with the writer and topics."""
        c = self.census()
        return RecordingSummary(
            self.path, self.writer, dict(self.topics), dict(c.topic_counts), c.message_count, c.start_ns, c.end_ns,
            self.truncated,
        )  # fmt: skip

    # -- reading ---------------------------------------------------------------------------
    def _check_time(self, t: int, index: int, topic: str, prev: int) -> None:
        """Raise for a log time outside [2000, 2100) or more than MAX_SPAN_NS after the previous one."""
        if MIN_LOG_TIME_NS <= t < MAX_LOG_TIME_NS and t - prev <= MAX_SPAN_NS:
            return
        which = f"message #{index} (topic {topic!r}) " if index >= 0 else "a message "
        if t < MIN_LOG_TIME_NS or t >= MAX_LOG_TIME_NS:
            why = "log times must be from 2000-01-01 up to 2100-01-01"
        else:
            why = (
                f"it comes {(t - prev) / 86_400e9:.1f} days after the message before it (at {prev} ns); a jump of "
                f"more than {MAX_SPAN_NS // 86_400_000_000_000} days puts one of them outside the real span"
            )
        raise RecordingError(self.path, f"{which}has log time {t} ns, outside the recording's span: {why}")

    def events(
        self,
        topics: Iterable[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        *,
        seen: Counter[str] | None = None,
        moves: bool = False,
    ) -> Iterator[Event | list[Move]]:
        """Events of ``topics`` (all when None) with ``start_ns <= timestamp_ns < end_ns``, in time order.

        Only kept messages are parsed (invalid JSON raises :class:`RecordingError` naming the
        message). With ``seen``, every message read is counted there by topic *before* the topic
        filter (all channels are read, unparsed ones cost a record walk); a read of every channel over
        the whole time range also sets :meth:`census`. With ``moves``, each pure relative move
        (:func:`~owa_event.events.is_pure_move`) of a ``mouse/raw`` channel comes as a
        :data:`~owa_event.events.Move` tuple instead of an Event, consecutive ones in lists (of at most
        :data:`MOVE_RUN_LIMIT`): the same messages, in the same order, with the same indexes, for a
        consumer that sums them (the resampler).
        """
        wanted = None if topics is None else set(topics)
        channels = (
            None
            if (wanted is None or seen is not None)
            else frozenset(c for c, i in self._channels.items() if i.topic in wanted)
        )
        infos = self._channels
        kept = infos if wanted is None else {c: i for c, i in infos.items() if i.topic in wanted}
        loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
        index = 0
        prev: float = math.inf  # no gap before the first message
        lo, hi, gap = MIN_LOG_TIME_NS, MAX_LOG_TIME_NS, MAX_SPAN_NS
        # The kept mouse/raw channels whose pure moves come as Moves (looked up first: most messages).
        move_infos = {c: i for c, i in kept.items() if i.topic == MOUSE_RAW} if moves else {}
        kept_get, move_info_of = kept.get, move_infos.get
        lim = MAX_SUMMED_DELTA
        run: list[Move] = []  # consecutive Moves not yet given
        with self._read_errors():
            stream = self._scan.messages(channels, start_ns, end_ns)
            for log_time, channel_id, data in stream:
                if not (lo <= log_time < hi and log_time - prev <= gap):
                    self._check_time(
                        log_time,
                        index,
                        infos[channel_id].topic if channel_id in infos else "?",
                        int(min(prev, log_time)),
                    )
                prev = log_time
                info = move_info_of(channel_id)
                is_move = info is not None
                if not is_move:
                    info = kept_get(channel_id)
                if info is None:
                    if channel_id in infos:
                        continue  # a topic not kept (read only to be counted)
                    raise self._unknown_channel(index, log_time, channel_id)
                try:
                    fields = loads(data)
                except JSONDecodeError as exc:
                    raise self._not_json(index, info, log_time, exc) from None
                if type(fields) is not dict:
                    raise self._not_json(index, info, log_time, None)
                if is_move:
                    try:  # is_pure_move, inline (subscripts: the writer always writes these four fields)
                        x, y = fields["last_x"], fields["last_y"]
                        pure = fields["button_flags"] == 0 and fields["us_flags"] == 0
                    except KeyError:
                        x, y = fields.get("last_x", 0), fields.get("last_y", 0)
                        pure = fields.get("button_flags", 0) == 0 and fields.get("us_flags", 0) == 0
                    if pure and type(x) is int and type(y) is int and -lim <= x <= lim and -lim <= y <= lim:
                        run.append((log_time, x, y, data, fields, index, info.message_type))
                        index += 1
                        if len(run) >= MOVE_RUN_LIMIT:
                            yield run
                            run = []
                        continue
                if run:
                    yield run
                    run = []
                if info.screen:
                    data, fields = self._screen(data, fields, info, index, log_time)
                yield Event(info.topic, log_time, info.message_type, data, fields, index)
                index += 1
            if run:
                yield run
        self._finish_read(stream, kept, channels, start_ns, end_ns, seen)

    def _finish_read(
        self,
        stream: Any,
        kept: dict[int, _ChannelInfo],
        channels: frozenset[int] | None,
        start_ns: int | None,
        end_ns: int | None,
        seen: Counter[str] | None,
    ) -> None:
        """After a read: the parsed counts, the census (a whole read of every channel), ``seen``."""
        self._count_parsed({c: n for c, n in stream.counts.items() if c in kept})
        if channels is None and start_ns is None and end_ns is None and self._census is None:
            self._set_census(stream.counts, stream.start_ns or 0, stream.end_ns or 0)  # counted by the scan
        if seen is not None:
            window = self._census if start_ns is None and end_ns is None else None
            counts = window.topic_counts if window is not None else self._topic_counts(stream.counts)
            seen.update({topic: n for topic, n in counts.items() if n})

    def _unknown_channel(self, index: int, log_time: int, channel_id: int) -> RecordingError:
        return RecordingError(
            self.path, f"message #{index} at log time {log_time} ns has unknown channel {channel_id}"
        )

    def _not_json(
        self, index: int, info: _ChannelInfo, log_time: int, exc: Exception | None
    ) -> RecordingError:
        """Message ``index`` is not valid JSON (``exc``, the parse error) or, with ``exc`` None, not an object."""
        where = f"message #{index} (topic {info.topic!r}, log time {log_time} ns)"
        return RecordingError(
            self.path,
            f"{where} is not valid JSON: {exc}" if exc is not None else f"{where} is not a JSON object",
        )

    @property
    def channel_list(self) -> list[tuple[int, str, str]]:
        """``(channel id, topic, current message type)`` of every channel, in the order that
        :attr:`MessageBatch.channel_index` refers to."""
        return [(cid, info.topic, info.message_type) for cid, info in self._channels.items()]

    def message_batches(self, *, seen: Counter[str] | None = None) -> Iterator[MessageBatch]:
        """Every message of the recording, in time order, a chunk group at a time, without making an
        :class:`Event` per message: the lossless path of the event stage.

        The same messages, payloads, checks, errors and counts as ``events(seen=seen)``: log times and
        gaps are checked per batch on arrays, every payload is parsed (``orjson.loads``, must be a JSON
        object) but only screen payloads are kept parsed (rebased URIs, legacy upgrades). A batch where
        any check fails is re-read message by message, so the error is the one :meth:`events` raises.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        infos = self._channels
        order = {cid: i for i, cid in enumerate(infos)}
        value_set = pa.array(list(infos), pa.uint16())
        screens = frozenset(c for c, i in infos.items() if i.screen)
        channel_list = self.channel_list
        loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
        lo, hi, gap = MIN_LOG_TIME_NS, MAX_LOG_TIME_NS, MAX_SPAN_NS
        index = 0
        prev: float = math.inf
        with self._read_errors():
            stream = self._scan.messages()
            for batch in stream.batches():
                if not batch:
                    continue
                times = list(map(_first, batch))
                cids = list(map(_second, batch))
                payloads = list(map(_third, batch))
                first, last = times[0], times[-1]
                ok = lo <= first and last < hi and first - prev <= gap and set(cids) <= order.keys()
                if ok and len(times) > 1:  # in range (sorted): int64 holds them and no difference overflows
                    ok = pc.max(pc.pairwise_diff(pa.array(times, pa.int64()))).as_py() <= gap
                if ok:
                    try:  # parsed and dropped at once: no objects kept, nothing for the garbage collector
                        ok = set(map(type, map(loads, payloads))) == {dict}
                    except JSONDecodeError:
                        ok = False
                if not ok:
                    payloads = self._checked_batch(batch, index, prev)
                else:
                    for cid in screens.intersection(cids):
                        i = -1
                        for _ in range(cids.count(cid)):  # list.index finds each in C
                            i = cids.index(cid, i + 1)
                            data = payloads[i]
                            payloads[i] = self._screen(data, loads(data), infos[cid], index + i, times[i])[0]
                time_array = pa.array(times, pa.int64())  # checked: every time is in [2000, 2100)
                channel_index = pc.index_in(pa.array(cids, pa.uint16()), value_set=value_set)
                yield MessageBatch(time_array, cids, channel_index, payloads, channel_list)
                index += len(times)
                prev = last
        self._finish_read(stream, infos, None, None, None, seen)

    def _checked_batch(self, batch: list[tuple[int, int, bytes]], index: int, prev: float) -> list[bytes]:
        """The payloads of ``batch`` checked message by message as :meth:`events` does (raises its errors)."""
        infos = self._channels
        out: list[bytes] = []
        for log_time, channel_id, data in batch:
            if not (MIN_LOG_TIME_NS <= log_time < MAX_LOG_TIME_NS and log_time - prev <= MAX_SPAN_NS):
                topic = infos[channel_id].topic if channel_id in infos else "?"
                self._check_time(log_time, index, topic, int(min(prev, log_time)))
            prev = log_time
            info = infos.get(channel_id)
            if info is None:
                raise self._unknown_channel(index, log_time, channel_id)
            try:
                fields = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise self._not_json(index, info, log_time, exc) from None
            if type(fields) is not dict:
                raise self._not_json(index, info, log_time, None)
            if info.screen:
                data, fields = self._screen(data, fields, info, index, log_time)
            out.append(data)
            index += 1
        return out

    def _count_parsed(self, channel_counts: dict[int, int]) -> None:
        """Add a finished read's parsed messages to :attr:`stats` (per channel, not per message)."""
        stats = self.stats
        for cid, n in channel_counts.items():
            info = self._channels[cid]
            stats.messages[info.topic] += n
            if not info.known:
                stats.unknown_types[info.message_type] += n
            elif info.message_type != info.schema_name:
                stats.legacy_upgraded[info.schema_name] += n

    def _screen(
        self, data: bytes, fields: dict[str, Any], info: _ChannelInfo, index: int, log_time: int
    ) -> tuple[bytes, dict[str, Any]]:
        where = f"message #{index} (topic {info.topic!r}, log time {log_time} ns)"
        changed = False
        if is_legacy_screen(fields):
            try:
                fields = upgrade_screen(fields)
            except ValueError as exc:
                raise RecordingError(self.path, f"{where}: {exc}") from None
            if info.message_type == info.schema_name:
                self.stats.legacy_upgraded[info.schema_name + " (screen payload)"] += 1
            changed = True
        ref = fields.get("media_ref")
        if isinstance(ref, dict):
            pts = ref.get("pts_ns")
            if pts is not None and (
                isinstance(pts, bool) or not isinstance(pts, int) or not 0 <= pts < MAX_PTS_NS
            ):
                raise RecordingError(
                    self.path, f"{where}: media_ref.pts_ns = {pts!r} is not an integer in [0, 2**63)"
                )
            if isinstance(ref.get("uri"), str):
                uri = ref["uri"]
                known = self._uris.get(uri)
                if known is None:
                    known = self._rebase(uri)
                    if len(self._uris) < 4096:  # bounded: every screen message may name another file
                        self._uris[uri] = known
                rebased, where_to = known
                if rebased != uri:
                    fields = {**fields, "media_ref": {**ref, "uri": rebased}}
                    changed = True
                if where_to is not None:
                    where_to.add(rebased)
        if not changed:
            return data, fields
        try:
            return dump_payload(fields), fields
        except PayloadError as exc:
            raise RecordingError(self.path, f"{where}: {exc}") from None

    def _rebase(self, uri: str) -> tuple[str, set[str] | None]:
        """A screen URI relative to the dataset root, and the set of :attr:`stats` it is counted in
        (``media_uris``, ``outside_media``, or None for a data URI)."""
        if _is_relative_path(uri):
            uri = posixpath.normpath(posixpath.join(self._episode_dir, uri.replace("\\", "/")))
        if uri.startswith("data:"):
            return uri, None
        if not _is_relative_path(uri) or uri == ".." or uri.startswith("../"):
            return uri, self.stats.outside_media
        return uri, self.stats.media_uris

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_stream and getattr(self, "_file", None) is not None:
            self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
