"""Tests of owa_event.config: EventConfig defaults and up-front validation."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import pytest

from owa_event.config import EventConfig
from owa_event.errors import ConfigError
from owa_event.events import KNOWN_TOPICS
from owa_event.intervals import Inactivity, StartStopKey


def problems_of(config: EventConfig, input_topics: Any = ()) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        config.validate(input_topics)
    assert exc.value.problems == config.problems(input_topics)
    message = str(exc.value)
    assert message.startswith("invalid config: ")
    assert all(problem in message for problem in exc.value.problems)
    return exc.value.problems


def test_defaults_are_lossless_and_valid() -> None:
    config = EventConfig()
    assert config.rate_settings is None
    assert config.keep_topics is None
    assert config.interval is None
    assert config.keyboard_repeat is False
    assert config.on_bad_file == "error"
    assert config.on_truncated == "recover"
    assert config.problems() == []
    config.validate()
    config.validate(None)
    assert config.selection() is None
    assert config.rates() == {}
    assert config.named_topics() == set()


def test_a_full_valid_config() -> None:
    config = EventConfig(
        rate_settings={"screen": 20, "mouse": 60.0, "mouse/raw": 0, "keyboard": 1},
        keep_topics=["screen", "mouse", "mouse/raw", "keyboard"],
        interval={"type": "start_stop_key", "start_vk": 119, "stop_vk": 120},
        keyboard_repeat=True,
        on_bad_file="skip",
        on_truncated="error",
    )
    assert config.problems() == []
    config.validate()
    assert config.selection() == StartStopKey(start_vk=119, stop_vk=120)
    assert config.rates() == {"screen": 20.0, "mouse": 60.0, "keyboard": 1.0}  # 0 = keep every event
    assert config.named_topics() == {"screen", "mouse", "mouse/raw", "keyboard"}


def test_interval_object_is_returned_as_is() -> None:
    selection = Inactivity(screen_timeout_s=5.0) | StartStopKey(start_vk=119)
    config = EventConfig(interval=selection)
    config.validate()
    assert config.selection() is selection


def test_validate_collects_every_problem_in_one_error() -> None:
    config = EventConfig(
        rate_settings={"screen": -5, "scren": 10}, keep_topics=["mouse", "keybord"], on_bad_file="ignore"
    )
    problems = problems_of(config)
    assert len(problems) == 4
    message = "; ".join(problems)
    assert "rate_settings['screen'] is negative (-5 Hz)" in message
    assert "rate_settings names unknown topic 'scren'" in message
    assert "keep_topics names unknown topic 'keybord'" in message
    assert "on_bad_file must be 'error' or 'skip', got 'ignore'" in message


@pytest.mark.parametrize("hz", [math.nan, math.inf, -math.inf, "20", None, True, [20]])
def test_rate_must_be_a_finite_number(hz: Any) -> None:
    [problem] = problems_of(EventConfig(rate_settings={"screen": hz}))
    assert problem == f"rate_settings['screen'] must be a finite number of Hz, got {hz!r}"


def test_rate_settings_must_be_a_mapping() -> None:
    [problem] = problems_of(EventConfig(rate_settings=[("screen", 20)]))  # type: ignore[arg-type]
    assert "rate_settings must be a mapping topic -> Hz, got list" in problem


def test_zero_rate_is_valid_and_keeps_everything() -> None:
    config = EventConfig(rate_settings={"screen": 0, "mouse": 0.0})
    config.validate()
    assert config.rates() == {}


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        ([], "keep_topics is empty"),
        ("screen", "keep_topics must be a list of topics or None, got 'screen'"),
        ({"screen"}, "keep_topics must be a list of topics or None"),
    ],
)
def test_bad_keep_topics(keep: Any, expected: str) -> None:
    [problem] = problems_of(EventConfig(keep_topics=keep))
    assert expected in problem


def test_keep_topics_as_tuple_is_accepted() -> None:
    EventConfig(keep_topics=("screen", "keyboard")).validate()  # type: ignore[arg-type]


def test_interval_dict_is_validated() -> None:
    [problem] = problems_of(EventConfig(interval={"type": "start_stop", "start_vk": 119}))
    assert problem.startswith("interval: ")
    assert "unknown type 'start_stop'" in problem


def test_interval_dict_reports_all_of_its_problems() -> None:
    config = EventConfig(
        interval={
            "type": "union",
            "a": {"type": "start_stop_key", "start_vk": 300},
            "b": {"type": "inactivity"},
        }
    )
    [problem] = problems_of(config)
    assert "a: start_vk must be a virtual-key code 0..255, got 300" in problem
    assert "b: at least one of screen_timeout_s and input_timeout_s must be set" in problem


@pytest.mark.parametrize("interval", ["start_stop_key", 119, ["all"]])
def test_interval_of_the_wrong_kind(interval: Any) -> None:
    [problem] = problems_of(EventConfig(interval=interval))
    assert problem == f"interval must be an IntervalSelection, a dict or None, got {interval!r}"


def test_bad_on_truncated_and_keyboard_repeat() -> None:
    problems = problems_of(EventConfig(on_truncated="skip", keyboard_repeat="yes"))  # type: ignore[arg-type]
    assert problems == [
        "on_truncated must be 'recover' or 'error', got 'skip'",
        "keyboard_repeat must be a bool, got 'yes'",
    ]


def test_unknown_topic_is_accepted_when_it_is_an_input_topic() -> None:
    config = EventConfig(rate_settings={"custom": 5}, keep_topics=["custom", "screen"])
    assert len(problems_of(config)) == 2
    config.validate(input_topics=["custom"])
    config.validate(input_topics={"custom", "other"})
    problems = problems_of(config, input_topics=["other"])
    assert [p.split(" (known")[0] for p in problems] == [
        "rate_settings names unknown topic 'custom'",
        "keep_topics names unknown topic 'custom'",
    ]
    assert "'other'" in problems[0]  # the known list includes the inputs' topics


def test_input_topics_none_skips_topic_checks_but_not_value_checks() -> None:
    EventConfig(rate_settings={"anything": 5}, keep_topics=["whatever"]).validate(None)
    [problem] = problems_of(EventConfig(rate_settings={"anything": -1}), None)
    assert "is negative" in problem


def test_known_topics_are_all_accepted() -> None:
    EventConfig(rate_settings={t: 1 for t in KNOWN_TOPICS}, keep_topics=sorted(KNOWN_TOPICS)).validate()


def test_from_fields_copies_the_event_fields() -> None:
    @dataclass
    class BuilderConfig:
        name: str = "x"
        rate_settings: Any = None
        keep_topics: Any = None
        interval: Any = None
        keyboard_repeat: bool = False
        topic_fallbacks: Any = None
        on_bad_file: str = "error"
        on_missing_media: str = "keep"
        on_truncated: str = "recover"

    outer = BuilderConfig(rate_settings={"screen": 5}, keep_topics=["screen"], on_bad_file="skip")
    config = EventConfig.from_fields(outer)
    assert config == EventConfig(rate_settings={"screen": 5}, keep_topics=["screen"], on_bad_file="skip")
    assert {f.name for f in fields(EventConfig)} == {
        "rate_settings",
        "keep_topics",
        "interval",
        "keyboard_repeat",
        "topic_fallbacks",
        "on_bad_file",
        "on_missing_media",
        "on_truncated",
    }
