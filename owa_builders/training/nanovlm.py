"""FSL (fixed sequence length) datasets as nanoVLM datasets (huggingface/nanoVLM, ``data/datasets.py`` / ``data/collators.py``).

::

    from data.collators import VQACollator            # nanoVLM's own (the README has the whole recipe)
    from data.processors import get_image_processor

    ds = load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=ROOT, tokenizer_name=NANOVLM_TOKENIZER_DIR,
                      image_prefix=["<|global_image|>"], image_token="<|image|>", image_suffix=[],
                      image_token_count=cfg.mp_image_token_length, split="train")
    train = NanoVLMDataset(ds, ROOT, tokenizer_dir_of(ds), get_image_processor(cfg.vit_img_size, cfg.vit_img_size),
                           mp_image_token_length=cfg.mp_image_token_length, model_tokenizer=tokenizer)
    loader = DataLoader(train, batch_size=8, collate_fn=VQACollator(tokenizer, cfg.lm_max_length), num_workers=4)

Items follow nanoVLM's ``VQADataset`` contract exactly: a dict with

- ``images``: a list with one processed tensor per frame of the row, in the row's frame order
  (the order of its image token runs); a frame's tensor is ``(tiles, 3, H, W)``;
- ``input_ids``: 1-D ``torch.long``, the row's real tokens (FSL padding stripped by its
  ``attention_mask``);
- ``attention_mask``: 1-D ``torch.long``, all ones, as long as ``input_ids``;
- ``labels``: 1-D ``torch.long``, shifted for causal LM as nanoVLM does: ``labels[t]`` is the
  target of position ``t``, i.e. ``input_ids[t + 1]``, or -100 where that token is not
  supervised; the last position is -100. Supervised = actions and event text (every event's
  tokens, the ``<SCREEN>`` event's own tokens included); never supervised = every id of a
  frame's image expansion (prefix, image token, suffix: what the encoders' ``<IMAGE>``
  placeholder became) -- the same rule as :func:`~owa_builders.training.transforms.fsl_labels`,
  so :class:`~owa_builders.training.transforms.FslTransform`, the collators and these datasets agree.

An item is ``None`` when ``on_bad_row="skip"`` and its row cannot be served (a frame that
cannot be loaded, or frames whose tiles do not match the image tokens), with a
:class:`NanoVLMSkipWarning` naming the row and the count in ``dataset.skipped`` (per process);
nanoVLM's collator (and :class:`NanoVLMCollator`) drop ``None`` items.

Image tokens: nanoVLM replaces every position holding the tokenizer's image token with one
``mp_image_token_length``-long slice of image features per tile, in order. So each frame's
run of image tokens in the FSL row (``image_token_count``) must equal ``tiles x
mp_image_token_length`` for the tiles the image processor gives that frame. The datasets check
it: at construction, ``image_token_count`` must be a multiple of ``mp_image_token_length`` (the
expected tiles per frame, normally 1); per item, every frame must give that many tiles.
Build the FSL dataset with ``image_token_count = mp_image_token_length`` and keep frames one
tile (nanoVLM's processor with ``max_img_size == vit_img_size``, or ``resize`` frames to at most
the tile size), or ``image_token_count = tiles x mp_image_token_length`` for a fixed grid.
``model_tokenizer`` (nanoVLM's tokenizer) is checked to give every FSL token the id of the
dataset's tokenizer, its ``image_token_id`` included: build the FSL dataset from a base
tokenizer that already has nanoVLM's extra tokens (``get_tokenizer(...).save_pretrained(dir)``,
then ``tokenizer_name=dir``), so those keep their ids, and size the model's vocabulary to
``len(tokenizer)`` of the dataset (``lm_vocab_size``).

``image_processor`` is nanoVLM-style (a callable taking one PIL image and returning
``(tensor, (rows, cols))``, as ``get_image_processor`` builds), any callable returning a tensor
or a mapping with ``pixel_values``, a Hugging Face image processor (called as
``processor(images=[frame], return_tensors="pt")``), or
:class:`~owa_builders.training.transforms.HFImageProcessor`.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from owa_fsl.tokenizer import FslTokens

from ..errors import NanoVLMLayoutError, NanoVLMSkipWarning
from .frames import FrameLoadError
from .transforms import IGNORE_INDEX, FslTransform, HFImageProcessor, _load_tokens

__all__ = [
    "NanoVLMCollator",
    "NanoVLMDataset",
    "NanoVLMIterableDataset",
    "NanoVLMLayoutError",
    "NanoVLMSkipWarning",
    "shift_labels",
]

OnBadRow = Literal["error", "skip"]
#: Columns that name a row in messages, when present.
_ROW_KEYS = ("episode_path", "interval_idx", "base_ns")


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """nanoVLM's causal shift of a 1-D label tensor: ``out[t] = labels[t + 1]``, ``out[-1] = -100``."""
    out = labels.roll(-1)
    if len(out):
        out[-1] = IGNORE_INDEX
    return out


