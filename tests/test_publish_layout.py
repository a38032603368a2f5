"""The Parquet layout: shard names (datasets' push_to_hub convention), row ranges, default shard counts,
finding complete shard sets in a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from owa_builders.publish import layout
from owa_builders.publish.layout import LayoutError, ShardName


def test_shard_names_round_trip_and_sort_in_row_order() -> None:
    paths = layout.shard_paths("fsl-internvl3", "train", 12)
    assert paths[0] == "fsl-internvl3/train-00000-of-00012.parquet"
    assert paths[-1] == "fsl-internvl3/train-00011-of-00012.parquet"
    assert sorted(paths) == paths  # name order is row order
    assert [layout.parse_shard_path(p) for p in paths] == [
        ShardName("fsl-internvl3", "train", i, 12) for i in range(12)
    ]
    assert all(layout.parse_shard_path(p).path == p for p in paths)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "path",
    [
        "train-00000-of-00001.parquet",  # no config folder
        "a/b/train-00000-of-00001.parquet",  # nested
        "event/train-00001-of-00001.parquet",  # index out of range
        "event/train-0-of-1.parquet",
        "event/train-00000-of-00001.arrow",
        "event/tokenizer/tokenizer.json",
        "event/owa_build.json",
    ],
)
def test_other_paths_are_not_shards(path: str) -> None:
    assert layout.parse_shard_path(path) is None


def test_names_are_validated() -> None:
    for bad in ("", "a/b", "..", ".hidden", "x" * 200, "with space"):
        with pytest.raises(LayoutError, match="config name"):
            layout.check_config_name(bad)
    for bad in ("", "train-1", "a.", ".b", "tr ain"):
        with pytest.raises(LayoutError, match="split name"):
            layout.check_split_name(bad)
    assert layout.check_split_name("validation.v2") == "validation.v2"  # as datasets: words joined by dots
    with pytest.raises(LayoutError):
        layout.shard_path("event", "train", 3, 3)
    assert layout.split_pattern("event", "test") == "event/test-*"
    assert layout.data_files("binned", ["train", "test"]) == [
        {"split": "train", "path": "binned/train-*"},
        {"split": "test", "path": "binned/test-*"},
    ]
    assert layout.tokenizer_path("fsl-smolvlm") == "fsl-smolvlm/tokenizer"
    assert layout.record_path("event") == "event/owa_build.json"
    assert layout.plot_path("event", "a.png") == "event/plots/a.png"


@pytest.mark.parametrize("rows,count", [(10, 3), (7, 7), (1000, 16), (5, 1)])
def test_row_ranges_are_contiguous_and_cover_every_row(rows: int, count: int) -> None:
    ranges = layout.row_ranges(rows, count)
    assert len(ranges) == count and ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_default_shard_count_follows_the_data_size() -> None:
    mib = 2**20
    assert layout.default_num_shards(100_000, 50) == 1  # small: one shard
    assert layout.default_num_shards(40 * mib, 10_000) == 5  # 8 MiB minimum per shard
    assert layout.default_num_shards(1000 * mib, 10**6) == 16  # enough for 16 readers
    assert layout.default_num_shards(10_000 * mib, 10**7) == 40  # 256 MiB maximum per shard
    assert layout.default_num_shards(10_000 * mib, 3) == 3  # never more shards than rows
    assert layout.default_num_shards(0, 0) == 1
    assert layout.default_num_shards(100 * mib, 10**6, max_shard_bytes=10 * mib, min_shards=2) == 10


def test_find_shards_accepts_only_complete_sets(tmp_path: Path) -> None:
    config = tmp_path / "event"
    config.mkdir()
    with pytest.raises(LayoutError, match="no Parquet shards"):
        layout.find_shards(tmp_path, "event")
    for p in layout.shard_paths("event", "train", 3) + layout.shard_paths("event", "test", 1):
        (tmp_path / p).write_bytes(b"")
    (config / "owa_build.json").write_text("{}")
    assert layout.find_shards(tmp_path, "event") == {
        "test": ["event/test-00000-of-00001.parquet"],
        "train": layout.shard_paths("event", "train", 3),
    }
    (tmp_path / layout.shard_path("event", "train", 1, 3)).unlink()
    with pytest.raises(LayoutError, match=r"misses shard\(s\) \[1\] of 3"):
        layout.find_shards(tmp_path, "event")
    (tmp_path / layout.shard_path("event", "train", 1, 3)).write_bytes(b"")
    (tmp_path / layout.shard_path("event", "train", 0, 2)).write_bytes(b"")
    with pytest.raises(LayoutError, match="disagree on their count"):
        layout.find_shards(tmp_path, "event")
