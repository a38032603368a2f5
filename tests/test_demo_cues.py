"""Cued example recordings (owa_builders.demo.cues): the key pressed after a frame is the frame's cue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from owa_builders.demo.cues import (
    CUE_KEYS,
    CueSpec,
    cue_image,
    cue_of,
    cue_session,
    generate_cue_corpus,
)
from owa_builders.training.frames import FrameLoader


def test_every_cue_reads_back_from_its_image() -> None:
    assert [cue_of(cue_image(c, 64, 48)) for c in range(len(CUE_KEYS))] == list(range(len(CUE_KEYS)))
    with pytest.raises(ValueError, match="cue must be in"):
        cue_image(len(CUE_KEYS), 64, 48)


def test_each_press_is_the_key_of_the_frame_before_it_and_sessions_are_seeded() -> None:
    spec = CueSpec(duration_s=3.0, seed=7)
    events, pts_ms, cues = cue_session(spec)
    assert len(pts_ms) == len(cues) == 30 and len(set(cues)) > 1
    last_cue = None
    presses = 0
    for event in events:
        if event.topic == "screen":
            last_cue = cues[pts_ms.index(event.fields["media_ref"]["pts_ns"] // 1_000_000)]
        elif event.topic == "keyboard" and event.fields["event_type"] == "press":
            assert event.fields["vk"] == CUE_KEYS[last_cue]
            presses += 1
    assert presses == 30  # press_probability 1.0: one per frame
    assert any(e.topic == "mouse/raw" for e in events)
    assert cue_session(spec) == (events, pts_ms, cues)
    assert cue_session(CueSpec(duration_s=3.0, seed=8))[2] != cues


def test_the_video_shows_each_frames_cue(tmp_path: Path) -> None:
    """Decoded through the product's FrameLoader, every frame shows the cue its session drew."""
    (mcap,) = generate_cue_corpus(tmp_path, episodes=1, duration_s=2.0, splits=("train",))
    assert mcap.is_file() and mcap.with_suffix(".mkv").is_file()
    _, pts_ms, cues = cue_session(CueSpec(duration_s=2.0, seed=0))
    loader = FrameLoader(tmp_path, output="numpy")
    frames = loader.load([("train/cued_000.mkv", p * 1_000_000) for p in pts_ms])
    assert [cue_of(np.asarray(f)) for f in frames] == cues
