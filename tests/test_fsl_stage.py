"""The FSL stage: shift_actions, fsl_rows on a generated recording, FslTokens save/load."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from owa_builders.demo.recordings import (
    DEFAULT_START_NS,
    MS,
    NS,
    RawEvent,
    SessionSpec,
    session_events,
    write_recording,
)
from owa_builders.demo.tokenizer import example_tokenizer_json, write_example_tokenizer
from owa_event.account import RecordingReport
from owa_event.events import INPUT_TOPICS, SCREEN, Event
from owa_event.intervals import StartStopKey
from owa_event.pipeline import RecordingRef, kept_events
from owa_fsl.config import FslConfig
from owa_fsl.encoders import canonical, get_encoder, make_event
from owa_fsl.pack import RULE_FRAMELESS, RULE_OVERSIZE, OversizeEventError
from owa_fsl.stage import FSL_COLUMNS, FslStage, shift_actions
from owa_fsl.tokenizer import FSL_META, FslTokens

F8 = 119
#: F8 presses (s from the start): intervals [1.0, 2.5] and [3.5, 5.0] s.
F8_PRESSES_S = (1.0, 2.5, 3.5, 5.0)
INTERVALS = [
    (DEFAULT_START_NS + int(a * NS), DEFAULT_START_NS + int(b * NS) + 1)
    for a, b in zip(F8_PRESSES_S[::2], F8_PRESSES_S[1::2])
]


# -- shift_actions -------------------------------------------------------------------------------------
def ev(topic: str, t: int, i: int = -1) -> Event:
    fields: dict[str, Any] = {
        "screen": {"media_ref": {"uri": "v.mkv", "pts_ns": t}},
        "keyboard": {"event_type": "press", "vk": 65},
        "mouse": {"event_type": "move", "x": 1, "y": 2},
        "mouse/raw": {"last_x": 1, "last_y": -1},
        "window": {"title": "w"},
    }[topic]
    return (
        make_event(topic, t, fields, i)
        if topic != "window"
        else Event(topic, t, "desktop/WindowInfo", b"{}", fields, i)
    )


def check_shift(events: list[Event], shift: int, out: list[Event]) -> None:
    assert len(out) == len(events)
    assert [e.timestamp_ns for e in out] == sorted(e.timestamp_ns for e in out)
    # non-input events untouched (the very same objects), in order
    assert [e for e in out if e.topic not in INPUT_TOPICS] == [
        e for e in events if e.topic not in INPUT_TOPICS
    ]
    assert all(a is b for a, b in zip((e for e in out if e.topic not in INPUT_TOPICS),
                                      (e for e in events if e.topic not in INPUT_TOPICS)))  # fmt: skip
    # input events moved by exactly shift, payload and order kept
    moved = [(e.topic, e.timestamp_ns, e.index, e.data) for e in out if e.topic in INPUT_TOPICS]
    assert moved == [
        (e.topic, e.timestamp_ns + shift, e.index, e.data) for e in events if e.topic in INPUT_TOPICS
    ]
    # ties: non-input events first
    for a, b in zip(out, out[1:]):
        if a.timestamp_ns == b.timestamp_ns:
            assert not (a.topic in INPUT_TOPICS and b.topic not in INPUT_TOPICS), (a, b)


def test_shift_zero_is_the_identity() -> None:
    events = [ev("keyboard", 5), ev("screen", 5), ev("mouse/raw", 3)]  # even unsorted input is untouched
    out = list(shift_actions(iter(events), 0))
    assert all(a is b for a, b in zip(out, events)) and len(out) == 3


@pytest.mark.parametrize(
    "shift, expected",
    [
        (10, [("screen", 0), ("window", 5), ("screen", 10), ("keyboard", 10), ("mouse", 12), ("screen", 20),
              ("mouse/raw", 30)]),
        (-10, [("keyboard", -10), ("mouse", -8), ("screen", 0), ("window", 5), ("screen", 10), ("mouse/raw", 10),
               ("screen", 20)]),
    ],
)  # fmt: skip
def test_shift_examples_positive_and_negative(shift: int, expected: list[tuple[str, int]]) -> None:
    events = [ev("keyboard", 0, 0), ev("mouse", 2, 1), ev("screen", 0 + 0, 2), ev("window", 5, 3), ev("screen", 10, 4),
              ev("screen", 20, 5), ev("mouse/raw", 20, 6)]  # fmt: skip
    events.sort(key=lambda e: e.timestamp_ns)
    out = list(shift_actions(events, shift))
    assert [(e.topic, e.timestamp_ns) for e in out] == expected
    check_shift(events, shift, out)


TOPICS = st.sampled_from(["screen", "keyboard", "mouse", "mouse/raw", "window"])


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.tuples(st.sampled_from([0, 0, 1, 2, 5, 17]), TOPICS), max_size=40),
    shift=st.one_of(st.integers(-40, -1), st.integers(1, 40), st.sampled_from([-17, -5, 5, 17])),
)
def test_shift_property(items: list[tuple[int, str]], shift: int) -> None:
    t, events = 0, []
    for i, (gap, topic) in enumerate(items):
        t += gap
        events.append(ev(topic, t, i))
    check_shift(events, shift, list(shift_actions(iter(events), shift)))


def in_flight(events: Iterable[Event], shift: int) -> tuple[int, int]:
    """(most events pulled from the source but not yet given out, events given out)."""
    pulled = 0

    def source() -> Iterator[Event]:
        nonlocal pulled
        for e in events:
            pulled += 1
            yield e

    worst = given_out = 0
    for _ in shift_actions(source(), shift):
        given_out += 1
        worst = max(worst, pulled - given_out)
    return worst, given_out


def long_stream() -> Iterator[Event]:
    """~120k events 1 ms apart: mixed stretches, long frame-only and long input-only stretches."""
    t = 0
    for block in range(6):
        for i in range(20_000):
            t += MS
            if block % 3 == 0:
                topic = ("screen", "keyboard", "mouse/raw")[i % 3]
            else:
                topic = "screen" if block % 3 == 1 else "mouse/raw"
            yield ev(topic, t)


@pytest.mark.parametrize("shift", [25 * MS, -25 * MS])
def test_shift_memory_is_bounded_by_the_shift_on_a_long_generator(shift: int) -> None:
    worst, n = in_flight(long_stream(), shift)
    assert n == 120_000
    assert worst <= 26  # the events within |shift| (1 ms apart), not a whole stretch


def test_shift_is_lazy_on_an_endless_generator() -> None:
    endless = (ev(("screen", "keyboard")[i % 2], i * MS) for i in itertools.count())
    out = list(itertools.islice(shift_actions(endless, 3 * MS), 1000))  # returns at all: lazy
    assert [e.timestamp_ns for e in out] == sorted(e.timestamp_ns for e in out)
    assert out[-1].timestamp_ns <= 1003 * MS


# -- fsl_rows on a generated recording ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s session with F8 pressed at 1.0, 2.5, 3.5 and 5.0 s (real writer, real video)."""
    spec = SessionSpec(duration_s=6.0, seed=21)
    events, pts_ms = session_events(spec)
    for s in F8_PRESSES_S:
        t = spec.start_ns + int(s * NS)
        events += [RawEvent("keyboard", t, {"event_type": "press", "vk": F8}),
                   RawEvent("keyboard", t + 40 * MS, {"event_type": "release", "vk": F8})]  # fmt: skip
    events.sort(key=lambda e: e.timestamp_ns)
    root = tmp_path_factory.mktemp("fsl-stage")
    return write_recording(root / "rec.mcap", events, video=(pts_ms, spec.width, spec.height))


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_tokenizer(tmp_path_factory.mktemp("fsl-stage-tok") / "base")


