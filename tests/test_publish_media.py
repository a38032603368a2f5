"""Media referenced by built rows: found for every stage, checked to stay inside the recordings' root,
missing files listed by name."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from owa_builders.publish.media import (
    MissingMediaError,
    UnsafeMediaPathError,
    batch_uris,
    check_media_path,
    locate_media,
    referenced_uris,
)
from owa_builders.publish.source import open_built


def videos_of(corpus: Path) -> list[str]:
    return sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.mkv"))


@pytest.mark.parametrize("stage", ["event", "binned", "fsl"])
def test_every_stage_references_the_corpus_videos(
    built_folders: dict[str, Path], corpus: Path, stage: str
) -> None:
    built = open_built(built_folders[stage])
    uris = referenced_uris(built)
    assert uris == videos_of(corpus) and len(uris) == 4
    files = locate_media(str(corpus), uris)
    assert [f.uri for f in files] == uris
    assert all(
        f.size == os.path.getsize(corpus / f.uri) and f.local_path == str((corpus / f.uri).resolve())
        for f in files
    )


def test_fsl_uris_are_the_images_column(built_folders: dict[str, Path]) -> None:
    built = open_built(built_folders["fsl"])
    batch = next(built.splits["train"].batches())
    expected = [image["uri"] for row in batch.to_pylist() for image in row["images"]]
    assert list(batch_uris("fsl", batch)) == expected and expected


@pytest.mark.parametrize(
    "uri",
    ["", "/etc/passwd", "../outside.mkv", "a/../../b.mkv", "a/./b.mkv", "a//b.mkv", "C:/x.mkv", "a\\b.mkv",
     "file:///etc/passwd", "hf://datasets/x/y.mkv", "~/x.mkv", ".hidden.mkv", "a/.git/config", "README.md",
     ".gitattributes", "a/"],
)  # fmt: skip
def test_unsafe_uris_are_refused(uri: str) -> None:
    with pytest.raises(UnsafeMediaPathError, match="only paths relative to the recordings' root"):
        check_media_path(uri)


def test_rows_with_an_escaping_uri_are_refused(tmp_path: Path) -> None:
    fsl_like = pa.record_batch(
        {"images": [[{"uri": "ok/a.mkv", "pts_ns": 0}, {"uri": "../../etc/x", "pts_ns": 1}]]}
    )
    assert list(batch_uris("fsl", fsl_like)) == ["ok/a.mkv", "../../etc/x"]
    with pytest.raises(UnsafeMediaPathError, match=r"'\.\./\.\./etc/x'"):
        locate_media(str(tmp_path), list(batch_uris("fsl", fsl_like)))


def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.mkv").write_bytes(b"x")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "inside.mkv").write_bytes(b"ok")
    assert [f.uri for f in locate_media(str(root), ["inside.mkv"])] == ["inside.mkv"]
    with pytest.raises(UnsafeMediaPathError, match="outside the recordings' root"):
        locate_media(str(root), ["link/secret.mkv"])


def test_missing_videos_are_listed(tmp_path: Path) -> None:
    (tmp_path / "a.mkv").write_bytes(b"a")
    with pytest.raises(MissingMediaError, match=r"2 video\(s\) .*: b\.mkv, train/c\.mkv") as err:
        locate_media(str(tmp_path), ["a.mkv", "b.mkv", "train/c.mkv"])
    assert str(tmp_path) in str(err.value)
    with pytest.raises(MissingMediaError, match="not a local folder"):
        locate_media("hf://datasets/org/recordings", ["a.mkv"])
