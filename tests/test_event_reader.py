"""Tests of owa_event.reader: reading OWAMcap files as time-ordered current-format events."""

from __future__ import annotations

import io
import random
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from mcap.writer import Writer as McapWriter
from mcap_owa.highlevel import OWAMcapWriter
from owa.core import MESSAGES, OWAMessage

from owa_builders.demo.recordings import MS, NS, RawEvent, SessionSpec, session_events, write_recording
from owa_event.errors import RecordingError, TruncatedRecordingWarning
from owa_event.events import TOPIC_TYPES, Event, is_pure_move, move_event
from owa_event.reader import Recording

T0 = 1_748_854_800 * NS


class Thing(OWAMessage):
    """A message type this package does not know."""

    _type: ClassVar[str] = "custom/Thing"
    value: int
    label: str


def current_message(topic: str, fields: dict[str, Any]) -> Any:
    return MESSAGES[TOPIC_TYPES[topic]](**fields)


def write_owa(path: Path, events: Iterable[RawEvent], chunk_size: int = 1024 * 1024) -> Path:
    """Write current-layout events with the real writer, in the given (file) order."""
    with OWAMcapWriter(path, chunk_size=chunk_size) as writer:
        for e in events:
            writer.write_message(current_message(e.topic, e.fields), topic=e.topic, timestamp=e.timestamp_ns)
    return path


def write_raw(
    path: Path,
    messages: Iterable[tuple[int, bytes]],
    *,
    profile: str = "owa",
    topic: str = "keyboard",
    schema: str = "desktop/KeyboardEvent",
    encoding: str = "json",
) -> Path:
    """Write arbitrary payloads with the plain mcap writer (for files the OWA writer cannot make)."""
    with path.open("wb") as f:
        writer = McapWriter(f)
        writer.start(profile=profile, library="test-writer")
        schema_id = writer.register_schema(name=schema, encoding="jsonschema", data=b"{}")
        channel = writer.register_channel(topic=topic, message_encoding=encoding, schema_id=schema_id)
        for log_time, data in messages:
            writer.add_message(channel, log_time=log_time, data=data, publish_time=log_time)
        writer.finish()
    return path


def keys(n: int, t0: int = T0, step: int = MS) -> list[RawEvent]:
    return [
        RawEvent(
            "keyboard", t0 + i * step, {"event_type": "press" if i % 2 == 0 else "release", "vk": 65 + i % 26}
        )
        for i in range(n)
    ]


def screen(t: int, uri: str, pts_ns: int = 0) -> RawEvent:
    return RawEvent(
        "screen",
        t,
        {"utc_ns": t, "source_shape": [4, 4], "shape": [4, 4], "media_ref": {"uri": uri, "pts_ns": pts_ns}},
    )


def read_all(path: Path, **kwargs: Any) -> list[Event]:
    with Recording(path, **kwargs) as rec:
        return list(rec.events())


# ---------------------------------------------------------------------------------------
# summary and reading
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RawEvent], Path]:
    events, _ = session_events(SessionSpec(duration_s=3.0, seed=4))
    path = write_recording(tmp_path_factory.mktemp("reader") / "rec.mcap", events)
    return events, path


def test_summary_describes_the_recording(session: tuple[list[RawEvent], Path]) -> None:
    events, path = session
    with Recording(path) as rec:
        s = rec.summary
    assert s.path == str(path)
    assert s.writer.startswith("mcap-owa-support 0.6")
    assert s.topics == {t: TOPIC_TYPES[t] for t in {e.topic for e in events}}
    assert s.topic_counts == {t: sum(e.topic == t for e in events) for t in s.topics}
    assert s.message_count == len(events)
    assert s.start_ns == min(e.timestamp_ns for e in events)
    assert s.end_ns == max(e.timestamp_ns for e in events)
    assert s.truncated is False


def test_events_are_the_session_in_time_order(session: tuple[list[RawEvent], Path]) -> None:
    events, path = session
    got = read_all(path)
    assert [(e.topic, e.timestamp_ns) for e in got] == [(e.topic, e.timestamp_ns) for e in events]
    times = [e.timestamp_ns for e in got]
    assert times == sorted(times)
    assert [e.index for e in got] == list(range(len(got)))
    for e in got:
        assert orjson.loads(e.data) == e.fields


