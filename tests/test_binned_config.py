"""BinnedConfig: defaults, validation (every problem at once), consistency with keep_topics."""

from __future__ import annotations

import math

import pytest

from owa_binned.config import DEFAULT_ACTION_TOPICS, DEFAULT_STATE_TOPICS, BinnedConfig
from owa_event.config import EventConfig
from owa_event.errors import ConfigError


def problems(**kwargs: object) -> list[str]:
    return BinnedConfig(**kwargs).problems(None)  # type: ignore[arg-type]


def test_defaults_are_valid_and_per_instance() -> None:
    c = BinnedConfig()
    assert isinstance(c, EventConfig)
    assert (c.fps, c.drop_empty_bins, c.keep_topics) == (10.0, False, None)
    assert c.state_topics == ["screen"] == DEFAULT_STATE_TOPICS
    assert c.action_topics == ["keyboard", "mouse", "mouse/raw"] == DEFAULT_ACTION_TOPICS
    assert c.period_ns() == 100_000_000
    c.validate(input_topics=None)
    c.validate(input_topics=["screen", "keyboard"])
    c.state_topics.append("window")
    assert BinnedConfig().state_topics == ["screen"] and DEFAULT_STATE_TOPICS == ["screen"]


@pytest.mark.parametrize("fps", [0, -1, math.nan, math.inf, "10", True, None, 3e9])
def test_bad_fps(fps: object) -> None:
    assert any("fps" in p for p in problems(fps=fps))


@pytest.mark.parametrize(
    "fps,period", [(10, 100_000_000), (30.0, 33_333_333), (0.5, 2_000_000_000), (60, 16_666_667)]
)
def test_period_is_integer_ns(fps: float, period: int) -> None:
    c = BinnedConfig(fps=fps)
    assert c.problems(None) == [] and c.period_ns() == period


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        BinnedConfig(
            fps=0,
            drop_empty_bins="yes",
            state_topics=["screen", "keyboard"],
            action_topics="keyboard",  # type: ignore[arg-type]
            on_bad_file="maybe",
        ).validate(input_topics=None)
    text = str(info.value)
    for needle in ("fps", "drop_empty_bins", "action_topics must be a list", "on_bad_file"):
        assert needle in text
    assert len(info.value.problems) == 4


def test_topic_roles() -> None:
    assert any("both a state and an action" in p for p in problems(state_topics=["screen", "mouse"]))
    assert any("twice" in p for p in problems(action_topics=["keyboard", "keyboard"]))
    assert any("strings" in p for p in problems(state_topics=[1]))
    assert any("both empty" in p for p in problems(state_topics=[], action_topics=[]))
    assert any("drop every bin" in p for p in problems(action_topics=[], drop_empty_bins=True))
    assert problems(action_topics=[]) == []  # frames only: every bin empty of actions, still useful
    assert problems(state_topics=[]) == []
    assert problems(state_topics=["screen", "keyboard/state", "mouse/state"]) == []


def test_unknown_topics_are_checked_against_the_inputs() -> None:
    c = BinnedConfig(state_topics=["scren"])
    assert c.problems(None) == []  # inputs not listed yet: no check
    with pytest.raises(ConfigError, match="state_topics names unknown topic 'scren'"):
        c.validate(input_topics=["screen"])
    BinnedConfig(action_topics=["gamepad"]).validate(input_topics=["gamepad"])  # a topic of the inputs
    assert "gamepad" in BinnedConfig(action_topics=["gamepad"]).named_topics()


def test_roles_must_be_consistent_with_keep_topics() -> None:
    assert problems(keep_topics=["screen", "keyboard", "mouse", "mouse/raw"]) == []
    p = problems(keep_topics=["screen", "keyboard"])
    assert any("'mouse'" in x and "does not keep" in x for x in p)
    assert any("'mouse/raw'" in x and "does not keep" in x for x in p)
    p = problems(keep_topics=["screen", "keyboard", "mouse", "mouse/raw", "window"])
    assert p and all("'window'" in x and "neither a state nor an action" in x for x in p)
    assert problems(keep_topics=["screen", "keyboard"], action_topics=["keyboard"]) == []


def test_from_fields_copies_the_binned_fields() -> None:
    class Other:
        pass

    o = Other()
    for name, value in vars(BinnedConfig(fps=4, drop_empty_bins=True)).items():
        setattr(o, name, value)
    c = BinnedConfig.from_fields(o)
    assert type(c) is BinnedConfig and c.fps == 4 and c.drop_empty_bins is True
