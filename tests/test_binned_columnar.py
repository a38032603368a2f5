"""owa_binned.columnar: the columnar bins equal bin_events' (the reference), rows, batches, account, counts
and errors, byte for byte: on the demo recordings through the stage, on hand-made streams at the
edges, and on random streams cut into random batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap_owa.highlevel import OWAMcapWriter
from owa.core import MESSAGES

import owa_binned.stage as stage_module
from owa_binned.bins import BinCounts, EmptyRunError
from owa_binned.columnar import bin_batches
from owa_binned.config import BinnedConfig
from owa_binned.stage import INT32_MAX, BinnedStage, chunk_rows, event_rows
from owa_builders.demo.recordings import (
    DEFAULT_START_NS,
    NS,
    RawEvent,
    SessionSpec,
    session_events,
    write_recording,
)
from owa_event.account import Account, RecordingReport
from owa_event.events import TOPIC_TYPES, Event, EventOrderError
from owa_event.pipeline import RecordingRef, convert
from owa_event.reader import MessageBatch, Recording

CORPUS_FILES = [
    "train/episode_000.mcap",
    "test/episode_001.mcap",
    "train/episode_002.mcap",
    "test/episode_003.mcap",
]
STATE = ["screen"]
ACTIONS = ["keyboard", "mouse", "mouse/raw"]


# ---------------------------------------------------------------------------------------
# through the stage, on real recordings
# ---------------------------------------------------------------------------------------
def stage_run(
    root: Path, episode_path: str, config: BinnedConfig, *, columnar: bool, batch_size: int = 1024
) -> tuple[list[pa.RecordBatch] | str, dict[str, Any]]:
    """The batches (or the error, as text) and the report of one recording through convert."""
    stage = BinnedStage(config, batch_size=batch_size, columnar=columnar)
    report = RecordingReport(episode_path)
    ref = RecordingRef(str(root / episode_path), episode_path, str(root))
    try:
        out: list[pa.RecordBatch] | str = list(convert(stage, ref, report))
    except Exception as exc:
        out = f"{type(exc).__name__}: {exc}"
    return out, report.to_dict()


def no_event_binning(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the columnar path binned Events")


CONFIGS = [
    {},
    {"fps": 3.0},
    {"fps": 250.0, "drop_empty_bins": True},
    {"fps": 40.0, "state_topics": ["screen", "window"], "action_topics": ["keyboard"]},
    {"fps": 7.0, "state_topics": ["mouse/raw", "screen", "keyboard"], "action_topics": []},
    {"fps": 1000.0, "max_gap_s": 0.004},  # an EmptyRunError in one recording
    {"fps": 1000.0, "max_gap_s": 0.004, "on_bad_file": "skip"},  # ... which is skipped, counted alike
]


@pytest.mark.filterwarnings("ignore::owa_event.errors.SkippedFileWarning")
@pytest.mark.parametrize("episode_path", CORPUS_FILES)
@pytest.mark.parametrize("overrides", CONFIGS)
def test_the_stage_gives_the_event_paths_batches_and_report(
    corpus: Path, episode_path: str, overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = BinnedConfig(**overrides)
    expected, expected_report = stage_run(corpus, episode_path, config, columnar=False, batch_size=100)
    with monkeypatch.context() as m:
        m.setattr(stage_module, "bin_events", no_event_binning)
        got, report = stage_run(corpus, episode_path, config, columnar=True, batch_size=100)
    if isinstance(expected, str):
        assert got == expected
        return
    assert isinstance(got, list) and len(got) == len(expected)
    assert got or report["skipped"] and "consecutive bins" in report["skipped"]
    for a, b in zip(got, expected, strict=True):
        assert a.schema == b.schema == stage_module.BINNED_SCHEMA
        assert a.equals(b)
    assert report == expected_report and not RecordingReport.from_dict(report).unaccounted()


@pytest.mark.filterwarnings("ignore::owa_event.errors.MissingMediaWarning")  # no video written
def test_a_recording_in_many_small_chunks(tmp_path: Path) -> None:
    """Bins across chunk groups: the open bin of one group is finished with the next."""
    events, _ = session_events(SessionSpec(duration_s=5.0, seed=7))
    events.append(
        RawEvent("window", events[-1].timestamp_ns, {"title": "t", "rect": [0, 0, 1, 1], "hWnd": 1})
    )
    path = tmp_path / "small.mcap"
    with OWAMcapWriter(path, chunk_size=2048) as writer:
        for e in events:
            writer.write_message(
                MESSAGES[TOPIC_TYPES[e.topic]](**e.fields), topic=e.topic, timestamp=e.timestamp_ns
            )
    with Recording(path) as rec:
        assert len(list(rec.message_batches())) > 10
    for overrides in CONFIGS[:5]:
        config = BinnedConfig(**overrides)
        expected, expected_report = stage_run(tmp_path, "small.mcap", config, columnar=False, batch_size=50)
        got, report = stage_run(tmp_path, "small.mcap", config, columnar=True, batch_size=50)
        assert isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected)
        assert all(a.equals(b) for a, b in zip(got, expected, strict=True)) and report == expected_report


def test_configs_the_columnar_path_cannot_do_bin_events(
    current_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A topic filter or a rate takes the Event path (its rows are the reference)."""
    calls: list[int] = []
    original = stage_module.bin_events

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(stage_module, "bin_events", counting)
    keep = {"keep_topics": ["screen", "keyboard"], "action_topics": ["keyboard"]}
    for overrides in (keep, {"rate_settings": {"mouse/raw": 20.0}}):
        calls.clear()
        got, _ = stage_run(current_corpus, "episode_000.mcap", BinnedConfig(**overrides), columnar=True)
        assert calls == [1] and isinstance(got, list) and got