def test_topic_filter(session: tuple[list[RawEvent], Path]) -> None:
    _, path = session
    everything = read_all(path)
    with Recording(path) as rec:
        some = list(rec.events(topics=["keyboard", "screen"]))
        none = list(rec.events(topics=[]))
        missing = list(rec.events(topics=["no/such/topic"]))
    assert some == [e for e in everything if e.topic in ("keyboard", "screen")]
    assert {e.topic for e in some} == {"keyboard", "screen"}
    assert none == [] and missing == []


def test_time_window_is_half_open(tmp_path: Path) -> None:
    path = write_owa(tmp_path / "w.mcap", keys(6, step=10))
    with Recording(path) as rec:
        window = list(rec.events(start_ns=T0 + 10, end_ns=T0 + 40))
        head = list(rec.events(end_ns=T0 + 20))
        tail = list(rec.events(start_ns=T0 + 41))
        empty = list(rec.events(start_ns=T0 + 20, end_ns=T0 + 20))
        both = list(rec.events(topics=["keyboard"], start_ns=T0 + 50, end_ns=T0 + 51))
    assert [e.timestamp_ns - T0 for e in window] == [10, 20, 30]  # at start included, at end excluded
    assert [e.timestamp_ns - T0 for e in head] == [0, 10]
    assert [e.timestamp_ns - T0 for e in tail] == [50]
    assert empty == []
    assert [e.timestamp_ns - T0 for e in both] == [50]


def test_recording_from_a_stream(session: tuple[list[RawEvent], Path]) -> None:
    _, path = session
    stream = io.BytesIO(path.read_bytes())
    with Recording("remote://bucket/rec.mcap", stream=stream, episode_path="rec.mcap") as rec:
        got = list(rec.events())
    assert got == read_all(path)
    assert not stream.closed  # a stream passed in is not ours to close


def test_empty_recording_has_no_events(tmp_path: Path) -> None:
    path = write_owa(tmp_path / "empty.mcap", [])
    with Recording(path) as rec:
        assert rec.summary.message_count == 0
        assert rec.summary.topics == {}
        assert list(rec.events()) == []


def test_out_of_order_log_times_come_out_sorted(tmp_path: Path) -> None:
    events = keys(200, step=3 * MS)
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    path = write_owa(tmp_path / "shuffled.mcap", shuffled, chunk_size=256)  # several chunks
    with Recording(path) as rec:
        got = list(rec.events())
        window = list(rec.events(start_ns=T0 + 30 * MS, end_ns=T0 + 60 * MS))
        assert rec.summary.start_ns == T0 and rec.summary.end_ns == T0 + 199 * 3 * MS
    assert [(e.timestamp_ns, e.fields) for e in got] == [(e.timestamp_ns, e.fields) for e in events]
    assert [e.timestamp_ns for e in window] == [T0 + k * 3 * MS for k in range(10, 20)]


# ---------------------------------------------------------------------------------------
# screen URIs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("episode_path", "uri", "expected"),
    [
        (None, "x.mkv", "x.mkv"),
        ("x.mcap", "x.mkv", "x.mkv"),
        ("sub/x.mcap", "x.mkv", "sub/x.mkv"),
        ("a/b/x.mcap", "x.mkv", "a/b/x.mkv"),
        ("sub/x.mcap", "videos/x.mkv", "sub/videos/x.mkv"),
        ("sub/x.mcap", "videos\\x.mkv", "sub/videos/x.mkv"),
        ("sub/x.mcap", "../videos/x.mkv", "videos/x.mkv"),
        ("sub/x.mcap", "./x.mkv", "sub/x.mkv"),
    ],
)
def test_relative_screen_uris_are_rebased_onto_the_dataset_root(
    tmp_path: Path, episode_path: str | None, uri: str, expected: str
) -> None:
    path = write_owa(tmp_path / "x.mcap", [screen(T0, uri, 0), screen(T0 + 50 * MS, uri, 50 * MS)])
    with Recording(path, episode_path=episode_path) as rec:
        got = list(rec.events())
        assert rec.stats.media_uris == {expected}
    assert [e.fields["media_ref"] for e in got] == [
        {"uri": expected, "pts_ns": 0},
        {"uri": expected, "pts_ns": 50 * MS},
    ]
    for e in got:
        assert orjson.loads(e.data) == e.fields  # data re-serialized with the new URI
        assert (e.fields["utc_ns"], e.fields["shape"]) == (e.timestamp_ns, [4, 4])


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64,iVBORw0KGgo=",
        "https://example.com/videos/x.mkv",
        "file:///data/x.mkv",
        "/data/x.mkv",
        "C:\\rec\\x.mkv",
    ],
)
def test_data_and_absolute_uris_are_kept(tmp_path: Path, uri: str) -> None:
    path = write_owa(tmp_path / "x.mcap", [screen(T0, uri)])
    [event] = read_all(path, episode_path="sub/x.mcap")
    assert event.fields["media_ref"]["uri"] == uri


