"""Tests of owa_event.mcap_chunks: the chunk-level scan equals mcap's reader, message for message.

The reference is always the real ``mcap`` package: ``iter_messages`` (ordered and in file order,
with ``topics=``/``starting_at``/``ending_before``) on intact files, its ``StreamReader`` on the
complete part of truncated files. Files are written by the real writers (mcap-owa-support's
``OWAMcapWriter`` through the project's example generator, ``mcap.writer.Writer``), or assembled
from ``mcap.records`` records for layouts those writers never produce (empty chunks, chunk indexes
out of file order, damaged indexes).
"""

from __future__ import annotations

import contextlib
import io
import random
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import lz4.frame
import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcap.data_stream import RecordBuilder
from mcap.exceptions import EndOfFile
from mcap.reader import make_reader
from mcap.records import (
    Channel,
    Chunk,
    ChunkIndex,
    DataEnd,
    Footer,
    Header,
    McapRecord,
    Message,
    MessageIndex,
    Schema,
    Statistics,
)
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, IndexType
from mcap.writer import Writer as McapWriter
from mcap_owa.highlevel import OWAMcapWriter
from owa.core import MESSAGES

from owa_builders.demo.recordings import (
    WRITER_VERSIONS,
    SessionSpec,
    generate_recording,
    session_events,
)
from owa_event.events import TOPIC_TYPES
from owa_event.mcap_chunks import MAGIC, McapScan, McapScanError, Msg, limit_probe

T0 = 1_748_854_800 * 10**9
COMPRESSIONS = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "": CompressionType.NONE}


# ---------------------------------------------------------------------------------------
# references and helpers
# ---------------------------------------------------------------------------------------
def reference(data: bytes, ordered: bool = True, **kwargs: Any) -> list[Msg]:
    """What mcap's iter_messages yields, as (log_time, channel id, data)."""
    reader = make_reader(io.BytesIO(data))
    return [(m.log_time, c.id, m.data) for _, c, m in reader.iter_messages(log_time_order=ordered, **kwargs)]


def scanned(data: bytes, ordered: bool = True, **kwargs: Any) -> list[Msg]:
    return list(McapScan(io.BytesIO(data), "test.mcap").messages(ordered=ordered, **kwargs))


def all_channels(data: bytes) -> dict[int, Channel]:
    """Every channel record of the file, as mcap's StreamReader finds them (summary or not)."""
    channels: dict[int, Channel] = {}
    with contextlib.suppress(EndOfFile):
        for record in StreamReader(io.BytesIO(data)).records:
            if isinstance(record, Channel):
                channels[record.id] = record
    return channels


def topic_ids(data: bytes, topics: set[str]) -> set[int]:
    return {cid for cid, ch in all_channels(data).items() if ch.topic in topics}