def config_for(tokenizer_dir: Path, **kwargs: Any) -> FslConfig:
    options: dict[str, Any] = dict(
        tokenizer_name=str(tokenizer_dir), image_preset="smolvlm", image_token_count=4,
        max_sequence_length=256, interval=StartStopKey(start_vk=F8),
    )  # fmt: skip
    options.update(kwargs)
    config = FslConfig(**options)
    config.validate()
    return config


def ref_of(recording: Path) -> RecordingRef:
    return RecordingRef(str(recording), "rec.mcap", str(recording.parent))


def run(
    recording: Path, config: FslConfig, tokens: FslTokens | None = None
) -> tuple[list[dict], RecordingReport, Any]:
    """The rows, the report, and the packing part of the account (read as the tests name it)."""
    stage = FslStage(config, tokens=tokens)
    report = RecordingReport("rec.mcap")
    rows = [row for batch in stage.batches(ref_of(recording), report) for row in batch.to_pylist()]
    pack_drops = {r: c for r, c in report.account.dropped.items() if r in (RULE_OVERSIZE, RULE_FRAMELESS)}
    stats = SimpleNamespace(
        events_packed=report.account.out,
        dropped=pack_drops,
        unaccounted=report.unaccounted,
        **report.stats,
    )
    return rows, report, stats


