"""THE layout of a build (names, atomic shards, footers, the record) and the Ray worker side, without Ray."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import datasets
import pytest

from owa_builders.discovery import find_recordings
from owa_builders.distributed.ray_build import ShardJob, convert_recording, make_stage
from owa_builders.output import (
    Destination,
    check_config_folder,
    config_fingerprint,
    input_fingerprint,
    is_temp_name,
    parse_shard_name,
    shard_name,
    temp_files,
    temp_path,
)
from owa_builders.publish.layout import LayoutError
from owa_event.errors import ConfigError, RecordingError
from owa_event.pipeline import RecordingRef, Stage, rows
from owa_event.stage import EventStage


def test_shard_names_sort_in_recording_order_and_parse_back() -> None:
    names = [shard_name("train", i, 120) for i in range(120)]
    assert names[0] == "train-00000-of-00120.parquet" and names[-1] == "train-00119-of-00120.parquet"
    assert sorted(names) == names
    assert [parse_shard_name(n) for n in names[:2]] == [("train", 0, 120), ("train", 1, 120)]
    assert shard_name("validation.v2", 3, 4) == "validation.v2-00003-of-00004.parquet"
    for split, i, n in [("a/b", 0, 1), ("..", 0, 1), ("train", 1, 1), ("train", 0, 100_000), ("", 0, 1)]:
        with pytest.raises(LayoutError):
            shard_name(split, i, n)
    assert check_config_folder("fsl-internvl3") == "fsl-internvl3"
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(LayoutError):
            check_config_folder(bad)
    assert parse_shard_name("owa_build.json") is None
    assert parse_shard_name("train-0-of-1.parquet") is None


def test_temporary_names_are_hidden_and_never_shards(tmp_path: Path) -> None:
    final = str(tmp_path / shard_name("train", 0, 2))
    tmp = temp_path(final)
    assert os.path.dirname(tmp) == str(tmp_path)
    name = os.path.basename(tmp)
    assert name.startswith(".") and name.endswith(".tmp") and is_temp_name(name)
    assert parse_shard_name(name) is None and temp_path(final) != tmp
    Path(tmp).write_bytes(b"partial")
    Path(final).write_bytes(b"x")
    dest = Destination(tmp_path.parent)
    assert dest.shard_names(tmp_path.name) == [os.path.basename(final)]
    assert temp_files(str(tmp_path)) == [name]
    assert dest.shard_meta(f"{tmp_path.name}/{os.path.basename(final)}") is None  # not Parquet: never trusted
    assert dest.shard_names("absent") == [] and temp_files(str(tmp_path / "absent")) == []
    dest.remove_temp_files(tmp_path.name)
    assert temp_files(str(tmp_path)) == [] and os.path.exists(final)


def _job(ref: RecordingRef, out: Path, stage: Stage, index: int = 0, count: int = 1) -> ShardJob:
    meta = {"split": "train", "index": index, "count": count, "episode_path": ref.episode_path,
            "path": ref.path, "input": input_fingerprint(ref.path), "config": config_fingerprint(stage)}  # fmt: skip
    return ShardJob(ref, f"{out.name}/{shard_name('train', index, count)}", meta, 0)


def write_shard(stage: Stage, job: ShardJob, root: Path) -> dict:
    return convert_recording(stage, Destination(root), job)


def test_write_shard_holds_the_stage_rows_and_its_record(corpus: Path, tmp_path: Path) -> None:
    stage = EventStage(batch_size=500)  # several batches per recording
    ref = find_recordings(corpus).splits["train"][0]
    job = _job(ref, tmp_path / "event", stage)
    result = write_shard(stage, job, tmp_path)
    target = str(tmp_path / job.target)
    assert "error" not in result
    expected = list(rows(stage, ref))
    assert result["rows"] == len(expected) > 1000
    table = datasets.load_dataset("parquet", data_files=target, split="train", cache_dir=str(tmp_path / "c"))
    assert table.to_list() == expected
    meta = Destination(tmp_path).shard_meta(job.target)
    assert meta is not None and meta["rows"] == len(expected)
    assert meta["episode_path"] == ref.episode_path and meta["config"] == config_fingerprint(stage)
    assert meta["input"] == {"size": os.path.getsize(ref.path), "mtime_ns": os.stat(ref.path).st_mtime_ns}
    assert meta["report"]["account"]["out"] == result["report"]["account"]["out"]
    assert sum(meta["report"]["account"]["out"].values()) == len(expected)
    assert os.listdir(tmp_path / "c") and temp_files(str(tmp_path / "event")) == []


def test_a_bad_recording_leaves_no_file_or_an_empty_counted_shard(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus / "train", data)
    bad = data / "episode_000.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 64)
    ref = find_recordings(data).splits["train"][0]
    out = tmp_path / "out"
    out.mkdir()
    stage = EventStage()
    result = write_shard(stage, _job(ref, out, stage), tmp_path)
    assert isinstance(result["error"], RecordingError) and str(bad) in str(result["error"])
    assert os.listdir(out) == []  # nothing under a final name, no temporary file left
    skip = EventStage(EventStage.make_config(on_bad_file="skip"))
    job = _job(ref, out, skip)
    result = write_shard(skip, job, tmp_path)
    assert result["rows"] == 0 and result["report"]["skipped"]
    assert Destination(tmp_path).shard_meta(job.target)["report"]["skipped"] == result["report"]["skipped"]


def test_a_folder_of_shards_loads_by_data_dir_ignoring_temporary_files(corpus: Path, tmp_path: Path) -> None:
    stage = EventStage()
    refs = find_recordings(corpus).splits["train"]
    for i, ref in enumerate(refs):
        write_shard(stage, _job(ref, tmp_path / "event", stage, i, len(refs)), tmp_path)
    first = tmp_path / "event" / shard_name("train", 0, len(refs))
    shutil.copy(first, temp_path(str(first)))  # what a worker killed mid-write leaves
    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "event"), cache_dir=str(tmp_path / "c"))
    assert list(ds) == ["train"]
    assert ds["train"].to_list() == [r for ref in refs for r in rows(stage, ref)]


def test_make_stage_validates_once_and_names_the_folder() -> None:
    stage, name = make_stage("binned", None, {"fps": 5})
    assert name == "binned" and stage.config.fps == 5
    with pytest.raises(ConfigError) as err:
        make_stage("event", None, {"keep_topic": ["screen"], "on_bad_file": "maybe"})
    assert "keep_topics" in str(err.value) and "on_bad_file" in str(err.value)
    with pytest.raises(ValueError, match="did you mean 'event'"):
        make_stage("evnt")
    own = EventStage()
    assert make_stage(own, "mine") == (own, "mine")


def test_config_fingerprint_follows_the_config() -> None:
    a = config_fingerprint(EventStage())
    assert a == config_fingerprint(EventStage())
    assert a != config_fingerprint(EventStage(EventStage.make_config(keep_topics=["screen"])))


# ------------------------------------------------------------------------------------------
# The local build at any fsspec destination (no Ray): memory:// and the S3 stand-in
# ------------------------------------------------------------------------------------------
def _rows(ds: Any) -> dict[str, list[dict[str, Any]]]:
    return {split: ds[split].to_list() for split in ds}


def test_the_local_build_writes_the_same_layout_to_a_url(
    corpus: Path, tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]]
) -> None:
    import fsspec

    from owa_builders.build import build
    from owa_builders.output import RECORD_NAME, load_build, read_record

    bucket, options = s3_bucket
    folder = build(
        "binned", str(corpus), tmp_path / "binned", options={"fps": 4}, cache_dir=str(tmp_path / "c")
    )
    record = read_record(tmp_path / "binned")
    assert record.engine == "local" and record.layout == "owa-parquet/1"
    assert list(record.shards) == ["train", "test"] and all(len(v) == 2 for v in record.shards.values())
    assert [r["episode_path"] for r in record.reports] == [
        "train/episode_000.mcap", "train/episode_002.mcap", "test/episode_001.mcap", "test/episode_003.mcap"
    ]  # fmt: skip
    expected = _rows(folder.dataset)
    assert _rows(load_build(tmp_path / "binned", cache_dir=str(tmp_path / "c1"))) == expected
    stray = "memory://owa-out/binned/binned/train-00004-of-00005.parquet"  # an earlier build's shard
    fsspec.open(stray, "wb").open().close()
    for url, so in (("memory://owa-out/binned", None), (f"{bucket}/binned", options)):
        build(
            "binned", str(corpus), url, options={"fps": 4}, cache_dir=str(tmp_path / "c"), storage_options=so
        )
        assert read_record(url, so).to_dict() == record.to_dict()  # one record, wherever it is written
        assert _rows(load_build(url, storage_options=so, cache_dir=str(tmp_path / "c2"))) == expected
        fs, root = fsspec.core.url_to_fs(url, **(so or {}))
        written = sorted(fs.find(root))
        assert sorted(p.rsplit("/", 1)[1] for p in written) == [
            RECORD_NAME, "test-00000-of-00002.parquet", "test-00001-of-00002.parquet",
            "train-00000-of-00002.parquet", "train-00001-of-00002.parquet",
        ]  # fmt: skip
        for path in written:
            data = fs.cat_file(path)
            assert options["key"].encode() not in data and options["secret"].encode() not in data


def test_a_shard_is_never_half_visible(tmp_path: Path) -> None:
    import pyarrow as pa

    from owa_builders.output import write_shard

    schema = pa.schema([("x", pa.int64())])

    def batches(fail: bool) -> Any:
        yield pa.RecordBatch.from_pydict({"x": [1, 2]}, schema=schema)
        if fail:
            raise OSError("the source went away")
        yield pa.RecordBatch.from_pydict({"x": [3]}, schema=schema)

    for url in (str(tmp_path / "out"), "memory://owa-atomic/out"):
        dest = Destination(url)
        with pytest.raises(OSError, match="went away"):
            write_shard(dest, "c/train-00000-of-00001.parquet", schema, batches(True), lambda: {"a": 1})
        assert dest.shard_names("c") == [] and (not dest.local or temp_files(dest.path("c")) == [])
        rows = write_shard(dest, "c/train-00000-of-00001.parquet", schema, batches(False), lambda: {"a": 1})
        assert rows == 3 and dest.shard_meta("c/train-00000-of-00001.parquet") == {"a": 1, "rows": 3}


def test_credentials_are_never_shown_or_parsed_into_errors() -> None:
    from owa_builders.output import BuildFolderError, parse_storage_options, redact

    assert redact("s3://AKIA:topsecret@bucket/prefix") == "s3://bucket/prefix"
    assert redact("/local/path") == "/local/path"
    dest = Destination("s3://bucket/x", {"secret": "topsecret"})
    assert "topsecret" not in repr(dest) and "topsecret" not in dest.shown
    assert parse_storage_options(['client_kwargs={"endpoint_url": "http://h:1"}', "anon=true", "key=k"]) == {
        "client_kwargs": {"endpoint_url": "http://h:1"}, "anon": True, "key": "k"
    }  # fmt: skip
    with pytest.raises(BuildFolderError, match="#2 is not KEY=VALUE") as err:
        parse_storage_options(["key=k", "topsecret"])
    assert "topsecret" not in str(err.value)