def assert_same_as_mcap(data: bytes, *, filters: bool = True) -> None:
    """Ordered and file-order reads, and topic / time filters, equal mcap's."""
    expected = reference(data)
    assert scanned(data) == expected
    assert scanned(data, ordered=False) == reference(data, ordered=False)
    if not filters or not expected:
        return
    times = sorted(t for t, _, _ in expected)
    lo, hi = times[len(times) // 4], times[3 * len(times) // 4]
    for kwargs in (
        {"start_ns": lo},
        {"end_ns": hi},
        {"start_ns": lo, "end_ns": hi},
        {"start_ns": hi, "end_ns": hi},
    ):
        mcap_kwargs = {"starting_at": kwargs.get("start_ns"), "ending_before": kwargs.get("end_ns")}
        assert scanned(data, **kwargs) == reference(data, **mcap_kwargs), kwargs
    topics = sorted({ch.topic for ch in all_channels(data).values()})
    for chosen in (topics[:1], topics[1::2]):
        ids = topic_ids(data, set(chosen))
        assert scanned(data, channels=ids) == reference(data, topics=chosen), chosen
        assert scanned(data, channels=ids, start_ns=lo, end_ns=hi) == reference(
            data, topics=chosen, starting_at=lo, ending_before=hi
        )
        assert scanned(data, ordered=False, channels=ids) == reference(data, ordered=False, topics=chosen)


def write_plain(
    messages: list[tuple[int, int, bytes]],
    *,
    channels: int = 3,
    chunk_size: int = 1024 * 1024,
    compression: str = "zstd",
    use_chunking: bool = True,
    **options: Any,
) -> bytes:
    """``(channel index, log_time, data)`` written in this order with ``mcap.writer.Writer``."""
    out = io.BytesIO()
    writer = McapWriter(
        out,
        chunk_size=chunk_size,
        compression=COMPRESSIONS[compression],
        use_chunking=use_chunking,
        **options,
    )
    writer.start(profile="owa", library="test")
    schema = writer.register_schema(name="test/Thing", encoding="jsonschema", data=b"{}")
    ids = [
        writer.register_channel(topic=f"topic{k}", message_encoding="json", schema_id=schema)
        for k in range(channels)
    ]
    for seq, (k, log_time, data) in enumerate(messages):
        writer.add_message(ids[k], log_time=log_time, data=data, publish_time=log_time, sequence=seq)
    writer.finish()
    return out.getvalue()


def payload(i: int) -> bytes:
    return orjson.dumps({"i": i, "pad": "x" * (i % 7)})


def shuffled_messages(n: int, seed: int, spread: int = 50) -> list[tuple[int, int, bytes]]:
    """Messages out of time order with many ties (log times drawn from a small range)."""
    rng = random.Random(seed)
    return [(rng.randrange(3), T0 + rng.randrange(spread), payload(i)) for i in range(n)]


def complete_records_end(data: bytes, cut: int) -> int:
    """The end offset of the last whole top-level record of ``data`` that fits in ``data[:cut]``."""
    pos, last = len(MAGIC), len(MAGIC)
    while pos + 9 <= cut:
        _, length = struct.unpack_from("<BQ", data, pos)
        if pos + 9 + length > cut:
            break
        pos = last = pos + 9 + length
    return last


def stream_reference(data: bytes) -> list[Msg]:
    """mcap's StreamReader over whole records: the messages in file order (stops at the end of data)."""
    out: list[Msg] = []
    with contextlib.suppress(EndOfFile):  # the data ends at a record boundary
        for record in StreamReader(io.BytesIO(data), validate_crcs=True).records:
            if isinstance(record, Message):
                out.append((record.log_time, record.channel_id, record.data))
    return out


def record_bytes(*records: McapRecord) -> bytes:
    builder = RecordBuilder()
    for record in records:
        record.write(builder)
    return builder.end()


# ---------------------------------------------------------------------------------------
# files assembled from mcap records, for layouts no writer produces
# ---------------------------------------------------------------------------------------
@dataclass
class ChunkSpec:
    """One chunk: its records, and what to claim about them."""

    records: list[McapRecord]
    compression: str = "zstd"
    claimed: tuple[int, int] | None = None  # (start, end) written in the chunk and its index
    crc: bool = True
    raw: bytes | None = None  # uncompressed content instead of the records
    size: int | None = None  # claimed uncompressed size instead of the real one
    compressed: bytes | None = None  # chunk data instead of compressing the content


SCHEMA = Schema(id=1, name="test/Thing", encoding="jsonschema", data=b"{}")
CHANNELS = [
    Channel(id=k, topic=f"t{k}", message_encoding="json", schema_id=1, metadata={}) for k in (1, 2, 3)
]


def msg(channel: int, log_time: int, data: bytes = b"{}") -> Message:
    return Message(channel_id=channel, log_time=log_time, data=data, publish_time=log_time, sequence=0)


def craft(
    chunks: list[ChunkSpec],
    *,
    top: tuple[McapRecord, ...] = (SCHEMA, *CHANNELS),
    summary_channels: bool = True,
    statistics: Statistics | None = None,
    index_order: list[int] | None = None,
    summary: bool = True,
) -> bytes:
    """An MCAP file: magic, header, ``top`` records, the chunks (+ message indexes), DataEnd, summary."""
    out = bytearray(MAGIC) + record_bytes(Header(profile="owa", library="craft"), *top)
    indexes = []
    for spec in chunks:
        builder = RecordBuilder()
        positions: dict[int, list[tuple[int, int]]] = {}
        for record in spec.records:
            if isinstance(record, Message):
                positions.setdefault(record.channel_id, []).append((record.log_time, builder.count))
            record.write(builder)
        content = spec.raw if spec.raw is not None else builder.end()
        times = [r.log_time for r in spec.records if isinstance(r, Message)]
        start, end = spec.claimed or ((min(times), max(times)) if times else (0, 0))
        compress = {"zstd": zstandard.compress, "lz4": lz4.frame.compress}.get(spec.compression, bytes)
        chunk = Chunk(
            compression=spec.compression,
            data=compress(content) if spec.compressed is None else spec.compressed,
            message_start_time=start,
            message_end_time=end,
            uncompressed_crc=zlib.crc32(content) if spec.crc else 0,
            uncompressed_size=len(content) if spec.size is None else spec.size,
        )
        offset = len(out)
        out += record_bytes(chunk)
        length = len(out) - offset
        index_start = len(out)
        offsets = {}
        for channel, records in positions.items():
            offsets[channel] = len(out)
            out += record_bytes(MessageIndex(channel_id=channel, records=records))
        indexes.append(
            ChunkIndex(
                message_start_time=start,
                message_end_time=end,
                chunk_start_offset=offset,
                chunk_length=length,
                message_index_offsets=offsets,
                message_index_length=len(out) - index_start,
                compression=spec.compression,
                compressed_size=len(chunk.data),
                uncompressed_size=chunk.uncompressed_size,
            )
        )
    out += record_bytes(DataEnd(data_section_crc=0))
    summary_start = len(out)
    if summary:
        records: list[McapRecord] = [SCHEMA, *(CHANNELS if summary_channels else [])]
        if statistics is not None:
            records.append(statistics)
        order = index_order if index_order is not None else range(len(indexes))
        records += [indexes[i] for i in order]
        out += record_bytes(*records)
    out += record_bytes(
        Footer(summary_start=summary_start if summary else 0, summary_offset_start=0, summary_crc=0)
    )
    return bytes(out + MAGIC)


# ---------------------------------------------------------------------------------------
# equal to mcap on recordings from the project's generator
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", WRITER_VERSIONS)
def test_generated_recordings_of_every_layout(tmp_path: Path, version: str) -> None:
    path = generate_recording(
        tmp_path / "r.mcap", SessionSpec(duration_s=4.0, seed=3), version=version, video=False
    )  # type: ignore[arg-type]
    data = path.read_bytes()
    scan = McapScan(io.BytesIO(data), str(path))
    assert scan.mode == "index" and scan.fallback_reason is None
    assert_same_as_mcap(data)


def test_generated_recording_in_many_small_chunks(tmp_path: Path) -> None:
    events, _ = session_events(SessionSpec(duration_s=5.0, seed=7))
    path = tmp_path / "small.mcap"
    with OWAMcapWriter(path, chunk_size=2048) as writer:
        for e in events:
            writer.write_message(
                MESSAGES[TOPIC_TYPES[e.topic]](**e.fields), topic=e.topic, timestamp=e.timestamp_ns
            )
    data = path.read_bytes()
    scan = McapScan(io.BytesIO(data), str(path))
    assert len(scan.chunk_indexes) > 20
    assert_same_as_mcap(data)
    # counts and range are those of what was read, and here agree with the Statistics record
    stream = scan.messages()
    got = list(stream)
    assert stream.counts == Counter(c for _, c, _ in got) == Counter(scan.statistics.channel_message_counts)  # type: ignore[union-attr]
    assert (stream.start_ns, stream.end_ns) == (got[0][0], got[-1][0])
    assert stream.chunks_read == len(scan.chunk_indexes) and stream.chunks_skipped == 0
    # a topic present in few chunks skips the others; a narrow window reads few chunks
    ids = topic_ids(data, {"window"})
    narrow = scan.messages(channels=ids)
    assert list(narrow) == reference(data, topics=["window"])
    assert narrow.chunks_skipped > 0 and narrow.chunks_read + narrow.chunks_skipped == len(scan.chunk_indexes)
    window = scan.messages(start_ns=got[100][0], end_ns=got[200][0])
    assert list(window) == reference(data, starting_at=got[100][0], ending_before=got[200][0])
    assert window.chunks_read < len(scan.chunk_indexes) // 4


def test_real_recording(shared_recording: Path) -> None:
    data = shared_recording.read_bytes()
    scan = McapScan(io.BytesIO(data), str(shared_recording))
    assert scan.mode == "index"
    assert_same_as_mcap(data)
    stream = scan.messages()
    assert len(list(stream)) == 267 == stream.message_count
    assert limit_probe(str(shared_recording)) == 267


# ---------------------------------------------------------------------------------------
# equal to mcap on files written directly with mcap's writer
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["zstd", "lz4", ""])
@pytest.mark.parametrize("chunk_size", [256, 4096, 1 << 20])
def test_writer_layouts_out_of_order_with_ties(compression: str, chunk_size: int) -> None:
    data = write_plain(
        shuffled_messages(600, seed=chunk_size), chunk_size=chunk_size, compression=compression
    )
    scan = McapScan(io.BytesIO(data), "w.mcap")
    assert scan.mode == "index"
    assert_same_as_mcap(data)


