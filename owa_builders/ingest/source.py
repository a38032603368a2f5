"""Data sources: what ingestion reads, and the adapters that make one out of common Python objects.

A :class:`DataSource` has

- ``get_data_items()``: the items, in order (cheap references are best: indices, paths; the
  driver hands them to the workers);
- ``load_item(item)``: the item's data, in the worker (default: the item itself);
- ``validate(item)``: ``None``/``True`` when the loaded item is fine, ``False`` or a reason (str) when
  it is not (it is then skipped, if the config allows, and counted);
- ``transform_item(item)``: the loaded item as one step or a list of steps, each a mapping
  topic -> value (see :mod:`owa_builders.ingest.steps`); default: the item is already that;
- ``group_items_into_episodes(items)`` (optional): lists of items, one per episode; by default
  consecutive items, ``max_items_per_episode`` at a time;
- ``episode_name(index, items)``: the episode's name (a relative path without suffix); default
  ``<episode_prefix><index:06d>``.

Adapters (:func:`as_source` picks one by the source's type): :class:`IndexedSource` (a PyTorch
``Dataset``, a Hugging Face ``Dataset``, anything with ``__len__`` and ``__getitem__``),
:class:`IteratorSource` (a generator function or any factory of an iterable),
:class:`FileListSource` (a list of file paths), :class:`CallableSource` (a callable returning the
items, called once). A source object travels to the Ray workers by pickling (cloudpickle: lambdas
and local functions are fine).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import SourceError

Transform = Callable[[Any], Any]


class DataSource:
    """The ingestion interface (see the module docstring). Subclass it and override
    ``get_data_items`` and, usually, ``transform_item``."""

    #: Set by :func:`create_recordings_from_source` from the config, for :meth:`episode_name`.
    episode_prefix: str = "episode_"

    def get_data_items(self) -> Iterable[Any]:
        raise NotImplementedError(f"{type(self).__name__}.get_data_items() must return the items")

    def load_item(self, item: Any) -> Any:
        """The data of ``item``, in the worker (default: ``item`` itself)."""
        return item

    def validate(self, item: Any) -> bool | str | None:
        """``None``/``True`` when ``item`` (loaded) may be written; ``False`` or a reason when not."""
        return None

    def transform_item(self, item: Any) -> Any:
        """``item`` (loaded) as one step (mapping topic -> value) or a list of steps."""
        return item

    def group_items_into_episodes(self, items: Iterable[Any]) -> Iterable[Sequence[Any]]:
        """Lists of items, one per episode. Overriding it replaces the default grouping
        (``max_items_per_episode`` consecutive items)."""
        raise NotImplementedError  # the default grouping lives in the driver, which knows the item indices

    def episode_name(self, index: int, items: Sequence[Any]) -> str:
        """The name of episode ``index`` (0-based) holding ``items``: a relative path without suffix."""
        return f"{self.episode_prefix}{index:06d}"


def groups_items(source: DataSource) -> bool:
    """Whether ``source`` has its own ``group_items_into_episodes``."""
    return type(source).group_items_into_episodes is not DataSource.group_items_into_episodes


class _WithTransform(DataSource):
    def __init__(self, transform: Transform | None = None) -> None:
        self.transform = transform

    def transform_item(self, item: Any) -> Any:
        return item if self.transform is None else self.transform(item)


class IndexedSource(_WithTransform):
    """A map-style dataset (PyTorch ``Dataset``, Hugging Face ``Dataset``, a list of samples):
    items are the indices ``0 .. len - 1``, loaded with ``dataset[i]`` in the worker."""

    def __init__(self, dataset: Any, transform: Transform | None = None) -> None:
        super().__init__(transform)
        self.dataset = dataset

    def get_data_items(self) -> Iterable[int]:
        return range(len(self.dataset))

    def load_item(self, item: int) -> Any:
        return self.dataset[item]


class IteratorSource(_WithTransform):
    """Items from ``factory()`` (a generator function, or anything returning an iterable), read by
    the driver; each call must give the same items."""

    def __init__(self, factory: Callable[[], Iterable[Any]], transform: Transform | None = None) -> None:
        super().__init__(transform)
        self.factory = factory

    def get_data_items(self) -> Iterable[Any]:
        return self.factory()

    def __getstate__(self) -> dict[str, Any]:  # the workers never read items: the factory stays here
        return {**self.__dict__, "factory": None}


class CallableSource(_WithTransform):
    """Items returned by ``fn()`` (a list, or any iterable), called once per run."""

    def __init__(self, fn: Callable[[], Iterable[Any]], transform: Transform | None = None) -> None:
        super().__init__(transform)
        self.fn = fn

    def get_data_items(self) -> Iterable[Any]:
        items = self.fn()
        if not isinstance(items, Iterable) or isinstance(items, (str, bytes, Mapping)):
            raise SourceError(
                f"the source callable returned a {type(items).__name__}, not an iterable of items"
            )
        return items

    def __getstate__(self) -> dict[str, Any]:  # the workers never read items: the callable stays here
        return {**self.__dict__, "fn": None}


class FileListSource(_WithTransform):
    """A list of files, one item each (the path, as given). Without a transform: an image file
    (PNG, JPEG, ... read with Pillow) is one ``screen`` step; a ``.json`` file holds one step or a
    list of steps; a ``.jsonl`` file one step per line. Anything else needs ``transform_fn``."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], transform: Transform | None = None) -> None:
        super().__init__(transform)
        self.paths = [os.fspath(p) for p in paths]

    def get_data_items(self) -> Iterable[str]:
        return list(self.paths)

    def transform_item(self, item: str) -> Any:
        if self.transform is not None:
            return self.transform(item)
        return read_file(item)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_file(path: str) -> Any:
    """The steps of a file as :class:`FileListSource` reads it without a transform."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            return {"screen": np.asarray(img.convert("RGB"))}
    if suffix == ".json":
        with open(path, "rb") as f:
            return json.load(f)
    if suffix == ".jsonl":
        with open(path, "rb") as f:
            return [json.loads(line) for line in f if line.strip()]
    raise SourceError(
        f"{path}: no default reader for {suffix or 'files without a suffix'} files: pass transform_fn"
    )


def _is_pathlike_list(source: Any) -> bool:
    return (
        isinstance(source, (list, tuple))
        and bool(source)
        and all(isinstance(p, (str, os.PathLike)) for p in source)
    )


def _is_torch_dataset(source: Any) -> bool:
    torch_data = sys.modules.get("torch.utils.data")
    return torch_data is not None and isinstance(source, torch_data.Dataset)


def as_source(source: Any, transform_fn: Transform | None = None) -> DataSource:
    """The :class:`DataSource` for ``source``, chosen by its type:

    a ``DataSource`` (as it is; ``transform_fn`` then must be ``None``); a list of paths ->
    :class:`FileListSource`; a PyTorch map-style ``Dataset`` or anything with ``__len__`` and
    ``__getitem__`` (a Hugging Face ``Dataset``, a list of samples) -> :class:`IndexedSource`; a
    PyTorch ``IterableDataset``, an iterator (read once) or another iterable -> :class:`IteratorSource`;
    a generator function -> :class:`IteratorSource`; another callable -> :class:`CallableSource`.
    """
    if isinstance(source, DataSource):
        if transform_fn is not None:
            raise SourceError(
                f"transform_fn is for plain sources; {type(source).__name__} has its own transform_item"
            )
        return source
    if transform_fn is not None and not callable(transform_fn):
        raise SourceError(f"transform_fn must be callable, got {type(transform_fn).__name__}")
    if _is_pathlike_list(source):
        return FileListSource(source, transform_fn)
    if isinstance(source, (str, bytes, os.PathLike, Mapping)):
        raise SourceError(
            f"cannot ingest a {type(source).__name__}: pass a list of files, a dataset, an iterator factory, "
            "a callable returning items, or a DataSource"
        )
    if _is_torch_dataset(source) and not hasattr(source, "__len__"):
        return IteratorSource(lambda: iter(source), transform_fn)  # an IterableDataset
    if hasattr(source, "__len__") and hasattr(source, "__getitem__"):
        return IndexedSource(source, transform_fn)
    if inspect.isgeneratorfunction(source):
        return IteratorSource(source, transform_fn)
    if callable(source):
        return CallableSource(source, transform_fn)
    if isinstance(source, Iterator):  # read once, by the driver
        return IteratorSource(lambda: source, transform_fn)
    if isinstance(source, Iterable):
        return IteratorSource(lambda: iter(source), transform_fn)
    raise SourceError(f"cannot ingest a {type(source).__name__}: see owa_builders.ingest.as_source")
