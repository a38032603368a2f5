"""Chunk-level MCAP scanning: the hot loop under the OWAMcap reader.

:class:`McapScan` yields an MCAP file's messages as ``(log_time_ns, channel_id, data)`` tuples, in
log-time order or in file order, optionally filtered by channel ids and a half-open time window
``[start_ns, end_ns)``. The header and summary (schemas, channels, chunk indexes, statistics) are
parsed by the ``mcap`` package; this module only reads chunk records, decompresses each in one call
(zstd, lz4 frame or none), checks its CRC and walks its records with ``struct.unpack_from``.

Order (invariant): messages come sorted by log time; ties keep file order (chunk offset, then
position inside the chunk; or record position for messages outside chunks). This is exactly the
order of ``mcap``'s ``iter_messages(log_time_order=True)``: its heap compares
``(log_time, chunk_start_offset, record index in the chunk)`` when reading through chunk indexes,
and its linear reader sorts stably by log time. ``ordered=False`` gives file order.

Two modes, chosen once when the scan is opened:

- ``"index"``: the summary has channel records and chunk indexes that pass structural checks
  (inside the data section, not overlapping, ``start <= end``, long enough), and the record headers
  between the indexed chunks (walked with small reads; a gap of exactly the previous chunk's message
  index length is not read) hold no chunk or message that no index covers. Only chunks that can
  hold wanted messages are read: a chunk is skipped when its claimed time range misses
  ``[start_ns, end_ns)``, or when its index lists message indexes and none is for a wanted channel.
  Chunks whose claimed time ranges do not overlap (sorted by start; touching ranges count as
  overlapping) are emitted one after the other. A chunk's messages are put in order by a stable
  ``list.sort`` on log time, which on an already-sorted chunk (the usual case) is one linear pass
  in C that finds a single run; each group of overlapping chunks is concatenated in file order and
  sorted stably again (timsort merges the sorted runs: the order of a heap merge keyed by
  ``(log_time, chunk offset, position)``, without a Python comparison per message). Memory: the
  decompressed chunks of one overlapping group. Definition records (schemas, channels) inside
  chunks are skipped: the summary's are used, as ``mcap``'s seeking reader does.
- ``"stream"``: no usable summary (truncated file, file written without summary, unreadable or
  inconsistent summary, no chunk indexes e.g. unchunked files, data outside the indexed chunks).
  The data section is walked record by record from the start, once, when the scan is opened:
  top-level messages, chunks, schemas and channels (also those inside chunks; a later definition
  with the same id replaces the earlier). It stops at the DataEnd record, or at the first record
  that does not fit in the file (a cut) or has opcode 0 (a zero-filled tail):
  :attr:`McapScan.stopped_by` says which record and where. Every complete record before the cut is
  read; all messages are held in memory (there is no index to read the file piecewise) and served
  sorted stably by log time (``mcap``'s linear reader order), or in file order. A file that ends
  with its footer and closing magic is not truncated: if its walk stops before DataEnd, that is
  damage and raises.

Counts come from what was read, never from the Statistics record: every :class:`MessageStream`
exposes the per-channel counts and the log-time range of the messages it yielded, so the caller can
compare them with :attr:`McapScan.statistics`. Messages whose channel id has no channel record are
yielded all the same; the caller decides.

Damage (all :class:`McapScanError`, a ``ValueError``, naming the file, the chunk and the offsets):

- Bad magic, a chunk whose bytes fail their CRC (when the CRC is non-zero), a failed or
  wrong-sized decompression, unknown compression, a record running past its chunk's end, a message
  record shorter than its fixed fields: raised when met.
- A summary that cannot be read (its record headers are checked before ``mcap`` parses it: no
  data-section record types, nothing running into the footer), chunk indexes that are
  structurally wrong, or a chunk / message
  that no chunk index covers (e.g. a chunk index record whose opcode was damaged, which ``mcap``
  silently skips): the scan opens in stream mode and :attr:`McapScan.fallback_reason` names the
  problem. Nothing has been yielded at that point. (On a file mixing indexed chunks and loose
  messages this reads the loose messages too, which ``mcap``'s seeking reader ignores.)
- A chunk index that disagrees with the chunk record it points at (opcode, length, times, sizes,
  compression), a message whose log time lies outside its chunk's claimed range, or (with a channel
  filter) a message of a channel its chunk index does not list: raised when the chunk is read,
  before any of that chunk's messages is yielded. Earlier groups may already have been yielded.
- Chunks skipped on their index (``verify_skipped=True``, the default; one small read per skipped
  chunk, once per scan): the chunk record's header must match the index (opcode, length, times,
  size), and for a skip by channel the chunk's message index area must hold exactly the message
  indexes the chunk index lists. So wrong times, offsets or channel keys in a chunk index never
  silently drop a chunk. Not detectable without reading the chunk: a chunk record and its index
  agreeing on a wrong time range.

Untrusted lengths: every record length is checked against the file size (top level) or the chunk's
decompressed size before anything is allocated; a chunk's uncompressed size is capped by
``max_chunk_bytes`` and must match the zstd/lz4 frame header. Every loop advances by at least one
record header, so no input can make a scan hang.
"""

