"""Opening built folders for publishing: both layouts read the same rows; empty, half-written and
inconsistent folders are refused with an error naming the folder and the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pytest

from owa_builders.build import BUILD_RECORD, BuildFolderError
from owa_builders.publish import layout
from owa_builders.publish.hub import write_shards
from owa_builders.publish.source import IncompleteBuildError, open_built


def parquet_copy(built: Path, dest: Path, count: int = 2) -> Path:
    """The Parquet layout of a built folder (what a distributed build writes), made with the layout's helpers."""
    source = open_built(built)
    dest.mkdir()
    for split in source.splits:
        list(write_shards(source, split, source.config_name, count, str(dest)))
    shutil.copy(built / BUILD_RECORD, dest / BUILD_RECORD)
    if (built / "tokenizer").is_dir():
        shutil.copytree(built / "tokenizer", dest / "tokenizer")
    return dest


def rows_of(folder: Path | str) -> dict[str, list[dict]]:
    built = open_built(folder)
    return {name: [r for b in split.batches() for r in b.to_pylist()] for name, split in built.splits.items()}


@pytest.mark.parametrize("stage", ["event", "binned", "fsl"])
def test_both_layouts_give_the_build_rows_in_order(
    built_folders: dict[str, Path], stage: str, tmp_path: Path
) -> None:
    saved = datasets.load_from_disk(str(built_folders[stage]))
    built = open_built(built_folders[stage])
    assert built.layout == "saved" and list(built.splits) == ["train", "test"]
    assert built.features == saved["train"].features
    expected = {split: saved[split].to_list() for split in saved}
    assert rows_of(built_folders[stage]) == expected
    copy = parquet_copy(built_folders[stage], tmp_path / "pq", count=3)
    again = open_built(copy)
    assert again.layout == "parquet" and again.features == built.features
    assert [Path(f).name for f in again.splits["train"].files] == [
        Path(p).name for p in layout.shard_paths(built.config_name, "train", 3)
    ]
    assert rows_of(copy) == expected
    assert again.splits["test"].read(1, 4).to_pylist() == expected["test"][1:4]


def test_folders_that_are_not_builds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildFolderError, match="no such folder"):
        open_built(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BuildFolderError, match=f"no {BUILD_RECORD}"):
        open_built(tmp_path / "plain")


def copy_of(built: Path, tmp_path: Path) -> Path:
    dest = tmp_path / built.name
    shutil.copytree(built, dest)
    return dest


def edit_record(folder: Path, **changes: object) -> None:
    path = folder / BUILD_RECORD
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_half_written_and_inconsistent_folders_are_refused(
    built_folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = copy_of(built_folders["event"], tmp_path)
    edit_record(folder, splits={"train": 4185, "test": 1})
    with pytest.raises(
        IncompleteBuildError, match=r"split 'test' has 2700 rows, owa_build.json says 1"
    ) as err:
        open_built(folder)
    assert str(folder) in str(err.value)
    edit_record(folder, splits={"train": 4185, "test": 2700, "validation": 5})
    with pytest.raises(
        IncompleteBuildError, match=r"split 'validation' \(5 rows in owa_build.json\) is missing"
    ):
        open_built(folder)
    edit_record(folder, splits={})
    with pytest.raises(IncompleteBuildError, match="lists no splits"):
        open_built(folder)
    edit_record(folder, splits={"train": 4185, "test": 2700})
    assert open_built(folder).num_rows == 6885
    arrow = next((folder / "test").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:1000])  # a save that did not finish
    with pytest.raises(IncompleteBuildError, match="the saved split cannot be read"):
        open_built(folder)
    shutil.rmtree(folder / "test")
    (folder / "dataset_dict.json").unlink()
    with pytest.raises(IncompleteBuildError, match="no dataset"):
        open_built(folder)


def test_empty_splits_wrong_columns_and_missing_tokenizer_are_refused(
    built_folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = copy_of(built_folders["binned"], tmp_path)
    empty = datasets.load_from_disk(str(folder))
    empty["test"] = empty["test"].select([])
    empty.save_to_disk(str(tmp_path / "empty"))
    shutil.copy(folder / BUILD_RECORD, tmp_path / "empty" / BUILD_RECORD)
    edit_record(tmp_path / "empty", splits={"train": 120, "test": 0})
    with pytest.raises(IncompleteBuildError, match="split 'test' is empty"):
        open_built(tmp_path / "empty")

    edit_record(folder, stage="event", config={})  # binned rows under an event record
    with pytest.raises(IncompleteBuildError, match="do not match the event stage's schema"):
        open_built(folder)

    fsl = copy_of(built_folders["fsl"], tmp_path)
    shutil.rmtree(fsl / "tokenizer")
    with pytest.raises(IncompleteBuildError, match="the expanded tokenizer is missing"):
        open_built(fsl)


def test_parquet_layout_with_a_missing_shard_is_refused(
    built_folders: dict[str, Path], tmp_path: Path
) -> None:
    copy = parquet_copy(built_folders["event"], tmp_path / "pq", count=3)
    (copy / layout.shard_path("event", "train", 2, 3)).unlink()
    with pytest.raises(IncompleteBuildError, match=r"misses shard\(s\) \[2\] of 3: the build did not finish"):
        open_built(copy)
