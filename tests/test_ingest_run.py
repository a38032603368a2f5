"""create_recordings_from_source in this process (num_workers=0): episodes, names, bad items, and a
robot's camera + joints through to the event dataset. (On Ray: test_ingest_ray.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from owa_builders.demo.recordings import frame_image, frame_index_of
from owa_builders.ingest import (
    DataSource,
    EpisodeNameError,
    IngestedRecordings,
    ItemError,
    create_recordings_from_source,
)
from owa_builders.ingest.config import DEFAULT_TIME_ORIGIN_NS as T0
from owa_builders.ingest.recordings import MANIFEST
from owa_builders.training.frames import FrameLoader
from owa_event.errors import ConfigError

MS = 1_000_000


def robot(n: int) -> list[dict[str, Any]]:
    """A robot's samples: a camera frame, 3 joint angles, a gripper command, a time in ms."""
    return [{"t_ms": 100 * i, "rgb": frame_image(i, 32, 24), "q": np.array([0.1 * i, -0.2, 0.3], np.float32),
             "gripper": {"open": i % 2 == 0}} for i in range(n)]  # fmt: skip


def robot_step(sample: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": sample["t_ms"], "screen": sample["rgb"], "robot/joints": sample["q"],
            "robot/gripper": sample["gripper"]}  # fmt: skip


def ingest(source: Any, out: Path, **kwargs: Any) -> IngestedRecordings:
    kwargs.setdefault("num_workers", 0)
    kwargs.setdefault("progress", False)
    return create_recordings_from_source(source, out, **kwargs)


def test_a_robots_camera_and_joints_reach_the_event_dataset_unchanged(tmp_path: Path) -> None:
    samples = robot(10)
    recs = ingest(samples, tmp_path / "out", transform_fn=robot_step, items_per_episode=4, time_unit="ms",
                  message_types={"robot/joints": "robot/JointState"})  # fmt: skip
    assert [e.name for e in recs.episodes] == ["episode_000000", "episode_000001", "episode_000002"]
    assert [e.items for e in recs.episodes] == [4, 4, 2] and recs.item_counts() == {"written": 10, "skipped": 0, "failed": 0}  # fmt: skip
    ds = recs.to_dataset("event", cache_dir=str(tmp_path / "c"))["train"]
    assert ds.num_rows == 30
    joints = [r for r in ds if r["topic"] == "robot/joints"]
    assert {r["message_type"] for r in joints} == {"robot/JointState"}
    assert [recs.message(r) for r in joints] == [{"data": s["q"].tolist()} for s in samples]
    assert [r["timestamp_ns"] for r in joints] == [T0 + s["t_ms"] * MS for s in samples]
    gripper = [recs.message(r) for r in ds if r["topic"] == "robot/gripper"]
    assert gripper == [s["gripper"] for s in samples]
    assert {r["message_type"] for r in ds if r["topic"] == "robot/gripper"} == {"ingest/robot/gripper"}
    refs = [recs.message(r)["media_ref"] for r in ds if r["topic"] == "screen"]
    assert refs[4] == {"uri": "episode_000001.mkv", "pts_ns": 0}
    frames = FrameLoader(recs.root, output="numpy").load(refs)
    assert [frame_index_of(f) for f in frames] == list(range(10))
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert (
        manifest["items"] == {"written": 10, "skipped": 0, "failed": 0}
        and manifest["config"]["time_unit"] == "ms"
    )


class Checked(DataSource):
    """Items 0..n-1 at 10 Hz; ``validate`` rejects multiples of 5, items 7 and 8 raise."""

    def __init__(self, n: int) -> None:
        self.n = n

    def get_data_items(self) -> range:
        return range(self.n)

    def validate(self, item: int) -> str | None:
        return "a multiple of 5" if item % 5 == 0 else None

    def transform_item(self, item: int) -> dict[str, Any]:
        if item == 7:
            raise RuntimeError("sensor 7 unreadable")
        return {"sensor": float("nan") if item == 8 else float(item)}


