"""FslConfig: defaults, image token layouts, validation (every problem at once), encoder()."""

from __future__ import annotations

import pytest

from owa_event.config import EventConfig
from owa_event.errors import ConfigError
from owa_event.intervals import StartStopKey
from owa_fsl.config import DEFAULT_KEEP_TOPICS, DEFAULT_RATES, FslConfig
from owa_fsl.encoders import get_encoder
from owa_fsl.tokenizer import INTERNVL3, SMOLVLM, ImageTokens

GOOD = dict(tokenizer_name="some/tokenizer", image_preset="internvl3")


def problems(**kwargs: object) -> list[str]:
    return FslConfig(**{**GOOD, **kwargs}).problems(None)


def test_defaults() -> None:
    c = FslConfig()
    assert isinstance(c, EventConfig)
    assert c.keep_topics == ["screen", "keyboard", "mouse/raw"] == DEFAULT_KEEP_TOPICS
    assert c.rate_settings == {"screen": 20.0, "mouse/raw": 20.0} == DEFAULT_RATES
    assert c.rates() == {"screen": 20.0, "mouse/raw": 20.0}  # keyboard is kept whole
    assert (c.encoder_type, c.time_resolution_ns, c.max_sequence_length) == ("factorized", 1_000_000, 4096)
    assert (c.on_oversize, c.drop_frameless, c.debug_text, c.action_shift_ns) == ("error", False, False, 0)
    assert c.tokenizer_name is None and c.image_preset is None and c.interval is None
    # defaults are per instance, never shared
    c.keep_topics.append("mouse")
    c.rate_settings["screen"] = 5.0
    d = FslConfig()
    assert d.keep_topics == ["screen", "keyboard", "mouse/raw"] and d.rate_settings["screen"] == 20.0
    assert DEFAULT_KEEP_TOPICS == ["screen", "keyboard", "mouse/raw"] and DEFAULT_RATES["screen"] == 20.0


def test_defaults_with_a_tokenizer_and_preset_are_valid() -> None:
    for preset in ("internvl3", "smolvlm"):
        c = FslConfig(tokenizer_name="t", image_preset=preset)
        assert c.problems(None) == []
        c.validate(input_topics=None)
        c.validate(input_topics=["screen"])


def test_image_token_presets() -> None:
    assert FslConfig(image_preset="internvl3").image_tokens() == INTERNVL3
    assert FslConfig(image_preset="smolvlm").image_tokens() == SMOLVLM
    assert INTERNVL3.tokens() == ["<img>", *["<IMG_CONTEXT>"] * 256, "</img>"]
    assert SMOLVLM.tokens() == ["<fake_token_around_image>", "<global-img>", *["<image>"] * 64,
                                "<fake_token_around_image>"]  # fmt: skip


def test_image_token_overrides() -> None:
    assert FslConfig(image_preset="internvl3", image_token_count=16).image_tokens() == ImageTokens(
        ("<img>",), "<IMG_CONTEXT>", 16, ("</img>",)
    )
    c = FslConfig(image_preset="smolvlm", image_prefix=["<a>"], image_token="<b>", image_suffix=[])
    assert c.image_tokens() == ImageTokens(("<a>",), "<b>", 64, ())
    # no preset: the explicit fields alone (suffix defaults to none)
    assert FslConfig(image_prefix=[], image_token="<x>", image_token_count=2).image_tokens() == ImageTokens(
        (), "<x>", 2
    )
    with pytest.raises(ConfigError, match="no image token layout"):
        FslConfig(image_token="<x>").image_tokens()
    with pytest.raises(ValueError, match="positive integer"):
        FslConfig(image_preset="internvl3", image_token_count=0).image_tokens()


