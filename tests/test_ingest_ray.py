"""Ingestion on a real local Ray (2 CPUs): every adapter end to end into a built event dataset (the same
rows as ingesting in this process), bad items counted, a worker lost mid-episode retried."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch.utils.data

from owa_builders.demo.recordings import frame_image, frame_index_of
from owa_builders.ingest import DataSource, ItemError, create_recordings_from_source
from owa_builders.training.frames import FrameLoader

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture(autouse=True)
def _ship_this_module_to_workers(ray_cluster: Any) -> None:
    """Sources and transforms defined here travel to the Ray workers by value."""
    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def sample(i: int) -> dict[str, Any]:
    return {"t": i / 20, "image": frame_image(i, 32, 24), "joints": [float(i), 0.5 * i], "key": i % 3 == 0}


def to_step(s: dict[str, Any]) -> dict[str, Any]:
    step = {"timestamp": s["t"], "screen": s["image"], "robot/joints": s["joints"]}
    if s["key"]:
        step["keyboard"] = {"event_type": "press", "vk": 32}
    return step


class Frames(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return sample(i)


def samples_gen() -> Any:
    for i in range(14):
        yield sample(i)


def sample_list() -> list[dict[str, Any]]:
    return [sample(i) for i in range(14)]


def event_rows(recs: Any, cache: Path) -> list[dict[str, Any]]:
    return recs.to_dataset("event", cache_dir=str(cache))["train"].to_list()


def check_same_as_in_process(source: Any, tmp_path: Path, **kwargs: Any) -> Any:
    on_ray = create_recordings_from_source(source, tmp_path / "ray", num_workers=2, progress=False, **kwargs)
    here = create_recordings_from_source(source, tmp_path / "here", num_workers=0, progress=False, **kwargs)
    rows = event_rows(on_ray, tmp_path / "c1")
    assert rows == event_rows(here, tmp_path / "c2") and rows
    assert [e.to_dict() for e in on_ray.episodes] == [e.to_dict() for e in here.episodes]
    refs = [on_ray.message(r)["media_ref"] for r in rows if r["topic"] == "screen"]
    assert [frame_index_of(f) for f in FrameLoader(on_ray.root, output="numpy").load(refs)] == list(
        range(len(refs))
    )
    assert not [n for n in os.listdir(on_ray.root) if n.startswith(".")]
    return on_ray


def test_a_torch_dataset(tmp_path: Path) -> None:
    recs = check_same_as_in_process(Frames(14), tmp_path, transform_fn=to_step, items_per_episode=4)
    assert [e.items for e in recs.episodes] == [4, 4, 4, 2]
    assert recs.get_stats()["events_per_topic"] == {"keyboard": 5, "robot/joints": 14, "screen": 14}


def test_a_generator_factory(tmp_path: Path) -> None:
    recs = check_same_as_in_process(
        samples_gen, tmp_path, transform_fn=to_step, items_per_episode=5, batch_size=2
    )
    assert len(recs.episodes) == 3


def test_a_callable_returning_items(tmp_path: Path) -> None:
    recs = check_same_as_in_process(sample_list, tmp_path, transform_fn=to_step, items_per_episode=7)
    assert [e.items for e in recs.episodes] == [7, 7]


def test_a_list_of_image_files(tmp_path: Path) -> None:
    from PIL import Image

    files = []
    for i in range(9):
        files.append(tmp_path / f"shot_{i:02d}.png")
        Image.fromarray(frame_image(i, 32, 24)).save(files[-1])
    recs = check_same_as_in_process(
        files, tmp_path, rate_hz=5, items_per_episode=3, episode_prefix="train/shots_"
    )
    assert [e.recording for e in recs.episodes] == [f"train/shots_{i:06d}.mcap" for i in range(3)]
    assert recs.get_stats()["duration_s"] == pytest.approx(3 * 0.4)


class Flaky(DataSource):
    """Items 0..19; 3 and 11 fail validation, 6 raises; item 15 kills its worker process the first time."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def get_data_items(self) -> range:
        return range(20)

    def validate(self, item: int) -> bool:
        return item not in (3, 11)

    def transform_item(self, item: int) -> dict[str, Any]:
        if item == 6:
            raise KeyError("no such frame")
        if item == 15 and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)
        return {"screen": np.full((24, 32, 3), item * 10, np.uint8), "score": item}


def test_bad_items_are_counted_and_a_lost_worker_is_retried(tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    recs = create_recordings_from_source(
        Flaky(str(marker)), tmp_path / "out", num_workers=2, items_per_episode=5, rate_hz=10,
        on_bad_item="skip", progress=False,
    )  # fmt: skip
    assert marker.exists()  # the worker really died once
    assert recs.item_counts() == {"written": 17, "skipped": 2, "failed": 1}
    assert [(p["index"], p["episode"], p["kind"]) for p in recs.problems] == [
        (3, "episode_000000", "skipped"), (6, "episode_000001", "failed"), (11, "episode_000002", "skipped")
    ]  # fmt: skip
    assert "KeyError" in recs.problems[1]["reason"]
    scores = [r["message"]["data"] for b in recs.iter_batches(64, topics=["score"]) for r in b]
    assert scores == [i for i in range(20) if i not in (3, 6, 11)]
    assert not [
        n for n in os.listdir(tmp_path / "out") if n.startswith(".")
    ]  # the dead attempt's files are gone
    with pytest.raises(ItemError, match=r"item 3 \(episode 'episode_000000'\) skipped"):
        create_recordings_from_source(Flaky(str(marker)), tmp_path / "strict", num_workers=2, items_per_episode=5,
                                      rate_hz=10, progress=False)  # fmt: skip


def test_the_readme_ingestion_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"<!-- ingest-example -->\s*```python\n(.*?)```", readme, re.S)
    assert block, "README block 'ingest-example' not found"
    monkeypatch.chdir(tmp_path)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # read at import time
    namespace: dict[str, Any] = {"__name__": "readme_ingest_example"}
    exec(compile(block.group(1), "README.md:ingest-example", "exec"), namespace)
    recs, events, bins = namespace["recs"], namespace["events"], namespace["bins"]
    assert recs.get_stats()["episodes"] == 2 and recs.get_stats()["frames"] == 40
    assert set(events["train"]["topic"]) == {"screen", "robot/joints"} and events["train"].num_rows == 40
    assert bins.num_rows == 10  # one 1.9 s episode at 5 Hz
    assert sorted(os.listdir(tmp_path / "ingested")) == [
        "episode_000000.mcap", "episode_000000.mkv", "episode_000001.mcap", "episode_000001.mkv", "owa_ingest.json"
    ]  # fmt: skip