from __future__ import annotations

import bisect
import io
import struct
import zlib
from collections import Counter
from collections.abc import Collection, Iterator
from itertools import chain, pairwise
from operator import itemgetter
from typing import IO, Literal

import lz4.frame
import orjson
import zstandard
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader
from mcap.records import Channel, ChunkIndex, Header, Schema, Statistics
from mcap.summary import Summary

from .errors import McapScanError

Msg = tuple[int, int, bytes]
"""One message: ``(log_time_ns, channel_id, data)``."""

MAGIC = b"\x89MCAP0\r\n"
#: Default cap on one chunk's uncompressed size (bytes); larger claims are refused, not allocated.
MAX_CHUNK_BYTES = 1 << 30

OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_MESSAGE_INDEX, OP_DATA_END = 0x07, 0x0F

_RECORD = struct.Struct("<BQ")  # opcode, record length
_MESSAGE = struct.Struct("<BQHIQQ")  # record header + channel id, sequence, log time, publish time
_MSG_HEAD = _MESSAGE.size  # 31: payload offset from the record start
_MSG_FIELDS = _MESSAGE.size - _RECORD.size  # 22: fixed fields of a message record
_CHUNK_HEAD = struct.Struct("<BQQQQII")  # header, start, end, uncompressed size, crc, compression length
_FOOTER = struct.Struct("<BQQQI")  # opcode, length (20), summary start, summary offset start, crc
_MSG_INDEX_HEAD = struct.Struct("<BQH")  # opcode, length, channel id
_Q = struct.Struct("<Q")
#: Records that cannot be in a summary section: invalid 0, header, footer, message, chunk, message
#: index, attachment, metadata, data end. (Unknown opcodes are allowed, as the spec says.)
_NOT_SUMMARY_OPCODES = frozenset({0x00, 0x01, 0x02, 0x05, 0x06, 0x07, 0x09, 0x0C, 0x0F})

_time = itemgetter(0)
_channel = itemgetter(1)


class MessageStream:
    """A single-pass iterable of :data:`Msg` tuples plus what was yielded (all times in ns).

    ``counts`` (per channel id), ``start_ns`` and ``end_ns`` (smallest / largest log time) and
    ``chunks_read`` / ``chunks_skipped`` grow while iterating (a batch at a time, so they may run one
    chunk group ahead of the consumer) and are final once the iterator is exhausted.
    """

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.start_ns: int | None = None
        self.end_ns: int | None = None
        self.chunks_read = 0
        self.chunks_skipped = 0
        self._batches: Iterator[list[Msg]] = iter(())
        self._iterator: Iterator[Msg] = iter(())

    def __iter__(self) -> Iterator[Msg]:
        return self._iterator

    def batches(self) -> Iterator[list[Msg]]:
        """The same messages a list at a time (one chunk group each, in order), instead of one by one.

        Use either this or iteration over the stream, not both; the counts are kept the same way."""
        return self._batches

    @property
    def message_count(self) -> int:
        """Messages yielded so far."""
        return sum(self.counts.values())

    def _seen(
        self,
        batch: list[Msg],
        counts: Counter[int] | None,
        lo: int | None,
        hi: int | None,
        ordered: bool = False,
    ) -> None:
        """Account for ``batch``: its per-channel ``counts`` and time range ``lo..hi`` (computed when None)."""
        if not batch:
            return
        self.counts.update(counts if counts is not None else Counter(map(_channel, batch)))
        if lo is None or hi is None:
            if ordered:
                lo, hi = batch[0][0], batch[-1][0]
            else:
                lo, hi = min(map(_time, batch)), max(map(_time, batch))
        if self.start_ns is None or lo < self.start_ns:
            self.start_ns = lo
        if self.end_ns is None or hi > self.end_ns:
            self.end_ns = hi


# ------------------------------------------------------------------------------------------
# The hot loop
# ------------------------------------------------------------------------------------------
def walk_records(
    buf: bytes, name: str, where: str, definitions: list[tuple[int, bytes]] | None = None
) -> list[Msg]:
    """The messages of a decompressed chunk ``buf``, in record order.

    Other records are skipped; schema and channel records are appended to ``definitions`` as
    ``(opcode, body)`` when it is given. Raises :class:`McapScanError` (naming the file ``name``,
    the chunk ``where`` and the record's offset in the chunk) for a record that runs past the end of
    ``buf``, trailing bytes shorter than a record header, or a message record shorter than its
    fixed fields.
    """
    out: list[Msg] = []
    append = out.append
    unpack = _MESSAGE.unpack_from
    n = len(buf)
    last = n - _MSG_HEAD  # a message header fits at pos <= last
    pos = 0
    while pos < n:
        while pos <= last:
            op, length, channel_id, _sequence, log_time, _publish = unpack(buf, pos)
            end = pos + 9 + length
            if op == OP_MESSAGE and pos + _MSG_HEAD <= end <= n:
                append((log_time, channel_id, buf[pos + _MSG_HEAD : end]))
                pos = end
            else:
                break
        if pos < n:
            pos = _other_record(buf, pos, name, where, definitions)
    return out


