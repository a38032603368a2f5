from __future__ import annotations

import os
from pathlib import Path

from owa_builders._base import common_root, is_recording, relative_path


def test_only_mcap_files_are_recordings() -> None:
    assert is_recording("a/b.mcap") and is_recording("B.MCAP")
    assert not is_recording("a/b.mkv") and not is_recording("a/b.mcap.json")


def test_common_root_and_relative_paths(tmp_path: Path) -> None:
    a = tmp_path / "x" / "train" / "a.mcap"
    b = tmp_path / "x" / "test" / "deep" / "b.mcap"
    root = common_root([str(a), str(b)])
    assert root == str(tmp_path / "x")
    assert relative_path(str(b), root) == "test/deep/b.mcap"
    assert relative_path(str(a), root) == "train/a.mcap"
    assert os.sep not in relative_path(str(b), root).replace("/", "")


def test_common_root_of_urls() -> None:
    urls = ["hf://datasets/o/n/train/a.mcap", "hf://datasets/o/n/test/b.mcap"]
    assert common_root(urls) == "hf://datasets/o/n"
    assert relative_path(urls[1], "hf://datasets/o/n") == "test/b.mcap"
