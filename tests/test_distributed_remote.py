"""The Ray build into (and from) an S3 API through the real client (s3fs against moto's server on
127.0.0.1), on a real local Ray (2 CPUs): same rows as the local build for every stage, resume after
a lost worker, a hung task timed out and named, credentials never written nor logged."""

from __future__ import annotations

import glob
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from owa_builders.build import build
from owa_builders.distributed import ShardFailedError, build_on_ray
from owa_builders.output import RECORD_NAME, load_build, read_record
from owa_event.account import RecordingReport
from owa_event.pipeline import RecordingRef
from owa_event.stage import EventStage

try:
    from conftest import S3_KEY, S3_SECRET
except ImportError:  # tests/ imported as a package
    from tests.conftest import S3_KEY, S3_SECRET

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture(autouse=True)
def _ship_this_module_to_workers(ray_cluster: Any) -> None:
    """The failure-injecting stages below live in this test module, which Ray workers cannot import."""
    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _rows(ds: Any) -> dict[str, list[dict[str, Any]]]:
    return {split: ds[split].to_list() for split in ds}


def _objects(bucket: str, options: dict[str, Any]) -> dict[str, bytes]:
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.invalidate_cache()
    return {p: fs.cat_file(p) for p in sorted(fs.find(bucket.removeprefix("s3://")))}


def _no_secret(blobs: dict[str, bytes]) -> None:
    for name, data in blobs.items():
        assert S3_KEY.encode() not in data and S3_SECRET.encode() not in data, name


def test_every_stage_into_s3_equals_the_local_build(
    corpus: Path, tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]]
) -> None:
    from owa_builders.demo.tokenizer import write_example_tokenizer

    bucket, options = s3_bucket
    tok = str(write_example_tokenizer(tmp_path / "tok"))
    cases = [
        ("event", None, {}),
        ("binned", None, {"fps": 4}),
        ("fsl", "fsl-smolvlm", {"tokenizer_name": tok, "max_sequence_length": 1024}),
    ]
    stream = io.StringIO()
    for stage, config, stage_options in cases:
        url = f"{bucket}/builds/{stage}"
        result = build_on_ray(stage, corpus, url, config=config, options=stage_options or None,
                              storage_options=options, progress=stream)  # fmt: skip
        local = build(stage, str(corpus), tmp_path / f"local-{stage}", config=config,
                      options=stage_options or None, cache_dir=str(tmp_path / "c"))  # fmt: skip
        remote = load_build(url, storage_options=options, cache_dir=str(tmp_path / f"r-{stage}"))
        assert _rows(remote) == _rows(local.dataset), stage
        assert read_record(url, options).to_dict() | {"engine": "local"} == read_record(
            tmp_path / f"local-{stage}"
        ).to_dict() | {"data_root": str(corpus), "engine": "local"}  # one record, whichever driver
        assert (
            result.summary().startswith(f"ray build {stage} ")
            and "4 converted, 0 already done" in result.summary()
        )

    objects = _objects(bucket, options)
    names = [p.split("/", 1)[1] for p in objects]
    assert "builds/fsl/tokenizer/owa_fsl.json" in names and "builds/event/owa_build.json" in names
    assert not [n for n in names if n.endswith(".tmp") or "/." in n]  # never a temporary object
    _no_secret(objects)
    assert S3_SECRET not in stream.getvalue() and S3_KEY not in stream.getvalue()

    # the recordings read from S3 on the workers, too
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.put(str(corpus) + "/", f"{bucket.removeprefix('s3://')}/recs/", recursive=True)
    url = f"{bucket}/builds/from-s3"
    build_on_ray("event", f"{bucket}/recs", url, storage_options=options, progress=False)
    local = build("event", str(corpus), cache_dir=str(tmp_path / "c")).dataset
    assert _rows(load_build(url, storage_options=options, cache_dir=str(tmp_path / "r-s3"))) == _rows(local)
    assert read_record(url, options).data_root == f"{bucket}/recs"