def test_unchunked_file_is_streamed() -> None:
    data = write_plain(shuffled_messages(300, seed=1), use_chunking=False)
    scan = McapScan(io.BytesIO(data), "u.mcap")
    assert scan.mode == "stream" and scan.fallback_reason == "the summary has no chunk indexes"
    assert scan.stopped_by is None  # reached the DataEnd record
    assert {c.topic for c in scan.channels.values()} == {"topic0", "topic1", "topic2"}
    assert_same_as_mcap(data)


def test_file_without_summary_is_streamed() -> None:
    data = write_plain(
        shuffled_messages(300, seed=2),
        chunk_size=500,
        repeat_schemas=False,
        repeat_channels=False,
        use_statistics=False,
        index_types=IndexType.NONE,
        use_summary_offsets=False,
    )
    scan = McapScan(io.BytesIO(data), "n.mcap")
    assert scan.mode == "stream" and scan.fallback_reason == "file written without a summary section"
    assert scan.statistics is None and len(scan.channels) == 3  # channels found inside the chunks
    assert_same_as_mcap(data)


def test_chunks_without_message_indexes_cannot_be_skipped_by_channel() -> None:
    data = write_plain(shuffled_messages(400, seed=3), chunk_size=300, index_types=IndexType.CHUNK)
    assert_same_as_mcap(data)
    stream = McapScan(io.BytesIO(data), "x.mcap").messages(channels={1})
    list(stream)
    assert stream.chunks_skipped == 0


