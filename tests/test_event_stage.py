"""Tests of owa_event.stage: recordings -> event rows, with an exact account of every message."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from mcap.writer import Writer as McapWriter
from mcap_owa.highlevel import McapMessage, OWAMcapWriter
from owa.core import MESSAGES, OWAMessage

from owa_builders.demo.recordings import MS, NS, RawEvent, SessionSpec, session_events, write_recording
from owa_event.account import RecordingReport
from owa_event.config import EventConfig
from owa_event.errors import (
    MissingMediaWarning,
    RecordingError,
    SkippedFileWarning,
    TruncatedRecordingWarning,
)
from owa_event.events import INPUT_TOPICS, TOPIC_TYPES, Event
from owa_event.intervals import Inactivity, IntervalSelection, StartStopKey
from owa_event.pipeline import RecordingRef, convert, kept_events
from owa_event.reader import Recording
from owa_event.stage import EVENT_SCHEMA, EventStage

EVENT_COLUMNS = tuple(EVENT_SCHEMA.names)

F8, F9 = 0x77, 0x78
CORPUS_FILES = [
    "train/episode_000.mcap",
    "test/episode_001.mcap",
    "train/episode_002.mcap",
    "test/episode_003.mcap",
]


def rows_of(
    root: Path, episode_path: str, config: EventConfig, media_exists: Any = None, batch_size: int = 8192
) -> tuple[list[dict[str, Any]], RecordingReport]:
    """The rows of one recording through EventStage + convert (on_bad_file applied), and its report."""
    report = RecordingReport(episode_path)
    stage = EventStage(config, batch_size=batch_size)
    if media_exists is not None:
        stage.media_exists = media_exists
    ref = RecordingRef(str(root / episode_path), episode_path, str(root))
    rows = [row for batch in convert(stage, ref, report) for row in batch.to_pylist()]
    return rows, report


def read(path: Path, episode_path: str) -> tuple[list[Event], Any]:
    with Recording(path, episode_path=episode_path) as rec:
        return list(rec.events()), rec.summary


# ---------------------------------------------------------------------------------------
# default config: lossless
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("episode_path", CORPUS_FILES)
def test_default_config_keeps_every_message(corpus: Path, episode_path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingMediaWarning)
        rows, report = rows_of(corpus, episode_path, EventConfig())
    events, summary = read(corpus / episode_path, episode_path)
    assert len(rows) == summary.message_count == len(events)
    assert report.unaccounted() == {}
    assert report.account.dropped == {} and report.account.merged == {}
    assert dict(report.account.messages_in) == summary.topic_counts == dict(report.account.out)
    assert report.intervals == 1 and report.kept_ns == summary.end_ns - summary.start_ns + 1
    assert report.missing_media == [] and report.skipped is None and report.recovered_messages is None
    for row, event in zip(rows, events):
        assert set(row) == set(EVENT_COLUMNS)
        assert row["episode_path"] == episode_path and row["interval_idx"] == 0
        assert (row["topic"], row["timestamp_ns"], row["message_type"]) == (
            event.topic,
            event.timestamp_ns,
            event.message_type,
        )
        msg = McapMessage.model_validate_json(row["mcap_message"])
        assert (msg.topic, msg.timestamp, msg.message_type) == (
            event.topic,
            event.timestamp_ns,
            event.message_type,
        )
        assert orjson.loads(msg.message) == event.fields
    screens = [
        orjson.loads(McapMessage.model_validate_json(r["mcap_message"]).message)
        for r in rows
        if r["topic"] == "screen"
    ]
    assert {s["media_ref"]["uri"] for s in screens} == {episode_path.replace(".mcap", ".mkv")}


def test_legacy_files_report_their_upgrades(corpus: Path) -> None:
    _, report = rows_of(corpus, "test/episode_003.mcap", EventConfig())
    events, summary = read(corpus / "test/episode_003.mcap", "test/episode_003.mcap")
    assert dict(report.legacy_upgraded) == {summary.topics[t]: n for t, n in summary.topic_counts.items()}
    assert sum(report.legacy_upgraded.values()) == len(events)
    _, current = rows_of(corpus, "train/episode_000.mcap", EventConfig())
    assert current.legacy_upgraded == {}


def test_legacy_upgrades_are_counted_once_with_an_interval_selection(corpus: Path) -> None:
    # The selection reads the input topics once more; they must not be counted twice.
    config = EventConfig(interval=Inactivity(input_timeout_s=100.0))
    rows, report = rows_of(corpus, "test/episode_003.mcap", config)
    _, summary = read(corpus / "test/episode_003.mcap", "test/episode_003.mcap")
    assert len(rows) == summary.message_count
    assert dict(report.legacy_upgraded) == {summary.topics[t]: n for t, n in summary.topic_counts.items()}


# ---------------------------------------------------------------------------------------
# rates + topics + intervals: the account balances exactly
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 6 s session with F8/F9 start/stop presses (two intervals, the second runs to the end),
    no input between 3.0 s and 3.7 s (an inactive stretch) and a held, auto-repeating key at 5 s."""
    events, pts = session_events(SessionSpec(duration_s=6.0, seed=5))
    t0 = events[0].timestamp_ns
    gap = (t0 + 3 * NS, t0 + 3_700 * MS)
    events = [e for e in events if not (e.topic in INPUT_TOPICS and gap[0] <= e.timestamp_ns < gap[1])]
    for t, vk in [(1.0, F8), (2.5, F9), (4.0, F8)]:
        at = t0 + int(t * NS) + 7
        events += [
            RawEvent("keyboard", at, {"event_type": "press", "vk": vk}),
            RawEvent("keyboard", at + 50 * MS, {"event_type": "release", "vk": vk}),
        ]
    # a held arrow key with OS auto-repeat presses
    held = t0 + 5 * NS + 3
    events += [
        RawEvent("keyboard", held + k * 33 * MS, {"event_type": "press", "vk": 0x25}) for k in range(12)
    ]
    events.append(RawEvent("keyboard", held + 12 * 33 * MS, {"event_type": "release", "vk": 0x25}))
    events.sort(key=lambda e: e.timestamp_ns)
    root = tmp_path_factory.mktemp("keyed")
    write_recording(root / "sub" / "keyed.mcap", events, video=(pts, 64, 48))
    return root, "sub/keyed.mcap"