def _row_name(row: Mapping[str, Any], where: str) -> str:
    ids = [f"{key}={row[key]!r}" for key in _ROW_KEYS if key in row]
    return where + (f" ({', '.join(ids)})" if ids else "")


def _is_hf_image_processor(processor: Any) -> bool:
    """A Hugging Face image processor (``BaseImageProcessor`` and the like): it has ``preprocess``
    and ``model_input_names``."""
    return callable(getattr(processor, "preprocess", None)) and hasattr(processor, "model_input_names")


class _Items:
    """Rows -> nanoVLM items; shared by the map-style and the iterable dataset.

    Frames come through an :class:`FslTransform` (``output="pil"``, no image processor) so frame
    loading, confinement to ``media_root`` and labels are exactly the transform's. Pickles small:
    a tokenizer given as a directory is re-loaded lazily in each process (only for :attr:`tokenizer`).
    """

    def __init__(
        self,
        media_root: str | os.PathLike[str],
        tokens: str | os.PathLike[str] | FslTokens,
        image_processor: Callable[..., Any],
        *,
        mp_image_token_length: int,
        model_tokenizer: Any = None,
        on_bad_row: OnBadRow = "error",
        loader_kwargs: Mapping[str, Any],
    ) -> None:
        if not callable(image_processor):
            raise TypeError(f"image_processor must be callable, got {type(image_processor).__name__}")
        if on_bad_row not in ("error", "skip"):
            raise ValueError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
        mp = mp_image_token_length
        if isinstance(mp, bool) or not isinstance(mp, int) or mp < 1:
            raise ValueError(f"mp_image_token_length must be a positive int, got {mp!r}")
        loaded = _load_tokens(tokens)
        layout = loaded.image_tokens
        image_id = loaded.table.token_to_id[layout.token]
        per_frame = sum(1 for i in loaded.table.image_ids if i == image_id)
        problems = []
        if per_frame != layout.count:
            problems.append(
                f"the image token {layout.token!r} also appears in the image prefix/suffix "
                f"{list(layout.prefix)}/{list(layout.suffix)}: nanoVLM would fill those positions with image features"
            )
        if layout.count % mp:
            problems.append(
                f"the FSL dataset spells a frame with {layout.count} x {layout.token!r}, but nanoVLM fills "
                f"mp_image_token_length={mp} positions per tile, and {layout.count} is not a multiple of {mp}: "
                f"build the FSL dataset with image_token_count={mp} (one tile per frame) or tiles x {mp}"
            )
        if model_tokenizer is not None:
            problems.extend(_tokenizer_problems(model_tokenizer, loaded, image_id))
        if problems:
            raise NanoVLMLayoutError(
                "the FSL dataset does not fit nanoVLM:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        self.transform = FslTransform(media_root, loaded, output="pil", image_processor=False, keep_columns=(),
                                      **loader_kwargs)  # fmt: skip
        self.image_processor = image_processor
        self.mp_image_token_length = mp
        self.tiles_per_frame = layout.count // mp
        self.image_token = layout.token
        self.image_token_id = int(image_id)
        self.image_token_count = layout.count
        self.pad_id = int(loaded.pad_id)
        self.on_bad_row: OnBadRow = on_bad_row
        self.model_tokenizer = model_tokenizer
        self._tokens_dir = os.fspath(tokens) if isinstance(tokens, (str, os.PathLike)) else None
        self._tokens: FslTokens | None = loaded
        #: Rows skipped in this process (``on_bad_row="skip"``).
        self.skipped = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if state.get("_tokens_dir"):
            state["_tokens"] = None
        return state

    @property
    def tokenizer(self) -> Any:
        """``model_tokenizer`` when given, else the dataset's expanded tokenizer."""
        if self.model_tokenizer is not None:
            return self.model_tokenizer
        if self._tokens is None:
            self._tokens = _load_tokens(self._tokens_dir)  # type: ignore[arg-type]
        return self._tokens.tokenizer

    def tiles(self, frame: Any, name: str = "a frame") -> torch.Tensor:
        """One frame through the image processor, as ``(tiles, 3, H, W)`` (``name`` names it in errors)."""
        proc = self.image_processor
        if isinstance(proc, HFImageProcessor):
            out = proc([frame])
        elif _is_hf_image_processor(proc):
            out = proc(images=[frame], return_tensors="pt")
        else:
            out = proc(frame)
        if isinstance(out, tuple) and len(out) == 2:  # nanoVLM: (tiles, (rows, cols))
            out = out[0]
        if isinstance(out, Mapping) or (hasattr(out, "keys") and "pixel_values" in out.keys()):
            out = out["pixel_values"]
        t = torch.as_tensor(out)
        while t.ndim > 4 and t.shape[0] == 1:  # HF: (1 sample, 1 image, tiles, 3, H, W) and the like
            t = t[0]
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4:
            raise ValueError(
                f"{name}: the image processor gave shape {tuple(t.shape)}; want (tiles, 3, H, W)"
            )
        return t

    def item(self, row: Mapping[str, Any], where: str) -> dict[str, Any] | None:
        """The nanoVLM item of one FSL row (``where`` names it in errors), or None when skipped."""
        name = _row_name(row, where)
        try:
            out = self.transform({key: [row[key]] for key in ("input_ids", "attention_mask", "images", *_ROW_KEYS)
                                  if key in row})  # fmt: skip
        except FrameLoadError as e:
            return self._bad(e.in_row(name))
        mask = out["attention_mask"][0]
        keep = [i for i, m in enumerate(mask) if m]
        ids = torch.tensor([out["input_ids"][0][i] for i in keep], dtype=torch.long)
        labels = torch.tensor([out["labels"][0][i] for i in keep], dtype=torch.long)
        images = [self.tiles(frame, f"{name}, frame {j}") for j, frame in enumerate(out["frames"][0])]
        for j, tiles in enumerate(images):
            if tiles.shape[0] != self.tiles_per_frame:
                return self._bad(NanoVLMLayoutError(
                    f"{name}, frame {j}: the image processor gave {tiles.shape[0]} tile(s) of shape "
                    f"{tuple(tiles.shape[1:])}, so nanoVLM would need {tiles.shape[0]} x {self.mp_image_token_length} "
                    f"image tokens, but the FSL dataset has {self.image_token_count} per frame "
                    f"({self.tiles_per_frame} tile(s)); keep frames one tile (max_img_size = vit_img_size, or resize=) "
                    f"or build the FSL dataset with image_token_count = tiles x {self.mp_image_token_length}"
                ))  # fmt: skip
        n_tokens = int((ids == self.image_token_id).sum())
        if n_tokens != len(images) * self.image_token_count:
            return self._bad(NanoVLMLayoutError(
                f"{name}: {n_tokens} x {self.image_token!r} for {len(images)} frame(s) of "
                f"{self.image_token_count}: the row's image token runs and its frame list disagree"
            ))  # fmt: skip
        return {
            "images": images,
            "input_ids": ids,
            "attention_mask": torch.ones(len(ids), dtype=torch.long),
            "labels": shift_labels(labels),
        }

    def _bad(self, error: Exception) -> None:
        if self.on_bad_row == "error":
            raise error
        self.skipped += 1
        warnings.warn(NanoVLMSkipWarning(f"skipped (on_bad_row='skip'): {error}"), stacklevel=3)
        return None


