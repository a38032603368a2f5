"""Recordings on the Hub (a local Hub-compatible server) and in memory:// as data_dir, every stage,
splits from subfolders, normal and streaming: the same rows as the local folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import datasets
import fsspec
import pytest
from huggingface_hub import HfApi

import owa_builders  # noqa: F401  (registers the builders)
from owa_event.errors import MissingMediaWarning

datasets.disable_progress_bars()


def rows(ds: datasets.Dataset | datasets.IterableDataset) -> list[tuple]:
    return [tuple(r.values()) for r in ds]


def local_and(remote_root: str, corpus: Path, cache: Path, stage: str, **kwargs: object) -> None:
    """Every split of ``stage`` from ``remote_root`` equals the local build, normal and streaming."""
    local = datasets.load_dataset(
        f"owa_builders/{stage}", data_dir=str(corpus), cache_dir=str(cache / "l"), **kwargs
    )
    remote = datasets.load_dataset(
        f"owa_builders/{stage}", data_dir=remote_root, cache_dir=str(cache / "r"), **kwargs
    )
    assert set(remote) == set(local) == {"train", "test"}  # splits from subfolders
    for split in local:
        assert rows(remote[split]) == rows(local[split]) and remote[split].num_rows > 0
        streamed = datasets.load_dataset(
            f"owa_builders/{stage}", data_dir=remote_root, split=split, streaming=True, **kwargs
        )
        assert rows(streamed) == rows(local[split])


def test_recordings_on_the_hub_load_like_local_ones(hub_env: object, corpus: Path, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo("org/recs", repo_type="dataset")
    api.upload_folder(folder_path=str(corpus), repo_id="org/recs", repo_type="dataset")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingMediaWarning)
        local_and("hf://datasets/org/recs", corpus, tmp_path, "event")
        local_and("hf://datasets/org/recs", corpus, tmp_path, "binned", fps=5)
    # data_files with hf:// globs work too, and a missing remote folder is a clear error
    ds = datasets.load_dataset("owa_builders/event", data_files={"train": "hf://datasets/org/recs/train/*.mcap"},
                               split="train", cache_dir=str(tmp_path / "f"))  # fmt: skip
    assert set(ds["episode_path"]) == {
        "episode_000.mcap",
        "episode_002.mcap",
    }  # relative to their common folder
    from owa_builders.discovery import NoRecordingsError

    with pytest.raises(NoRecordingsError, match="hf://datasets/org/recs/nope.*no such folder"):
        datasets.load_dataset("owa_builders/event", data_dir="hf://datasets/org/recs/nope")


def test_recordings_in_memory_load_like_local_ones(corpus: Path, tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    for path in corpus.rglob("*"):
        if path.is_file():
            fs.pipe(f"/mem-recs/{path.relative_to(corpus).as_posix()}", path.read_bytes())
    try:
        local_and("memory://mem-recs", corpus, tmp_path, "event")
    finally:
        fs.rm("/mem-recs", recursive=True)
