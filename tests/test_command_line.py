"""The helpers the CLI and the Ray build command share."""

from __future__ import annotations

import pytest

from owa_builders.command_line import parse_options, print_account
from owa_event.account import RecordingReport
from owa_event.errors import ConfigError


def test_options_are_json_when_they_parse_and_every_bad_pair_is_reported() -> None:
    assert parse_options(["a=1", "b=x", 'c={"screen": 5}', "d="]) == {
        "a": 1,
        "b": "x",
        "c": {"screen": 5},
        "d": "",
    }
    with pytest.raises(ConfigError) as info:
        parse_options(["oops", "=1", "ok=2"])
    assert len(info.value.problems) == 2


def test_account_shows_recordings_that_dropped_or_warned(capsys: pytest.CaptureFixture[str]) -> None:
    quiet = RecordingReport("quiet.mcap")
    noisy = RecordingReport("noisy.mcap")
    noisy.account.take_in("screen", 2)
    noisy.account.drop("rate_limit", "screen", 1)
    noisy.warn("something odd")
    print_account("event", [quiet, noisy])
    out = capsys.readouterr().out
    assert "noisy.mcap" in out and "quiet.mcap" not in out
    assert "warning: something odd" in out and "warnings: 1" in out
    print_account("event", [quiet, noisy], everything=True)
    assert "quiet.mcap" in capsys.readouterr().out


def test_the_cli_and_the_ray_command_share_them() -> None:
    from owa_builders import cli

    assert cli._parse_options is parse_options and cli.print_account is print_account