class _NanoVLMCommon:
    """What both datasets share: the item maker and the attributes nanoVLM's code reads."""

    dataset: Any
    _items: _Items

    def _setup(
        self,
        dataset: Any,
        media_root: str | os.PathLike[str],
        tokens: str | os.PathLike[str] | FslTokens,
        image_processor: Callable[..., Any],
        *,
        mp_image_token_length: int,
        model_tokenizer: Any,
        on_bad_row: OnBadRow,
        loader_kwargs: Mapping[str, Any],
    ) -> None:
        self.dataset = dataset
        self._items = _Items(media_root, tokens, image_processor, mp_image_token_length=mp_image_token_length,
                             model_tokenizer=model_tokenizer, on_bad_row=on_bad_row,
                             loader_kwargs=loader_kwargs)  # fmt: skip

    @property
    def media_root(self) -> str:
        """Where frame URIs are resolved (the folder or URL the FSL dataset was built from)."""
        return self._items.transform.media_root

    @property
    def mp_image_token_length(self) -> int:
        """Image tokens nanoVLM fills per tile."""
        return self._items.mp_image_token_length

    @property
    def tiles_per_frame(self) -> int:
        """Tiles every frame must give (``image_token_count // mp_image_token_length``)."""
        return self._items.tiles_per_frame

    @property
    def image_token_id(self) -> int:
        """The id of the repeated image token: the positions nanoVLM fills with image features."""
        return self._items.image_token_id

    @property
    def pad_id(self) -> int:
        """The pad id of the dataset's tokenizer (for :class:`NanoVLMCollator`)."""
        return self._items.pad_id

    @property
    def tokenizer(self) -> Any:
        """``model_tokenizer`` when given, else the dataset's expanded tokenizer."""
        return self._items.tokenizer

    @property
    def skipped(self) -> int:
        """Rows skipped in this process (``on_bad_row="skip"``)."""
        return self._items.skipped