def test_bad_items_stop_the_run_naming_them_or_are_counted(tmp_path: Path) -> None:
    with pytest.raises(
        ItemError, match=r"item 0 \(episode 'episode_000000'\) skipped: failed validation: a multiple of 5"
    ):
        ingest(Checked(12), tmp_path / "strict", rate_hz=10)
    assert not list((tmp_path / "strict").glob("*.mcap")) and not list((tmp_path / "strict").glob(".*"))
    recs = ingest(Checked(12), tmp_path / "lenient", rate_hz=10, on_bad_item="skip", items_per_episode=6)
    assert recs.item_counts() == {"written": 7, "skipped": 3, "failed": 2}
    assert [(p["index"], p["kind"]) for p in recs.problems] == [
        (0, "skipped"), (5, "skipped"), (7, "failed"), (8, "failed"), (10, "skipped")
    ]  # fmt: skip
    assert "sensor 7 unreadable" in recs.problems[2]["reason"] and "is nan" in recs.problems[3]["reason"]
    rows = [r for batch in recs.iter_batches(4) for r in batch]
    assert [r["message"]["data"] for r in rows] == [1.0, 2.0, 3.0, 4.0, 6.0, 9.0, 11.0]
    # a left-out item keeps its place in time: item 6 is at 0.6 s, item 11 at 0.5 s of its episode
    assert rows[4]["timestamp_ns"] == T0 + 0 * MS and rows[6]["timestamp_ns"] == T0 + 500 * MS


def test_grouping_naming_and_shuffling_hooks(tmp_path: Path) -> None:
    class Trajectories(DataSource):
        def get_data_items(self) -> list[tuple[str, int]]:
            return [("b", 0), ("a", 0), ("a", 1), ("b", 1), ("b", 2)]

        def group_items_into_episodes(self, items: Any) -> list[list[tuple[str, int]]]:
            by: dict[str, list] = {}
            for item in items:
                by.setdefault(item[0], []).append(item)
            return [sorted(v, key=lambda x: x[1]) for _, v in sorted(by.items())]

        def episode_name(self, index: int, items: Any) -> str:
            return f"{'test' if items[0][0] == 'b' else 'train'}/traj_{items[0][0]}"

        def transform_item(self, item: tuple[str, int]) -> dict[str, Any]:
            return {"timestamp": item[1], "pos": {"traj": item[0], "k": item[1]}}

    recs = ingest(Trajectories(), tmp_path / "out")
    assert [(e.name, e.items) for e in recs.episodes] == [("test/traj_b", 3), ("train/traj_a", 2)]
    assert sorted(os.listdir(tmp_path / "out")) == [MANIFEST, "test", "train"]
    ds = recs.to_dataset(cache_dir=str(tmp_path / "c"))["train"]
    assert ds.num_rows == 5 and ds[0]["episode_path"] == "test/traj_b.mcap"

    class Twice(Trajectories):
        def episode_name(self, index: int, items: Any) -> str:
            return "same"

    with pytest.raises(EpisodeNameError, match="'same' is already used"):
        ingest(Twice(), tmp_path / "twice")

    def names(seed: int) -> list[list[int]]:
        out = tmp_path / f"s{seed}-{len(os.listdir(tmp_path))}"
        recs = ingest(lambda: range(12), out, transform_fn=lambda i: {"v": i}, rate_hz=1, shuffle=True, seed=seed,
                      items_per_episode=4)  # fmt: skip
        return [[r["message"]["data"] for r in batch] for batch in recs.iter_batches(4)]

    first = names(1)
    assert first == names(1) and first != names(2)
    assert sorted(v for batch in first for v in batch) == list(range(12))


def test_config_errors_come_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        ingest([{"a": 1}], tmp_path / "o", rate_hz=-1, batch_sise=2)
    assert "batch_size" in str(err.value)  # the misspelling is named with a suggestion
    with pytest.raises(ConfigError, match="rate_hz"):
        ingest([{"a": 1}], tmp_path / "o", rate_hz=-1)
    assert not (tmp_path / "o").exists()
