"""End to end through the real `datasets` library: load_dataset("owa_builders/binned", ...)."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pytest
from mcap_owa.highlevel import McapMessage

import owa_builders  # noqa: F401  (registers the builders)
from owa_binned.config import BinnedConfig
from owa_binned.stage import BINNED_SCHEMA, BinnedStage
from owa_builders.binned import BinnedBuilder
from owa_builders.demo.recordings import (
    DEFAULT_START_NS,
    MS,
    NS,
    RawEvent,
    SessionSpec,
    session_events,
    write_recording,
)
from owa_builders.output import load_build
from owa_event.account import RecordingReport
from owa_event.errors import ConfigError, RecordingError
from owa_event.pipeline import RecordingRef, kept_events
from owa_event.pipeline import rows as stage_rows

datasets.disable_progress_bars()

ACTIONS = ("keyboard", "mouse", "mouse/raw")
F8, F9 = 0x77, 0x78

BINNED_FEATURES = datasets.Features.from_arrow_schema(BINNED_SCHEMA)


def rows(ds: datasets.Dataset | datasets.IterableDataset) -> list[tuple]:
    return [
        tuple(tuple(v) if isinstance(v, list) else v for v in (r[c] for c in BINNED_FEATURES)) for r in ds
    ]


def load(data_dir: Path, cache_dir: str, **kwargs: object) -> datasets.DatasetDict:
    return datasets.load_dataset("owa_builders/binned", data_dir=str(data_dir), cache_dir=cache_dir, **kwargs)


def check_bins(ds: datasets.Dataset, root: Path, config: BinnedConfig) -> None:
    """The rules, on built rows: bin times, state never from the future, every action exactly once."""
    period = config.period_ns()
    by_episode: dict[tuple[str, int], list[dict]] = {}
    for row in ds:
        by_episode.setdefault((row["episode_path"], row["interval_idx"]), []).append(row)
    for bins in by_episode.values():
        first = bins[0]["timestamp_ns"] - bins[0]["bin_idx"] * period
        assert [b["bin_idx"] for b in bins] == sorted({b["bin_idx"] for b in bins})
        if not config.drop_empty_bins:
            assert [b["bin_idx"] for b in bins] == list(range(len(bins)))
        for b in bins:
            start = b["timestamp_ns"]
            assert start == first + b["bin_idx"] * period
            states = [McapMessage.model_validate_json(m) for m in b["state"]]
            assert [s.topic for s in states] == [
                t for t in config.state_topics if t in {s.topic for s in states}
            ]
            assert all(s.timestamp <= start for s in states)
            actions = [McapMessage.model_validate_json(m) for m in b["actions"]]
            assert all(
                a.topic in config.action_topics and start <= a.timestamp < start + period for a in actions
            )
            assert [a.timestamp for a in actions] == sorted(a.timestamp for a in actions)
            if config.drop_empty_bins:
                assert actions
    # every kept input event is in exactly one bin, in order (same event-stage selection)
    for episode in {e for e, _ in by_episode}:
        expected = [
            (idx, e.mcap_message_json())
            for idx, e in kept_events(
                RecordingRef(str(root / episode), episode, str(root)), config, RecordingReport(episode)
            )
            if e.topic in config.action_topics
        ]
        got = [(r["interval_idx"], m) for r in ds if r["episode_path"] == episode for m in r["actions"]]
        assert got == expected


def test_normal_and_streaming_identical_with_splits(corpus: Path, cache_dir: str) -> None:
    built = load(corpus, cache_dir)
    streamed = datasets.load_dataset("owa_builders/binned", data_dir=str(corpus), streaming=True)
    assert set(built) == set(streamed) == {"train", "test"}
    for split in built:
        assert rows(built[split]) == rows(streamed[split])
        assert built[split].features == BINNED_FEATURES
        check_bins(built[split], corpus, BinnedConfig())
    assert {r["episode_path"] for r in built["train"]} == {"train/episode_000.mcap", "train/episode_002.mcap"}
    # 6 s recordings at 10 fps: about 60 bins each (legacy layouts too)
    counts = {e: built["test"]["episode_path"].count(e) for e in set(built["test"]["episode_path"])}
    assert all(55 <= n <= 62 for n in counts.values()), counts


def test_num_proc_2_gives_the_same_rows_as_num_proc_1(corpus: Path, tmp_path: Path) -> None:
    one = load(corpus, str(tmp_path / "a"))
    two = load(corpus, str(tmp_path / "b"), num_proc=2)
    for split in one:
        assert rows(one[split]) == rows(two[split])


def test_fps_and_drop_empty_bins_through_kwargs(current_corpus: Path, tmp_path: Path) -> None:
    base = datasets.load_dataset_builder(
        "owa_builders/binned", data_dir=str(current_corpus), cache_dir=str(tmp_path)
    )
    five = datasets.load_dataset_builder(
        "owa_builders/binned", data_dir=str(current_corpus), cache_dir=str(tmp_path), fps=5
    )
    assert five.config.fps == 5 and five.config_id != base.config_id
    five.download_and_prepare()
    ds5 = five.as_dataset(split="train")
    check_bins(ds5, current_corpus, BinnedConfig(fps=5))
    ds10 = load(current_corpus, str(tmp_path), split="train")
    assert abs(2 * ds5.num_rows - ds10.num_rows) <= 3 * 2  # 4 s at 5 vs 10 fps, per recording

    dropping = BinnedBuilder(
        data_dir=str(current_corpus),
        cache_dir=str(tmp_path),
        drop_empty_bins=True,
        action_topics=["keyboard"],
    )
    dropping.download_and_prepare()
    ds = dropping.as_dataset(split="train")
    config = BinnedConfig(drop_empty_bins=True, action_topics=["keyboard"])
    check_bins(ds, current_corpus, config)
    full = BinnedBuilder(data_dir=str(current_corpus), cache_dir=str(tmp_path), action_topics=["keyboard"])
    full.download_and_prepare()
    full_ds = full.as_dataset(split="train")
    dropped = sum(r.stats["empty_bins_dropped"] for r in dropping.reports)
    assert dropped > 0 and ds.num_rows + dropped == full_ds.num_rows
    assert ds.num_rows == sum(1 for r in full_ds if r["actions"])
    assert all(not r.unaccounted() for r in dropping.reports + full.reports)


def test_builder_reports_balance(current_corpus: Path, cache_dir: str) -> None:
    builder = BinnedBuilder(data_dir=str(current_corpus), cache_dir=cache_dir)
    builder.download_and_prepare()
    assert [r.episode_path for r in builder.reports] == [
        "episode_000.mcap",
        "episode_001.mcap",
        "episode_002.mcap",
    ]
    for report in builder.reports:
        assert not report.unaccounted()
        acc = report.account
        # nothing dropped before binning by default: every drop is a bin fate
        assert set(acc.dropped) <= {"not_binned", "state_unused", "state_only_in_dropped_bins"}
        assert acc.dropped["not_binned"].keys() == {"window", "keyboard/state", "mouse/state"}
        assert acc.out["screen"] + acc.dropped["state_unused"]["screen"] == acc.messages_in["screen"]
        assert "bins" in report.summary_line()
    ds = builder.as_dataset(split="train")
    assert ds.num_rows == sum(r.stats["bins"] for r in builder.reports)
    assert rows(ds) == rows(builder.as_streaming_dataset(split="train"))


def test_bad_config_fails_up_front_listing_every_problem(current_corpus: Path, cache_dir: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(current_corpus, cache_dir, fps=0, state_topics=["screen", "keyboard"])
    assert "fps" in str(info.value) and "both a state and an action" in str(info.value)
    with pytest.raises(ConfigError, match="does not keep it"):
        load(current_corpus, cache_dir, keep_topics=["screen", "keyboard"])
    with pytest.raises(ConfigError, match="unknown topic 'scren'"):
        load(current_corpus, cache_dir, state_topics=["scren"])


def test_each_kept_interval_is_an_episode(tmp_path: Path) -> None:
    events, pts = session_events(SessionSpec(duration_s=4.0, seed=3))
    t0 = events[0].timestamp_ns
    for t, vk in [(0.5, F8), (1.5, F9), (2.5, F8)]:
        at = t0 + int(t * NS) + 7
        events += [
            RawEvent("keyboard", at, {"event_type": "press", "vk": vk}),
            RawEvent("keyboard", at + 50 * MS, {"event_type": "release", "vk": vk}),
        ]
    events.sort(key=lambda e: e.timestamp_ns)
    root = tmp_path / "keyed"
    write_recording(root / "keyed.mcap", events, video=(pts, 64, 48))
    interval = {"type": "start_stop_key", "start_vk": F8, "stop_vk": F9}
    ds = load(root, str(tmp_path / "cache"), split="train", interval=interval, fps=20)
    config = BinnedConfig(interval=interval, fps=20)
    check_bins(ds, root, config)
    by_interval = {i: [r for r in ds if r["interval_idx"] == i] for i in set(ds["interval_idx"])}
    assert set(by_interval) == {0, 1}
    for bins in by_interval.values():
        assert [b["bin_idx"] for b in bins] == list(range(len(bins)))
        # the first bin starts at the interval's first kept event: here the start key press
        first = McapMessage.model_validate_json(bins[0]["actions"][0])
        assert first.timestamp == bins[0]["timestamp_ns"] and first.decoded.vk == F8
    assert 19 <= len(by_interval[0]) <= 21  # 1 s at 20 fps
    # the stage functions directly give the same rows
    direct = list(
        stage_rows(BinnedStage(config), RecordingRef(str(root / "keyed.mcap"), "keyed.mcap", str(root)))
    )
    assert [tuple(tuple(v) if isinstance(v, list) else v for v in r.values()) for r in direct] == rows(ds)


def test_cli_build_knows_the_stage(current_corpus: Path, tmp_path: Path) -> None:
    from owa_builders.cli import build

    out = tmp_path / "out"
    dataset = build(
        "binned", str(current_corpus), str(out), options={"fps": 4}, cache_dir=str(tmp_path / "cache")
    )
    assert dataset["train"].num_rows == load_build(str(out))["train"].num_rows > 0


def test_the_real_shared_recording_builds(shared_recording: Path, tmp_path: Path) -> None:
    data = tmp_path / "real"
    data.mkdir()
    for suffix in (".mcap", ".mkv"):
        os.symlink(shared_recording.with_suffix(suffix), data / shared_recording.with_suffix(suffix).name)
    builder = BinnedBuilder(data_dir=str(data), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")
    check_bins(ds, data, BinnedConfig())
    (report,) = builder.reports
    assert sum(report.account.messages_in.values()) == 267 and not report.unaccounted()
    assert report.stats["bins"] == ds.num_rows > 20
    actions = sum(n for t, n in report.account.out.items() if t != "screen")
    assert actions == sum(len(a) for a in ds["actions"])
    state = next(McapMessage.model_validate_json(s[0]) for s in ds["state"] if s)
    assert state.decoded.media_ref.uri == "0.5.1.mkv"


def test_a_week_with_22_messages_is_a_fast_named_error_or_dropped_bins(tmp_path: Path) -> None:
    day = 24 * 3600 * NS
    events = [
        RawEvent(
            "keyboard",
            DEFAULT_START_NS + i * 8 * 3600 * NS,
            {"event_type": "press" if i % 2 == 0 else "release", "vk": 65},
        )
        for i in range(22)
    ]  # 22 messages over 7 days: 8 h apart
    assert events[-1].timestamp_ns - events[0].timestamp_ns == 7 * day
    path = write_recording(tmp_path / "week.mcap", events)
    ref = RecordingRef(str(path), "week.mcap", str(tmp_path))
    with pytest.raises(
        RecordingError, match=r"week\.mcap: .*consecutive bins .* hold no event at all.*max_gap_s"
    ):
        list(stage_rows(BinnedStage(BinnedConfig()), ref))
    rows = list(stage_rows(BinnedStage(BinnedConfig(drop_empty_bins=True)), ref))
    assert len(rows) == 22  # one bin per key event: the week costs what its 22 messages cost