class NanoVLMDataset(_NanoVLMCommon, Dataset):
    """A map-style ``torch.utils.data.Dataset`` of nanoVLM items (module docstring) over an FSL dataset.

    ``dataset`` is a map-style FSL dataset (``load_dataset("owa_builders/fsl", ...)[split]``, or any
    sequence of FSL rows); ``media_root`` the folder (or fsspec URL) it was built from;
    ``tokens`` its expanded tokenizer (:func:`~owa_builders.training.transforms.tokenizer_dir_of`) or an
    ``FslTokens``; ``mp_image_token_length`` nanoVLM's (``VLMConfig.mp_image_token_length``);
    ``model_tokenizer`` optionally nanoVLM's tokenizer, to check its ids. Frame loading options
    (``resize``, ``on_missing``, ``placeholder_size``, ``allow_outside_root``, ``max_open_videos``,
    ``storage_options``) are the :class:`~owa_builders.training.frames.FrameLoader`'s. Also offers
    what nanoVLM's ``ConstantLengthDataset`` reads: ``dataset``, ``mp_image_token_length``,
    ``tokenizer`` and :meth:`iter_for_worker`.
    """

    def __init__(
        self,
        dataset: Sequence[Mapping[str, Any]],
        media_root: str | os.PathLike[str],
        tokens: str | os.PathLike[str] | FslTokens,
        image_processor: Callable[..., Any],
        *,
        mp_image_token_length: int,
        model_tokenizer: Any = None,
        on_bad_row: OnBadRow = "error",
        resize: Any = None,
        on_missing: Literal["error", "placeholder"] = "error",
        placeholder_size: Any = None,
        allow_outside_root: bool = False,
        max_open_videos: int = 4,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")) or isinstance(
            dataset, Mapping
        ):
            raise TypeError(
                f"NanoVLMDataset needs a map-style dataset of FSL rows (one split), got {type(dataset).__name__}; "
                f"use NanoVLMIterableDataset for streaming datasets"
            )
        loader = dict(resize=resize, on_missing=on_missing, placeholder_size=placeholder_size,
                      allow_outside_root=allow_outside_root, max_open_videos=max_open_videos,
                      storage_options=storage_options)  # fmt: skip
        self._setup(dataset, media_root, tokens, image_processor, mp_image_token_length=mp_image_token_length,
                    model_tokenizer=model_tokenizer, on_bad_row=on_bad_row, loader_kwargs=loader)  # fmt: skip

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> dict[str, Any] | None:
        return self._items.item(self.dataset[idx], f"row {idx} of the dataset")

    def iter_for_worker(self) -> Iterator[dict[str, Any] | None]:
        """Every item in order (nanoVLM's name for iterating a dataset inside a worker)."""
        for idx in range(len(self)):
            yield self[idx]

    def __repr__(self) -> str:
        return (f"NanoVLMDataset({len(self)} rows, media_root={self.media_root!r}, "
                f"mp_image_token_length={self.mp_image_token_length})")  # fmt: skip


