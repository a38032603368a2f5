"""Tests of owa_builders.discovery: folders and explicit files -> splits of recordings."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest

from owa_builders.discovery import (
    NoRecordingsError,
    common_root,
    find_recordings,
    from_paths,
    is_recording,
    relative_path,
)


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


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


def test_split_folders_any_depth_and_case_and_aliases(tmp_path: Path) -> None:
    touch(tmp_path, "train/b.mcap", "train/a.mcap", "Validation/x/c.mcap", "user1/test/d.mcap", "eval/e.mcap",
          "train/a.mkv", "train/.hidden.mcap", ".cache/f.mcap", "__pycache__/g.mcap")  # fmt: skip
    found = find_recordings(tmp_path)
    assert found.root == str(tmp_path)
    assert list(found.splits) == ["train", "validation", "test"]  # the usual order, not alphabetical
    assert [r.episode_path for r in found.splits["train"]] == ["train/a.mcap", "train/b.mcap"]
    assert [r.episode_path for r in found.splits["validation"]] == ["Validation/x/c.mcap"]
    assert [r.episode_path for r in found.splits["test"]] == ["eval/e.mcap", "user1/test/d.mcap"]
    assert all(Path(r.path).is_file() and r.root == str(tmp_path) for r in found.all())


def test_no_split_folders_means_one_train_split(tmp_path: Path) -> None:
    touch(tmp_path, "z.mcap", "sub/a.mcap")
    found = find_recordings(str(tmp_path))
    assert {s: [r.episode_path for r in refs] for s, refs in found.splits.items()} == {
        "train": ["sub/a.mcap", "z.mcap"]
    }


def test_loose_recordings_beside_split_folders_are_an_error(tmp_path: Path) -> None:
    touch(tmp_path, "train/a.mcap", "stray.mcap")
    with pytest.raises(NoRecordingsError, match=r"outside them: stray\.mcap"):
        find_recordings(tmp_path)


def test_missing_folder_empty_folder_a_file_and_nothing_given(tmp_path: Path) -> None:
    with pytest.raises(NoRecordingsError, match="no such folder"):
        find_recordings(tmp_path / "nope")
    with pytest.raises(NoRecordingsError, match="no .mcap recordings"):
        find_recordings(tmp_path)
    touch(tmp_path, "a.mcap")
    with pytest.raises(NoRecordingsError, match="is a file"):
        find_recordings(tmp_path / "a.mcap")
    with pytest.raises(NoRecordingsError, match="no data given"):
        find_recordings()


def test_data_files_globs_lists_and_splits(tmp_path: Path) -> None:
    touch(tmp_path, "x/a.mcap", "x/b.mcap", "y/c.mcap", "y/c.mkv")
    found = find_recordings(
        data_files={"train": str(tmp_path / "x" / "*.mcap"), "test": [str(tmp_path / "y/c.mcap")]}
    )
    assert found.root == str(tmp_path)
    assert {s: [r.episode_path for r in refs] for s, refs in found.splits.items()} == {
        "train": ["x/a.mcap", "x/b.mcap"],
        "test": ["y/c.mcap"],
    }
    relative = find_recordings(
        tmp_path, data_files=["y/*"]
    )  # relative to data_dir; the .mkv is not a recording
    assert [r.episode_path for r in relative.all()] == ["y/c.mcap"] and relative.root == str(tmp_path)
    with pytest.raises(NoRecordingsError, match="does not exist"):
        find_recordings(data_files=str(tmp_path / "missing.mcap"))
    with pytest.raises(NoRecordingsError, match="no .mcap recordings"):
        find_recordings(data_files=[str(tmp_path / "y" / "*.mkv")])


def test_fsspec_roots(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    for name in ("disc/train/a.mcap", "disc/test/b.mcap", "disc/test/b.mkv"):
        with fs.open(name, "wb") as f:
            f.write(b"x")
    found = find_recordings("memory://disc")
    assert {s: [r.episode_path for r in refs] for s, refs in found.splits.items()} == {
        "train": ["train/a.mcap"],
        "test": ["test/b.mcap"],
    }
    assert found.splits["test"][0].path == "memory://disc/test/b.mcap" and found.root == "memory://disc"
    globbed = find_recordings(data_files={"train": "memory://disc/*/*.mcap"})
    assert [r.episode_path for r in globbed.all()] == ["test/b.mcap", "train/a.mcap"]
    with pytest.raises(NoRecordingsError, match="no such folder"):
        find_recordings("memory://nowhere")


def test_from_paths_keeps_given_files_only(tmp_path: Path) -> None:
    found = from_paths(
        {"train": [str(tmp_path / "b.mcap"), str(tmp_path / "a.mcap"), str(tmp_path / "a.mkv")]}
    )
    assert [r.episode_path for r in found.all()] == ["a.mcap", "b.mcap"]
    with pytest.raises(NoRecordingsError):
        from_paths({"train": [str(tmp_path / "a.mkv")]})
