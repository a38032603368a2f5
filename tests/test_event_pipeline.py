"""Tests of owa_event.pipeline: the shared front (topic fallbacks, topic warnings) and convert
(on_bad_file / on_missing_media, errors naming the file)."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import orjson
import pytest
from mcap.writer import Writer as McapWriter

from owa_binned.config import BinnedConfig
from owa_binned.stage import BinnedStage
from owa_builders.demo.recordings import SessionSpec, session_events, write_recording
from owa_event.account import RecordingReport
from owa_event.config import EventConfig
from owa_event.errors import RecordingError, SkippedFileWarning, TopicWarning
from owa_event.pipeline import RecordingRef, convert, kept_events
from owa_event.stage import EventStage

SPEC = SessionSpec(duration_s=2.0, seed=3)


def recording(tmp_path: Path, name: str, drop: set[str] = frozenset(), video: bool = True) -> RecordingRef:
    """A current-format recording without the topics in ``drop``."""
    events, pts = session_events(SPEC)
    events = [e for e in events if e.topic not in drop]
    path = write_recording(tmp_path / name, events, video=(pts, SPEC.width, SPEC.height) if video else None)
    return RecordingRef(str(path), name, str(tmp_path))


def kept(ref: RecordingRef, config: EventConfig) -> tuple[Counter[str], RecordingReport]:
    """The kept events per topic, and the report (what comes out is counted here, as a stage does)."""
    report = RecordingReport(ref.episode_path)
    topics = Counter(e.topic for _, e in kept_events(ref, config, report))
    for topic, n in topics.items():
        report.account.emit(topic, n)
    return topics, report


KEEP = ["screen", "keyboard", "mouse/raw"]


@pytest.mark.parametrize(
    ("layout", "drop", "served"),
    [
        ("mouse only", {"mouse/raw"}, "mouse"),
        ("raw only", {"mouse"}, "mouse/raw"),
        ("both", set(), "mouse/raw"),
    ],
)
def test_the_mouse_input_a_recording_has_is_kept(
    tmp_path: Path, layout: str, drop: set[str], served: str
) -> None:
    ref = recording(tmp_path, "rec.mcap", drop)
    config = EventConfig(
        keep_topics=KEEP, rate_settings={"mouse/raw": 20}, topic_fallbacks={"mouse/raw": "mouse"}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        topics, report = kept(ref, config)
    assert topics[served] > 0 and topics["keyboard"] > 0 and topics["screen"] > 0
    assert report.unaccounted() == {}
    if served == "mouse":
        assert (
            report.substitutions == {"mouse/raw": "mouse"}
            and "'mouse' served for 'mouse/raw'" in report.summary_line()
        )
        assert topics["mouse"] <= 2 * 20 + 10  # at the rate of the topic it stands for (moves), plus clicks
        assert [str(w.message) for w in caught if w.category is TopicWarning] == report.warnings
        assert report.warnings[0].startswith(
            f"{ref.episode_path}: has no 'mouse/raw' topic; its 'mouse' messages are kept in its place"
        )  # named relative to the dataset root: no local path in the report (and the build record)
        assert str(tmp_path) not in report.warnings[0]
    else:
        assert report.substitutions == {} and "mouse" not in topics and report.warnings == []


def test_no_fallback_then_a_warning_names_the_absent_topic(tmp_path: Path) -> None:
    ref = recording(tmp_path, "rec.mcap", {"mouse/raw"})
    with pytest.warns(TopicWarning, match=r"rec\.mcap: kept topic\(s\) 'mouse/raw' have no message"):
        topics, report = kept(ref, EventConfig(keep_topics=KEEP))
    assert "mouse" not in topics and report.account.dropped["topic_not_kept"]["mouse"] > 0


def test_a_filter_dropping_every_input_event_warns(tmp_path: Path) -> None:
    ref = recording(tmp_path, "rec.mcap")
    with pytest.warns(
        TopicWarning, match=r"rec\.mcap: the topic filter drops every input event .*'keyboard': \d+"
    ):
        kept(ref, EventConfig(keep_topics=["screen", "window"]))


def test_binned_substitute_takes_the_role_of_the_topic_it_stands_for(tmp_path: Path) -> None:
    ref = recording(tmp_path, "rec.mcap", {"mouse/raw"})
    config = BinnedConfig(
        keep_topics=["screen", "keyboard", "mouse/raw"], action_topics=["keyboard", "mouse/raw"]
    )
    report = RecordingReport("rec.mcap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TopicWarning)
        rows = [r for b in convert(BinnedStage(config), ref, report) for r in b.to_pylist()]
    actions = sum(len(r["actions"]) for r in rows)
    assert report.account.out["mouse"] > 0 and "not_binned" not in report.account.dropped
    assert (
        actions == sum(n for t, n in report.account.out.items() if t != "screen")
        and report.unaccounted() == {}
    )


def test_missing_video_keep_or_skip(tmp_path: Path) -> None:
    ref = recording(tmp_path, "rec.mcap", video=False)
    report = RecordingReport("rec.mcap")
    with pytest.warns(UserWarning, match="missing video rec.mkv"):
        rows = sum(b.num_rows for b in convert(EventStage(EventConfig()), ref, report))
    assert rows > 0 and report.missing_media == ["rec.mkv"] and report.skipped is None
    skipped = RecordingReport("rec.mcap")
    with pytest.warns(SkippedFileWarning, match=r"skipping recording .*rec\.mcap: its video is missing"):
        out = list(convert(EventStage(EventConfig(on_missing_media="skip")), ref, skipped))
    assert out == [] and skipped.skipped == "missing video: rec.mkv"
    assert skipped.unaccounted() == {} and skipped.account.dropped_by("recording_skipped") == rows


def test_errors_of_steps_that_do_not_know_the_file_are_named(tmp_path: Path) -> None:
    # orjson reads nesting it cannot write back: summing raw moves rewrites the last one of a period
    t0 = 1_748_854_800 * 10**9
    moves = [orjson.dumps({"last_x": 1, "last_y": 1}) for _ in range(3)]
    moves[-1] = b'{"last_x": 1, "last_y": 1, "deep": ' + b"[" * 300 + b"]" * 300 + b"}"
    path = tmp_path / "deep.mcap"
    with path.open("wb") as f:
        writer = McapWriter(f)
        writer.start(profile="owa", library="test-writer")
        schema = writer.register_schema(name="desktop/RawMouseEvent", encoding="jsonschema", data=b"{}")
        channel = writer.register_channel(topic="mouse/raw", message_encoding="json", schema_id=schema)
        for i, data in enumerate(moves):
            writer.add_message(channel, log_time=t0 + i, data=data, publish_time=t0 + i)
        writer.finish()
    ref = RecordingRef(str(path), "deep.mcap", str(tmp_path))
    with pytest.raises(RecordingError, match=r"deep\.mcap: .*cannot be written back as JSON"):
        list(convert(EventStage(EventConfig(rate_settings={"mouse/raw": 10})), ref))
    assert sum(b.num_rows for b in convert(EventStage(EventConfig()), ref)) == 3  # read verbatim: fine