class NanoVLMIterableDataset(_NanoVLMCommon, IterableDataset):
    """The streaming twin of :class:`NanoVLMDataset`: a ``torch.utils.data.IterableDataset`` over
    an iterable of FSL rows (``load_dataset(..., streaming=True)[split]``, or any iterable).

    In ``DataLoader`` workers every row goes to exactly one worker: a ``datasets.IterableDataset``
    splits its shards across workers itself (with fewer shards than workers, some workers get
    none); any other iterable is split row by row (worker ``k`` takes rows ``k, k + n, ...``).
    Arguments as :class:`NanoVLMDataset`.
    """

    def __init__(
        self,
        dataset: Iterable[Mapping[str, Any]],
        media_root: str | os.PathLike[str],
        tokens: str | os.PathLike[str] | FslTokens,
        image_processor: Callable[..., Any],
        *,
        mp_image_token_length: int,
        model_tokenizer: Any = None,
        on_bad_row: OnBadRow = "error",
        resize: Any = None,
        on_missing: Literal["error", "placeholder"] = "error",
        placeholder_size: Any = None,
        allow_outside_root: bool = False,
        max_open_videos: int = 4,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not hasattr(dataset, "__iter__") or isinstance(dataset, Mapping):
            raise TypeError(
                f"NanoVLMIterableDataset needs an iterable of FSL rows, got {type(dataset).__name__}"
            )
        loader = dict(resize=resize, on_missing=on_missing, placeholder_size=placeholder_size,
                      allow_outside_root=allow_outside_root, max_open_videos=max_open_videos,
                      storage_options=storage_options)  # fmt: skip
        self._setup(dataset, media_root, tokens, image_processor, mp_image_token_length=mp_image_token_length,
                    model_tokenizer=model_tokenizer, on_bad_row=on_bad_row, loader_kwargs=loader)  # fmt: skip

    def _rows(self) -> Iterator[Mapping[str, Any]]:
        info = get_worker_info()
        if info is None or info.num_workers == 1:
            return iter(self.dataset)
        import datasets

        if isinstance(self.dataset, datasets.IterableDataset):  # splits its shards by worker itself
            return iter(self.dataset)
        return itertools.islice(self.dataset, info.id, None, info.num_workers)

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        info = get_worker_info()
        where = f"worker {info.id}'s " if info is not None and info.num_workers > 1 else ""
        for i, row in enumerate(self._rows()):
            yield self._items.item(row, f"row {i} of {where}stream")

    def iter_for_worker(self) -> Iterator[dict[str, Any] | None]:
        """The same as iterating (nanoVLM's name for it)."""
        return iter(self)

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch to the underlying dataset (reshuffles a shuffled ``datasets.IterableDataset``)."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __repr__(self) -> str:
        return (f"NanoVLMIterableDataset(media_root={self.media_root!r}, "
                f"mp_image_token_length={self.mp_image_token_length})")  # fmt: skip


def _tokenizer_problems(model_tokenizer: Any, tokens: FslTokens, image_id: int) -> list[str]:
    """Where ``model_tokenizer`` (nanoVLM's) gives an FSL token another id than the dataset's tokenizer."""
    problems = []
    declared = getattr(model_tokenizer, "image_token", None)
    if declared is not None and declared != tokens.image_tokens.token:
        problems.append(
            f"model_tokenizer.image_token is {declared!r} but the FSL dataset's image token is "
            f"{tokens.image_tokens.token!r}: build the FSL dataset with image_token={declared!r}"
        )
    declared_id = getattr(model_tokenizer, "image_token_id", None)
    if declared_id is not None and int(declared_id) != image_id:
        problems.append(
            f"model_tokenizer.image_token_id is {declared_id} but the FSL dataset's image token "
            f"{tokens.image_tokens.token!r} is id {image_id}"
        )
    differ = []
    for token, tid in tokens.table.token_to_id.items():
        got = model_tokenizer.convert_tokens_to_ids(token)
        if got != tid:
            differ.append(f"{token!r}: {got} vs {tid}")
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        problems.append(
            f"model_tokenizer gives {len(differ)} FSL token(s) other ids than the dataset's tokenizer ({shown}): "
            f"use the dataset's expanded tokenizer as nanoVLM's tokenizer (build the FSL dataset from a base "
            f"tokenizer that already has nanoVLM's extra tokens)"
        )
    return problems


class NanoVLMCollator:
    """Equivalent to nanoVLM's ``VQACollator(tokenizer, max_length)`` for these items: drops ``None``
    items and (with a :class:`NanoVLMSkipWarning`, counted in ``dropped``) items longer than
    ``max_length``; **left**-pads ``input_ids`` with ``pad_id``, ``labels`` with -100 and
    ``attention_mask`` with 0 to ``max_length`` (to the longest item without it) and stacks them
    ``(B, L)``; ``images`` stays a list (per item) of lists (per frame) of tensors. A batch with no
    item left is ``{"input_ids": [], "attention_mask": [], "labels": [], "images": []}``, as nanoVLM's.
    """

    def __init__(self, pad_id: int, max_length: int | None = None) -> None:
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                       or max_length < 1):  # fmt: skip
            raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
        self.pad_id = int(pad_id)
        self.max_length = max_length
        #: Items dropped for their length in this process.
        self.dropped = 0

    def __repr__(self) -> str:
        return f"NanoVLMCollator(pad_id={self.pad_id}, max_length={self.max_length})"

    def __call__(self, items: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
        kept = [item for item in items if item is not None]
        if self.max_length is not None:
            short = [item for item in kept if len(item["input_ids"]) <= self.max_length]
            if len(short) < len(kept):
                n = len(kept) - len(short)
                self.dropped += n
                lengths = sorted(
                    len(item["input_ids"]) for item in kept if len(item["input_ids"]) > self.max_length
                )
                warnings.warn(NanoVLMSkipWarning(f"dropped {n} item(s) longer than max_length={self.max_length} "
                                                 f"(lengths {lengths})"), stacklevel=2)  # fmt: skip
            kept = short
        if not kept:
            return {"input_ids": [], "attention_mask": [], "labels": [], "images": []}
        length = self.max_length if self.max_length is not None else max(len(i["input_ids"]) for i in kept)
        n = len(kept)
        ids = torch.full((n, length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, length), dtype=torch.long)
        labels = torch.full((n, length), IGNORE_INDEX, dtype=torch.long)
        for b, item in enumerate(kept):
            k = len(item["input_ids"])
            if not (len(item["attention_mask"]) == len(item["labels"]) == k):
                raise ValueError(f"item {b}: input_ids, attention_mask and labels differ in length "
                                 f"({k}, {len(item['attention_mask'])}, {len(item['labels'])})")  # fmt: skip
            if k:
                ids[b, -k:] = torch.as_tensor(item["input_ids"])
                mask[b, -k:] = torch.as_tensor(item["attention_mask"])
                labels[b, -k:] = torch.as_tensor(item["labels"])
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "images": [list(i["images"]) for i in kept],
            "labels": labels,
        }