# ---------------------------------------------------------------------------------------
# unknown message types
# ---------------------------------------------------------------------------------------
def test_unknown_message_type_is_kept_verbatim_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "custom.mcap"
    with OWAMcapWriter(path) as writer:
        writer.write_message(
            current_message("keyboard", {"event_type": "press", "vk": 65}), topic="keyboard", timestamp=T0
        )
        for i in range(3):
            writer.write_message(Thing(value=i, label="명령 ✓"), topic="custom", timestamp=T0 + (i + 1) * MS)
    with Recording(path) as rec:
        got = list(rec.events())
        assert rec.summary.topics == {"keyboard": "desktop/KeyboardEvent", "custom": "custom/Thing"}
        assert rec.summary.topic_counts == {"keyboard": 1, "custom": 3}
        assert dict(rec.stats.unknown_types) == {"custom/Thing": 3}
        assert dict(rec.stats.messages) == {"keyboard": 1, "custom": 3}
    custom = [e for e in got if e.topic == "custom"]
    assert [e.message_type for e in custom] == ["custom/Thing"] * 3
    assert [e.fields for e in custom] == [{"value": i, "label": "명령 ✓"} for i in range(3)]
    assert [e.data for e in custom] == [
        Thing(value=i, label="명령 ✓").model_dump_json().encode() for i in range(3)
    ]


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
def assert_error(exc: pytest.ExceptionInfo[RecordingError], path: Path, *parts: str) -> None:
    message = str(exc.value)
    assert exc.value.path == str(path)
    assert message.startswith(f"{path}: ")
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mcap"
    path.write_bytes(b"")
    with pytest.raises(RecordingError) as exc:
        Recording(path)
    assert_error(exc, path, "empty file")


@pytest.mark.parametrize("data", [b"not an mcap file at all", b"\x89MCA", b"PK\x03\x04" + bytes(100)])
def test_not_mcap_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "junk.mcap"
    path.write_bytes(data)
    with pytest.raises(RecordingError) as exc:
        Recording(path)
    assert_error(exc, path, "not an MCAP file")


def test_only_magic_bytes(tmp_path: Path) -> None:
    path = tmp_path / "magic.mcap"
    path.write_bytes(b"\x89MCAP0\r\n")
    with pytest.raises(RecordingError) as exc:
        Recording(path)
    assert_error(exc, path, "unreadable MCAP header")


def test_non_owa_profile(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "ros.mcap", [(T0, b'{"event_type":"press","vk":65}')], profile="ros2")
    with pytest.raises(RecordingError) as exc:
        Recording(path)
    assert_error(exc, path, "not an OWAMcap recording", "'ros2'", "'owa'")


def test_non_json_message_encoding(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "proto.mcap", [(T0, b"\x08\x01")], encoding="protobuf")
    with pytest.raises(RecordingError) as exc:
        Recording(path)
    assert_error(exc, path, "'keyboard'", "'protobuf'", "'json'")


def test_invalid_json_names_the_message(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "badjson.mcap",
        [
            (T0, b'{"event_type":"press","vk":65}'),
            (T0 + 5, b'{"event_type":"press","vk":'),
            (T0 + 9, b'{"event_type":"release","vk":65}'),
        ],
    )
    with Recording(path) as rec:
        events = rec.events()
        assert next(events).fields == {"event_type": "press", "vk": 65}
        with pytest.raises(RecordingError) as exc:
            next(events)
    assert_error(exc, path, "message #1", "'keyboard'", f"log time {T0 + 5} ns", "not valid JSON")


def test_json_array_instead_of_object(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "array.mcap", [(T0, b'{"event_type":"press","vk":65}'), (T0 + 1, b'["press", 65]')]
    )
    with pytest.raises(RecordingError) as exc:
        read_all(path)
    assert_error(exc, path, "message #1", f"log time {T0 + 1} ns", "not a JSON object")


