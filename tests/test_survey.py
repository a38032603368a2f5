"""Tests of owa_builders.survey: recordings of every writer layout, the real recording, a built folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from owa_builders.cli import main
from owa_builders.survey import inspect_paths
from owa_event.reader import Recording


def test_every_writer_layout(corpus: Path) -> None:
    result = inspect_paths([str(corpus)])
    items = {i["episode_path"]: i for i in result["items"]}
    assert set(items) == {
        f"{s}/episode_{i:03d}.mcap" for i, s in enumerate(["train", "test", "train", "test"])
    }
    for episode, item in items.items():
        with Recording(corpus / episode) as rec:
            census = rec.census()
        assert item["problems"] == [] and item["messages"] == census.message_count
        assert {t: v["messages"] for t, v in item["topics"].items()} == census.topic_counts
        shaped = not item["writer"].startswith("mcap-owa-support 0.3.2")  # 0.3.x screens carry no shape
        assert item["screen_size"] == ([64, 48] if shaped else None) and list(item["videos"].values()) == [
            "present"
        ]
        assert item["duration_s"] == pytest.approx((census.end_ns - census.start_ns) / 1e9, abs=1e-3)
        hz = item["topics"]["screen"]["hz"]
        assert 15 < hz < 25  # generated at 20 fps
        assert set(item["stages"]) == {"event", "binned", "fsl"}
        assert item["stages"]["event"]["dropped"] == {}  # the event stage is lossless by default
        assert sum(item["stages"]["event"]["events_out"].values()) == census.message_count
    legacy = items["test/episode_003.mcap"]  # writer 0.3.2: no mouse/raw, so mouse serves for it in FSL
    assert legacy["writer"].startswith("mcap-owa-support 0.3.2") and "mouse/raw" not in legacy["topics"]
    assert legacy["stages"]["fsl"]["substitutions"] == {"mouse/raw": "mouse"}
    assert legacy["stages"]["fsl"]["events_out"]["mouse"] > 0
    assert result["total"]["recordings"] == 4 and result["total"]["missing_videos"] == []


def test_missing_video_and_a_bad_file_are_problems_not_crashes(corpus: Path, tmp_path: Path) -> None:
    shutil.copy(corpus / "train" / "episode_000.mcap", tmp_path / "a.mcap")  # its video is not copied
    (tmp_path / "b.mcap").write_text("not a recording")
    result = inspect_paths([str(tmp_path)])
    a, b = sorted(result["items"], key=lambda i: i["episode_path"])
    assert a["videos"] == {"episode_000.mkv": "missing"} and a["problems"] == []
    assert any("missing video" in w for w in a["warnings"])
    assert len(b["problems"]) == 1 and "b.mcap: not an MCAP file" in b["problems"][0]
    assert (
        result["total"]["missing_videos"] == ["episode_000.mkv"]
        and result["total"]["recordings_with_problems"] == 1
    )


def test_the_real_recording(shared_recording: Path) -> None:
    (item,) = inspect_paths([str(shared_recording)])["items"]
    assert item["writer"].startswith("mcap-owa-support 0.5.1") and item["messages"] == 267
    assert item["videos"] == {"0.5.1.mkv": "present"} and item["screen_size"] == [1025, 1017]
    assert item["stages"]["fsl"]["substitutions"] == {"mouse/raw": "mouse"}


def test_a_built_folder_and_the_cli(
    built_folders: dict[str, Path], corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(built_folders["fsl"]), "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)["items"]
    assert item["kind"] == "built dataset" and item["stage"] == "fsl" and item["recordings"] == 4
    assert sum(s["rows"] for s in item["splits"].values()) > 0 and item["config_name"]
    assert main(["inspect", os.fspath(corpus / "train")]) == 0
    text = capsys.readouterr().out
    assert (
        "episode_000.mcap:" in text
        and "fsl (default config fsl-internvl3)" in text
        and "total: 2 recordings" in text
    )
