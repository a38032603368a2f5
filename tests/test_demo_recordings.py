"""Tests of owa_builders.demo.recordings: the synthetic recordings the other tests are built on."""

from __future__ import annotations

import random
from pathlib import Path

import av
import mcap_owa
import mcap_owa.writer
import numpy as np
import pytest
from mcap.reader import make_reader

from owa_builders.demo.recordings import (
    DEFAULT_START_NS,
    MS,
    NS,
    WRITER_VERSIONS,
    SessionSpec,
    frame_image,
    frame_index_of,
    generate_corpus,
    generate_recording,
    session_events,
    write_recording,
)
from owa_event.events import TOPIC_TYPES
from owa_event.reader import Recording


# ---------------------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------------------
def test_same_seed_gives_identical_events() -> None:
    spec = SessionSpec(duration_s=3.0, seed=11)
    assert session_events(spec) == session_events(SessionSpec(duration_s=3.0, seed=11))


def test_different_seed_gives_different_events() -> None:
    a, pts_a = session_events(SessionSpec(duration_s=3.0, seed=1))
    b, pts_b = session_events(SessionSpec(duration_s=3.0, seed=2))
    assert a != b
    assert [e.fields for e in a if e.topic == "mouse/raw"] != [e.fields for e in b if e.topic == "mouse/raw"]
    assert pts_a != pts_b


def test_session_shape() -> None:
    spec = SessionSpec(duration_s=5.0, seed=3, fps=20.0)
    events, pts_ms = session_events(spec)
    times = [e.timestamp_ns for e in events]
    assert times == sorted(times)
    assert spec.start_ns <= times[0] and times[-1] < spec.start_ns + 5 * NS
    assert {e.topic for e in events} == set(TOPIC_TYPES)
    screens = [e for e in events if e.topic == "screen"]
    assert len(screens) == len(pts_ms)
    assert 90 <= len(pts_ms) <= 100  # ~20 fps for 5 s
    assert pts_ms[0] == 0 and all(b > a for a, b in zip(pts_ms, pts_ms[1:]))
    assert [s.fields["media_ref"] for s in screens] == [{"uri": "VIDEO", "pts_ns": p * MS} for p in pts_ms]
    # pts follow the message times to the millisecond
    ms = [(s.timestamp_ns - spec.start_ns) // MS for s in screens]
    assert [m - ms[0] for m in ms] == pts_ms
    assert all(s.fields["shape"] == [spec.width, spec.height] for s in screens)


def test_write_is_deterministic(tmp_path: Path) -> None:
    spec = SessionSpec(duration_s=2.0, seed=5)
    a = generate_recording(tmp_path / "a" / "rec.mcap", spec, video=False)
    b = generate_recording(tmp_path / "b" / "rec.mcap", spec, video=False)
    assert a.read_bytes() == b.read_bytes()
    assert not a.with_suffix(".mkv").exists()


# ---------------------------------------------------------------------------------------
# frames and video
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [0, 1, 2, 255, 256, 4660, 65535, *random.Random(0).sample(range(65536), 5)])
def test_frame_index_round_trips(index: int) -> None:
    img = frame_image(index, 64, 48)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert frame_index_of(img) == index


def test_frame_index_survives_noise() -> None:
    rng = np.random.default_rng(0)
    img = frame_image(0xA5C3, 64, 48).astype(np.int16) + rng.integers(-60, 60, size=(48, 64, 3))
    assert frame_index_of(np.clip(img, 0, 255).astype(np.uint8)) == 0xA5C3


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_recording(
        tmp_path_factory.mktemp("video") / "sub" / "rec.mcap", SessionSpec(duration_s=3.0, seed=6)
    )


def test_video_has_one_frame_per_screen_message(recording: Path) -> None:
    with Recording(recording, episode_path="sub/rec.mcap") as rec:
        screens = list(rec.events(topics=["screen"]))
    with av.open(str(recording.with_suffix(".mkv"))) as container:
        stream = container.streams.video[0]
        assert container.format.name == "matroska,webm"
        frames = [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)]
    assert len(frames) == len(screens) > 40
    for i, ((pts, rgb), screen) in enumerate(zip(frames, screens)):
        assert rgb.shape == (48, 64, 3)
        assert frame_index_of(rgb) == i
        assert screen.fields["media_ref"] == {"uri": "sub/rec.mkv", "pts_ns": pts * 1_000_000}


def test_video_time_base_is_milliseconds(recording: Path) -> None:
    with av.open(str(recording.with_suffix(".mkv"))) as container:
        stream = container.streams.video[0]
        assert (stream.time_base.numerator, stream.time_base.denominator) == (1, 1000)
        assert stream.codec_context.name == "h264"


# ---------------------------------------------------------------------------------------
# writer versions
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", WRITER_VERSIONS)
def test_header_names_the_writer_version(tmp_path: Path, version: str) -> None:
    events, _ = session_events(SessionSpec(duration_s=0.5, seed=1))
    path = write_recording(tmp_path / "rec.mcap", events, version=version)
    with path.open("rb") as f:
        header = make_reader(f).get_header()
    expected = mcap_owa.__version__ if version == "current" else version
    assert header.profile == "owa"
    assert header.library.startswith(f"mcap-owa-support {expected}; mcap ")
    assert mcap_owa.writer.__version__ == mcap_owa.__version__  # restored after writing


def test_corpus_layout(tmp_path: Path) -> None:
    paths = generate_corpus(tmp_path, episodes=5, duration_s=1.0, splits=("train", "test"), video=False)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "train/episode_000.mcap",
        "test/episode_001.mcap",
        "train/episode_002.mcap",
        "test/episode_003.mcap",
        "train/episode_004.mcap",
    ]
    writers = []
    starts = []
    for p in paths:
        with Recording(p) as rec:
            writers.append(rec.summary.writer.split(";")[0])
            starts.append(rec.summary.start_ns)
    assert writers == [
        f"mcap-owa-support {v}"
        for v in (mcap_owa.__version__, "0.5.0", "0.4.2", "0.3.2", mcap_owa.__version__)
    ]
    assert all(
        DEFAULT_START_NS + i * 3600 * NS <= s < DEFAULT_START_NS + i * 3600 * NS + NS
        for i, s in enumerate(starts)
    )
    assert not any(p.with_suffix(".mkv").exists() for p in paths)