def _other_record(
    buf: bytes, pos: int, name: str, where: str, definitions: list[tuple[int, bytes]] | None
) -> int:
    """Check and skip (or collect) the non-message record at ``pos``; return the next record's offset."""
    n = len(buf)
    if n - pos < _RECORD.size:
        raise McapScanError(
            name, f"{where}: {n - pos} trailing byte(s) at chunk offset {pos} are not a whole record header"
        )
    op, length = _RECORD.unpack_from(buf, pos)
    end = pos + _RECORD.size + length
    if end > n:
        raise McapScanError(
            name,
            f"{where}: record (opcode 0x{op:02x}) at chunk offset {pos} with length {length} runs past the "
            f"chunk end (uncompressed size {n})",
        )
    if op == OP_MESSAGE:  # the fast path takes every message that fits, so this one is too short
        raise McapScanError(
            name,
            f"{where}: message record at chunk offset {pos} has length {length} < {_MSG_FIELDS} (its fixed fields)",
        )
    if definitions is not None and op in (OP_SCHEMA, OP_CHANNEL):
        definitions.append((op, buf[pos + _RECORD.size : end]))
    return end


class _Decompressor:
    """Decompress one chunk's data in one call, bounded by the claimed uncompressed size."""

    def __init__(self, max_chunk_bytes: int) -> None:
        self.max_chunk_bytes = max_chunk_bytes
        self._zstd = zstandard.ZstdDecompressor()

    def __call__(self, data: bytes, compression: str, size: int, crc: int, name: str, where: str) -> bytes:
        """The uncompressed bytes (exactly ``size`` of them, CRC-checked when ``crc`` is non-zero)."""
        if size > self.max_chunk_bytes:
            raise McapScanError(
                name,
                f"{where}: uncompressed size {size} bytes exceeds the limit of {self.max_chunk_bytes} bytes",
            )
        try:
            if compression == "zstd":
                out = self._unzstd(data, size)
            elif compression == "lz4":
                out = self._unlz4(data, size)
            elif compression == "":
                out = data
            else:
                raise McapScanError(
                    name, f"{where}: unsupported compression {compression!r} (expected 'zstd', 'lz4' or '')"
                )
        except (zstandard.ZstdError, RuntimeError, ValueError) as exc:
            if isinstance(exc, McapScanError):
                raise
            raise McapScanError(name, f"{where}: bad {compression} data: {exc}") from None
        if len(out) != size:
            raise McapScanError(
                name, f"{where}: decompressed to {len(out)} bytes but the chunk says {size} bytes"
            )
        if crc:
            got = zlib.crc32(out)
            if got != crc:
                raise McapScanError(
                    name,
                    f"{where}: CRC mismatch of the uncompressed chunk: expected 0x{crc:08x}, got 0x{got:08x}",
                )
        return out

    def _unzstd(self, data: bytes, size: int) -> bytes:
        if zstandard.frame_content_size(data) == size:  # one frame that says its size: one call
            return self._zstd.decompress(data, allow_extra_data=False)
        # several frames, or no size in the frame header: read at most size + 1 bytes
        with self._zstd.stream_reader(data, read_across_frames=True) as reader:
            return reader.read(size + 1)

    @staticmethod
    def _unlz4(data: bytes, size: int) -> bytes:
        if lz4.frame.get_frame_info(data)["content_size"] == size:
            out, used = lz4.frame.decompress(data, return_bytes_read=True)
            if used == len(data):
                return out
        pieces: list[bytes] = []
        total = 0
        rest = data
        while rest and total <= size:
            dec = lz4.frame.LZ4FrameDecompressor()
            piece = dec.decompress(rest, max_length=size + 1 - total)
            pieces.append(piece)
            total += len(piece)
            if not dec.eof:
                if total > size:
                    break
                raise ValueError("lz4 frame ends before its end mark")
            rest = dec.unused_data or b""
        return b"".join(pieces)


