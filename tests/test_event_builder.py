"""End to end through the real `datasets` library: load_dataset("owa_builders/event", ...)."""

from __future__ import annotations

import os
import shutil
import traceback
from pathlib import Path

import datasets
import pytest
from mcap_owa.highlevel import McapMessage

import owa_builders  # noqa: F401  (registers the builders)
from owa_builders.builder import EmptyDatasetError
from owa_builders.discovery import NoRecordingsError
from owa_builders.event import EventBuilder
from owa_event.errors import ConfigError, RecordingError, SkippedFileWarning
from owa_event.reader import Recording
from owa_event.stage import EVENT_SCHEMA

datasets.disable_progress_bars()

EVENT_FEATURES = datasets.Features.from_arrow_schema(EVENT_SCHEMA)


def rows(ds: datasets.Dataset | datasets.IterableDataset) -> list[tuple]:
    return [tuple(r[c] for c in EVENT_FEATURES) for r in ds]


def total_messages(root: Path) -> int:
    n = 0
    for path in sorted(root.rglob("*.mcap")):
        with Recording(path) as rec:
            n += rec.summary.message_count
    return n


def test_normal_and_streaming_give_identical_rows_and_splits(corpus: Path, cache_dir: str) -> None:
    built = datasets.load_dataset("owa_builders/event", data_dir=str(corpus), cache_dir=cache_dir)
    streamed = datasets.load_dataset("owa_builders/event", data_dir=str(corpus), streaming=True)
    assert set(built) == set(streamed) == {"train", "test"}
    for split in built:
        assert rows(built[split]) == rows(streamed[split])
    assert streamed["train"].num_shards == 2  # one shard per recording
    # lossless by default: every message of every recording is a row
    assert sum(b.num_rows for b in built.values()) == total_messages(corpus)
    assert built["train"].features == EVENT_FEATURES
    episodes = {r["episode_path"] for r in built["train"]}
    assert episodes == {"train/episode_000.mcap", "train/episode_002.mcap"}


def test_rows_are_time_ordered_and_messages_parse(corpus: Path, cache_dir: str) -> None:
    ds = datasets.load_dataset("owa_builders/event", data_dir=str(corpus), cache_dir=cache_dir, split="test")
    last: dict[str, int] = {}
    for row in ds:
        assert row["timestamp_ns"] >= last.get(row["episode_path"], 0)
        last[row["episode_path"]] = row["timestamp_ns"]
        msg = McapMessage.model_validate_json(row["mcap_message"])
        assert (msg.topic, msg.timestamp, msg.message_type) == (
            row["topic"],
            row["timestamp_ns"],
            row["message_type"],
        )
        assert row["message_type"].startswith("desktop/")  # legacy names upgraded
        if row["topic"] == "screen":
            uri = msg.decoded.media_ref.uri
            assert uri == row["episode_path"].replace(".mcap", ".mkv")
            assert (corpus / uri).exists()


def test_num_proc_2_gives_the_same_rows_as_num_proc_1(corpus: Path, tmp_path: Path) -> None:
    one = datasets.load_dataset("owa_builders/event", data_dir=str(corpus), cache_dir=str(tmp_path / "a"))
    two = datasets.load_dataset(
        "owa_builders/event", data_dir=str(corpus), cache_dir=str(tmp_path / "b"), num_proc=2
    )
    for split in one:
        assert rows(one[split]) == rows(two[split])


def test_same_input_and_config_same_rows_and_fingerprint(current_corpus: Path, tmp_path: Path) -> None:
    a = datasets.load_dataset(
        "owa_builders/event", data_dir=str(current_corpus), cache_dir=str(tmp_path / "a"), split="train"
    )
    b = datasets.load_dataset(
        "owa_builders/event", data_dir=str(current_corpus), cache_dir=str(tmp_path / "b"), split="train"
    )
    assert rows(a) == rows(b)
    assert a._fingerprint == b._fingerprint


def _config_id(data_dir: str, cache_dir: str, **kwargs: object) -> tuple[str, str]:
    builder = datasets.load_dataset_builder(
        "owa_builders/event", data_dir=data_dir, cache_dir=cache_dir, **kwargs
    )
    return builder.config_id, builder.cache_dir