RATES = {"screen": 5, "mouse": 20, "mouse/raw": 30, "keyboard": 10, "window": 0.5}
KEEP = ["screen", "mouse", "mouse/raw", "keyboard", "window"]
SELECTIONS: dict[str, IntervalSelection] = {
    "start_stop_key": StartStopKey(start_vk=F8, stop_vk=F9),
    "inactivity": Inactivity(input_timeout_s=0.5, screen_timeout_s=1.0),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_rates_topics_and_intervals_balance_exactly(keyed: tuple[Path, str], name: str) -> None:
    root, episode_path = keyed
    selection = SELECTIONS[name]
    config = EventConfig(rate_settings=RATES, keep_topics=KEEP, interval=selection)
    config.validate()
    rows, report = rows_of(root, episode_path, config)
    events, summary = read(root / episode_path, episode_path)
    intervals = selection.select(events, summary.start_ns, summary.end_ns)
    if name == "start_stop_key":
        assert len(intervals) == 2 and intervals[1][1] == summary.end_ns + 1

    # every message is a row, or dropped / merged under a named rule, per topic
    assert report.unaccounted() == {}
    assert dict(report.account.messages_in) == summary.topic_counts
    for topic, n in summary.topic_counts.items():
        dropped = sum(c[topic] for c in report.account.dropped.values())
        assert n == report.account.out[topic] + dropped + report.account.merged[topic], topic
    assert report.account.out == Counter(r["topic"] for r in rows)
    assert report.account.dropped["topic_not_kept"] == {
        "keyboard/state": summary.topic_counts["keyboard/state"],
        "mouse/state": summary.topic_counts["mouse/state"],
    }
    assert report.account.dropped["outside_intervals"]  # the selection removed something
    assert report.account.dropped["rate_limit"]["screen"] > 0
    assert report.account.dropped["mouse_latest_per_period"]["mouse"] > 0
    assert report.account.merged["mouse/raw"] > 0
    assert report.intervals == len(intervals) > 1
    assert report.kept_ns == sum(end - start for start, end in intervals)
    assert {r["topic"] for r in rows} <= set(KEEP)

    # rows lie in their interval, in time order per interval
    for row in rows:
        start, end = intervals[row["interval_idx"]]
        assert start <= row["timestamp_ns"] < end
    assert [r["interval_idx"] for r in rows] == sorted(r["interval_idx"] for r in rows)
    for idx in range(len(intervals)):
        times = [r["timestamp_ns"] for r in rows if r["interval_idx"] == idx]
        assert times == sorted(times) and times

    # raw mouse displacement inside the intervals is preserved exactly, per interval
    def raw(fields_list: list[dict[str, Any]]) -> tuple[int, int]:
        return sum(f["last_x"] for f in fields_list), sum(f["last_y"] for f in fields_list)

    for idx, (start, end) in enumerate(intervals):
        source = [e.fields for e in events if e.topic == "mouse/raw" and start <= e.timestamp_ns < end]
        out = [
            orjson.loads(McapMessage.model_validate_json(r["mcap_message"]).message)
            for r in rows
            if r["topic"] == "mouse/raw" and r["interval_idx"] == idx
        ]
        assert raw(out) == raw(source)
        assert len(out) < len(source)
    # nothing outside the kept topics, and nothing of a kept topic outside the intervals
    outside = Counter(
        e.topic for e in events if e.topic in KEEP and not any(s <= e.timestamp_ns < t for s, t in intervals)
    )
    assert report.account.dropped["outside_intervals"] == +outside


def test_keyboard_autorepeat_is_dropped_and_counted(keyed: tuple[Path, str]) -> None:
    root, episode_path = keyed
    events, _ = read(root / episode_path, episode_path)
    rows, report = rows_of(root, episode_path, EventConfig(rate_settings={"keyboard": 10}))
    held: set[int] = set()
    repeats = 0
    for e in events:
        if e.topic == "keyboard":
            if e.fields["event_type"] == "press":
                repeats += e.fields["vk"] in held
                held.add(e.fields["vk"])
            else:
                held.discard(e.fields["vk"])
    assert repeats >= 11
    assert report.account.dropped == {"keyboard_autorepeat": Counter(keyboard=repeats)}
    assert report.unaccounted() == {}
    assert len(rows) == len(events) - repeats


def test_interval_dict_form_gives_the_same_rows(keyed: tuple[Path, str]) -> None:
    root, episode_path = keyed
    a, _ = rows_of(root, episode_path, EventConfig(interval=StartStopKey(start_vk=F8, stop_vk=F9)))
    b, _ = rows_of(
        root, episode_path, EventConfig(interval={"type": "start_stop_key", "start_vk": F8, "stop_vk": F9})
    )
    assert a == b and {r["interval_idx"] for r in a} == {0, 1}


@pytest.mark.parametrize(
    "config",
    [
        EventConfig(),
        EventConfig(rate_settings=RATES, keep_topics=KEEP, interval=SELECTIONS["start_stop_key"]),
    ],
    ids=["default", "resampled"],
)
def test_event_batches_give_the_same_rows(keyed: tuple[Path, str], config: EventConfig) -> None:
    root, episode_path = keyed
    rows, report = rows_of(root, episode_path, config)
    batch_report = RecordingReport(episode_path)
    stage = EventStage(config, batch_size=100)
    batches = list(
        stage.batches(RecordingRef(str(root / episode_path), episode_path, str(root)), batch_report)
    )
    episodes = len({r["interval_idx"] for r in rows})
    assert -(-len(rows) // 100) <= len(batches) <= -(-len(rows) // 100) + episodes - 1 and len(batches) > 1
    for batch in batches:  # full batches of at most 100 rows, never two episodes in one
        assert batch.schema == EVENT_SCHEMA and batch.num_rows <= 100
        assert len(set(batch.column("interval_idx").to_pylist())) == 1
    flat = [row for batch in batches for row in batch.to_pylist()]
    assert flat == rows
    assert batch_report.account == report.account


# ---------------------------------------------------------------------------------------
# missing media, bad files, unknown types
# ---------------------------------------------------------------------------------------
def test_missing_video_warns_but_builds_every_row(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copy(corpus / "train/episode_000.mcap", tmp_path / "sub" / "episode_000.mcap")  # no .mkv beside it
    with pytest.warns(MissingMediaWarning) as record:
        rows, report = rows_of(tmp_path, "sub/episode_000.mcap", EventConfig())
    _, summary = read(tmp_path / "sub" / "episode_000.mcap", "sub/episode_000.mcap")
    assert len(rows) == summary.message_count
    assert report.missing_media == ["sub/episode_000.mkv"]
    assert report.unaccounted() == {}
    assert any("sub/episode_000.mkv" in str(w.message) for w in record)
    assert "missing video: sub/episode_000.mkv" in report.summary_line()


def test_media_exists_hook_is_used(corpus: Path) -> None:
    seen: list[tuple[str, str]] = []

    def exists(root: str, uri: str) -> bool:
        seen.append((root, uri))
        return True

    rows, report = rows_of(corpus, "test/episode_001.mcap", EventConfig(), media_exists=exists)
    assert seen == [(str(corpus), "test/episode_001.mkv")]
    assert report.missing_media == []


def write_bad_json(path: Path) -> Path:
    with path.open("wb") as f:
        writer = McapWriter(f)
        writer.start(profile="owa", library="test")
        schema = writer.register_schema(name="desktop/KeyboardEvent", encoding="jsonschema", data=b"{}")
        channel = writer.register_channel(topic="keyboard", message_encoding="json", schema_id=schema)
        t0 = 1_748_854_800 * NS
        for i in range(10):
            data = b'{"event_type":"press","vk":65}' if i != 7 else b'{"event_type":'
            writer.add_message(channel, log_time=t0 + i * MS, data=data, publish_time=t0)
        writer.finish()
    return path


@pytest.mark.parametrize("kind", ["bad_json", "empty", "not_mcap"])
def test_bad_file_is_skipped_whole(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.mcap"
    if kind == "bad_json":
        write_bad_json(path)
    else:
        path.write_bytes(b"" if kind == "empty" else b"hello world")
    with pytest.warns(SkippedFileWarning) as record:
        rows, report = rows_of(tmp_path, "bad.mcap", EventConfig(on_bad_file="skip"))
    assert rows == []  # nothing of it, not even the good messages before the bad one
    assert report.skipped is not None and str(path) in report.skipped
    assert str(path) in str(record[0].message)
    assert "SKIPPED" in report.summary_line()
    if kind == "bad_json":
        assert "message #7" in report.skipped


def test_bad_file_is_an_error_by_default(tmp_path: Path) -> None:
    path = write_bad_json(tmp_path / "bad.mcap")
    with pytest.raises(RecordingError) as exc:
        rows_of(tmp_path, "bad.mcap", EventConfig())
    assert str(path) in str(exc.value) and "message #7" in str(exc.value)


def test_truncated_file_is_recovered_or_skipped(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "train/episode_000.mcap").read_bytes()
    (tmp_path / "cut.mcap").write_bytes(data[: len(data) * 2 // 3])
    with pytest.warns(TruncatedRecordingWarning):
        rows, report = rows_of(
            tmp_path, "cut.mcap", EventConfig(on_bad_file="skip"), media_exists=lambda root, uri: True
        )
    assert report.recovered_messages == len(rows) > 0
    assert report.skipped is None and report.unaccounted() == {}
    with pytest.warns(SkippedFileWarning):
        rows, report = rows_of(tmp_path, "cut.mcap", EventConfig(on_bad_file="skip", on_truncated="error"))
    assert rows == [] and "truncated" in (report.skipped or "")


class Thing(OWAMessage):
    _type: ClassVar[str] = "custom/Thing"
    value: int


def test_unknown_types_are_counted_and_kept_as_rows(tmp_path: Path) -> None:
    events, _ = session_events(SessionSpec(duration_s=1.0, seed=9))
    path = tmp_path / "custom.mcap"
    with OWAMcapWriter(path) as writer:
        for i, e in enumerate(events):
            if e.topic != "screen":
                writer.write_message(
                    MESSAGES[TOPIC_TYPES[e.topic]](**e.fields), topic=e.topic, timestamp=e.timestamp_ns
                )
            if i % 10 == 0:
                writer.write_message(Thing(value=i), topic="custom", timestamp=e.timestamp_ns + 1)
    n_custom = (len(events) + 9) // 10
    for config in (
        EventConfig(),
        EventConfig(rate_settings={"custom": 1000, "mouse": 30}, interval=Inactivity(input_timeout_s=10.0)),
    ):
        rows, report = rows_of(tmp_path, "custom.mcap", config)
        custom = [r for r in rows if r["topic"] == "custom"]
        assert len(custom) == n_custom
        assert {r["message_type"] for r in custom} == {"custom/Thing"}
        assert [orjson.loads(McapMessage.model_validate_json(r["mcap_message"]).message) for r in custom] == [
            {"value": i} for i in range(0, len(events), 10)
        ]
        assert dict(report.unknown_types) == {"custom/Thing": n_custom}
        assert report.unaccounted() == {}
        assert "unknown message types kept verbatim" in report.summary_line()


def test_kept_events_yields_interval_and_event(keyed: tuple[Path, str]) -> None:
    root, episode_path = keyed
    report = RecordingReport(episode_path)
    ref = RecordingRef(str(root / episode_path), episode_path, str(root))
    out = list(kept_events(ref, EventConfig(keep_topics=["keyboard"]), report))
    events, _ = read(root / episode_path, episode_path)
    assert out == [(0, e) for e in events if e.topic == "keyboard"]
    # what came in is counted; what was not kept is dropped by rule; what comes out is the caller's to count
    assert sum(report.account.messages_in.values()) == len(events)
    assert report.account.dropped_by("topic_not_kept") == sum(e.topic != "keyboard" for e in events)


def remote_rows(episode_path: str) -> list[dict[str, Any]]:
    ref = RecordingRef("memory://ds/" + episode_path, episode_path, "memory://ds")
    return [row for batch in convert(EventStage(), ref) for row in batch.to_pylist()]


def test_fsspec_paths_give_the_same_rows(corpus: Path) -> None:
    import fsspec

    episode_path = "test/episode_001.mcap"
    fs = fsspec.filesystem("memory")
    fs.pipe("/ds/" + episode_path, (corpus / episode_path).read_bytes())
    try:
        with pytest.warns(MissingMediaWarning):  # the video is not in memory://
            remote = remote_rows(episode_path)
        fs.pipe("/ds/test/episode_001.mkv", b"stand-in")
        with warnings.catch_warnings():
            warnings.simplefilter("error", MissingMediaWarning)
            again = remote_rows(episode_path)
    finally:
        fs.rm("/ds", recursive=True)
    local, _ = rows_of(corpus, episode_path, EventConfig())
    assert remote == local == again


# ---------------------------------------------------------------------------------------
# the columnar lossless path (no Event per message) == the Event path, byte for byte
# ---------------------------------------------------------------------------------------
def both_paths(
    root: Path, episode_path: str, batch_size: int = 8192
) -> list[tuple[list[Any], dict[str, Any]]]:
    """(rows, report dict) of the lossless config through the columnar path and the Event path."""
    out = []
    for columnar in (True, False):
        report = RecordingReport(episode_path)
        stage = EventStage(EventConfig(), batch_size=batch_size, columnar=columnar)
        stage.media_exists = lambda root, uri: True
        ref = RecordingRef(str(root / episode_path), episode_path, str(root))
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            batches = list(convert(stage, ref, report))
        assert all(b.schema == EVENT_SCHEMA and b.num_rows <= batch_size for b in batches)
        out.append(([row for b in batches for row in b.to_pylist()], report.to_dict()))
    return out


@pytest.mark.parametrize("episode_path", CORPUS_FILES)  # current, 0.5.0, 0.4.2 and 0.3.2 layouts
def test_columnar_rows_equal_event_rows(corpus: Path, episode_path: str) -> None:
    (fast, fast_report), (slow, slow_report) = both_paths(corpus, episode_path, batch_size=200)
    assert len(fast) > 400 and fast == slow  # bytes compared: mcap_message is binary
    assert fast_report == slow_report
    assert {r["topic"] for r in fast} >= {"screen", "mouse", "keyboard"}


def test_columnar_rows_equal_event_rows_on_current_recordings(current_corpus: Path) -> None:
    for path in sorted(current_corpus.glob("*.mcap")):
        (fast, fast_report), (slow, slow_report) = both_paths(current_corpus, path.name)
        assert fast and fast == slow and fast_report == slow_report


def test_columnar_rows_equal_event_rows_on_the_real_recording(shared_recording: Path) -> None:
    (fast, fast_report), (slow, slow_report) = both_paths(shared_recording.parent, shared_recording.name)
    assert len(fast) == 267 and fast == slow and fast_report == slow_report


def test_columnar_rows_equal_event_rows_on_truncated_and_unknown_types(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "train/episode_000.mcap").read_bytes()
    (tmp_path / "cut.mcap").write_bytes(data[: len(data) * 2 // 3])  # read record by record (stream mode)
    events, _ = session_events(SessionSpec(duration_s=1.0, seed=9))
    with OWAMcapWriter(tmp_path / "custom.mcap") as writer:
        for i, e in enumerate(events):
            writer.write_message(
                MESSAGES[TOPIC_TYPES[e.topic]](**e.fields), topic=e.topic, timestamp=e.timestamp_ns
            )
            if i % 10 == 0:
                writer.write_message(Thing(value=i), topic="custom", timestamp=e.timestamp_ns + 1)
    for name in ("cut.mcap", "custom.mcap"):
        (fast, fast_report), (slow, slow_report) = both_paths(tmp_path, name, batch_size=64)
        assert fast and fast == slow and fast_report == slow_report


def write_payloads(path: Path, messages: list[tuple[int, bytes]], chunk_size: int = 1024) -> Path:
    """Arbitrary keyboard payloads with the plain mcap writer (small chunks: many batches)."""
    with path.open("wb") as f:
        writer = McapWriter(f, chunk_size=chunk_size)
        writer.start(profile="owa", library="test-writer")
        schema_id = writer.register_schema(name="desktop/KeyboardEvent", encoding="jsonschema", data=b"{}")
        channel = writer.register_channel(topic="keyboard", message_encoding="json", schema_id=schema_id)
        for log_time, data in messages:
            writer.add_message(channel, log_time=log_time, data=data, publish_time=log_time)
        writer.finish()
    return path


T0 = 1_748_854_800 * NS
AWKWARD_PAYLOADS = [
    b'{"event_type":"press","vk":65}',
    b'{ "event_type" :\t"press",\r\n"vk": 65 }\n',  # whitespace the JSON string must escape
    b'{"text":"a \\"quoted\\" \\\\ back\\\\slash \\n \\u0001 \\ud83d\\ude00"}',  # escapes kept as written
    '{"title":"Fenêtre – 日本語 😀 \u2028 \x7f"}'.encode(),  # raw UTF-8, U+2028, DEL
    b'{"nested":{"a":[1,2.5e10,-0.0,true,false,null]},"big":123456789012345678901234567890}',
]


def test_columnar_rows_equal_event_rows_on_awkward_payloads(tmp_path: Path) -> None:
    msgs = [(T0 + i * MS, AWKWARD_PAYLOADS[i % len(AWKWARD_PAYLOADS)]) for i in range(200)]
    write_payloads(tmp_path / "awkward.mcap", msgs)
    (fast, fast_report), (slow, slow_report) = both_paths(tmp_path, "awkward.mcap", batch_size=7)
    assert len(fast) == 200 and fast == slow and fast_report == slow_report
    for row, (t, data) in zip(fast, msgs, strict=True):
        assert McapMessage.model_validate_json(row["mcap_message"]).message == data
        assert row["timestamp_ns"] == t


@pytest.mark.parametrize(
    "bad",
    [
        (T0 + 150 * MS, b'{"event_type":"press","vk":'),  # not JSON
        (T0 + 150 * MS, b'["press", 65]'),  # not an object
        (T0 + 150 * MS, b'{"a":"\x01"}'),  # a raw control character in a string
        (0, b'{"event_type":"press","vk":65}'),  # log time 0
        (T0 + 400 * 24 * 3600 * NS, b'{"event_type":"press","vk":65}'),  # a jump of more than 7 days
        (2**63 + 5, b'{"event_type":"press","vk":65}'),  # beyond int64 (found by the fuzzer)
    ],
    ids=["invalid-json", "array", "control-character", "time-zero", "time-jump", "beyond-int64"],
)
def test_columnar_errors_equal_event_errors(tmp_path: Path, bad: tuple[int, bytes]) -> None:
    msgs = [(T0 + i * MS, b'{"event_type":"press","vk":65}') for i in range(300)] + [bad]
    write_payloads(tmp_path / "bad.mcap", msgs)
    errors = []
    for columnar in (True, False):
        stage = EventStage(EventConfig(), columnar=columnar)
        ref = RecordingRef(str(tmp_path / "bad.mcap"), "bad.mcap", str(tmp_path))
        with pytest.raises(RecordingError) as exc:
            list(convert(stage, ref))
        errors.append(str(exc.value))
    assert errors[0] == errors[1] and "bad.mcap" in errors[0] and "message #" in errors[0]
