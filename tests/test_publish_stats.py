"""Measured facts for the cards, checked against plain-Python counts over the same rows and reports."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import datasets
import pytest

from owa_builders.output import load_build
from owa_builders.publish.source import open_built
from owa_builders.publish.stats import FILL_BINS, measure


def saved(folder: Path) -> datasets.DatasetDict:
    return load_build(str(folder))


def reports(folder: Path) -> list[dict]:
    return json.loads((folder / "owa_build.json").read_text())["reports"]


@pytest.mark.parametrize("stage", ["event", "binned", "fsl"])
def test_split_facts_and_accounts(built_folders: dict[str, Path], stage: str) -> None:
    folder = built_folders[stage]
    stats = measure(open_built(folder))
    kept = {r["episode_path"]: r["kept_ns"] for r in reports(folder)}
    for split, ds in saved(folder).items():
        facts = stats.splits[split]
        episodes = set(zip(ds["episode_path"], ds["interval_idx"]))
        assert facts.rows == ds.num_rows
        assert facts.episodes == len(episodes) == 2
        assert facts.recordings == len({p for p, _ in episodes})
        assert facts.hours == pytest.approx(sum(kept[p] for p, _ in episodes) / 3.6e12)
    out: Counter[str] = Counter()
    read: Counter[str] = Counter()
    for r in reports(folder):
        out.update(r["account"]["out"])
        read.update(r["account"]["messages_in"])
    assert stats.events_per_topic == dict(out) and stats.messages_in == dict(read)
    # the only warnings: a recording without mouse/raw (writer 0.3.2) serves the FSL build with mouse
    substituted = [r for r in reports(folder) if r.get("substitutions")]
    assert stats.warnings == sum(len(r["warnings"]) for r in reports(folder)) == len(substituted)
    assert [r["substitutions"] for r in substituted] == ([{"mouse/raw": "mouse"}] if stage == "fsl" else [])
    assert stats.skipped_recordings == 0
    if stage == "event":  # every event out is a row
        rows = Counter(t for ds in saved(folder).values() for t in ds["topic"])
        assert stats.events_per_topic == dict(rows)


def per_second(events: list[tuple[tuple[str, int], int, str, float]]) -> dict[str, list[float]]:
    """Oracle: events/s per topic and second since the episode start, over the episodes lasting that long."""
    start: dict[tuple[str, int], int] = {}
    last: dict[tuple[str, int], int] = {}
    for ep, t, _, _ in events:
        start.setdefault(ep, t)
        last[ep] = max(last.get(ep, t), t)
    seconds = max((last[ep] - start[ep]) // 10**9 for ep in start) + 1
    cover = [sum(1 for ep in start if (last[ep] - start[ep]) // 10**9 >= s) for s in range(seconds)]
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0] * seconds)
    for ep, t, topic, weight in events:
        counts[topic][(t - start[ep]) // 10**9] += weight
    return {topic: [c / n for c, n in zip(values, cover)] for topic, values in sorted(counts.items())}


def test_event_rates_per_second(built_folders: dict[str, Path]) -> None:
    stats = measure(open_built(built_folders["event"]))
    events = [
        ((r["episode_path"], r["interval_idx"]), r["timestamp_ns"], r["topic"], 1.0)
        for ds in saved(built_folders["event"]).values()
        for r in ds.select_columns(["episode_path", "interval_idx", "timestamp_ns", "topic"])
    ]
    expected = per_second(events)
    assert stats.series_bin_s == 1.0 and list(stats.series) == list(expected)
    for topic, values in expected.items():
        assert stats.series[topic] == pytest.approx(values, abs=1e-3)
    assert 18 <= statistics.mean(stats.series["screen"]) <= 22  # the example screens run at 20 Hz


def test_binned_action_rates(built_folders: dict[str, Path]) -> None:
    stats = measure(open_built(built_folders["binned"]))
    assert stats.binned_fps == 10.0
    events = [
        (
            (r["episode_path"], r["interval_idx"]),
            r["bin_idx"] * 100_000_000,
            "actions",
            float(len(r["actions"])),
        )
        for ds in saved(built_folders["binned"]).values()
        for r in ds
    ]
    expected = per_second(events)
    assert list(stats.series) == ["actions"] and stats.series["actions"] == pytest.approx(
        expected["actions"], abs=1e-3
    )


def test_fsl_token_statistics(built_folders: dict[str, Path]) -> None:
    stats = measure(open_built(built_folders["fsl"]))
    rows = [r for ds in saved(built_folders["fsl"]).values() for r in ds]
    real = [sum(r["attention_mask"]) for r in rows]
    frames = [len(r["images"]) for r in rows]
    fsl = stats.fsl
    assert fsl is not None and fsl.sequence_length == 1024 == len(rows[0]["input_ids"])
    assert fsl.real_tokens == pytest.approx(
        {"min": min(real), "mean": statistics.mean(real), "median": statistics.median(real), "max": max(real)}
    )
    assert fsl.frames["mean"] == pytest.approx(statistics.mean(frames)) and fsl.frames["max"] == max(frames)
    assert fsl.events["mean"] == pytest.approx(statistics.mean(r["n_events"] for r in rows))
    assert fsl.padding_share == pytest.approx(1 - sum(real) / (1024 * len(rows)))
    # smolvlm: <fake_token_around_image><global-img> + 64 x <image> + <fake_token_around_image> = 67 per frame
    assert fsl.image_token_share == pytest.approx(67 * sum(frames) / sum(real))
    histogram = [0] * FILL_BINS
    for n in real:
        histogram[min(FILL_BINS - 1, int(n / 1024 * FILL_BINS))] += 1
    assert fsl.fill_histogram == histogram and sum(histogram) == len(rows)
    assert stats.series == {}  # no rate plot for sequences


def test_long_episodes_merge_seconds_into_at_most_240_points() -> None:
    import numpy as np
    import pyarrow as pa

    from owa_builders.publish.stats import MAX_SERIES_POINTS, _Series

    series = _Series()
    # episode a: 1000 s, 2 events/s; episode b: 500 s, 4 events/s
    a = np.arange(0, 1000 * 10**9, 5 * 10**8, dtype=np.int64)
    b = np.arange(0, 500 * 10**9, 25 * 10**7, dtype=np.int64)
    series.add(a, pa.array(["mouse"] * len(a)), np.ones(len(a)))
    series.add(b, pa.array(["mouse"] * len(b)), np.ones(len(b)))
    series.durations = {"a": int(a[-1]), "b": int(b[-1])}
    step, rates = series.result()
    assert step == 5.0 and len(rates["mouse"]) == 200 <= MAX_SERIES_POINTS
    assert rates["mouse"][:100] == pytest.approx([3.0] * 100)  # both episodes: (2 + 4) / 2
    assert rates["mouse"][100:] == pytest.approx([2.0] * 100)  # only a lasts that long