def kept_by_interval(recording: Path, config: FslConfig) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = {}
    for idx, event in kept_events(ref_of(recording), config, RecordingReport("rec.mcap")):
        out.setdefault(idx, []).append(event)
    return out


def decode_row(row: dict, tokens: FslTokens) -> list[Event]:
    n = sum(row["attention_mask"])
    frames = [(img["uri"], img["pts_ns"]) for img in row["images"]]
    return tokens.encoder.decode(tokens.table.to_tokens(row["input_ids"][:n]), row["base_ns"], frames)


def assert_rows_decode_to(rows: list[dict], tokens: FslTokens, expected: dict[int, list[Event]]) -> None:
    """Per interval: the rows' decoded events, concatenated, are exactly ``expected`` (at 1 ms)."""
    res = tokens.encoder.time_resolution_ns
    for idx, want in expected.items():
        got: list[tuple[Event, int]] = []
        for row in (r for r in rows if r["interval_idx"] == idx):
            got += [(e, row["base_ns"]) for e in decode_row(row, tokens)]
        assert len(got) == len(want), f"interval {idx}"
        for (g, base), w in zip(got, want):
            assert (g.topic, canonical(g)) == (w.topic, canonical(w))
            assert g.timestamp_ns == base + (w.timestamp_ns - base) // res * res


@pytest.mark.parametrize("interval", [StartStopKey(start_vk=F8), {"type": "start_stop_key", "start_vk": F8}])
def test_rows_never_mix_intervals_and_every_kept_event_is_packed(
    recording: Path, tokenizer_dir: Path, interval: Any
) -> None:
    config = config_for(tokenizer_dir, interval=interval)
    tokens = config.build_tokens()
    rows, report, stats = run(recording, config, tokens)
    kept = kept_by_interval(recording, config)
    assert sorted(kept) == [0, 1]
    assert [r["interval_idx"] for r in rows] == sorted(r["interval_idx"] for r in rows)
    assert {r["interval_idx"] for r in rows} == {0, 1}
    assert sum(r["interval_idx"] == 0 for r in rows) > 1  # several rows per interval
    for row in rows:
        assert set(row) == set(FSL_COLUMNS)
        assert row["episode_path"] == "rec.mcap"
        assert len(row["input_ids"]) == len(row["attention_mask"]) == 256
        start, end = INTERVALS[row["interval_idx"]]
        times = [e.timestamp_ns for e in decode_row(row, tokens)]
        assert len(times) == row["n_events"]
        assert start <= row["base_ns"] == times[0] and max(times) < end  # inside its own interval only
        assert {img["uri"] for img in row["images"]} <= {"rec.mkv"}
    assert_rows_decode_to(rows, tokens, kept)
    # every kept event counted, and nothing else
    assert sum(r["n_events"] for r in rows) == sum(map(len, kept.values()))
    assert stats.events_packed == Counter(e.topic for evs in kept.values() for e in evs)
    assert stats.unaccounted() == {} and report.unaccounted() == {}
    assert report.intervals == 2
    assert (
        sum(len(r["images"]) for r in rows)
        == stats.frames
        == sum(e.topic == SCREEN for evs in kept.values() for e in evs)
    )