def test_summary_without_channels_falls_back_to_the_stream_scan() -> None:
    messages = shuffled_messages(200, seed=4)
    data = write_plain(messages, chunk_size=400, repeat_channels=False)
    scan = McapScan(io.BytesIO(data), "c.mcap")
    assert scan.mode == "stream" and scan.fallback_reason == "the summary has no channel records"
    assert len(scan.channels) == 3
    assert scanned(data) == sorted(stream_reference(data), key=lambda m: m[0])


def test_ties_across_chunks_keep_file_order() -> None:
    # every message at one of two times: all chunks claim (nearly) the same range and overlap
    messages = [(i % 3, T0 + (i // 250), payload(i)) for i in range(500)]
    data = write_plain(messages, chunk_size=200)
    assert len(McapScan(io.BytesIO(data), "t.mcap").chunk_indexes) > 10
    got = scanned(data)
    assert got == reference(data)
    assert [d for _, _, d in got] == [d for _, _, d in messages]  # file order kept within each tie


def test_touching_chunks_whose_file_order_differs_from_time_order() -> None:
    # chunk A (first in the file) covers [20, 30], chunk B covers [10, 20]: the two messages at 20
    # come in file order (A's first), as in mcap.
    a = ChunkSpec([msg(1, 20, b'"a20"'), msg(1, 30, b'"a30"')])
    b = ChunkSpec([msg(2, 10, b'"b10"'), msg(2, 20, b'"b20"')])
    data = craft([a, b])
    assert [d for _, _, d in scanned(data)] == [b'"b10"', b'"a20"', b'"b20"', b'"a30"']
    assert scanned(data) == reference(data)


def test_chunk_indexes_out_of_file_order_in_the_summary() -> None:
    chunks = [ChunkSpec([msg(1 + k % 3, 100 - 10 * k + j) for j in range(12)]) for k in range(6)]
    data = craft(chunks, index_order=[3, 0, 5, 1, 4, 2])
    assert scanned(data) == reference(data)
    assert scanned(data, ordered=False) == [
        (m.log_time, m.channel_id, m.data) for c in chunks for m in c.records
    ]  # type: ignore[attr-defined]


def test_empty_chunks_and_definitions_inside_chunks() -> None:
    chunks = [
        ChunkSpec([]),  # no records at all
        ChunkSpec([msg(1, 5), msg(2, 7)]),
        ChunkSpec([CHANNELS[2]], compression="lz4"),  # only a definition
        ChunkSpec([SCHEMA, CHANNELS[0], msg(1, 3), CHANNELS[1], msg(3, 9)], compression=""),
        ChunkSpec([], claimed=(4, 8)),
    ]
    data = craft(chunks)
    assert_same_as_mcap(data)
    got = scanned(data)
    assert [t for t, _, _ in got] == [3, 5, 7, 9]


def test_hand_written_zero_length_chunk_of_each_compression() -> None:
    chunks = [ChunkSpec([], compression=c) for c in ("zstd", "lz4", "")] + [ChunkSpec([msg(1, 1)])]
    data = craft(chunks)
    assert scanned(data) == reference(data) == [(1, 1, b"{}")]


def test_multi_frame_compressed_chunks() -> None:
    first, second = record_bytes(msg(1, 1, b"1")), record_bytes(msg(2, 2, b"2"))
    frames = {
        "zstd": zstandard.compress(first) + zstandard.compress(second),
        "lz4": lz4.frame.compress(first) + lz4.frame.compress(second, store_size=False),
    }
    for compression, compressed in frames.items():
        data = craft(
            [ChunkSpec([msg(1, 1, b"1"), msg(2, 2, b"2")], compression=compression, compressed=compressed)]
        )
        assert scanned(data) == [(1, 1, b"1"), (2, 2, b"2")], compression


def test_fsspec_file() -> None:
    data = write_plain(shuffled_messages(300, seed=5), chunk_size=500)
    fs = fsspec.filesystem("memory")
    with fs.open("/scan/test.mcap", "wb") as f:
        f.write(data)
    with fsspec.open("memory://scan/test.mcap", "rb") as f:
        assert list(McapScan(f, "memory://scan/test.mcap").messages()) == reference(data)


def test_time_window_arguments() -> None:
    data = write_plain(shuffled_messages(100, seed=6), chunk_size=300)
    scan = McapScan(io.BytesIO(data), "w.mcap")
    assert list(scan.messages(start_ns=T0 + 10, end_ns=T0 + 10)) == []
    with pytest.raises(ValueError, match="after end_ns"):
        scan.messages(start_ns=T0 + 11, end_ns=T0 + 10)


def test_counts_come_from_the_data_not_the_statistics_record() -> None:
    wrong = Statistics(
        message_count=99,
        schema_count=1,
        channel_count=3,
        attachment_count=0,
        metadata_count=0,
        chunk_count=1,
        message_start_time=0,
        message_end_time=1,
        channel_message_counts={1: 99},
    )
    data = craft([ChunkSpec([msg(1, 10), msg(2, 11), msg(2, 12)])], statistics=wrong)
    scan = McapScan(io.BytesIO(data), "s.mcap")
    assert scan.statistics == wrong
    stream = scan.messages()
    list(stream)
    assert stream.counts == {1: 1, 2: 2} and (stream.start_ns, stream.end_ns) == (10, 12)
    filtered = scan.messages(channels={2}, end_ns=12)
    list(filtered)
    assert filtered.counts == {2: 1} and (filtered.start_ns, filtered.end_ns) == (11, 11)


@pytest.mark.parametrize("layout", ["chunked", "unchunked"])
def test_limit_probe_counts_every_message(tmp_path: Path, layout: str) -> None:
    data = write_plain(shuffled_messages(250, seed=8), chunk_size=400, use_chunking=layout == "chunked")
    path = tmp_path / "p.mcap"
    path.write_bytes(data)
    assert limit_probe(str(path)) == 250


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 40), st.binary(max_size=12)), min_size=0, max_size=80
    ),
    chunk_size=st.sampled_from([32, 128, 512, 1 << 20]),
    compression=st.sampled_from(["zstd", "lz4", ""]),
    use_chunking=st.booleans(),
    window=st.tuples(st.integers(0, 45), st.integers(0, 45)),
    topics=st.sets(st.sampled_from(["topic0", "topic1", "topic2"])),
)
def test_random_layouts_equal_mcap(
    messages: list[tuple[int, int, bytes]],
    chunk_size: int,
    compression: str,
    use_chunking: bool,
    window: tuple[int, int],
    topics: set[str],
) -> None:
    data = write_plain(
        [(k, T0 + t, d) for k, t, d in messages],
        chunk_size=chunk_size,
        compression=compression,
        use_chunking=use_chunking,
    )
    assert scanned(data) == reference(data)
    assert scanned(data, ordered=False) == reference(data, ordered=False)
    lo, hi = T0 + min(window), T0 + max(window)
    ids = topic_ids(data, topics)
    assert scanned(data, channels=ids, start_ns=lo, end_ns=hi) == reference(
        data, topics=sorted(topics), starting_at=lo, ending_before=hi
    )
    assert scanned(data, ordered=False, start_ns=lo) == reference(data, ordered=False, starting_at=lo)