# ------------------------------------------------------------------------------------------
# The scan
# ------------------------------------------------------------------------------------------
class McapScan:
    """An MCAP file opened for chunk-level reading (see the module docstring for the guarantees).

    ``f`` is a seekable binary file object (local or fsspec); the caller keeps ownership and must
    not use it while iterating. ``name`` is used in error messages (typically the path).

    Attributes: ``mode`` (``"index"`` or ``"stream"``), ``fallback_reason`` (why stream mode, or
    None), ``stopped_by`` (stream mode: what ended the walk before the DataEnd record, or None),
    ``header``, ``schemas``, ``channels`` (by id), ``statistics`` (the summary's, unverified; None
    when absent), ``chunk_indexes`` (index mode: sorted by file offset; "chunk i" in errors is the
    i-th of them), ``size`` (file size in bytes).
    """

    def __init__(
        self,
        f: IO[bytes],
        name: str = "<mcap>",
        *,
        max_chunk_bytes: int = MAX_CHUNK_BYTES,
        verify_skipped: bool = True,
    ) -> None:
        self.name = name
        self._f = f
        self._decompress = _Decompressor(max_chunk_bytes)
        self._verify_skipped = verify_skipped
        self._verified_headers: set[int] = set()
        self._verified_indexes: set[int] = set()
        f.seek(0, io.SEEK_END)
        self.size: int = f.tell()
        f.seek(0)
        if f.read(len(MAGIC)) != MAGIC:
            raise McapScanError(name, "not an MCAP file (bad or missing magic bytes)")
        self.header: Header | None = None
        self.schemas: dict[int, Schema] = {}
        self.channels: dict[int, Channel] = {}
        self.statistics: Statistics | None = None
        self.chunk_indexes: list[ChunkIndex] = []
        self.fallback_reason: str | None = None
        self.stopped_by: str | None = None
        self._stream_messages: list[Msg] | None = None  # stream mode, file order
        self._stream_sorted: list[Msg] | None = None
        self._finished = False  # the file ends with a footer record and the closing magic bytes
        summary, problem = self._read_summary()
        if summary is not None:
            problem = self._index_problem(summary) or self._unindexed_problem(summary)
        if summary is None or problem is not None:
            self.mode: Literal["index", "stream"] = "stream"
            self.fallback_reason = problem
            self._stream_scan()
        else:
            self.mode = "index"
            self.header = self._read_header()
            self.schemas = dict(summary.schemas)
            self.channels = dict(summary.channels)
            self.statistics = summary.statistics
            self.chunk_indexes = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)

    # -- opening -----------------------------------------------------------------------------
    def _read_summary(self) -> tuple[Summary | None, str | None]:
        """The summary parsed by ``mcap``, or None and why not."""
        f, size = self._f, self.size
        tail = _FOOTER.size + len(MAGIC)
        if size < len(MAGIC) + tail:
            return None, f"file too short for a footer ({size} bytes)"
        f.seek(size - tail)
        raw = f.read(tail)
        if raw[-len(MAGIC) :] != MAGIC:
            return None, "no closing magic bytes (file truncated or not finished)"
        op, length, summary_start, _, _ = _FOOTER.unpack_from(raw)
        if op != OP_FOOTER or length != _FOOTER.size - _RECORD.size:
            return None, "no footer record before the closing magic bytes"
        self._finished = True
        if summary_start == 0:
            return None, "file written without a summary section"
        if not len(MAGIC) < summary_start <= size - tail:
            return None, f"footer points at a summary section at offset {summary_start}, outside the file"
        self._summary_start = summary_start
        problem = self._summary_records_problem(summary_start, size - tail)
        if problem is not None:
            return None, problem
        try:
            f.seek(0)
            summary = SeekingReader(f, record_size_limit=size).get_summary()
        except Exception as exc:
            return None, f"unreadable summary section ({type(exc).__name__}: {exc})"
        if summary is None:
            return None, "file written without a summary section"
        return summary, None

    def _summary_records_problem(self, start: int, end: int) -> str | None:
        """Why ``[start, end)`` is not a run of summary records (headers only), or None.

        Checked before ``mcap`` parses it, so that a damaged footer cannot make that parser
        decompress chunks or read records that run into the footer.
        """
        f, pos = self._f, start
        while pos < end:
            f.seek(pos)
            head = f.read(_RECORD.size)
            if len(head) != _RECORD.size:
                return f"summary record header cut at offset {pos}"
            op, length = _RECORD.unpack(head)
            if op in _NOT_SUMMARY_OPCODES:
                return f"record with opcode 0x{op:02x} at offset {pos} in the summary section"
            if pos + _RECORD.size + length > end:
                return f"summary record at offset {pos} (opcode 0x{op:02x}, length {length}) runs into the footer"
            pos += _RECORD.size + length
        return None

    def _read_header(self) -> Header | None:
        """The Header record, parsed by ``mcap`` (None when unreadable: index mode does not need it)."""
        try:
            self._f.seek(0)
            return SeekingReader(self._f, record_size_limit=self.size).get_header()
        except Exception:
            return None

    def _index_problem(self, summary: Summary) -> str | None:
        """Why the summary's chunk indexes cannot be trusted for index mode, or None."""
        if not summary.chunk_indexes:
            return "the summary has no chunk indexes"
        if not summary.channels:
            return "the summary has no channel records"
        data_end = self._summary_start
        prev_end = len(MAGIC)
        for i, ci in enumerate(sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)):
            where = (
                f"chunk index {i} (chunk at file offset {ci.chunk_start_offset}, length {ci.chunk_length})"
            )
            min_length = _CHUNK_HEAD.size + len(ci.compression.encode()) + 8 + ci.compressed_size
            if ci.chunk_start_offset < prev_end:
                return f"{where} overlaps the previous record or chunk (ends at {prev_end})"
            if ci.chunk_start_offset + ci.chunk_length > data_end:
                return f"{where} runs past the data section (ends at {data_end})"
            if ci.chunk_length < min_length:
                return f"{where} is shorter than a chunk record holding {ci.compressed_size} compressed bytes"
            if ci.message_start_time > ci.message_end_time:
                return f"{where} has start time {ci.message_start_time} after end time {ci.message_end_time}"
            prev_end = ci.chunk_start_offset + ci.chunk_length
        return None

    def _unindexed_problem(self, summary: Summary) -> str | None:
        """A chunk or message in the data section that no chunk index covers, or None.

        Walks the record headers between the indexed chunks (small reads); a gap of exactly the
        preceding chunk's message index length is taken as its message indexes without reading it.
        Catches a chunk index lost from the summary (e.g. a damaged opcode that ``mcap`` skips).
        """
        chunks = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)
        gaps = [(len(MAGIC), chunks[0].chunk_start_offset)]
        for ci, nxt in pairwise(chunks):
            start = ci.chunk_start_offset + ci.chunk_length
            if nxt.chunk_start_offset - start != ci.message_index_length:
                gaps.append((start, nxt.chunk_start_offset))
        gaps.append((chunks[-1].chunk_start_offset + chunks[-1].chunk_length, self._summary_start))
        f = self._f
        for start, end in gaps:
            pos = start
            while pos < end:
                f.seek(pos)
                head = f.read(_RECORD.size)
                if len(head) != _RECORD.size:
                    return f"short read at offset {pos} between indexed chunks"
                op, length = _RECORD.unpack(head)
                if pos + _RECORD.size + length > end:
                    return f"record at offset {pos} (opcode 0x{op:02x}, length {length}) runs into an indexed chunk"
                if op in (OP_CHUNK, OP_MESSAGE):
                    kind = "chunk" if op == OP_CHUNK else "message"
                    return f"the {kind} at file offset {pos} is not covered by the summary's chunk indexes"
                pos += _RECORD.size + length
        return None

    def _stream_scan(self) -> None:
        """Walk the data section once; keep every message of every complete record (file order)."""
        f, size, name = self._f, self.size, self.name
        messages: list[Msg] = []
        definitions: list[tuple[int, bytes]] = []
        pos = len(MAGIC)
        chunk_no = 0
        f.seek(pos)
        while True:
            head = f.read(_RECORD.size)
            if len(head) < _RECORD.size:
                self.stopped_by = (
                    f"end of file at offset {pos} before the DataEnd record"
                    if not head
                    else f"record header cut by the end of file at offset {pos}"
                )
                break
            op, length = _RECORD.unpack(head)
            end = pos + _RECORD.size + length
            if end > size:
                self.stopped_by = (
                    f"record (opcode 0x{op:02x}) at offset {pos} with length {length} runs past the end "
                    f"of the file ({size} bytes)"
                )
                break
            if op == 0:
                self.stopped_by = f"invalid opcode 0x00 at offset {pos} (zero-filled tail?)"
                break
            if op in (OP_DATA_END, OP_FOOTER):
                break
            if op in (OP_MESSAGE, OP_CHUNK, OP_SCHEMA, OP_CHANNEL, OP_HEADER):
                body = f.read(length)
                if len(body) != length:
                    raise McapScanError(name, f"short read of the record at offset {pos}")
                if op == OP_MESSAGE:
                    if length < _MSG_FIELDS:
                        raise McapScanError(
                            name, f"message record at offset {pos} has length {length} < {_MSG_FIELDS}"
                        )
                    channel_id, _, log_time, _ = struct.unpack_from("<HIQQ", body)
                    messages.append((log_time, channel_id, body[_MSG_FIELDS:]))
                elif op == OP_CHUNK:
                    where = f"chunk {chunk_no} at file offset {pos}"
                    buf = self._chunk_body(body, pos, where, None)
                    messages.extend(walk_records(buf, name, where, definitions))
                    chunk_no += 1
                else:
                    definitions.append((op, body))
            else:
                f.seek(end)
            pos = end
        if self.stopped_by is not None and self._finished:
            raise McapScanError(
                name,
                f"the data section cannot be walked: {self.stopped_by}; the file has its footer, so it is "
                f"damaged, not truncated (summary unusable: {self.fallback_reason})",
            )
        for op, body in definitions:
            self._define(op, body)
        self._stream_messages = messages

    def _define(self, op: int, body: bytes) -> None:
        """Parse a schema, channel or header record body with ``mcap``'s record classes."""
        stream = ReadDataStream(io.BytesIO(body))
        try:
            if op == OP_SCHEMA:
                schema = Schema.read(stream)
                self.schemas[schema.id] = schema
            elif op == OP_CHANNEL:
                channel = Channel.read(stream)
                self.channels[channel.id] = channel
            else:
                self.header = Header.read(stream)
        except Exception as exc:
            kind = {OP_SCHEMA: "schema", OP_CHANNEL: "channel"}.get(op, "header")
            raise McapScanError(
                self.name, f"unreadable {kind} record ({type(exc).__name__}: {exc})"
            ) from None

    def _chunk_body(self, body: bytes, offset: int, where: str, index: ChunkIndex | None) -> bytes:
        """Decompress a chunk record ``body`` (after opcode+length), checking it against ``index``."""
        name = self.name
        if len(body) < _CHUNK_HEAD.size - _RECORD.size:
            raise McapScanError(name, f"{where}: chunk record too short ({len(body)} bytes)")
        start, end, size, crc, clen = struct.unpack_from("<QQQII", body)
        p = _CHUNK_HEAD.size - _RECORD.size
        if p + clen + 8 > len(body):
            raise McapScanError(name, f"{where}: compression name runs past the chunk record")
        try:
            compression = body[p : p + clen].decode()
        except UnicodeDecodeError:
            raise McapScanError(name, f"{where}: compression name is not UTF-8") from None
        p += clen
        (data_length,) = _Q.unpack_from(body, p)
        p += 8
        if p + data_length > len(body):
            raise McapScanError(
                name,
                f"{where}: compressed data ({data_length} bytes) runs past the chunk record ({len(body)} bytes)",
            )
        if index is not None:
            claims = (start, end, size, compression, data_length)
            indexed = (
                index.message_start_time,
                index.message_end_time,
                index.uncompressed_size,
                index.compression,
                index.compressed_size,
            )
            if claims != indexed:
                raise McapScanError(
                    name,
                    f"{where}: chunk record (start, end, uncompressed size, compression, compressed size) = "
                    f"{claims} disagrees with its chunk index {indexed}",
                )
        return self._decompress(body[p : p + data_length], compression, size, crc, name, where)

    # -- index mode --------------------------------------------------------------------------
    def _load(self, i: int, ci: ChunkIndex) -> bytes:
        """Read chunk ``i`` and return its decompressed records."""
        off = ci.chunk_start_offset
        where = f"chunk {i} at file offset {off}"
        self._f.seek(off)
        rec = self._f.read(ci.chunk_length)
        if len(rec) != ci.chunk_length:
            raise McapScanError(self.name, f"{where}: short read ({len(rec)} of {ci.chunk_length} bytes)")
        op, length = _RECORD.unpack_from(rec)
        if op != OP_CHUNK or length != ci.chunk_length - _RECORD.size:
            raise McapScanError(
                self.name,
                f"{where}: its chunk index points at a record with opcode 0x{op:02x} and length {length}, "
                f"not a chunk record of length {ci.chunk_length - _RECORD.size}",
            )
        buf = self._chunk_body(rec[_RECORD.size :], off, where, ci)
        self._verified_headers.add(i)
        return buf

    def _verify_skip(self, i: int, ci: ChunkIndex, by_channel: bool) -> None:
        """Check that a chunk skipped on its index really is what the index says (small reads only)."""
        f, name = self._f, self.name
        off = ci.chunk_start_offset
        where = f"chunk {i} at file offset {off}"
        if i not in self._verified_headers:
            f.seek(off)
            head = f.read(_CHUNK_HEAD.size)
            if len(head) != _CHUNK_HEAD.size:
                raise McapScanError(name, f"{where}: short read of the chunk header")
            op, length, start, end, size, _, _ = _CHUNK_HEAD.unpack(head)
            claims = (op, length, start, end, size)
            indexed = (
                OP_CHUNK,
                ci.chunk_length - _RECORD.size,
                ci.message_start_time,
                ci.message_end_time,
                ci.uncompressed_size,
            )
            if claims != indexed:
                raise McapScanError(
                    name,
                    f"{where} (skipped on its index): the record there (opcode, length, start, end, "
                    f"uncompressed size) = {claims} disagrees with its chunk index {indexed}",
                )
            self._verified_headers.add(i)
        if by_channel and i not in self._verified_indexes:
            found = self._message_index_channels(off + ci.chunk_length, ci.message_index_length, where)
            if found != ci.message_index_offsets:
                raise McapScanError(
                    name,
                    f"{where} (skipped on its index): its index lists message indexes "
                    f"{dict(sorted(ci.message_index_offsets.items()))} (channel: offset), but the records after "
                    f"the chunk are {dict(sorted(found.items()))}",
                )
            self._verified_indexes.add(i)

    def _message_index_channels(self, start: int, length: int, where: str) -> dict[int, int]:
        """``{channel id: offset}`` of the MessageIndex records in ``[start, start + length)``.

        Reads only record headers. Raises when a record there is not a MessageIndex record or runs
        past the area (the area must hold exactly the chunk's message indexes).
        """
        f, end = self._f, start + length
        if end > self.size:
            raise McapScanError(self.name, f"{where}: its message index area ends past the end of the file")
        found: dict[int, int] = {}
        pos = start
        while pos < end:
            f.seek(pos)
            head = f.read(_MSG_INDEX_HEAD.size)
            if len(head) != _MSG_INDEX_HEAD.size:
                raise McapScanError(self.name, f"{where}: short read of the message index at offset {pos}")
            op, rec_length, channel_id = _MSG_INDEX_HEAD.unpack(head)
            if op != OP_MESSAGE_INDEX or rec_length < 6 or pos + _RECORD.size + rec_length > end:
                raise McapScanError(
                    self.name,
                    f"{where}: record at offset {pos} (opcode 0x{op:02x}, length {rec_length}) is not a message "
                    f"index inside the chunk's message index area [{start}, {end})",
                )
            if channel_id in found:
                raise McapScanError(
                    self.name,
                    f"{where}: two message indexes for channel {channel_id} (offsets {found[channel_id]}, {pos})",
                )
            found[channel_id] = pos
            pos += _RECORD.size + rec_length
        return found

    def _chunk_messages(
        self,
        i: int,
        ci: ChunkIndex,
        wanted: frozenset[int] | None,
        start_ns: int | None,
        end_ns: int | None,
        ordered: bool,
        stream: MessageStream,
    ) -> list[Msg]:
        """The wanted messages of chunk ``i`` (sorted stably by log time when ``ordered``), verified."""
        where = f"chunk {i} at file offset {ci.chunk_start_offset}"
        msgs = walk_records(self._load(i, ci), self.name, where)
        stream.chunks_read += 1
        if not msgs:
            return msgs
        if ordered:
            msgs.sort(key=_time)  # stable; linear on an already-sorted chunk
            lo, hi = msgs[0][0], msgs[-1][0]
        else:
            lo, hi = min(map(_time, msgs)), max(map(_time, msgs))
        if lo < ci.message_start_time or hi > ci.message_end_time:
            bad = lo if lo < ci.message_start_time else hi
            raise McapScanError(
                self.name,
                f"{where}: message log time {bad} is outside the chunk's claimed range "
                f"[{ci.message_start_time}, {ci.message_end_time}]",
            )
        counts = Counter(map(_channel, msgs))
        if wanted is not None:
            listed = ci.message_index_offsets
            if listed and not counts.keys() <= listed.keys():
                extra = sorted(counts.keys() - listed.keys())
                raise McapScanError(
                    self.name,
                    f"{where}: holds messages of channel(s) {extra} that its chunk index does not list, "
                    f"so the index cannot be used to skip chunks by channel",
                )
        kept = msgs
        if wanted is not None and not counts.keys() <= wanted:
            kept = [m for m in kept if m[1] in wanted]
        if (start_ns is not None and lo < start_ns) or (end_ns is not None and hi >= end_ns):
            kept = _time_slice(kept, start_ns, end_ns, ordered)
        if kept is msgs:
            stream._seen(msgs, counts, lo, hi)
        else:
            stream._seen(kept, None, None, None, ordered)
        return kept

    def _selected(
        self, wanted: frozenset[int] | None, start_ns: int | None, end_ns: int | None, stream: MessageStream
    ) -> list[tuple[int, ChunkIndex]]:
        """``(i, chunk index)`` of the chunks that may hold wanted messages, in file order."""
        out = []
        for i, ci in enumerate(self.chunk_indexes):
            by_time = (start_ns is not None and ci.message_end_time < start_ns) or (
                end_ns is not None and ci.message_start_time >= end_ns
            )
            by_channel = (
                not by_time
                and wanted is not None
                and bool(ci.message_index_offsets)
                and wanted.isdisjoint(ci.message_index_offsets)
            )
            if by_time or by_channel:
                if self._verify_skipped:
                    self._verify_skip(i, ci, by_channel)
                stream.chunks_skipped += 1
            else:
                out.append((i, ci))
        return out

    def _index_batches(
        self,
        wanted: frozenset[int] | None,
        start_ns: int | None,
        end_ns: int | None,
        ordered: bool,
        stream: MessageStream,
    ) -> Iterator[list[Msg]]:
        selected = self._selected(wanted, start_ns, end_ns, stream)
        if not ordered:
            for i, ci in selected:
                yield self._chunk_messages(i, ci, wanted, start_ns, end_ns, False, stream)
            return
        selected.sort(key=lambda s: (s[1].message_start_time, s[1].chunk_start_offset))
        group: list[tuple[int, ChunkIndex]] = []
        group_end = 0
        for item in selected:
            if group and item[1].message_start_time > group_end:
                yield self._group_messages(group, wanted, start_ns, end_ns, stream)
                group = []
            if not group or item[1].message_end_time > group_end:
                group_end = item[1].message_end_time
            group.append(item)
        if group:
            yield self._group_messages(group, wanted, start_ns, end_ns, stream)

    def _group_messages(
        self,
        group: list[tuple[int, ChunkIndex]],
        wanted: frozenset[int] | None,
        start_ns: int | None,
        end_ns: int | None,
        stream: MessageStream,
    ) -> list[Msg]:
        """The messages of overlapping chunks, merged: stable by log time over file order."""
        if len(group) == 1:
            i, ci = group[0]
            return self._chunk_messages(i, ci, wanted, start_ns, end_ns, True, stream)
        group.sort(key=lambda s: s[1].chunk_start_offset)
        merged: list[Msg] = []
        for i, ci in group:
            merged += self._chunk_messages(i, ci, wanted, start_ns, end_ns, True, stream)
        merged.sort(key=_time)  # stable: ties keep (chunk offset, position); merges the sorted runs
        return merged

    # -- stream mode -------------------------------------------------------------------------
    def _stream_batches(
        self,
        wanted: frozenset[int] | None,
        start_ns: int | None,
        end_ns: int | None,
        ordered: bool,
        stream: MessageStream,
    ) -> Iterator[list[Msg]]:
        assert self._stream_messages is not None
        if ordered:
            if self._stream_sorted is None:
                self._stream_sorted = sorted(self._stream_messages, key=_time)
            msgs = _time_slice(self._stream_sorted, start_ns, end_ns, True)
        else:
            msgs = _time_slice(self._stream_messages, start_ns, end_ns, False)
        if wanted is not None:
            msgs = [m for m in msgs if m[1] in wanted]
        stream._seen(msgs, None, None, None, ordered)
        yield msgs

    # -- public ------------------------------------------------------------------------------
    def messages(
        self,
        channels: Collection[int] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        *,
        ordered: bool = True,
    ) -> MessageStream:
        """Messages of ``channels`` (all when None) with ``start_ns <= log_time < end_ns``.

        ``ordered``: sorted stably by log time (ties in file order), else in file order. Reading
        is lazy: chunks are read while iterating, so errors of a damaged chunk surface then.
        """
        if start_ns is not None and end_ns is not None and start_ns > end_ns:
            raise ValueError(f"start_ns {start_ns} is after end_ns {end_ns}")
        wanted = None if channels is None else frozenset(channels)
        stream = MessageStream()
        if self.mode == "index":
            batches = self._index_batches(wanted, start_ns, end_ns, ordered, stream)
        else:
            batches = self._stream_batches(wanted, start_ns, end_ns, ordered, stream)
        # chain.from_iterable runs the per-message loop in C: no generator frame per message.
        stream._batches = batches
        stream._iterator = chain.from_iterable(batches)
        return stream