def test_validation_collects_every_problem_at_once() -> None:
    config = FslConfig(
        encoder_type="bogus",
        keep_topics=["screen", "window"],
        max_sequence_length=100,
        image_preset="internvl3",
        tokenizer_name=None,
    )
    with pytest.raises(ConfigError) as info:
        config.validate(input_topics=None)
    found = info.value.problems
    assert len(found) == 4, found
    assert any("encoder_type 'bogus'" in p and "factorized" in p for p in found)
    assert any("'window' cannot be encoded" in p for p in found)
    assert any("max_sequence_length 100 cannot hold one frame (258 image tokens)" in p for p in found)
    assert any("tokenizer_name" in p for p in found)
    message = str(info.value)
    assert message.startswith("invalid config: ") and message.count("invalid config") == 1
    assert all(p in message for p in found)


def test_validation_includes_event_stage_problems() -> None:
    found = problems(rate_settings={"screen": -1}, on_bad_file="maybe", keep_topics=["screen", "window"],
                     on_oversize="truncate")  # fmt: skip
    assert len(found) == 4, found
    assert any("negative" in p for p in found) and any("on_bad_file" in p for p in found)
    assert any("'window' cannot be encoded by the factorized encoder" in p for p in found)
    assert any("on_oversize" in p for p in found)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"keep_topics": None}, "keep_topics must list the topics"),
        ({"keep_topics": []}, "keep_topics is empty"),
        ({"max_sequence_length": 4096.0}, "max_sequence_length must be an integer"),
        ({"max_sequence_length": True}, "max_sequence_length must be an integer"),
        ({"max_sequence_length": 273}, "cannot hold one frame"),  # 258 + 16 > 273
        ({"action_shift_ns": 0.5}, "action_shift_ns must be an integer"),
        ({"time_resolution_ns": 0}, "time_resolution_ns"),
        ({"image_preset": "llava"}, "image_preset 'llava'"),
        ({"image_preset": None}, "no image token layout"),
        ({"image_token_count": -3}, "positive integer"),
        ({"image_prefix": [""]}, "non-empty"),
        ({"tokenizer_name": ""}, "tokenizer_name"),
        ({"interval": {"type": "nope"}}, "interval"),
    ],
)
def test_each_problem_is_reported(kwargs: dict, fragment: str) -> None:
    found = problems(**kwargs)
    assert len(found) == 1 and fragment in found[0], found


def test_too_short_sequence_reports_both_limits() -> None:
    found = problems(max_sequence_length=15)
    assert len(found) == 2, found
    assert (
        "max_sequence_length must be an integer >= 16, got 15" in found[0]
        and "cannot hold one frame" in found[1]
    )


def test_boundaries_are_accepted() -> None:
    assert problems(max_sequence_length=274) == []  # exactly one InternVL3 frame + 16
    assert problems(image_preset="smolvlm", max_sequence_length=67 + 16) == []
    assert problems(image_preset=None, image_prefix=[], image_token="<i>", image_token_count=1,
                    max_sequence_length=17) == []  # fmt: skip
    assert problems(action_shift_ns=-50_000_000, on_oversize="drop", encoder_type="json") == []
    assert problems(interval=StartStopKey(start_vk=119), keep_topics=["screen", "mouse"]) == []


def test_unknown_topic_checked_against_inputs() -> None:
    config = FslConfig(**GOOD, keep_topics=["screen", "scren"])
    found = config.problems(input_topics=["screen"])
    assert any("unknown topic 'scren'" in p for p in found)
    assert any("'scren' cannot be encoded" in p for p in found)


@pytest.mark.parametrize("name", ["factorized", "hierarchical", "json"])
def test_encoder(name: str) -> None:
    enc = FslConfig(encoder_type=name, time_resolution_ns=10_000).encoder()
    assert enc == get_encoder(name, time_resolution_ns=10_000)
    assert enc.name == name and enc.time_resolution_ns == 10_000
    assert enc != FslConfig(encoder_type=name).encoder()
    with pytest.raises(ValueError, match="unknown encoder"):
        FslConfig(encoder_type="bogus").encoder()