def test_log_time_zero_names_the_message(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "zero.mcap",
        [(T0, b'{"event_type":"press","vk":65}'), (0, b'{"event_type":"release","vk":65}')],
    )
    with pytest.raises(RecordingError) as exc, Recording(path) as rec:
        rec.census()  # times are checked on what is read, not on what the Statistics record claims
    assert_error(
        exc,
        path,
        "outside the recording's span",
        "message #0 (topic 'keyboard') has log time 0 ns",
        "2000-01-01",
    )
    with pytest.raises(RecordingError, match="message #0 .* has log time 0 ns"):
        read_all(path)


def test_log_time_years_ahead_names_the_message(tmp_path: Path) -> None:
    ahead = T0 + 5 * 365 * 24 * 3600 * NS
    msgs = [(T0 + i * MS, b'{"event_type":"press","vk":65}') for i in range(4)] + [
        (ahead, b'{"event_type":"release","vk":65}')
    ]
    path = write_raw(tmp_path / "ahead.mcap", msgs)
    with pytest.raises(RecordingError) as exc:
        read_all(path)
    assert_error(
        exc,
        path,
        "outside the recording's span",
        f"message #4 (topic 'keyboard') has log time {ahead} ns",
        "days after",
    )


def test_a_long_but_continuous_recording_is_fine(tmp_path: Path) -> None:
    # 8 days of messages every 12 h: longer than the span limit, but without a gap longer than it,
    # so no log time is outside the real span (was: "0 log time(s) outside the recording's span").
    times = [T0 + h * 3600 * NS for h in range(0, 8 * 24 + 1, 12)]
    path = write_raw(tmp_path / "long.mcap", [(t, b'{"event_type":"press","vk":65}') for t in times])
    assert [e.timestamp_ns for e in read_all(path)] == times


def test_an_outlier_after_a_long_recording_is_still_found(tmp_path: Path) -> None:
    times = [T0 + h * 3600 * NS for h in range(0, 8 * 24 + 1, 12)]
    ahead = times[-1] + 30 * 24 * 3600 * NS
    path = write_raw(
        tmp_path / "long.mcap", [(t, b'{"event_type":"press","vk":65}') for t in [*times, ahead]]
    )
    with pytest.raises(RecordingError) as exc, Recording(path) as rec:
        rec.census()
    assert_error(
        exc,
        path,
        "outside the recording's span",
        f"message #{len(times)} (topic 'keyboard') has log time {ahead} ns",
    )


# ---------------------------------------------------------------------------------------
# truncated files
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Event], bytes]:
    events, _ = session_events(SessionSpec(duration_s=2.0, seed=2))
    path = write_owa(tmp_path_factory.mktemp("chunked") / "chunked.mcap", events, chunk_size=2048)
    return read_all(path), path.read_bytes()


def test_truncated_file_is_recovered_from_its_complete_chunks(
    tmp_path: Path, chunked: tuple[list[Event], bytes]
) -> None:
    original, data = chunked
    path = tmp_path / "cut.mcap"
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(TruncatedRecordingWarning) as record:
        rec = Recording(path)
    with rec:
        got = list(rec.events())
        assert rec.summary.truncated is True
        assert rec.stats.recovered_messages == len(got) == rec.summary.message_count
        assert rec.summary.start_ns == got[0].timestamp_ns and rec.summary.end_ns == got[-1].timestamp_ns
        assert sum(rec.summary.topic_counts.values()) == len(got)
        window = list(
            rec.events(topics=["screen"], start_ns=got[10].timestamp_ns, end_ns=got[-10].timestamp_ns)
        )
    [warning] = record
    text = str(warning.message)
    assert str(path) in text and f"recovered {len(got)} messages" in text
    assert 0 < len(got) < len(original)
    # the messages of the complete chunks: written in time order, so a prefix of the original
    assert got == original[: len(got)]
    times = [e.timestamp_ns for e in got]
    assert times == sorted(times)
    assert window == [
        e for e in got[10:-10] if e.topic == "screen" and e.timestamp_ns < got[-10].timestamp_ns
    ]
    assert window


def test_truncated_file_is_an_error_when_asked(tmp_path: Path, chunked: tuple[list[Event], bytes]) -> None:
    _, data = chunked
    path = tmp_path / "cut.mcap"
    path.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RecordingError) as exc:
            Recording(path, on_truncated="error")
    assert_error(exc, path, "truncated MCAP file", "runs past the end of the file")


