"""Opening builds for publishing: THE layout (local or remote) read in order; empty, half-written and
inconsistent builds are refused with an error naming the build and the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from owa_builders.build import BUILD_RECORD, BuildFolderError
from owa_builders.output import load_build, read_record
from owa_builders.publish import layout
from owa_builders.publish.source import IncompleteBuildError, open_built


def rows_of(folder: Path | str, **kwargs: object) -> dict[str, list[dict]]:
    built = open_built(folder, **kwargs)
    return {name: [r for b in split.batches() for r in b.to_pylist()] for name, split in built.splits.items()}


@pytest.mark.parametrize("stage", ["event", "binned", "fsl"])
def test_a_build_gives_its_rows_in_order(built_folders: dict[str, Path], stage: str, tmp_path: Path) -> None:
    loaded = load_build(str(built_folders[stage]), cache_dir=str(tmp_path / "c"))
    built = open_built(built_folders[stage])
    assert built.layout == "parquet" and list(built.splits) == ["train", "test"]
    assert built.features == loaded["train"].features
    expected = {split: loaded[split].to_list() for split in loaded}
    assert rows_of(built_folders[stage]) == expected
    record = read_record(built_folders[stage])
    assert [Path(f).name for f in built.splits["train"].files] == [
        Path(p).name for p in layout.shard_paths(built.config_name, "train", len(record.shards["train"]))
    ]
    assert built.splits["test"].read(1, 4).to_pylist() == expected["test"][1:4]


def test_a_remote_build_is_read_where_it_is(built_folders: dict[str, Path]) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    local = built_folders["fsl"]
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.pipe_file(f"/src-fsl/{path.relative_to(local).as_posix()}", path.read_bytes())
    remote = open_built("memory://src-fsl")
    assert not remote.local and remote.splits["train"].fs is not None
    assert rows_of("memory://src-fsl") == rows_of(local)
    assert (
        remote.tokenizer_dir() and Path(remote.tokenizer_dir(), "owa_fsl.json").is_file()
    )  # fetched locally


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
    shard = folder / read_record(folder).shards["test"][0]
    shard.write_bytes(shard.read_bytes()[:1000])  # a file that did not finish
    with pytest.raises(IncompleteBuildError, match="not a readable Parquet file"):
        open_built(folder)
    shard.unlink()
    with pytest.raises(IncompleteBuildError, match="missing .*the build did not finish"):
        open_built(folder)


def test_empty_splits_wrong_columns_and_missing_tokenizer_are_refused(
    built_folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = copy_of(built_folders["binned"], tmp_path)
    empty = copy_of(built_folders["binned"], tmp_path / "e")
    for rel in read_record(empty).shards["test"]:
        table = pq.read_table(empty / rel)
        pq.write_table(table.slice(0, 0), empty / rel)
    edit_record(empty, splits={"train": 120, "test": 0})
    with pytest.raises(IncompleteBuildError, match="split 'test' is empty"):
        open_built(empty)

    edit_record(folder, stage="event", config={})  # binned rows under an event record
    with pytest.raises(IncompleteBuildError, match="do not match the event stage's schema"):
        open_built(folder)

    fsl = copy_of(built_folders["fsl"], tmp_path)
    shutil.rmtree(fsl / "tokenizer")
    with pytest.raises(IncompleteBuildError, match="the expanded tokenizer is missing"):
        open_built(fsl)
