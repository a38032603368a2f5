"""devtools.video_damage: a few damaged cases through the real FrameLoader; the table adds up, and no
frame the decoder raised a signal for was served."""

from __future__ import annotations

import multiprocessing as mp
import sys
from pathlib import Path

import pytest

from devtools import video_damage

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in mp.get_all_start_methods(), reason="cases run in forked children"
)


def test_campaign_tabulates_every_reference(tmp_path: Path) -> None:
    cases = 2 * len(video_damage.KINDS)
    out = video_damage.campaign(cases, 3, "SLICE", tmp_path)
    assert out["failures"] == [] and out["missed"] == []
    assert sum(out["per_case"].values()) == cases
    assert set(out["per_reference"]) <= set(video_damage.OUTCOMES)
    assert sum(out["per_reference"].values()) == cases * 2 * video_damage.N_FRAMES  # two passes per case
    assert sum(sum(v.values()) for v in out["by_kind"].values()) == cases
    assert out["by_kind"]["garbage_appended"] == {"correct": out["by_kind"]["garbage_appended"]["correct"]}


def test_classify(tmp_path: Path) -> None:
    path = video_damage.write_barcoded(tmp_path / "v.mkv", *video_damage.VIDEOS["h264"], n=4)
    video = video_damage.describe(path, "h264")
    assert video_damage.classify(video, 1, video.frames[1]) == "correct"
    assert video_damage.classify(video, 1, video.frames[2]) == "wrong_frame"
    assert video_damage.classify(video, 1, video.frames[1] // 2) == "concealed"
    assert video_damage.classify(video, 1, None) == "refused"
