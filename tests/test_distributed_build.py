"""The build on a real local Ray (2 CPUs): same rows as the local build, retries, resumability."""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pytest

from owa_builders.build import BUILD_RECORD, build, read_record
from owa_builders.cli import main
from owa_builders.distributed import build_on_ray, load_build
from owa_builders.output import Destination, temp_path
from owa_event.account import RecordingReport
from owa_event.errors import RecordingError
from owa_event.pipeline import RecordingRef
from owa_event.stage import EventStage
from owa_fsl.tokenizer import TOKENIZER_DIR, FslTokens

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture(autouse=True)
def _ship_this_module_to_workers(ray_cluster: Any) -> None:
    """The failure-injecting stage below lives in this test module, which Ray workers cannot import."""
    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _local(stage: str, data: Path, cache: Path, config: str | None = None, **options: Any) -> Any:
    return build(stage, str(data), config=config, options=options or None, cache_dir=str(cache)).dataset


def _same(ray_ds: Any, local_ds: Any) -> None:
    assert list(ray_ds) == list(local_ds)
    for split in local_ds:
        assert ray_ds[split].features == local_ds[split].features
        assert ray_ds[split].to_list() == local_ds[split].to_list(), split


def test_every_stage_on_ray_equals_the_local_build(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from owa_builders.demo.tokenizer import write_example_tokenizer

    # event, through the command line
    out = tmp_path / "event"
    assert main(["build", "event", str(corpus), "-o", str(out), "--engine", "ray", "--num-proc", "2"]) == 0
    printed = capsys.readouterr()
    assert "4 recording(s) converted, 0 already done" in printed.out
    assert "ray build: 4/4 recordings" in printed.err and "events/s" in printed.err
    local = _local("event", corpus, tmp_path / "c")
    _same(load_build(out, cache_dir=str(tmp_path / "c1")), local)
    by_folder = datasets.load_dataset("parquet", data_dir=str(out / "event"), cache_dir=str(tmp_path / "c2"))
    _same(by_folder, local)
    record = read_record(out)
    assert record.stage == "event" and record.builder == "owa_builders/event" and record.engine == "ray"
    assert record.splits == {s: d.num_rows for s, d in local.items()}
    assert [r["episode_path"] for r in record.reports] == [
        "train/episode_000.mcap", "train/episode_002.mcap", "test/episode_001.mcap", "test/episode_003.mcap"
    ]  # fmt: skip
    assert sorted(os.listdir(out / "event")) == [
        "test-00000-of-00002.parquet", "test-00001-of-00002.parquet",
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet",
    ]  # fmt: skip

    # binned, through Python, one worker
    stream = io.StringIO()
    result = build_on_ray(
        "binned", corpus, tmp_path / "binned", options={"fps": 4}, num_workers=1, progress=stream
    )
    _same(result.load(cache_dir=str(tmp_path / "c3")), _local("binned", corpus, tmp_path / "c", fps=4))
    lines = stream.getvalue().splitlines()
    assert lines[-2].startswith("ray build: 4/4 recordings") and lines[-1] == result.summary()
    assert result.rows == read_record(result.output).splits

    # fsl, with a local tokenizer: built once per worker, saved with the shards
    tok = str(write_example_tokenizer(tmp_path / "tok"))
    options = {"tokenizer_name": tok, "max_sequence_length": 1024}
    result = build_on_ray(
        "fsl", corpus, tmp_path / "fsl", config="fsl-smolvlm", options=options, progress=False
    )
    local = _local("fsl", corpus, tmp_path / "c", "fsl-smolvlm", **options)
    _same(result.load(cache_dir=str(tmp_path / "c4")), local)
    assert set(os.listdir(tmp_path / "fsl")) == {"fsl-smolvlm", TOKENIZER_DIR, BUILD_RECORD}
    tokens = FslTokens.load(str(tmp_path / "fsl" / TOKENIZER_DIR))
    padded = [r for r in local["train"] if 0 in r["attention_mask"]]
    assert padded and all(set(r["input_ids"][sum(r["attention_mask"]) :]) == {tokens.pad_id} for r in padded)
    assert sum(r.stats["sequences"] for r in result.reports) == sum(d.num_rows for d in local.values())


class FlakyStage(EventStage):
    """The event stage, failing the first attempt at some recordings for real: in the middle of
    writing (a few batches are out), the worker process dies (``kill``) or an ``OSError`` is raised.
    A marker file per recording makes it fail exactly once, across processes."""

    def __init__(self, markers: str, failures: dict[str, str]) -> None:
        super().__init__(batch_size=300)
        self.markers = markers
        self.failures = failures

    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[Any]:
        how = self.failures.get(recording.episode_path)
        marker = os.path.join(self.markers, recording.episode_path.replace("/", "_"))
        for i, batch in enumerate(super().batches(recording, report)):
            if how and i == 2 and not os.path.exists(marker):
                Path(marker).write_text(str(os.getpid()))
                if how == "kill":
                    os._exit(1)
                raise OSError(f"{recording.path}: injected transient read failure")
            yield batch


def test_a_task_that_fails_once_is_retried_and_the_result_is_complete(corpus: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    failures = {"train/episode_002.mcap": "kill", "test/episode_001.mcap": "oserror"}
    stage = FlakyStage(str(markers), failures)
    out = tmp_path / "out"
    result = build_on_ray(stage, corpus, out, config="event", progress=False)
    assert sorted(os.listdir(markers)) == [
        "test_episode_001.mcap",
        "train_episode_002.mcap",
    ]  # both failed once
    assert sorted(result.converted) == sorted(r["episode_path"] for r in read_record(out).reports)
    _same(result.load(cache_dir=str(tmp_path / "c1")), _local("event", corpus, tmp_path / "c"))
    assert [n for n in os.listdir(out / "event") if not n.endswith(".parquet")] == []  # no partial file left
    assert not any(r.skipped for r in result.reports)


def _shard_state(folder: Path) -> dict[str, tuple[int, int]]:
    names = Destination(folder.parent).shard_names(folder.name)
    return {n: (os.stat(folder / n).st_ino, os.stat(folder / n).st_mtime_ns) for n in names}


def read_shard_meta(path: str) -> dict[str, Any] | None:
    return Destination(os.path.dirname(os.path.dirname(path))).shard_meta("/".join(Path(path).parts[-2:]))


def test_a_rerun_converts_only_what_is_missing_or_changed(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    bad = data / "test" / "episode_003.mcap"
    good = bad.read_bytes()
    bad.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 64)
    out = tmp_path / "out"
    with pytest.raises(RecordingError, match="episode_003.mcap"):
        build_on_ray("event", data, out, progress=False)
    assert not (out / BUILD_RECORD).exists()  # an unfinished build is never taken for a finished one
    before = _shard_state(out / "event")
    assert "test-00001-of-00002.parquet" not in before and len(before) >= 2
    assert not [n for n in os.listdir(out / "event") if n.startswith(".")]
    leftover = temp_path(str(out / "event" / "test-00001-of-00002.parquet"))
    Path(leftover).write_bytes(b"half a shard")  # as a driver killed mid-run leaves it

    bad.write_bytes(good)
    result = build_on_ray("event", data, out, progress=False)
    after = _shard_state(out / "event")
    episode_of = {n: read_shard_meta(str(out / "event" / n))["episode_path"] for n in after}
    assert sorted(result.converted) == sorted(episode_of[n] for n in after if n not in before)
    assert "test/episode_003.mcap" in result.converted and len(result.reused) == len(before)
    assert {n: after[n] for n in before} == before  # untouched
    assert not os.path.exists(leftover)
    local = _local("event", data, tmp_path / "c")
    _same(result.load(cache_dir=str(tmp_path / "c1")), local)

    os.utime(data / "train" / "episode_000.mcap", ns=(1, 1))  # a changed input is converted again
    result = build_on_ray("event", data, out, progress=False)
    assert result.converted == ["train/episode_000.mcap"]
    result = build_on_ray("event", data, out, options={"keep_topics": ["keyboard"]}, progress=False)
    assert len(result.converted) == 4  # another config: nothing of the old one is reused
    assert set(result.load(cache_dir=str(tmp_path / "c2"))["train"]["topic"]) == {"keyboard"}


def test_bad_recordings_skipped_when_asked_and_a_bug_names_the_file(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    (data / "train" / "episode_002.mcap").write_bytes(b"not mcap at all")
    result = build_on_ray("event", data, tmp_path / "out", options={"on_bad_file": "skip"}, progress=False)
    skipped = [r for r in result.reports if r.skipped]
    assert [r.episode_path for r in skipped] == ["train/episode_002.mcap"] and "not an MCAP" in skipped[
        0
    ].skipped
    _same(
        result.load(cache_dir=str(tmp_path / "c1")), _local("event", data, tmp_path / "c", on_bad_file="skip")
    )

    class Buggy(EventStage):
        def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[Any]:
            raise ZeroDivisionError("a bug")

    with pytest.raises(
        RecordingError, match=r"episode_000\.mcap: cannot be converted \(ZeroDivisionError: a bug\)"
    ):
        build_on_ray(Buggy(), corpus, tmp_path / "buggy", num_workers=1, progress=False)


def test_one_validation_reports_every_config_problem_before_ray_starts(corpus: Path, tmp_path: Path) -> None:
    """The stage's one validation (``Stage.config_of``): a bad value, an unknown field and a topic the
    recordings do not have, all at once, before Ray or the destination is touched."""
    from owa_event.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        build_on_ray("binned", corpus, tmp_path / "o", options={"fps": -1, "fpz": 2, "state_topics": ["robot/nope"]},
                     progress=False)  # fmt: skip
    text = str(err.value)
    assert text.startswith("invalid binned config 'binned': 3 problems"), text
    assert "fps must be" in text and "did you mean 'fps'" in text and "robot/nope" in text
    assert not (tmp_path / "o").exists()