class DyingStage(EventStage):
    """The event stage whose worker process dies (``os._exit``) in the middle of some recordings,
    after a few batches are out; ``hang`` recordings sleep instead (a hung task)."""

    def __init__(self, dies: tuple[str, ...] = (), hangs: tuple[str, ...] = ()) -> None:
        super().__init__(batch_size=300)
        self.dies = dies
        self.hangs = hangs

    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[Any]:
        for i, batch in enumerate(super().batches(recording, report)):
            if i == 2 and recording.episode_path in self.dies:
                os._exit(1)
            if i == 2 and recording.episode_path in self.hangs:
                time.sleep(3600)
            yield batch


def test_a_lost_worker_then_a_rerun_converts_only_what_is_missing(
    corpus: Path, tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]]
) -> None:
    import s3fs

    bucket, options = s3_bucket
    url = f"{bucket}/event"
    stream = io.StringIO()
    with pytest.raises(
        ShardFailedError, match=r"episode_002\.mcap: conversion failed on Ray .*retried up to 1"
    ) as err:
        build_on_ray(DyingStage(dies=("train/episode_002.mcap",)), corpus, url, config="event",
                     storage_options=options, max_retries=1, progress=stream)  # fmt: skip
    assert "3 converted, 0 already done, 1 failed" in str(err.value)
    assert "1 failed" in stream.getvalue() and "train/episode_002.mcap" in stream.getvalue()
    fs = s3fs.S3FileSystem(**options)
    fs.invalidate_cache()
    names = sorted(p.rsplit("/", 1)[1] for p in fs.find(url.removeprefix("s3://")))
    assert RECORD_NAME not in names  # an unfinished build is never taken for a finished one
    assert names == [
        "test-00000-of-00002.parquet",
        "test-00001-of-00002.parquet",
        "train-00000-of-00002.parquet",
    ]
    before = {p: fs.info(p)["ETag"] for p in fs.find(url.removeprefix("s3://"))}

    result = build_on_ray(DyingStage(), corpus, url, config="event", storage_options=options, progress=False)
    assert result.converted == ["train/episode_002.mcap"] and len(result.reused) == 3
    fs.invalidate_cache()
    assert {p: fs.info(p)["ETag"] for p in before} == before  # the shards already there are untouched
    local = build("event", str(corpus), cache_dir=str(tmp_path / "c")).dataset
    assert _rows(result.load(cache_dir=str(tmp_path / "r"))) == _rows(local)
    again = build_on_ray(DyingStage(), corpus, url, config="event", storage_options=options, progress=False)
    assert again.converted == [] and len(again.reused) == 4


def test_a_hung_task_is_timed_out_and_named_and_no_credential_is_logged(
    corpus: Path, tmp_path: Path, s3_bucket: tuple[str, dict[str, Any]], ray_cluster: Any,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    bucket, options = s3_bucket
    url = f"{bucket}/hung"
    stream = io.StringIO()
    caplog.set_level(logging.DEBUG, logger="owa_builders")  # our log lines (botocore logs its own)
    t0 = time.perf_counter()
    with pytest.raises(
        ShardFailedError, match=r"test/episode_001\.mcap: .*timed out after 4 s on each of 2"
    ) as err:
        build_on_ray(DyingStage(hangs=("test/episode_001.mcap",)), corpus, url, config="event",
                     storage_options=options, max_retries=1, task_timeout_s=4, progress=stream)  # fmt: skip
    assert time.perf_counter() - t0 < 120
    assert "3 converted, 0 already done, 1 failed" in str(err.value)
    objects = _objects(bucket, options)
    assert not any(name.endswith(RECORD_NAME) for name in objects)
    assert sorted(n.rsplit("/", 1)[1] for n in objects) == [
        "test-00001-of-00002.parquet",
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]  # fmt: skip (test/episode_001 is test-00000: never written)
    _no_secret(objects)
    captured = capfd.readouterr()
    logged = "\n".join([stream.getvalue(), caplog.text, captured.out, captured.err, str(err.value)])
    assert "timed out" in stream.getvalue()
    assert S3_KEY not in logged and S3_SECRET not in logged
    node = getattr(getattr(ray_cluster, "_private", None), "worker", None)
    logs_dir = node._global_node.get_logs_dir_path() if node and node._global_node else None
    for path in glob.glob(os.path.join(logs_dir, "*")) if logs_dir else []:
        if os.path.isfile(path):
            data = Path(path).read_bytes()
            assert S3_SECRET.encode() not in data and S3_KEY.encode() not in data, path
