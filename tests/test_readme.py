"""The README's commands and code describe what the code does: run its training loop."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(marker: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README block {marker!r} not found"
    return match.group(1)


def test_readme_starts_with_the_setup_and_test_commands() -> None:
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block
    lines = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert lines[0] == "./setup.sh && .venv/bin/owa-builders demo"
    assert lines[1] == ".venv/bin/python -m pytest -q -n 2"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "./setup.sh" in ci and ".venv/bin/python -m pytest -q -n 2" in ci


def test_training_loop_block_runs(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from owa_builders.demo.recordings import generate_corpus
    from owa_builders.demo.tokenizer import write_example_tokenizer

    demo = tmp_path / "owa-demo"
    generate_corpus(demo / "recordings", episodes=2, duration_s=3.0, legacy=False)
    write_example_tokenizer(demo / "example-tokenizer")
    script = tmp_path / "train.py"
    script.write_text(_block("training-loop"))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [float(m) for m in re.findall(r"step \d+: loss ([0-9.]+)", result.stdout)]
    assert len(losses) >= 2 and all(loss > 0 for loss in losses)