@pytest.mark.parametrize("shift", [30 * MS, -30 * MS])
def test_action_shift_moves_only_input_events(recording: Path, tokenizer_dir: Path, shift: int) -> None:
    config = config_for(tokenizer_dir, action_shift_ns=shift)
    tokens = config.build_tokens()
    rows, _, stats = run(recording, config, tokens)
    kept = kept_by_interval(recording, config)
    assert_rows_decode_to(rows, tokens, {i: list(shift_actions(evs, shift)) for i, evs in kept.items()})
    assert sum(r["n_events"] for r in rows) == sum(map(len, kept.values()))
    assert stats.unaccounted() == {}


def test_debug_text_is_the_decoded_sequence(recording: Path, tokenizer_dir: Path) -> None:
    config = config_for(tokenizer_dir, debug_text=True, interval=None)
    tokens = config.build_tokens()
    rows, _, _ = run(recording, config, tokens)
    assert rows and {r["interval_idx"] for r in rows} == {0}
    for row in rows:
        n = sum(row["attention_mask"])
        assert row["text"] == tokens.tokenizer.decode(row["input_ids"][:n], skip_special_tokens=False)
        assert row["text"].startswith("<EVENT_START>") and row["text"].endswith("<EVENT_END>")
        assert row["text"].count("<EVENT_START>") == row["n_events"]
        assert row["text"].count("<global-img>") == len(row["images"])
        assert "<pad>" not in row["text"]


def test_oversize_events_name_the_recording_or_are_counted(recording: Path, tokenizer_dir: Path) -> None:
    # one image token per frame: the smallest valid sequence (17) holds frames and keys, not raw mouse moves
    small = dict(
        image_preset=None, image_prefix=[], image_token="<image>", image_token_count=1, max_sequence_length=17
    )
    config = config_for(tokenizer_dir, **small)
    with pytest.raises(
        OversizeEventError, match=r"rec\.mcap \(interval 0\): event #\d+ \(mouse/raw at \d+ ns\)"
    ):
        run(recording, config)
    config = config_for(tokenizer_dir, on_oversize="drop", **small)
    rows, report, stats = run(recording, config)
    kept = kept_by_interval(recording, config)
    raw = sum(e.topic == "mouse/raw" for evs in kept.values() for e in evs)
    assert raw > 0 and stats.dropped == {"oversize": Counter({"mouse/raw": raw})}
    assert sum(r["n_events"] for r in rows) == sum(map(len, kept.values())) - raw
    assert stats.unaccounted() == {} and report.unaccounted() == {}


def test_drop_frameless_in_the_stage(recording: Path, tokenizer_dir: Path) -> None:
    config = config_for(tokenizer_dir, keep_topics=["keyboard", "mouse/raw"], drop_frameless=True)
    rows, _, stats = run(recording, config)
    kept = kept_by_interval(recording, config)
    assert rows == []
    assert stats.sequences_dropped_frameless >= 2  # at least one per interval
    assert sum(stats.dropped["frameless_sequence"].values()) == sum(map(len, kept.values())) > 0
    assert stats.unaccounted() == {}


