"""IngestionConfig: every field validated, every problem reported together."""

from __future__ import annotations

import inspect

import pytest

from owa_builders.ingest.config import (
    DEFAULT_TIME_ORIGIN_NS,
    IngestionConfig,
    default_message_type,
    episode_name_problem,
)
from owa_event.errors import ConfigError
from owa_event.reader import MIN_LOG_TIME_NS


def test_defaults_are_valid_and_documented() -> None:
    config = IngestionConfig(output_dir="out").validate()
    assert config.problems() == []
    assert DEFAULT_TIME_ORIGIN_NS > MIN_LOG_TIME_NS
    assert config.message_type("joints") == default_message_type("joints") == "ingest/joints"
    source = inspect.getsource(IngestionConfig)
    for name in IngestionConfig.field_names():  # a docstring right under every field
        assert f"    {name}: " in source
        block = source.split(f"    {name}: ", 1)[1].split("\n", 2)[1]
        assert block.strip().startswith('"""'), name


def test_every_problem_at_once() -> None:
    config = IngestionConfig(
        output_dir="",
        episode_prefix="../x",
        num_workers=-1,
        batch_size=0,
        time_unit="minutes",
        time_origin_ns=-5,
        rate_hz=float("nan"),
        video_codec="no-such-codec",
        shuffle="yes",  # type: ignore[arg-type]
        seed=1.5,  # type: ignore[arg-type]
        max_items_per_episode=0,
        message_types={"keyboard": "robot/Keys", "joints": "JointState"},
        on_bad_item="ignore",
        overwrite=1,  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigError) as err:
        config.validate()
    text = str(err.value)
    assert text.startswith("invalid ingestion config: 15 problems")
    for field in ("output_dir", "episode_prefix", "num_workers", "batch_size", "time_unit", "time_origin_ns",
                  "rate_hz", "video_codec", "shuffle", "seed", "max_items_per_episode", "'keyboard'",
                  "message_types['joints']", "on_bad_item", "overwrite"):  # fmt: skip
        assert field in text, field


def test_codec_rate_and_origin_rules() -> None:
    assert IngestionConfig("o", video_codec="mpeg4").problems() == []
    assert "not a video encoder" in IngestionConfig("o", video_codec="aac").problems()[0]
    assert "time_origin_ns" in IngestionConfig("o", rate_hz=10, time_origin_ns=None).problems()[0]
    assert IngestionConfig("o", rate_hz=30, time_origin_ns=None, time_unit="ns").problems()[1:] == []
    assert IngestionConfig("hf://datasets/x/y").problems() == []  # any fsspec destination
    assert "choose one" in IngestionConfig("o", resume=True, overwrite=True).problems()[0]
    assert "resume must be a bool" in IngestionConfig("o", resume="yes").problems()[0]
    assert (
        "desktop message type"
        in IngestionConfig("o", message_types={"j": "desktop/KeyboardEvent"}).problems()[0]
    )


@pytest.mark.parametrize(
    "name, ok",
    [
        ("episode_000001", True),
        ("train/ep-1", True),
        ("a/b/c.v2", True),
        ("", False),
        ("../up", False),
        ("/abs", False),
        ("a//b", False),
        ("a/./b", False),
        (".hidden", False),
        ("-dash", False),
        ("sp ace", False),
        ("back\\slash", False),
        (3, False),
    ],
)
def test_episode_names_stay_inside_the_output_folder(name: object, ok: bool) -> None:
    assert (episode_name_problem(name) is None) is ok
