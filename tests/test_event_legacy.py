"""Tests of owa_event.legacy, and of reading every legacy writer layout back as the current format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from owa_builders.demo.recordings import (
    WRITER_VERSIONS,
    RawEvent,
    SessionSpec,
    session_events,
    write_recording,
)
from owa_event.events import KNOWN_TYPES, TOPIC_TYPES, Event
from owa_event.legacy import is_legacy_screen, upgrade_screen, upgrade_type
from owa_event.reader import Recording

T0 = 1_748_854_800_000_000_000
CURRENT_SCREEN = {
    "utc_ns": T0,
    "source_shape": [1025, 1017],
    "shape": [1026, 1018],
    "media_ref": {"uri": "x.mkv", "pts_ns": 40_000_000},
}


# ---------------------------------------------------------------------------------------
# upgrade_type
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("owa.env.desktop.msg.KeyboardEvent", "desktop/KeyboardEvent"),
        ("owa.env.desktop.msg.MouseEvent", "desktop/MouseEvent"),
        ("owa.env.desktop.msg.WindowInfo", "desktop/WindowInfo"),
        ("owa.env.desktop.msg.KeyboardState", "desktop/KeyboardState"),
        ("owa.env.desktop.msg.MouseState", "desktop/MouseState"),
        ("owa_env_desktop.msg.RawMouseEvent", "desktop/RawMouseEvent"),
        ("owa.msgs.desktop.KeyboardEvent", "desktop/KeyboardEvent"),
        ("owa.env.gst.msg.ScreenEmitted", "desktop/ScreenCaptured"),
        ("owa_env_gst.msg.ScreenEmitted", "desktop/ScreenCaptured"),
        ("owa.env.gst.msg.ScreenCaptured", "desktop/ScreenCaptured"),
    ],
)
def test_upgrade_type_maps_python_path_names(name: str, expected: str) -> None:
    assert upgrade_type(name) == expected
    assert expected in KNOWN_TYPES


@pytest.mark.parametrize(
    "name", [*TOPIC_TYPES.values(), "custom/Thing", "example/custom", "", "owa.env.other.Thing"]
)
def test_upgrade_type_passes_current_and_unknown_names_unchanged(name: str) -> None:
    assert upgrade_type(name) == name


# ---------------------------------------------------------------------------------------
# is_legacy_screen / upgrade_screen, per layout
# ---------------------------------------------------------------------------------------
LAYOUT_03 = {"path": "x.mkv", "pts": 40_000_000, "utc_ns": T0}
LAYOUT_04 = {
    "utc_ns": T0,
    "original_shape": [1025, 1017],
    "shape": [1026, 1018],
    "path": "x.mkv",
    "pts": 40_000_000,
}
LAYOUT_050 = {
    "utc_ns": T0,
    "source_shape": [1025, 1017],
    "shape": [1026, 1018],
    "media_ref": {"type": "external_video", "path": "x.mkv", "pts_ns": 40_000_000},
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (LAYOUT_03, {"utc_ns": T0, "media_ref": {"uri": "x.mkv", "pts_ns": 40_000_000}}),
        (LAYOUT_04, CURRENT_SCREEN),
        (LAYOUT_050, CURRENT_SCREEN),
    ],
    ids=["0.3.x", "0.4.x", "0.5.0"],
)
def test_legacy_screen_layouts_upgrade_to_current(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    original = {k: (dict(v) if isinstance(v, dict) else v) for k, v in fields.items()}
    assert is_legacy_screen(fields)
    upgraded = upgrade_screen(fields)
    assert upgraded == expected
    assert not is_legacy_screen(upgraded)
    assert fields == original  # input not mutated


def test_current_screen_is_not_legacy_and_upgrade_is_identity() -> None:
    assert not is_legacy_screen(CURRENT_SCREEN)
    assert upgrade_screen(CURRENT_SCREEN) == CURRENT_SCREEN
    assert upgrade_screen(CURRENT_SCREEN) is not CURRENT_SCREEN


def test_upgrade_keeps_optional_timestamp_and_converts_pts_to_int() -> None:
    out = upgrade_screen({"path": "a.mkv", "pts": 5.0, "utc_ns": 1, "timestamp": 7})
    assert out == {"utc_ns": 1, "media_ref": {"uri": "a.mkv", "pts_ns": 5}, "timestamp": 7}
    assert type(out["media_ref"]["pts_ns"]) is int


def test_screen_without_pts_upgrades_without_pts() -> None:
    assert upgrade_screen({"path": "a.mkv", "utc_ns": 1}) == {"utc_ns": 1, "media_ref": {"uri": "a.mkv"}}


@pytest.mark.parametrize(
    "fields",
    [
        {"pts": 1, "utc_ns": T0},
        {"utc_ns": T0, "original_shape": [2, 2], "shape": [2, 2], "pts": 1},
        {"utc_ns": T0, "media_ref": {"type": "external_video", "pts_ns": 1}},
    ],
    ids=["0.3.x-no-path", "0.4.x-no-path", "0.5.0-no-path"],
)
def test_legacy_screen_without_media_path_is_an_error(fields: dict[str, Any]) -> None:
    assert is_legacy_screen(fields)
    with pytest.raises(ValueError, match="no media path"):
        upgrade_screen(fields)


def test_screen_payload_without_any_media_fields_is_not_legacy() -> None:
    assert not is_legacy_screen({"utc_ns": T0})
    assert is_legacy_screen({"utc_ns": T0, "media_ref": "x.mkv"})  # not a dict: needs upgrading


# ---------------------------------------------------------------------------------------
# The same session written by every writer version reads back as the same events
# ---------------------------------------------------------------------------------------
SPEC = SessionSpec(duration_s=4.0, seed=7)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RawEvent], Path]:
    events, _ = session_events(SPEC)
    root = tmp_path_factory.mktemp("versions")
    for version in WRITER_VERSIONS:
        write_recording(root / version / "sub" / "rec.mcap", events, version=version)
    return events, root


def read(root: Path, version: str) -> tuple[list[Event], Recording]:
    with Recording(root / version / "sub" / "rec.mcap", episode_path=f"{version}/sub/rec.mcap") as rec:
        return list(rec.events()), rec


def expected_events(events: list[RawEvent], version: str) -> list[tuple[str, int, str, dict[str, Any]]]:
    """What the reader must give for ``version``: the session, restricted to what the layout can say."""
    out = []
    for e in events:
        fields = e.fields
        if e.topic == "mouse/raw" and version == "0.3.2":
            continue
        if e.topic == "screen":
            ref = {**fields["media_ref"], "uri": f"{version}/sub/rec.mkv"}
            fields = {**fields, "media_ref": ref}
            if version == "0.3.2":
                fields = {"utc_ns": fields["utc_ns"], "media_ref": ref}
        out.append((e.topic, e.timestamp_ns, TOPIC_TYPES[e.topic], fields))
    return out


def as_tuples(events: list[Event]) -> list[tuple[str, int, str, dict[str, Any]]]:
    return [(e.topic, e.timestamp_ns, e.message_type, e.fields) for e in events]


def test_session_has_every_kind_of_event(written: tuple[list[RawEvent], Path]) -> None:
    events, _ = written
    topics = {e.topic for e in events}
    assert topics == set(TOPIC_TYPES)
    kinds = {e.fields.get("event_type") for e in events if e.topic == "mouse"}
    assert {"move", "click", "scroll"} <= kinds


@pytest.mark.parametrize("version", WRITER_VERSIONS)
def test_every_writer_version_reads_back_as_the_session(
    written: tuple[list[RawEvent], Path], version: str
) -> None:
    events, root = written
    got, rec = read(root, version)
    assert as_tuples(got) == expected_events(events, version)
    assert [e.index for e in got] == list(range(len(got)))
    assert rec.stats.media_uris == {f"{version}/sub/rec.mkv"}
    assert rec.stats.unknown_types == {}
    assert rec.summary.message_count == len(got)


@pytest.mark.parametrize("version", [v for v in WRITER_VERSIONS if v != "current"])
def test_legacy_files_equal_the_current_file(written: tuple[list[RawEvent], Path], version: str) -> None:
    _, root = written
    current, _ = read(root, "current")
    legacy, _ = read(root, version)
    if version == "0.3.2":
        current = [e for e in current if e.topic != "mouse/raw"]
    assert len(legacy) == len(current)
    for old, new in zip(legacy, current):
        assert (old.topic, old.timestamp_ns, old.message_type) == (
            new.topic,
            new.timestamp_ns,
            new.message_type,
        )
        new_fields = new.fields
        if old.topic == "screen":
            new_fields = {
                **new_fields,
                "media_ref": {**new_fields["media_ref"], "uri": f"{version}/sub/rec.mkv"},
            }
            if version == "0.3.2":
                new_fields = {k: new_fields[k] for k in ("utc_ns", "media_ref")}
        assert old.fields == new_fields


def test_legacy_upgrades_are_counted(written: tuple[list[RawEvent], Path]) -> None:
    events, root = written
    n_screens = sum(e.topic == "screen" for e in events)
    _, current = read(root, "current")
    assert current.stats.legacy_upgraded == {}
    for version in ("0.5.0", "0.4.2"):
        _, rec = read(root, version)
        assert dict(rec.stats.legacy_upgraded) == {"desktop/ScreenCaptured (screen payload)": n_screens}
        assert rec.summary.topics["screen"] == "desktop/ScreenCaptured"
    _, old = read(root, "0.3.2")
    counts = {t: sum(e.topic == t for e in events) for t in TOPIC_TYPES if t != "mouse/raw"}
    assert dict(old.stats.legacy_upgraded) == {
        (
            "owa.env.gst.msg.ScreenEmitted"
            if t == "screen"
            else "owa.env.desktop.msg." + TOPIC_TYPES[t].split("/")[1]
        ): n
        for t, n in counts.items()
    }
    assert old.summary.topics["screen"] == "owa.env.gst.msg.ScreenEmitted"


def test_legacy_screen_without_path_is_a_recording_error(tmp_path: Path) -> None:
    # a 0.4.x screen payload that lost its path: the error names the file, the message and the problem.
    from mcap.writer import Writer

    from owa_event.errors import RecordingError

    path = tmp_path / "bad.mcap"
    with path.open("wb") as f:
        writer = Writer(f)
        writer.start(profile="owa", library="mcap-owa-support 0.4.2; mcap 1.2.1")
        schema = writer.register_schema(name="desktop/ScreenCaptured", encoding="jsonschema", data=b"{}")
        channel = writer.register_channel(topic="screen", message_encoding="json", schema_id=schema)
        ok = b'{"utc_ns": 1, "original_shape": [4, 4], "shape": [4, 4], "path": "bad.mkv", "pts": 0}'
        bad = b'{"utc_ns": 2, "original_shape": [4, 4], "shape": [4, 4], "pts": 50000000}'
        writer.add_message(channel, log_time=T0, data=ok, publish_time=T0)
        writer.add_message(channel, log_time=T0 + 50_000_000, data=bad, publish_time=T0)
        writer.finish()
    with Recording(path) as rec:
        events = rec.events()
        first = next(events)
        assert first.fields["media_ref"] == {"uri": "bad.mkv", "pts_ns": 0}
        with pytest.raises(RecordingError) as info:
            next(events)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "message #1" in message and "'screen'" in message and f"{T0 + 50_000_000}" in message
    assert "no media path" in message
