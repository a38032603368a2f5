"""Data sources: the interface's defaults and the adapter chosen for each kind of source."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from owa_builders.ingest.source import (
    CallableSource,
    DataSource,
    FileListSource,
    IndexedSource,
    IteratorSource,
    SourceError,
    as_source,
    groups_items,
    read_file,
)


def test_the_interface_defaults() -> None:
    class Mine(DataSource):
        def get_data_items(self) -> list[int]:
            return [1, 2]

    source = Mine()
    assert (
        source.load_item(7) == 7
        and source.validate(7) is None
        and source.transform_item({"a": 1}) == {"a": 1}
    )
    assert source.episode_name(3, []) == "episode_000003"
    assert not groups_items(source)
    with pytest.raises(NotImplementedError):
        DataSource().get_data_items()

    class Grouped(Mine):
        def group_items_into_episodes(self, items):
            return [list(items)]

    assert groups_items(Grouped())


def test_each_kind_of_source_gets_its_adapter(tmp_path: Path) -> None:
    import datasets
    import torch.utils.data

    class Frames(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> dict:
            return {"x": i}

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([{"x": 0}, {"x": 1}])

    def gen():
        yield {"x": 1}

    def items() -> list[dict]:
        return [{"x": 2}]

    double = lambda item: item  # noqa: E731
    cases = {
        "torch": (Frames(), IndexedSource, [0, 1, 2]),
        "hf": (datasets.Dataset.from_list([{"x": 5}, {"x": 6}]), IndexedSource, [0, 1]),
        "list of samples": ([{"x": 1}, {"x": 2}], IndexedSource, [0, 1]),
        "torch iterable": (Stream(), IteratorSource, [{"x": 0}, {"x": 1}]),
        "generator function": (gen, IteratorSource, [{"x": 1}]),
        "iterator": (iter([{"x": 3}]), IteratorSource, [{"x": 3}]),
        "callable": (items, CallableSource, [{"x": 2}]),
        "files": ([tmp_path / "a.png", str(tmp_path / "b.png")], FileListSource,
                  [str(tmp_path / "a.png"), str(tmp_path / "b.png")]),
    }  # fmt: skip
    for name, (source, kind, expected) in cases.items():
        adapted = as_source(source, double)
        assert type(adapted) is kind, name
        assert list(adapted.get_data_items()) == expected, name
        assert adapted.transform_item({"y": 1}) == {"y": 1}
    assert as_source(Frames()).load_item(2) == {"x": 2}
    assert as_source(datasets.Dataset.from_list([{"x": 5}])).load_item(0) == {"x": 5}


def test_sources_that_cannot_be_ingested_say_what_to_pass() -> None:
    for bad in ("a/path.png", {"screen": 1}, 42):
        with pytest.raises(SourceError, match="cannot ingest"):
            as_source(bad)
    with pytest.raises(SourceError, match="own transform_item"):
        as_source(IteratorSource(lambda: []), lambda x: x)
    with pytest.raises(SourceError, match="not an iterable"):
        list(as_source(lambda: {"a": 1}).get_data_items())


def as_value(item: int) -> dict:
    return {"v": item}


def test_workers_get_the_source_without_its_item_reader() -> None:
    generator = (i for i in range(3))  # cannot be pickled: it stays with the driver
    for source in (
        IteratorSource(lambda: generator, as_value),
        CallableSource(lambda: [generator], as_value),
    ):
        clone = pickle.loads(pickle.dumps(source))
        assert clone.transform_item(4) == {"v": 4}
        with pytest.raises(TypeError):
            clone.get_data_items()  # the factory was left behind
    assert list(IteratorSource(lambda: generator).get_data_items()) == [0, 1, 2]


def test_default_file_readers(tmp_path: Path) -> None:
    from PIL import Image

    img = np.zeros((6, 8, 3), dtype=np.uint8)
    img[:, :4] = 255
    Image.fromarray(img).save(tmp_path / "f.png")
    assert np.array_equal(read_file(str(tmp_path / "f.png"))["screen"], img)
    (tmp_path / "s.json").write_text(json.dumps([{"timestamp": 1, "joints": [1, 2]}]))
    assert read_file(str(tmp_path / "s.json")) == [{"timestamp": 1, "joints": [1, 2]}]
    (tmp_path / "s.jsonl").write_text('{"timestamp": 1}\n\n{"timestamp": 2}\n')
    assert read_file(str(tmp_path / "s.jsonl")) == [{"timestamp": 1}, {"timestamp": 2}]
    (tmp_path / "x.bin").write_bytes(b"?")
    with pytest.raises(SourceError, match="pass transform_fn"):
        read_file(str(tmp_path / "x.bin"))
    custom = FileListSource([tmp_path / "x.bin"], lambda path: {"size": Path(path).stat().st_size})
    assert custom.transform_item(str(tmp_path / "x.bin")) == {"size": 1}