# -- FslTokens -----------------------------------------------------------------------------------------------
def test_tokens_save_load_round_trip(recording: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    config = config_for(tokenizer_dir, encoder_type="hierarchical", time_resolution_ns=100_000, interval=None)
    tokens = config.build_tokens()
    tokens.save(str(tmp_path / "tok"))
    meta = json.loads((tmp_path / "tok" / FSL_META).read_text())
    assert meta == tokens.describe()
    assert meta["encoder_type"] == "hierarchical" and meta["encoder_options"]["time_resolution_ns"] == 100_000
    assert meta["image_tokens"] == {"prefix": ["<fake_token_around_image>", "<global-img>"], "token": "<image>",
                                    "count": 4, "suffix": ["<fake_token_around_image>"]}  # fmt: skip

    loaded = FslTokens.load(str(tmp_path / "tok"))
    assert loaded.encoder == tokens.encoder == get_encoder("hierarchical", time_resolution_ns=100_000)
    assert loaded.image_tokens == tokens.image_tokens
    assert loaded.pad_id == tokens.pad_id == tokens.tokenizer.pad_token_id
    assert loaded.table.token_to_id == tokens.table.token_to_id
    assert loaded.table.image_ids == tokens.table.image_ids
    assert len(loaded.tokenizer) == len(tokens.tokenizer) == loaded.table.tokenizer_size
    # the loaded tokens interpret the rows exactly as the tokens that made them
    rows, _, _ = run(recording, config, tokens)
    assert [decode_row(r, loaded) for r in rows] == [decode_row(r, tokens) for r in rows]
    again, _, _ = run(recording, config, loaded)
    assert again == rows


def test_tokens_errors(tokenizer_dir: Path, tmp_path: Path) -> None:
    missing = config_for(tokenizer_dir, tokenizer_name=str(tmp_path / "no-such-tokenizer"))
    with pytest.raises(
        ValueError, match=r"cannot load tokenizer '.*no-such-tokenizer'.*local tokenizer directory"
    ):
        missing.build_tokens()
    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(example_tokenizer_json()))
    assert bare.pad_token_id is None and bare.eos_token_id is None
    with pytest.raises(ValueError, match="neither a pad nor an eos"):
        config_for(tokenizer_dir).build_tokens(bare)
    eos_only = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(example_tokenizer_json()),
                                       eos_token="<|endoftext|>")  # fmt: skip
    tokens = config_for(tokenizer_dir).build_tokens(eos_only)
    assert tokens.pad_id == eos_only.convert_tokens_to_ids("<|endoftext|>")


@pytest.mark.parametrize("debug_text", [False, True])
def test_rows_batch_equals_from_pylist(debug_text: bool) -> None:
    """The buffer-built token columns hold exactly what ``RecordBatch.from_pylist`` makes of the lists."""
    import pyarrow as pa

    from owa_fsl.stage import fsl_schema, rows_batch

    max_len = 7
    schema = fsl_schema(debug_text)
    rows = []
    for i, n in enumerate([7, 3, 0, 5]):
        image = {"uri": "a.mkv", "pts_ns": i, "utc_ns": None, "source_shape": [4, 3], "shape": None}
        row = {
            "input_ids": [100 + i * 10 + k for k in range(n)] + [2**31 - 1] * (max_len - n),
            "n_tokens": n,
            "images": [image] * (i % 3),
            "episode_path": f"ep{i}.mcap",
            "interval_idx": i,
            "base_ns": -(2**62) + i,
            "n_events": n,
        }
        if debug_text:
            row["text"] = "x" * i
        rows.append(row)
    expected = pa.RecordBatch.from_pylist(
        [{**r, "attention_mask": [1] * r["n_tokens"] + [0] * (max_len - r["n_tokens"])} for r in rows],
        schema=schema,
    )
    got = rows_batch(rows, schema, max_len)
    assert got.schema == expected.schema
    assert got.equals(expected)
    with pytest.raises(ValueError, match="exactly 7"):
        rows_batch([{**rows[0], "input_ids": [1, 2]}], schema, max_len)
