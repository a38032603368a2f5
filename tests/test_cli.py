from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from owa_builders.cli import _parse_options, main
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
    saved = datasets.load_from_disk(str(tmp_path / "event"))
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
    ds = datasets.load_from_disk(str(out_dir))["train"]
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
    with pytest.raises(SystemExit, match="not KEY=VALUE"):
        _parse_options(["oops"])
    assert json.dumps(_parse_options(["x=1"])) == '{"x": 1}'