def test_a_long_gap_in_a_recording_is_the_same_error(tmp_path: Path) -> None:
    events = [
        RawEvent("keyboard", DEFAULT_START_NS + i * 2 * NS, {"event_type": "press", "vk": 65})
        for i in range(3)
    ]
    events.append(RawEvent("keyboard", DEFAULT_START_NS + 3 * 3600 * NS, {"event_type": "release", "vk": 65}))
    write_recording(tmp_path / "gap.mcap", events)
    config = BinnedConfig(fps=10.0, max_gap_s=1000.0)
    expected, expected_report = stage_run(tmp_path, "gap.mcap", config, columnar=False)
    got, _ = stage_run(tmp_path, "gap.mcap", config, columnar=True)
    assert isinstance(expected, str) and "consecutive bins" in expected and got == expected
    dropped = BinnedConfig(fps=10.0, max_gap_s=1000.0, drop_empty_bins=True)
    expected, expected_report = stage_run(tmp_path, "gap.mcap", dropped, columnar=False)
    got, report = stage_run(tmp_path, "gap.mcap", dropped, columnar=True)
    assert isinstance(got, list) and isinstance(expected, list)
    assert pa.Table.from_batches(got).equals(pa.Table.from_batches(expected)) and report == expected_report
    assert report["stats"]["bins"] == 4


# ---------------------------------------------------------------------------------------
# the pure functions, on hand-made and random streams
# ---------------------------------------------------------------------------------------
def ev(topic: str, t: int, i: int, message_type: str | None = None) -> Event:
    fields = {"i": i, "s": 'quote " backslash \\ tab \t é'}
    mtype = message_type or TOPIC_TYPES.get(topic, "test/Other")
    return Event(topic, t, mtype, orjson.dumps(fields), fields, i)