def test_truncated_file_without_a_complete_chunk(tmp_path: Path, chunked: tuple[list[Event], bytes]) -> None:
    _, data = chunked
    path = tmp_path / "cut.mcap"
    path.write_bytes(data[:120])  # header and the start of the first chunk
    with pytest.raises(RecordingError) as exc:
        Recording(path)
    assert_error(exc, path, "truncated MCAP file with no complete record to recover")


@pytest.fixture(scope="module")
def small_chunked(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Event], bytes]:
    path = write_owa(tmp_path_factory.mktemp("small") / "small.mcap", keys(40), chunk_size=300)
    return read_all(path), path.read_bytes()


def test_every_cut_point_is_recovered_or_a_recording_error(small_chunked: tuple[list[Event], bytes]) -> None:
    original, data = small_chunked
    outcomes = set()
    for cut in range(1, len(data), 5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncatedRecordingWarning)
            try:
                with Recording("cut.mcap", stream=io.BytesIO(data[:cut])) as rec:
                    got = list(rec.events())
            except RecordingError as exc:
                assert exc.path == "cut.mcap" and exc.problem
                outcomes.add("error")
                continue
        outcomes.add(len(got))
        assert got == original[: len(got)], cut
    assert "error" in outcomes
    assert len(outcomes - {"error"}) >= 3  # several chunk boundaries recovered


def test_corrupted_bytes_give_a_recording_error_not_a_crash(small_chunked: tuple[list[Event], bytes]) -> None:
    _, data = small_chunked
    errors = 0
    for pos in range(8, len(data), 9):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncatedRecordingWarning)
            try:
                with Recording("damaged.mcap", stream=io.BytesIO(bytes(damaged))) as rec:
                    list(rec.events())
            except RecordingError as exc:
                assert str(exc).startswith("damaged.mcap: ")
                errors += 1
    assert errors > 0


# ---------------------------------------------------------------------------------------
# the real recording
# ---------------------------------------------------------------------------------------
def test_real_recording(shared_recording: Path) -> None:
    with Recording(shared_recording, episode_path="real/0.5.1.mcap") as rec:
        got = list(rec.events())
        s = rec.summary
        assert rec.stats.unknown_types == {} and rec.stats.legacy_upgraded == {}
        assert rec.stats.media_uris == {"real/0.5.1.mkv"}
    assert s.writer.startswith("mcap-owa-support 0.5.1")
    assert s.message_count == len(got) == 267
    assert s.topics == {
        "window": "desktop/WindowInfo",
        "keyboard/state": "desktop/KeyboardState",
        "mouse/state": "desktop/MouseState",
        "screen": "desktop/ScreenCaptured",
        "keyboard": "desktop/KeyboardEvent",
        "mouse": "desktop/MouseEvent",
    }
    assert s.topic_counts == {
        "window": 4,
        "keyboard/state": 4,
        "mouse/state": 4,
        "screen": 17,
        "keyboard": 20,
        "mouse": 218,
    }
    assert {e.topic for e in got} == set(s.topics)
    times = [e.timestamp_ns for e in got]
    assert times == sorted(times) and (times[0], times[-1]) == (s.start_ns, s.end_ns)
    assert 3.0e9 < s.end_ns - s.start_ns < 3.3e9
    window = next(e for e in got if e.topic == "window")
    assert window.fields["title"] == "*test.txt - 메모장"
    screens = [e for e in got if e.topic == "screen"]
    assert screens[0].fields["media_ref"] == {"uri": "real/0.5.1.mkv", "pts_ns": 0}
    assert screens[0].fields["source_shape"] == [1025, 1017]
    pts = [e.fields["media_ref"]["pts_ns"] for e in screens]
    assert pts == sorted(pts)


def _mcap_order(path: Path) -> list[tuple[int, str, bytes]]:
    """mcap's own reader, log-time order: (log time, topic, payload)."""
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        return [
            (m.log_time, c.topic, m.data) for _, c, m in make_reader(f).iter_messages(log_time_order=True)
        ]