# ---------------------------------------------------------------------------------------
# truncated files
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["zstd", "", "unchunked"])
def test_every_cut_point_gives_the_complete_records_or_an_error(layout: str) -> None:
    data = write_plain(
        shuffled_messages(150, seed=9),
        chunk_size=400,
        compression="" if layout == "unchunked" else layout,
        use_chunking=layout != "unchunked",
    )
    full = reference(data)
    outcomes: Counter[str] = Counter()
    for cut in range(0, len(data), max(7, len(data) // 240) | 1):
        cut_data = data[:cut]
        try:
            scan = McapScan(io.BytesIO(cut_data), "cut.mcap")
        except McapScanError as exc:
            assert cut < len(MAGIC) and "magic" in str(exc)
            outcomes["error"] += 1
            continue
        assert scan.mode == "stream", cut
        boundary = complete_records_end(data, cut)
        expected = stream_reference(data[:boundary])
        assert list(scan.messages(ordered=False)) == expected, cut
        assert list(scan.messages()) == sorted(expected, key=lambda m: m[0]), cut
        if scan.stopped_by is None:  # the cut is past the DataEnd record: nothing lost
            assert list(scan.messages()) == full
            outcomes["whole"] += 1
        else:
            assert f"offset {boundary}" in scan.stopped_by, (cut, scan.stopped_by)
            outcomes["partial"] += 1
    assert outcomes["partial"] > 20 and outcomes["whole"] > 0 and outcomes["error"] > 0


def test_truncated_real_writer_file_keeps_its_channels(tmp_path: Path) -> None:
    with OWAMcapWriter(tmp_path / "s.mcap", chunk_size=4096) as writer:
        events, _ = session_events(SessionSpec(duration_s=3.0))
        for e in events:
            writer.write_message(
                MESSAGES[TOPIC_TYPES[e.topic]](**e.fields), topic=e.topic, timestamp=e.timestamp_ns
            )
    data = (tmp_path / "s.mcap").read_bytes()
    cut = data[: len(data) * 2 // 3]
    scan = McapScan(io.BytesIO(cut), "s.mcap")
    assert scan.mode == "stream" and "closing magic" in (scan.fallback_reason or "")
    assert "runs past the end of the file" in (scan.stopped_by or "")
    got = list(scan.messages())
    assert 0 < len(got) < len(reference(data))
    assert {ch.topic for ch in scan.channels.values()} >= {"mouse", "screen", "keyboard"}
    assert scan.header is not None and scan.header.profile == "owa"


def test_zero_filled_tail_stops_the_stream_scan() -> None:
    data = write_plain(shuffled_messages(120, seed=10), chunk_size=300)
    cut = data[: len(data) // 2]
    boundary = complete_records_end(data, len(cut))
    scan = McapScan(io.BytesIO(data[:boundary] + bytes(4096)), "z.mcap")
    assert scan.stopped_by == f"invalid opcode 0x00 at offset {boundary} (zero-filled tail?)"
    assert list(scan.messages(ordered=False)) == stream_reference(data[:boundary])


def test_huge_record_length_is_not_allocated() -> None:
    data = write_plain(shuffled_messages(20, seed=11), chunk_size=300)
    boundary = complete_records_end(data, len(data) // 2)
    bogus = struct.pack("<BQ", 0x05, 1 << 60) + b"\0" * 40
    scan = McapScan(io.BytesIO(data[:boundary] + bogus), "h.mcap")
    assert f"at offset {boundary} with length {1 << 60} runs past the end of the file" in (
        scan.stopped_by or ""
    )


# ---------------------------------------------------------------------------------------
# damaged chunks
# ---------------------------------------------------------------------------------------
def chunk_offsets(data: bytes) -> list[tuple[int, int]]:
    summary = make_reader(io.BytesIO(data)).get_summary()
    assert summary is not None
    return sorted((c.chunk_start_offset, c.chunk_length) for c in summary.chunk_indexes)


@pytest.mark.parametrize("compression", ["zstd", "lz4", ""])
def test_corrupted_chunk_bytes_name_the_chunk(compression: str) -> None:
    data = write_plain(shuffled_messages(200, seed=12), chunk_size=500, compression=compression)
    chunks = chunk_offsets(data)
    for i, (offset, length) in enumerate(chunks):
        for rel in (0.3, 0.6, 0.95):
            damaged = bytearray(data)
            damaged[offset + int(length * rel)] ^= 0x5A
            with pytest.raises(McapScanError) as info:
                list(McapScan(io.BytesIO(bytes(damaged)), "d.mcap").messages())
            assert str(info.value).startswith(f"d.mcap: chunk {i} at file offset {offset}: "), str(info.value)
            if compression == "" and int(length * rel) >= 49:  # in the data, past the chunk's header fields
                assert "CRC mismatch of the uncompressed chunk: expected 0x" in str(info.value)


def test_unknown_compression() -> None:
    data = craft([ChunkSpec([msg(1, 1)], compression="brotli")])
    with pytest.raises(McapScanError, match=r"chunk 0 at file offset \d+: unsupported compression 'brotli'"):
        scanned(data)


def test_record_running_past_the_chunk_end() -> None:
    good = record_bytes(msg(1, 1))
    bad = good + struct.pack("<BQ", 0x05, 500) + b"x" * 30
    data = craft([ChunkSpec([msg(1, 1)], raw=bad, compression="")])
    with pytest.raises(
        McapScanError,
        match=r"chunk 0 .*: record \(opcode 0x05\) at chunk offset \d+ with length 500 runs past",
    ):
        scanned(data)


def test_message_record_too_short_and_trailing_bytes() -> None:
    short = struct.pack("<BQ", 0x05, 10) + b"y" * 10
    data = craft([ChunkSpec([msg(1, 1)], raw=record_bytes(msg(1, 1)) + short, compression="")])
    with pytest.raises(McapScanError, match="has length 10 < 22"):
        scanned(data)
    data = craft([ChunkSpec([msg(1, 1)], raw=record_bytes(msg(1, 1)) + b"\x05\x00", compression="")])
    with pytest.raises(McapScanError, match="2 trailing byte"):
        scanned(data)


def test_message_outside_its_chunks_claimed_range() -> None:
    data = craft([ChunkSpec([msg(1, 10), msg(1, 30)], claimed=(10, 20)), ChunkSpec([msg(2, 40)])])
    with pytest.raises(
        McapScanError,
        match=r"chunk 0 .*: message log time 30 is outside the chunk's claimed range \[10, 20\]",
    ):
        scanned(data)


def test_uncompressed_size_beyond_the_limit_is_refused() -> None:
    data = craft([ChunkSpec([msg(1, 1)], size=1 << 40, crc=False, compression="")])
    with pytest.raises(McapScanError, match=f"uncompressed size {1 << 40} bytes exceeds the limit"):
        scanned(data)
    data = craft([ChunkSpec([msg(1, 1)], size=1 << 40, crc=False)])  # the zstd frame says otherwise
    with pytest.raises(McapScanError, match="exceeds the limit"):
        scanned(data)


def test_zstd_frame_disagreeing_with_the_chunk_size() -> None:
    real = len(record_bytes(msg(1, 1)))
    data = craft([ChunkSpec([msg(1, 1)], size=real + 5, crc=False)])
    with pytest.raises(
        McapScanError, match=f"decompressed to {real} bytes but the chunk says {real + 5} bytes"
    ):
        scanned(data)


def test_no_byte_flip_changes_the_messages_silently() -> None:
    data = write_plain(shuffled_messages(60, seed=13), chunk_size=300)
    truth = reference(data)
    ids = topic_ids(data, {"topic1"})
    window = (T0 + 10, T0 + 30)
    errors = 0
    for pos in range(0, len(data), 3):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        try:
            scan = McapScan(io.BytesIO(bytes(damaged)), "f.mcap")
            got = list(scan.messages())
            got_filtered = list(scan.messages(channels=ids, start_ns=window[0], end_ns=window[1]))
        except McapScanError:
            errors += 1
            continue
        assert got == truth, pos
        assert got_filtered == [m for m in truth if m[1] in ids and window[0] <= m[0] < window[1]], pos
    assert errors > 0


# ---------------------------------------------------------------------------------------
# damaged chunk indexes: never a silent loss or reorder
# ---------------------------------------------------------------------------------------
def chunk_index_records(data: bytes) -> list[int]:
    """File offsets of the ChunkIndex records in the summary section."""
    (summary_start,) = struct.unpack_from("<Q", data, len(data) - 8 - 20)
    pos, out = summary_start, []
    while True:
        op, length = struct.unpack_from("<BQ", data, pos)
        if op == 0x02:
            return out
        if op == 0x08:
            out.append(pos)
        pos += 9 + length


def mutations(data: bytes, rec: int) -> list[tuple[str, bytes]]:
    """Damaged copies of ``data``: one field of the ChunkIndex record at ``rec`` changed."""
    start, end, offset, length, keys_len = struct.unpack_from("<QQQQI", data, rec + 9)
    other_offsets = [o for o, _ in chunk_offsets(data) if o != offset]
    fields: dict[str, tuple[int, str, int]] = {
        "start+1": (9, "<Q", start + 1),
        "start-1000": (9, "<Q", start - 1000),
        "end-1": (17, "<Q", end - 1),
        "end+1e9": (17, "<Q", end + 10**9),
        "end=0": (17, "<Q", 0),
        "start=end+5": (9, "<Q", end + 5),
        "offset+1": (25, "<Q", offset + 1),
        "offset-1": (25, "<Q", offset - 1),
        "offset=other": (25, "<Q", other_offsets[0]),
        "length+1": (33, "<Q", length + 1),
        "length-1": (33, "<Q", length - 1),
    }
    if keys_len:
        (first_key,) = struct.unpack_from("<H", data, rec + 9 + 36)
        fields["channel key"] = (9 + 36, "<H", first_key % 3 + 1)
        fields["channel key=9"] = (9 + 36, "<H", 9)
    out = []
    for name, (at, fmt, value) in fields.items():
        damaged = bytearray(data)
        struct.pack_into(fmt, damaged, rec + at, value)
        out.append((name, bytes(damaged)))
    return out


def test_corrupted_chunk_indexes_never_lose_or_reorder_messages() -> None:
    data = write_plain(shuffled_messages(240, seed=14, spread=400), chunk_size=600)
    truth = reference(data)
    records = chunk_index_records(data)
    assert len(records) >= 4
    records = [records[0], records[len(records) // 2], records[-1]]
    windows = [(T0 + 100, T0 + 200), (T0 + 350, None)]
    outcomes: Counter[str] = Counter()
    for rec in records:
        for name, damaged in mutations(data, rec):
            for channels in (None, {1}, {2, 3}):
                for start, end in [(None, None), *windows]:
                    expected = [
                        m
                        for m in truth
                        if (channels is None or m[1] in channels)
                        and (start is None or m[0] >= start)
                        and (end is None or m[0] < end)
                    ]
                    try:
                        got = scanned(damaged, channels=channels, start_ns=start, end_ns=end)
                    except McapScanError as exc:
                        assert str(exc).startswith("test.mcap: chunk "), (name, str(exc))
                        outcomes["error"] += 1
                        continue
                    assert got == expected, (name, rec, channels, start, end)
                    outcomes["read"] += 1
    assert outcomes["error"] > 0 and outcomes["read"] > 0


def test_structurally_impossible_index_falls_back_to_the_stream_scan() -> None:
    data = write_plain(shuffled_messages(100, seed=15), chunk_size=300)
    rec = chunk_index_records(data)[1]
    damaged = dict(mutations(data, rec))["end=0"]
    scan = McapScan(io.BytesIO(damaged), "i.mcap")
    assert scan.mode == "stream"
    assert scan.fallback_reason is not None and "has start time" in scan.fallback_reason
    assert list(scan.messages()) == reference(data)


def test_skipped_chunk_whose_header_disagrees_with_its_index() -> None:
    data = write_plain(shuffled_messages(200, seed=16, spread=1000), chunk_size=300)
    rec = chunk_index_records(data)[0]
    damaged = bytearray(data)
    (start,) = struct.unpack_from("<Q", data, rec + 9)
    struct.pack_into("<Q", damaged, rec + 17, start)  # index claims the chunk ends where it starts
    with pytest.raises(McapScanError, match=r"chunk 0 at file offset \d+ \(skipped on its index\)"):
        scanned(bytes(damaged), start_ns=start + 1)
    # without the check the chunk is skipped on the index's word: its later messages are lost
    scan = McapScan(io.BytesIO(bytes(damaged)), "x.mcap", verify_skipped=False)
    assert len(list(scan.messages(start_ns=start + 1))) < len(reference(data, starting_at=start + 1))


def test_chunk_index_lost_from_the_summary_is_noticed() -> None:
    data = write_plain(shuffled_messages(120, seed=17), chunk_size=300)
    rec = chunk_index_records(data)[2]
    damaged = bytearray(data)
    damaged[rec] = 0x7E  # an unknown opcode: mcap skips the record, and with it the chunk
    lost_offset = chunk_offsets(data)[2][0]
    assert len(reference(bytes(damaged))) < len(reference(data))
    scan = McapScan(io.BytesIO(bytes(damaged)), "l.mcap")
    assert scan.mode == "stream"
    assert (
        scan.fallback_reason
        == f"the chunk at file offset {lost_offset} is not covered by the summary's chunk indexes"
    )
    assert list(scan.messages()) == reference(data)


def test_finished_file_whose_data_section_cannot_be_walked_is_an_error() -> None:
    data = write_plain(
        shuffled_messages(100, seed=18),
        chunk_size=300,
        repeat_schemas=False,
        repeat_channels=False,
        use_statistics=False,
        index_types=IndexType.NONE,
        use_summary_offsets=False,
    )
    boundary = complete_records_end(data, len(data) // 2)
    damaged = bytearray(data)
    struct.pack_into("<Q", damaged, boundary + 1, 1 << 50)  # the record there claims 1 PiB
    with pytest.raises(
        McapScanError, match=f"at offset {boundary} .* runs past the end .* damaged, not truncated"
    ):
        McapScan(io.BytesIO(bytes(damaged)), "f.mcap")


def test_footer_pointing_into_the_data_section_is_not_parsed_as_a_summary() -> None:
    data = write_plain(shuffled_messages(80, seed=19), chunk_size=300)
    chunk = chunk_offsets(data)[1][0]
    damaged = bytearray(data)
    struct.pack_into("<Q", damaged, len(data) - 8 - 20, chunk)  # footer.summary_start -> a chunk
    scan = McapScan(io.BytesIO(bytes(damaged)), "p.mcap")
    assert scan.mode == "stream"
    assert scan.fallback_reason == f"record with opcode 0x06 at offset {chunk} in the summary section"
    assert list(scan.messages()) == reference(data)