def message_batches(events: Sequence[Event], cuts: Sequence[int]) -> Iterator[MessageBatch]:
    """``events`` as the lossless read gives them: one channel per (topic, type), cut before each of
    ``cuts`` (and now and then an empty batch)."""
    pairs = list(dict.fromkeys((e.topic, e.message_type) for e in events)) + [("unused", "test/Unused")]
    channels = [(100 + i, topic, mtype) for i, (topic, mtype) in enumerate(pairs)]
    index = {pair: i for i, pair in enumerate(pairs)}
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(events)), len(events)]
    for lo, hi in itertools.pairwise(bounds):
        part = events[lo:hi]
        idx = [index[(e.topic, e.message_type)] for e in part]
        yield MessageBatch(
            pa.array([e.timestamp_ns for e in part], pa.int64()),
            [channels[i][0] for i in idx],
            pa.array(idx, pa.int32()),
            [e.data for e in part],
            channels,
        )
        if hi - lo > 1 and lo % 2:
            yield MessageBatch(pa.array([], pa.int64()), [], pa.array([], pa.int32()), [], channels)


def both(
    events: list[Event],
    config: BinnedConfig,
    cuts: Sequence[int] = (),
    *,
    state: list[str] = STATE,
    actions: list[str] = ACTIONS,
    batch_size: int = 4,
    max_bins: int = 65536,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(columnar, reference): each the rows (as Python), the batch sizes, the account, the counts and the
    error (type and text, or None); rows are collected up to the error."""

    def run(columnar: bool) -> tuple[Any, ...]:
        account, counts = Account(), BinCounts()
        if columnar:
            chunks = (
                (0, chunk)
                for chunk in bin_batches(
                    message_batches(events, cuts),
                    config.period_ns(),
                    state,
                    actions,
                    account,
                    counts,
                    drop_empty=config.drop_empty_bins,
                    max_empty_run=config.max_empty_run(),
                    max_bins=max_bins,
                )
            )
            batches = chunk_rows(chunks, "p.mcap", "p.mcap", config.fps, batch_size)
        else:
            episodes = [(0, iter(events))]
            batches = event_rows(
                episodes, "p.mcap", "p.mcap", config, lambda: (state, actions), account, counts, batch_size
            )
        rows, sizes, error = [], [], None
        try:
            for batch in batches:
                assert batch.schema == stage_module.BINNED_SCHEMA
                sizes.append(len(batch))
                rows += batch.to_pylist()
        except (EmptyRunError, EventOrderError, ValueError) as exc:
            error = (type(exc).__name__, str(exc))
        return rows, sizes, account.to_dict() if error is None else None, vars(counts), error

    return run(True), run(False)


def fps_of(period: int) -> float:
    fps = 1e9 / period
    assert BinnedConfig(fps=fps).period_ns() == period
    return fps


def check(
    events: list[Event], config: BinnedConfig, cuts: Sequence[int] = (), **kwargs: Any
) -> tuple[Any, ...]:
    got, expected = both(events, config, cuts, **kwargs)
    if expected[4] is None:
        assert got == expected
    else:  # the error, after the same rows (the account stops where the error is)
        assert (got[0], got[4]) == (expected[0], expected[4])
    return got


P = 100  # ns per bin in the hand-made cases
CONFIG = BinnedConfig(fps=fps_of(P), max_gap_s=None)


def test_state_exactly_at_a_bin_start_and_ties() -> None:
    events = [
        ev("keyboard", 1000, 0),
        ev("screen", 1100, 1),  # exactly at bin 1's start
        ev("screen", 1100, 2),  # a tie: the last one is the state
        ev("mouse", 1100, 3),
        ev("screen", 1199, 4),  # the last ns of bin 1: bin 2's state
        ev("screen", 1200, 5),  # the first ns of bin 2: supersedes it (4 unused)
        ev("mouse/raw", 1299, 6),
        ev("screen", 1350, 7),  # after the last bin's start: unused
    ]
    for cuts in ([], [1], [2, 3], [4], [5], [1, 2, 3, 4, 5, 6, 7]):
        rows, _, account, counts, _ = check(events, CONFIG, cuts)
        assert [len(r["state"]) for r in rows] == [0, 1, 1, 1] and counts["bins"] == 4
        assert account["dropped"] == {"state_unused": {"screen": 3}} and account["out"]["screen"] == 2


def test_empty_bins_long_gaps_and_drop_empty_bins() -> None:
    events = [ev("screen", 0, 0), ev("keyboard", 5, 1), ev("screen", 450, 2), ev("screen", 600, 3)]
    events += [ev("screen", 650, 4), ev("screen", 700, 5), ev("window", 999, 6)]
    events += [ev("keyboard", 100_000 + 7, 7), ev("screen", 100_000 + 100, 8), ev("mouse", 100_000 + 101, 9)]
    for cuts in ([], [3, 4], [6, 7], [8, 9]):
        for max_bins in (7, 65536):
            rows, *_ = check(events, CONFIG, cuts, max_bins=max_bins)
            assert len(rows) == 1002
            dropped = BinnedConfig(fps=fps_of(P), drop_empty_bins=True)
            rows, _, account, counts, _ = check(events, dropped, cuts, max_bins=max_bins)
            assert [r["bin_idx"] for r in rows] == [0, 1000, 1001]
            assert counts == {"episodes": 1, "bins": 3, "empty_bins_dropped": 999}
            assert account["dropped"] == {
                "not_binned": {"window": 1},
                "state_only_in_dropped_bins": {"screen": 2},  # the states of bins 4 and 6 only
                "state_unused": {"screen": 1},  # at 650: superseded before bin 7's start
            }
            assert account["out"]["screen"] == 3
            # a gap longer than max_gap_s: the bins before it, then the error
            limited = BinnedConfig(fps=fps_of(P), max_gap_s=500 * P / 1e9)
            rows, *_, error = check(events, limited, cuts, max_bins=max_bins, batch_size=1)
            assert error[0] == "EmptyRunError" and "990 consecutive bins from 1000 ns" in error[1]
            assert [r["bin_idx"] for r in rows] == list(range(10))


def test_unknown_topics_missing_state_topics_and_no_actions() -> None:
    events = [ev("window", 0, 0), ev("keyboard/state", 50, 1), ev("window", 230, 2), ev("mouse", 230, 3)]
    rows, _, account, counts, _ = check(events, CONFIG, [2])
    assert [(r["bin_idx"], len(r["state"]), len(r["actions"])) for r in rows] == [
        (0, 0, 0),
        (1, 0, 0),
        (2, 0, 1),
    ]
    assert account["dropped"] == {"not_binned": {"keyboard/state": 1, "window": 2}}
    rows, *_ = check(events, CONFIG, [1, 3], state=["screen", "window", "keyboard/state"], actions=[])
    assert [len(r["state"]) for r in rows] == [1, 2, 2]
    assert check([], CONFIG) == ([], [], Account().to_dict(), vars(BinCounts()), None)


def test_one_bin_over_many_batches_and_the_batch_size() -> None:
    events = [ev(("mouse/raw", "screen", "keyboard")[i % 3], 3 * i, i) for i in range(33)]
    for batch_size in (1, 2, 5, 1000):
        rows, sizes, *_ = check(events, CONFIG, range(33), batch_size=batch_size)
        assert len(rows) == 1 and len(rows[0]["actions"]) == 22
        assert sizes == [1]
    rows, sizes, *_ = check(events, BinnedConfig(fps=fps_of(2)), range(0, 33, 4), batch_size=7)
    assert sizes == [7] * 7 and len(rows) == 49  # 0 .. 96 ns in 2 ns bins


def test_bins_of_any_length_even_past_int64() -> None:
    events = [ev("screen", 10**18, 0), ev("keyboard", 10**18 + 5, 1), ev("screen", 4 * 10**18, 2)]
    for fps in (1e-10, 1e-9, 0.3):
        rows, *_ = check(events, BinnedConfig(fps=fps, drop_empty_bins=fps < 1), [1, 2])
        assert rows[0]["bin_idx"] == 0 and len(rows[0]["state"]) == 1


def test_time_order_and_bin_idx_overflow_are_the_same_errors() -> None:
    back = [ev("keyboard", 10, 0), ev("screen", 20, 1), ev("mouse", 19, 2)]
    for cuts in ([], [1], [2]):
        *_, error = check(back, CONFIG, cuts)
        assert error[0] == "EventOrderError" and "event 2 ('mouse' at 19)" in error[1]
    # the bins it closed come first; then the error (before the episode start, or the message before it)
    late = [
        ev("keyboard", 10, 0),
        ev("screen", 120, 1),
        ev("mouse", 250, 2),
        ev("mouse", 240, 3),
        ev("mouse", 5, 4),
    ]
    for cuts in ([], [1], [2], [3], [4], [1, 2, 3]):
        rows, *_, error = check(late, CONFIG, cuts, batch_size=1)
        assert [r["bin_idx"] for r in rows] == [0, 1] and "event 3 ('mouse' at 240)" in error[1]
        rows, *_, error = check([*late[:3], ev("mouse", 5, 3)], CONFIG, cuts, batch_size=1)
        assert "event 3 ('mouse' at 5) is before the episode start (10)" in error[1]
    far = [ev("keyboard", 0, 0), ev("keyboard", INT32_MAX + 5, 1)]
    for cuts in ([], [1]):
        rows, *_, error = check(far, BinnedConfig(fps=fps_of(1), drop_empty_bins=True), cuts)
        assert error == (
            "ValueError",
            f"p.mcap (interval 0): more than {INT32_MAX} bins at fps=1000000000.0; bin_idx is int32, "
            "lower fps",
        )


TOPICS = ["screen", "keyboard", "mouse", "mouse/raw", "window", "keyboard/state"]


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Event], BinnedConfig, list[int], dict[str, Any]]:
    n = draw(st.integers(0, 50))
    period = draw(st.sampled_from([1, 2, 3, 7, 10, 50, 100, 250, 1000]))
    short, long = st.integers(0, 2 * period), st.integers(0, 30 * period)  # a few hundred bins at most
    gaps = draw(st.lists(st.one_of(short, short, short, long), min_size=n, max_size=n))
    topics = draw(st.lists(st.sampled_from(TOPICS), min_size=n, max_size=n))
    start = draw(st.integers(0, 10**12))
    times = list(itertools.accumulate(gaps, initial=start))[1:]
    if n > 1 and draw(st.integers(0, 9)) == 0:  # now and then a message out of order: the same error
        times[draw(st.integers(1, n - 1))] -= draw(st.integers(1, 3 * period))
    # now and then a second channel of a topic (another message type): roles go by topic
    alt = draw(st.lists(st.sampled_from([None, None, None, "test/Alt"]), min_size=n, max_size=n))
    events = [ev(topic, t, i, a) for i, (topic, t, a) in enumerate(zip(topics, times, alt, strict=True))]
    gap = draw(st.one_of(st.none(), st.integers(1, 20)))
    config = BinnedConfig(
        fps=fps_of(period),
        drop_empty_bins=draw(st.booleans()),
        max_gap_s=None if gap is None else gap * period / 1e9,
    )
    cuts = draw(st.lists(st.integers(0, max(n, 1)), max_size=8))
    roles = draw(st.permutations(TOPICS))
    n_state, n_action = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    kwargs = {
        "state": list(roles[:n_state]),
        "actions": list(roles[n_state : n_state + n_action]),
        "batch_size": draw(st.integers(1, 6)),
        "max_bins": draw(st.sampled_from([1, 2, 5, 65536])),
    }
    return events, config, cuts, kwargs


@settings(max_examples=200, deadline=None)
@given(cases())
def test_random_streams_in_random_batches_match_bin_events(
    case: tuple[list[Event], BinnedConfig, list[int], dict[str, Any]],
) -> None:
    events, config, cuts, kwargs = case
    got = check(events, config, cuts, **kwargs)
    if got[4] is None and events:
        account = Account.from_dict(got[2])
        for e in events:
            account.take_in(e.topic)
        assert not account.unaccounted()
