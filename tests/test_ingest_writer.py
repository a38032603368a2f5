"""One episode -> .mcap (real mcap-owa-support writer) + .mkv per image topic (real PyAV)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from owa_builders.demo.recordings import frame_image, frame_index_of
from owa_builders.ingest.config import DEFAULT_TIME_ORIGIN_NS as T0
from owa_builders.ingest.config import IngestionConfig
from owa_builders.ingest.messages import ValueProblem
from owa_builders.ingest.steps import item_writes
from owa_builders.ingest.writer import EpisodeExistsError, EpisodeWriter
from owa_builders.training.frames import FrameLoader
from owa_event.reader import Recording

MS = 1_000_000


def cfg(tmp_path: Path, **fields: object) -> IngestionConfig:
    return IngestionConfig(str(tmp_path), **fields).validate()  # type: ignore[arg-type]


def steps(n: int, start_ms: int = 0, every_ms: int = 50) -> list[dict]:
    return [{"timestamp": (start_ms + i * every_ms) / 1000, "screen": frame_image(i, 64, 48),
             "wrist": frame_image(100 + i, 32, 16)[:, :, 0], "joints": [i, i / 2]} for i in range(n)]  # fmt: skip


def test_an_episode_is_a_recording_whose_frames_load_exactly(tmp_path: Path) -> None:
    config = cfg(tmp_path)
    writer = EpisodeWriter(str(tmp_path), "train/ep_a", config)
    for first in (0, 3):
        writes, _ = item_writes(steps(3, start_ms=first * 50)[:3] if first == 0 else steps(6)[3:], 0, config)
        writer.check(writes)
        writer.write(writes)
    stats = writer.commit()
    assert stats.recording == "train/ep_a.mcap" and stats.items == 2
    assert stats.videos == ["train/ep_a.mkv", "train/ep_a.wrist.mkv"]
    assert stats.frames == {"screen": 6, "wrist": 6} and stats.messages == {
        "screen": 6,
        "wrist": 6,
        "joints": 6,
    }
    assert sorted(os.listdir(tmp_path / "train")) == ["ep_a.mcap", "ep_a.mkv", "ep_a.wrist.mkv"]

    with Recording(tmp_path / "train" / "ep_a.mcap", episode_path="train/ep_a.mcap") as rec:
        events = list(rec.events())
        assert rec.summary.topics == {"screen": "desktop/ScreenCaptured", "wrist": "desktop/ScreenCaptured",
                                      "joints": "ingest/joints"}  # fmt: skip
    screens = [e for e in events if e.topic == "screen"]
    assert [e.timestamp_ns for e in screens] == [T0 + i * 50 * MS for i in range(6)]
    assert [e.fields["media_ref"] for e in screens] == [
        {"uri": "train/ep_a.mkv", "pts_ns": i * 50 * MS} for i in range(6)
    ]
    assert screens[0].fields["shape"] == [64, 48]
    loader = FrameLoader(str(tmp_path), output="numpy")
    frames = loader.load([e.fields["media_ref"] for e in events if e.topic in ("screen", "wrist")])
    assert [frame_index_of(f) for f in frames] == [v for i in range(6) for v in (i, 100 + i)]
    assert [e.fields for e in events if e.topic == "joints"] == [{"data": [i, i / 2]} for i in range(6)]


def test_what_would_break_the_recording_is_refused_before_writing(tmp_path: Path) -> None:
    config = cfg(tmp_path)
    writer = EpisodeWriter(str(tmp_path), "ep", config)
    first, _ = item_writes(steps(2), 0, config)
    writer.check(first)
    writer.write(first)
    cases = {
        "frame of 66x48, the video is 64x48": {"timestamp": 1.0, "screen": np.zeros((48, 66, 3), np.uint8)},
        "not at least 1 ms after": {"timestamp": 0.0505, "screen": frame_image(9, 64, 48)},
        "'wrist' already holds desktop/ScreenCaptured messages": {"timestamp": 1.0, "wrist": [1]},
    }
    for expected, step in cases.items():
        writes, _ = item_writes(step, 0, config)
        with pytest.raises(ValueProblem, match=expected):
            writer.check(writes)
    typed = cfg(tmp_path, message_types={"joints": "robot/Joints"})
    writes, _ = item_writes({"timestamp": 1.0, "joints": [1]}, 0, typed)
    with pytest.raises(
        ValueProblem, match="already holds ingest/joints messages in this episode, not robot/Joints"
    ):
        writer.check(writes)
    writes, _ = item_writes({"timestamp": 9 * 24 * 3600.0, "joints": [1]}, 0, config)
    with pytest.raises(ValueProblem, match="would span 216.0 h"):
        writer.check(writes)
    odd = EpisodeWriter(str(tmp_path), "odd", config)
    writes, _ = item_writes({"timestamp": 0, "screen": np.zeros((5, 7, 3), np.uint8)}, 0, config)
    with pytest.raises(ValueProblem, match="7x5: libx264 .* even width and height"):
        odd.check(writes)
    odd.abort()
    stats = writer.commit()  # refused items left the episode intact
    assert stats.items == 1 and stats.frames == {"screen": 2, "wrist": 2}
    assert sorted(os.listdir(tmp_path)) == ["ep.mcap", "ep.mkv", "ep.wrist.mkv"]


def test_empty_aborted_and_existing_episodes(tmp_path: Path) -> None:
    config = cfg(tmp_path)
    assert EpisodeWriter(str(tmp_path), "empty", config).commit().recording is None
    aborted = EpisodeWriter(str(tmp_path), "gone", config)
    writes, _ = item_writes(steps(2), 0, config)
    aborted.write(writes)
    aborted.abort()
    assert os.listdir(tmp_path) == []  # nothing, not even a temporary file
    done = EpisodeWriter(str(tmp_path), "ep", config)
    done.write(writes)
    done.commit()
    with pytest.raises(EpisodeExistsError, match="ep.mcap: a recording of episode 'ep' is already there"):
        EpisodeWriter(str(tmp_path), "ep", config)
    again = EpisodeWriter(str(tmp_path), "ep", cfg(tmp_path, overwrite=True))
    writes, _ = item_writes(steps(1), 0, config)
    again.write(writes)
    assert again.commit().frames == {"screen": 1, "wrist": 1}
    with Recording(tmp_path / "ep.mcap") as rec:
        assert rec.summary.message_count == 3


def test_another_codec(tmp_path: Path) -> None:
    config = cfg(tmp_path, video_codec="mpeg4")
    writer = EpisodeWriter(str(tmp_path), "ep", config)
    writes, _ = item_writes(steps(4), 0, config)
    writer.write(writes)
    writer.commit()
    import av

    with av.open(str(tmp_path / "ep.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    frames = FrameLoader(str(tmp_path), output="numpy").load([("ep.mkv", i * 50 * MS) for i in range(4)])
    assert [frame_index_of(f) for f in frames] == [0, 1, 2, 3]
