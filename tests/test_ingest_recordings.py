"""IngestedRecordings: batches of events, deterministic splits by episode, fixed-rate loading, stats,
and handing the recordings to the builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from owa_builders.demo.recordings import frame_image
from owa_builders.ingest import IngestedRecordings, SplitError, create_recordings_from_source
from owa_builders.ingest.config import DEFAULT_TIME_ORIGIN_NS as T0

MS = 1_000_000


def step(i: int) -> dict[str, Any]:
    """20 Hz frames; a key press every 4th step; the item's time in s."""
    out: dict[str, Any] = {"timestamp": i * 0.05, "screen": frame_image(i, 32, 24), "score": {"points": i}}
    if i % 4 == 0:
        out["keyboard"] = {"event_type": "press", "vk": 65 + i % 26}
    return out


@pytest.fixture(scope="module")
def recs(tmp_path_factory: pytest.TempPathFactory) -> IngestedRecordings:
    out = tmp_path_factory.mktemp("ingested")
    return create_recordings_from_source(
        lambda: range(50), out, transform_fn=step, items_per_episode=10, num_workers=0, progress=False
    )


def test_stats_come_from_the_recordings(recs: IngestedRecordings) -> None:
    stats = recs.get_stats()
    assert stats["episodes"] == 5 and stats["frames"] == 50 and stats["frames_per_topic"] == {"screen": 50}
    assert stats["events_per_topic"] == {"keyboard": 13, "score": 50, "screen": 50} and stats["events"] == 113
    assert stats["duration_s"] == pytest.approx(5 * 0.45)
    assert stats["items"] == {"written": 50, "skipped": 0, "failed": 0}


def test_iter_batches_gives_every_event_in_order(recs: IngestedRecordings) -> None:
    batches = list(recs.iter_batches(batch_size=16))
    assert [len(b) for b in batches] == [16] * 7 + [1]
    rows = [r for b in batches for r in b]
    assert [r["episode_path"] for r in rows] == sorted(r["episode_path"] for r in rows)
    first = [r for r in rows if r["episode_path"] == "episode_000000.mcap"]
    assert [r["timestamp_ns"] for r in first] == sorted(r["timestamp_ns"] for r in first)
    assert [r["message"]["points"] for r in rows if r["topic"] == "score"] == list(range(50))
    keys = [r for r in rows if r["topic"] == "keyboard"]
    assert keys[1] == {"episode_path": "episode_000000.mcap", "topic": "keyboard", "timestamp_ns": T0 + 200 * MS,
                       "message_type": "desktop/KeyboardEvent", "message": {"event_type": "press", "vk": 69}}  # fmt: skip
    only = [r["topic"] for b in recs.iter_batches(100, topics=["keyboard"]) for r in b]
    assert only == ["keyboard"] * 13
    with pytest.raises(ValueError, match="batch_size"):
        next(recs.iter_batches(0))


def test_split_by_episode_is_deterministic_disjoint_and_complete(recs: IngestedRecordings) -> None:
    train, test = recs.split(0.8, 0.2)
    assert (len(train), len(test)) == (4, 1)
    names = lambda part: [e.name for e in part.episodes]  # noqa: E731
    assert sorted(names(train) + names(test)) == names(recs)
    assert names(train) == sorted(names(train))
    again = recs.split(0.8, 0.2)
    assert [names(p) for p in again] == [names(train), names(test)]
    other = {tuple(names(recs.split(0.8, 0.2, seed=s)[1])) for s in range(10)}
    assert len(other) > 1  # the seed decides which episodes
    a, b, c = recs.split(0.5, 0.3, 0.2)
    assert (len(a), len(b), len(c)) == (3, 1, 1)
    assert test.item_counts()["written"] == 10 and test.get_stats()["episodes"] == 1
    for bad in [(0.8,), (0.5, 0.6), (1.0, 0.0)]:
        with pytest.raises(SplitError):
            recs.split(*bad)
    with pytest.raises(SplitError, match="non-empty"):
        test.split(0.5, 0.5)


def test_load_resamples_to_a_fixed_rate(recs: IngestedRecordings) -> None:
    first = recs.split(0.8, 0.2)[1]
    bins = first.load(desired_frequency=10.0)
    assert bins.column_names == [
        "episode_path",
        "interval_idx",
        "bin_idx",
        "timestamp_ns",
        "state",
        "actions",
    ]
    start = first.get_stats()
    assert bins.num_rows == 5  # 0.45 s of episode at 10 Hz
    times = bins["timestamp_ns"]
    assert [t - times[0] for t in times] == [i * 100 * MS for i in range(5)]
    assert sum(len(a) for a in bins["actions"]) == start["events_per_topic"]["keyboard"]
    state = [{orjson.loads(m)["topic"] for m in s} for s in bins["state"]]
    assert state == [{"score", "screen"}] * 5  # latest screen and score at each bin start
    fast = first.load(20.0)
    assert fast.num_rows == 10


def test_to_dataset_and_open(recs: IngestedRecordings, tmp_path: Path) -> None:
    ds = recs.to_dataset("event", cache_dir=str(tmp_path / "c"))
    assert list(ds) == ["train"] and ds["train"].num_rows == 113
    binned = recs.split(0.8, 0.2)[0].to_dataset(
        "binned", split="validation", fps=5, cache_dir=str(tmp_path / "c")
    )
    assert list(binned) == ["validation"] and set(binned["validation"]["episode_path"]) == {
        e.recording for e in recs.split(0.8, 0.2)[0].episodes
    }
    reopened = IngestedRecordings.open(recs.root)
    assert reopened.paths() == recs.paths() and reopened.item_counts() == recs.item_counts()
