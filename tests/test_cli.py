from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from owa_builders.cli import _parse_options, main
from owa_builders.output import load_build
from owa_event.errors import ConfigError
from owa_event.reader import Recording


def _messages(root: Path) -> int:
    total = 0
    for p in root.rglob("*.mcap"):
        with Recording(p) as rec:
            total += rec.summary.message_count
    return total


def test_demo_generates_builds_and_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--episodes", "2", "--duration", "3"]) == 0
    out = capsys.readouterr().out
    assert "generated 2 recordings" in out and "events per topic:" in out
    saved = load_build(str(tmp_path / "event"))
    assert sum(d.num_rows for d in saved.values()) == _messages(tmp_path / "recordings")
    for split, ds in saved.items():
        assert f"[{split}] event dataset: {ds.num_rows} rows" in out
    for stage in ("event", "fsl"):  # it ends with preview pages of what it built
        page = (tmp_path / f"preview-{stage}.html").read_text()
        assert f"to {tmp_path / f'preview-{stage}.html'}: open it in a browser" in out
        assert "Timeline by topic" in page and page.count('<img src="data:image/jpeg;base64,') > 0


def test_build_with_options(current_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    code = main(
        [
            "build",
            "event",
            str(current_corpus),
            "-o",
            str(out_dir),
            "--cache-dir",
            str(tmp_path / "c"),
            "--option",
            'keep_topics=["keyboard"]',
        ]
    )
    assert code == 0
    ds = load_build(str(out_dir))["train"]
    assert set(ds["topic"]) == {"keyboard"}
    assert "built event" in capsys.readouterr().out


def test_generate(tmp_path: Path) -> None:
    assert main(["generate", str(tmp_path / "g"), "--episodes", "2", "--duration", "2", "--no-legacy"]) == 0
    assert sorted(p.name for p in (tmp_path / "g" / "train").iterdir()) == [
        "episode_000.mcap",
        "episode_000.mkv",
        "episode_001.mcap",
        "episode_001.mkv",
    ]


def test_option_parsing() -> None:
    assert _parse_options(['rate_settings={"screen": 5}', "on_bad_file=skip"]) == {
        "rate_settings": {"screen": 5},
        "on_bad_file": "skip",
    }
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        _parse_options(["oops"])
    assert json.dumps(_parse_options(["x=1"])) == '{"x": 1}'


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it (a fresh process)."""
    return subprocess.run(
        [sys.executable, "-m", "owa_builders.cli", *args], capture_output=True, text=True, check=False
    )


def test_errors_of_ours_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "recs").mkdir()
    (tmp_path / "recs" / "notes.mcap").write_text("not a recording")
    cases = {
        (
            "build",
            "event",
            str(tmp_path / "recs"),
            "--cache-dir",
            str(tmp_path / "c"),
        ): "notes.mcap: not an MCAP file",
        ("build", "event", str(tmp_path / "nope")): "no such folder",
        (
            "build",
            "fsl",
            str(tmp_path / "recs"),
            "--option",
            "rate_setting=1",
        ): "did you mean 'rate_settings'?",
        ("inspect", str(tmp_path / "recs"), "--stages", "evnt"): "unknown stage 'evnt'",
        ("decode", str(tmp_path / "nope"), "--row", "0", "-o", str(tmp_path / "x.mcap")): "does not exist",
    }
    for args, expected in cases.items():
        proc = run_cli(*args)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(errors) == 1 and expected in errors[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    debug = run_cli("build", "event", str(tmp_path / "nope"), "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "NoRecordingsError" in debug.stderr


def _command_names() -> set[str]:
    from owa_builders.cli import parser

    return set(next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)


def assert_one_error_line(code: int, stderr: str, expected: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 2, stderr[-2000:]
    assert len(errors) == 1 and expected in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr


def test_every_command_turns_our_errors_into_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One failing run per command of the CLI (the dev commands both from the checkout and as installed from
    a wheel, where devtools/ is absent): exit code 2, one `error:` line, no traceback."""
    nope, out = str(tmp_path / "nope"), str(tmp_path / "out")
    cases = {
        "demo": (["demo", "--workdir", out, "--episodes", "0"], "--episodes must be >= 1"),
        "build": (["build", "event", nope, "--engine", "ray"], "--engine ray needs -o/--output"),
        "inspect": (["inspect", nope], "1 problem(s) found, listed above"),
        "decode": (["decode", nope, "--row", "0", "-o", str(tmp_path / "x.mcap")], "does not exist"),
        "push": (["push", nope, "org/name"], "no such folder"),
        "preview": (["preview", nope, "-o", str(tmp_path / "p.html")], "no such folder"),
        "generate": (["generate", out, "--duration", "0"], "--duration must be > 0 seconds"),
        "train-check": (["train-check", nope], "no such folder"),
        "bench-ray": (
            ["bench-ray", "--episodes", "0"],
            "--episodes, --repeat and every --workers must be >= 1",
        ),
    }
    wheel = tmp_path / "wheel"  # the package without the checkout around it, as pip installs it
    shutil.copytree(Path(__file__).resolve().parents[1] / "owa_builders", wheel / "owa_builders")
    env = {**os.environ, "PYTHONPATH": str(wheel)}
    installed = {
        name: subprocess.Popen(
            [sys.executable, "-m", "owa_builders.cli", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )  # fmt: skip
        for name in ("bench", "bench-frames", "bench-train", "bench-ray")
    }
    assert set(cases) | set(installed) == _command_names()  # every command is covered
    for args, expected in cases.values():
        code = main(args)
        assert_one_error_line(code, capsys.readouterr().err, expected)
    for proc in installed.values():
        _, stderr = proc.communicate(timeout=120)
        assert_one_error_line(proc.returncode, stderr, "the benchmarks run from a checkout of owa-builders")
    assert not (tmp_path / "out").exists()  # refused before writing anything


def test_flags_before_or_after_the_command_and_the_account_with_workers(
    current_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["event", str(current_corpus), "--cache-dir", str(tmp_path / "c"), "--num-proc", "2"]
    assert main(["build", "-v", *common]) == 0
    first = capsys.readouterr().out
    for name in (
        "episode_000.mcap",
        "episode_001.mcap",
        "episode_002.mcap",
    ):  # every account, from the workers
        assert f"  {name}: " in first and "messages in" in first
    assert "the dataset is in the datasets cache: " in first
    assert main(["-v", "build", *common]) == 0  # a cache hit still shows the accounts
    again = capsys.readouterr().out
    assert [line for line in again.splitlines() if "messages in" in line] == [
        line for line in first.splitlines() if "messages in" in line
    ]


def test_every_command_and_option_has_help() -> None:
    from owa_builders.cli import parser

    p = parser()
    commands = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) >= {
        "demo",
        "build",
        "inspect",
        "decode",
        "push",
        "preview",
        "generate",
        "bench",
        "bench-frames",
        "bench-train",
        "train-check",
    }
    for name, sub in commands.choices.items():
        assert sub.prog == f"owa-builders {name}"
        for action in sub._actions:
            assert action.help, f"{name}: option {action.option_strings or action.dest} has no help"
    assert "raw" not in p.description.lower() or ":" not in p.description  # plain text, no markup
