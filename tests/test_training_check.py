"""The learning check (owa_builders.training.check, ``owa-builders train-check``) on a small cued FSL build.

Same code path as the command's defaults, with fewer steps and shorter sequences; the frame-shuffled
control's gap needs more steps than a test should take and is measured in the README instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import datasets  # noqa: E402
from PIL import Image  # noqa: E402

from owa_builders.cli import main  # noqa: E402
from owa_builders.demo.cues import build_cue_example  # noqa: E402
from owa_builders.training.check import (  # noqa: E402
    CheckConfig,
    TrainCheckError,
    _shuffled,
    run_check,
)
from owa_event.errors import ConfigError  # noqa: E402

datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def cued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cue_example(
        tmp_path_factory.mktemp("cued"), episodes=4, duration_s=8.0, max_sequence_length=256
    )


def test_heldout_loss_ends_clearly_below_its_start_and_runs_are_deterministic(cued: Path) -> None:
    config = CheckConfig(steps=20, eval_every=10, heldout_rows=8)
    result = run_check(cued, config)
    assert [p.step for p in result.points] == [0, 10, 20]
    assert result.passed and result.final <= 0.8 * result.start
    assert result.final < result.unigram  # beyond token frequencies
    assert result.heldout_from == "split 'test'" and result.heldout_recordings == 1
    assert result.train_recordings == 3 and result.heldout_rows == 8
    assert (
        run_check(cued, CheckConfig(steps=2, eval_every=2, heldout_rows=4)).points
        == run_check(cued, CheckConfig(steps=2, eval_every=2, heldout_rows=4)).points
    )


def test_one_split_holds_out_whole_recordings(cued: Path, tmp_path: Path) -> None:
    folder = build_cue_example(
        tmp_path, episodes=4, duration_s=4.0, max_sequence_length=256, splits=("train",)
    )
    result = run_check(folder, CheckConfig(steps=2, eval_every=2))
    assert result.heldout_from == "the last 1 of 4 recordings of split 'train'"
    assert (result.train_recordings, result.heldout_recordings) == (3, 1)


def test_control_moves_every_frame() -> None:
    frames = torch.arange(7.0).reshape(7, 1, 1, 1)
    out = _shuffled(frames, torch.Generator().manual_seed(0))
    assert sorted(out.flatten().tolist()) == list(range(7))
    assert all(out[i].item() != i for i in range(7))


def test_bad_folders_and_configs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainCheckError, match="no owa_build.json"):
        run_check(tmp_path)
    with pytest.raises(ConfigError) as info:
        CheckConfig(steps=0, dim=10, heads=4, pass_ratio=2).validate()
    assert len(info.value.problems) == 3


def test_cli_prints_the_curve_and_writes_the_png(
    cued: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    png = tmp_path / "out" / "curve.png"
    code = main(["train-check", str(cued), "--steps", "4", "--eval-every", "2", "-o", str(png)])
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    rows = [r for r in lines if len(r) == 4 and r[0].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 2, 4]
    assert "held-out loss" in out and "control (held-out, frames shuffled)" in out
    assert code in (0, 1) and (code == 0) == ("PASS" in out)
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width == 800
    numbers = json.loads(png.with_suffix(".json").read_text())
    assert [p["step"] for p in numbers["points"]] == [0, 2, 4]
    assert float(rows[-1][2]) == pytest.approx(numbers["points"][-1]["heldout"], abs=1e-3)
    assert main(["train-check"]) == 2  # neither DATASET nor --example