def _time_slice(msgs: list[Msg], start_ns: int | None, end_ns: int | None, ordered: bool) -> list[Msg]:
    """The messages with ``start_ns <= log_time < end_ns`` (bisect when ``msgs`` is time-sorted)."""
    if start_ns is None and end_ns is None:
        return msgs
    if ordered:
        lo = 0 if start_ns is None else bisect.bisect_left(msgs, start_ns, key=_time)
        hi = len(msgs) if end_ns is None else bisect.bisect_left(msgs, end_ns, key=_time)
        return msgs[lo:hi]
    lo_ns = -1 if start_ns is None else start_ns
    if end_ns is None:
        return [m for m in msgs if m[0] >= lo_ns]
    return [m for m in msgs if lo_ns <= m[0] < end_ns]


def limit_probe(path: str) -> int:
    """Read every message of ``path`` in FILE order and ``orjson.loads`` each payload; return the count.

    The read+parse limit of one core: the same chunk reads and record walk as :class:`McapScan`,
    without ordering, filtering or counting. Files without chunk indexes go through the stream scan.
    """
    loads = orjson.loads
    count = 0
    with open(path, "rb") as f:
        scan = McapScan(f, str(path))
        if scan.mode == "index":
            for i, ci in enumerate(scan.chunk_indexes):
                msgs = walk_records(scan._load(i, ci), str(path), f"chunk {i}")
                for _, _, data in msgs:
                    loads(data)
                count += len(msgs)
        else:
            for _, _, data in scan.messages(ordered=False):
                loads(data)
                count += 1
    return count