def test_the_reader_equals_mcaps_reader_on_every_recording(corpus: Path, current_corpus: Path) -> None:
    """Message for message, ties included: what the chunk-level reader gives is mcap's log-time order
    (screen payloads compared where the reader does not rewrite them)."""
    paths = sorted(corpus.rglob("*.mcap")) + sorted(current_corpus.rglob("*.mcap"))
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "owamcap-0.5.1" / "0.5.1.mcap"
    if shared.exists():
        paths.append(shared)
    for path in paths:
        expected = _mcap_order(path)
        with Recording(path) as rec:
            got = [(e.timestamp_ns, e.topic, e.data) for e in rec.events()]
            census = rec.census()
        assert [(t, topic) for t, topic, _ in got] == [(t, topic) for t, topic, _ in expected], path
        same = [g == e for g, e in zip(got, expected, strict=True) if g[1] != "screen"]
        assert all(same), path
        assert census.message_count == len(expected)
        assert census.topic_counts == dict(Counter(topic for _, topic, _ in expected)) | {
            t: 0 for t in census.topic_counts if t not in {topic for _, topic, _ in expected}
        }


def test_seen_counts_every_topic_read_in_a_window_before_the_topic_filter(current_corpus: Path) -> None:
    path = current_corpus / "episode_000.mcap"
    expected = _mcap_order(path)
    start, end = expected[100][0], expected[-100][0]
    seen: Counter[str] = Counter()
    with Recording(path) as rec:
        kept = list(rec.events(topics=["keyboard"], start_ns=start, end_ns=end, seen=seen))
    window = [topic for t, topic, _ in expected if start <= t < end]
    assert seen == Counter(window) and len(kept) == window.count("keyboard") > 0


# ---------------------------------------------------------------------------------------
# moves=True: pure raw moves as Move tuples
# ---------------------------------------------------------------------------------------
def _flat(items: Iterable[Any]) -> list[Any]:
    """A read's items with the lists of Moves flattened (each list non-empty)."""
    out: list[Any] = []
    for e in items:
        if type(e) is list:
            assert e
            out += e
        else:
            out.append(e)
    return out


def _read(path: Path, **kwargs: Any) -> list[Event]:
    """Every event of a read, with Move tuples made into their Events."""
    with Recording(path) as rec:
        return [move_event(e) if type(e) is tuple else e for e in _flat(rec.events(**kwargs))]


def _rows(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.topic, e.timestamp_ns, e.message_type, e.data, e.fields, e.index) for e in events]


def test_moves_are_the_same_events_as_tuples(session: tuple[list[RawEvent], Path]) -> None:
    _, path = session
    with Recording(path) as rec:
        runs = list(rec.events(moves=True))
    assert any(type(e) is list and len(e) > 1 for e in runs)  # consecutive moves come together
    items = _flat(runs)
    tuples = [e for e in items if type(e) is tuple]
    assert tuples and all(is_pure_move(m[4]) for m in tuples)
    assert not [e for e in items if type(e) is Event and e.topic == "mouse/raw" and is_pure_move(e.fields)]
    assert _rows(_read(path, moves=True)) == _rows(_read(path))
    for kwargs in ({"topics": ["mouse/raw", "screen"]}, {"start_ns": T0 + 500 * MS, "end_ns": T0 + 2 * NS}):
        assert _rows(_read(path, moves=True, **kwargs)) == _rows(_read(path, **kwargs))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"last_x":1,"last_y":-2,"us_flags":0,"button_flags":0,"button_data":0}',
        b'{"last_x":1}',  # missing fields count as 0: a pure move
        b"{}",
        b'{"last_x":1.5,"last_y":0}',  # not an int: passes as an event
        b'{"last_x":true,"last_y":0}',
        b'{"last_x":"3","last_y":0}',
        b'{"last_x":2147483649,"last_y":0}',  # beyond +-2**31: not summed
        b'{"last_x":-2147483648,"last_y":2147483648}',
        b'{"last_x":1,"last_y":1,"button_flags":1}',
        b'{"last_x":1,"last_y":1,"us_flags":1}',
        b'{"last_x":1,"last_y":1,"button_flags":0.0,"us_flags":false}',
    ],
)
def test_moves_take_exactly_the_pure_moves(tmp_path: Path, payload: bytes) -> None:
    path = write_raw(
        tmp_path / "raw.mcap",
        [(T0 + i * MS, payload) for i in range(3)],
        topic="mouse/raw",
        schema="desktop/RawMouseEvent",
    )
    with Recording(path) as rec:
        items = _flat(rec.events(moves=True))
    pure = is_pure_move(orjson.loads(payload))
    assert [type(e) is tuple for e in items] == [pure] * 3
    assert _rows(_read(path, moves=True)) == _rows(_read(path))