def test_fingerprint_changes_with_config_and_input_files(current_corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(current_corpus, data)
    cache = str(tmp_path / "cache")
    base = _config_id(str(data), cache)
    assert _config_id(str(data), cache) == base
    assert _config_id(str(data), cache, rate_settings={"mouse/raw": 20})[0] != base[0]
    assert _config_id(str(data), cache, keep_topics=["screen"])[0] != base[0]
    mcap = data / "episode_000.mcap"
    stat = mcap.stat()
    os.utime(mcap, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert _config_id(str(data), cache) != base


def test_cache_dir_carries_the_package_code_hash(current_corpus: Path, cache_dir: str) -> None:
    from owa_builders.registry import code_hash

    _, path = _config_id(str(current_corpus), cache_dir)
    assert code_hash() in path


def test_config_fields_through_load_dataset(current_corpus: Path, cache_dir: str) -> None:
    full = datasets.load_dataset(
        "owa_builders/event", data_dir=str(current_corpus), cache_dir=cache_dir, split="train"
    )
    limited = datasets.load_dataset(
        "owa_builders/event",
        data_dir=str(current_corpus),
        cache_dir=cache_dir,
        split="train",
        keep_topics=["screen", "mouse/raw", "keyboard"],
        rate_settings={"screen": 5, "mouse/raw": 20},
    )
    topics = set(limited["topic"])
    assert topics == {"screen", "mouse/raw", "keyboard"}
    n_full_screen = full["topic"].count("screen")
    n_screen = limited["topic"].count("screen")
    assert 0 < n_screen <= n_full_screen / 4 + 3  # 20 fps -> 5 Hz
    assert limited["topic"].count("keyboard") == full["topic"].count(
        "keyboard"
    )  # no keyboard rate: untouched


def test_bad_config_fails_up_front_listing_every_problem(current_corpus: Path, cache_dir: str) -> None:
    with pytest.raises(ConfigError) as info:
        datasets.load_dataset(
            "owa_builders/event",
            data_dir=str(current_corpus),
            cache_dir=cache_dir,
            rate_settings={"screen": -1},
            on_bad_file="maybe",
        )
    assert "negative" in str(info.value) and "on_bad_file" in str(info.value)
    with pytest.raises(ConfigError, match="unknown topic 'scren'"):
        datasets.load_dataset(
            "owa_builders/event", data_dir=str(current_corpus), cache_dir=cache_dir, keep_topics=["scren"]
        )


def test_without_data_dir_it_does_not_scan_the_current_directory(
    current_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(current_corpus)  # a folder full of recordings: must still not be scanned
    with pytest.raises(NoRecordingsError, match="no data given: pass data_dir="):
        datasets.load_dataset("owa_builders/event")


def test_explicit_data_files_and_non_recordings_ignored(current_corpus: Path, cache_dir: str) -> None:
    files = sorted(str(p) for p in current_corpus.glob("*.mcap"))
    ds = datasets.load_dataset(
        "owa_builders/event",
        data_files={"train": files[:2], "validation": files[2:] + [str(current_corpus / "episode_002.mkv")]},
        cache_dir=cache_dir,
    )
    assert set(ds) == {"train", "validation"}
    assert set(ds["validation"]["episode_path"]) == {"episode_002.mcap"}
    assert set(ds["train"]["episode_path"]) == {"episode_000.mcap", "episode_001.mcap"}


def test_folder_without_recordings_is_a_clear_error(tmp_path: Path, cache_dir: str) -> None:
    (tmp_path / "notes.txt").write_text("no recordings here")
    with pytest.raises(NoRecordingsError, match=r"no \.mcap recordings"):
        datasets.load_dataset("owa_builders/event", data_dir=str(tmp_path), cache_dir=cache_dir)


def test_builder_class_used_directly(current_corpus: Path, cache_dir: str) -> None:
    builder = EventBuilder(data_dir=str(current_corpus), cache_dir=cache_dir)
    builder.download_and_prepare()
    assert [r.episode_path for r in builder.reports] == [
        "episode_000.mcap",
        "episode_001.mcap",
        "episode_002.mcap",
    ]
    assert all(not r.unaccounted() for r in builder.reports)
    ds = builder.as_dataset(split="train")
    streamed = builder.as_streaming_dataset(split="train")
    assert rows(ds) == rows(streamed)
    assert ds.num_rows == total_messages(current_corpus)


def test_builder_without_any_data_is_a_clear_error(cache_dir: str) -> None:
    builder = EventBuilder(cache_dir=cache_dir)
    with pytest.raises(NoRecordingsError, match="pass data_dir"):
        builder.download_and_prepare()


def test_the_real_shared_recording_builds(shared_recording: Path, tmp_path: Path) -> None:
    data = tmp_path / "real"
    data.mkdir()
    for suffix in (".mcap", ".mkv"):
        os.symlink(shared_recording.with_suffix(suffix), data / shared_recording.with_suffix(suffix).name)
    ds = datasets.load_dataset(
        "owa_builders/event", data_dir=str(data), cache_dir=str(tmp_path / "cache"), split="train"
    )
    assert ds.num_rows == 267
    assert set(ds["topic"]) == {"window", "keyboard/state", "mouse/state", "screen", "keyboard", "mouse"}
    screen = next(r for r in ds if r["topic"] == "screen")
    assert McapMessage.model_validate_json(screen["mcap_message"]).decoded.media_ref.uri == "0.5.1.mkv"


def test_four_mistakes_are_reported_together_with_suggestions(current_corpus: Path, cache_dir: str) -> None:
    with pytest.raises(ConfigError) as info:
        datasets.load_dataset(
            "owa_builders/event",
            data_dir=str(current_corpus),
            cache_dir=cache_dir,
            rate_settings={"screen": -5, "mouse/rwa": 20},
            keep_topics=["keybord", "screen"],
            on_bad_file="ignore",
            rate_setting={"screen": 5},  # a misspelled field name
        )
    message = str(info.value)
    assert message.startswith("invalid owa_builders/event config 'event': 5 problems:")
    assert "unknown field 'rate_setting' (did you mean 'rate_settings'?)" in message
    assert "rate_settings['screen'] is negative" in message
    assert "unknown topic 'mouse/rwa' (did you mean 'mouse/raw'?)" in message
    assert "unknown topic 'keybord' (did you mean 'keyboard'?)" in message
    assert "on_bad_file must be 'error' or 'skip', got 'ignore'" in message
    assert len(message) < 1000  # no repr of the whole config


def test_misspelled_config_and_builder_names_get_suggestions(current_corpus: Path, cache_dir: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown config 'fsl-smolvm' \(did you mean 'fsl-smolvlm'\?\)"):
        datasets.load_dataset(
            "owa_builders/fsl", "fsl-smolvm", data_dir=str(current_corpus), cache_dir=cache_dir
        )
    from owa_builders.registry import UnknownBuilderError

    with pytest.raises(
        UnknownBuilderError,
        match=r"unknown builder 'owa_builders/events' \(did you mean 'owa_builders/event'\?\)",
    ):
        datasets.load_dataset("owa_builders/events", data_dir=str(current_corpus))


def test_a_missing_data_dir_says_no_such_folder(tmp_path: Path) -> None:
    with pytest.raises(NoRecordingsError, match=r"nope'?: no such folder"):
        datasets.load_dataset("owa_builders/event", data_dir=str(tmp_path / "nope"))


def test_errors_of_ours_reach_the_caller_unwrapped(tmp_path: Path, cache_dir: str) -> None:
    (tmp_path / "notes.mcap").write_text("some notes, renamed")
    with pytest.raises(RecordingError) as info:
        datasets.load_dataset("owa_builders/event", data_dir=str(tmp_path), cache_dir=cache_dir)
    # the last line of the traceback: our type, the file and the problem (datasets does not re-wrap it)
    assert str(info.value) == f"{tmp_path / 'notes.mcap'}: not an MCAP file (bad magic bytes)"
    assert type(info.value).__name__ == "RecordingError" and info.value.path == str(tmp_path / "notes.mcap")
    assert (
        info.value.__cause__ is None
        and "DatasetGenerationError" not in traceback.format_exception_only(info.value)[-1]
    )
    with pytest.raises(RecordingError, match="not an MCAP file"):  # the same with worker processes
        datasets.load_dataset("owa_builders/event", data_dir=str(tmp_path), cache_dir=cache_dir, num_proc=2)


def test_a_selection_that_keeps_nothing_is_a_clear_error(current_corpus: Path, cache_dir: str) -> None:
    with pytest.raises(EmptyDatasetError) as info:
        datasets.load_dataset("owa_builders/event", data_dir=str(current_corpus), cache_dir=cache_dir,
                              interval={"type": "start_stop_key", "start_vk": 0x77})  # fmt: skip
    message = str(info.value)
    assert "the event build of split 'train' made no rows from its 3 recording(s)" in message
    assert message.count("dropped by outside_intervals") == 3 and "corresponds to no data" not in message


def test_all_files_skipped_is_a_clear_error(tmp_path: Path, cache_dir: str) -> None:
    (tmp_path / "a.mcap").write_text("x")
    with pytest.raises(EmptyDatasetError, match=r"a\.mcap: .*SKIPPED"), pytest.warns(SkippedFileWarning):
        datasets.load_dataset(
            "owa_builders/event", data_dir=str(tmp_path), cache_dir=cache_dir, on_bad_file="skip"
        )
