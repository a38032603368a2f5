"""PyTorch glue: collators for two model families, and DataLoaders over map-style and streaming
datasets, with workers and across several GPUs.

Typical use (one process per GPU)::

    from owa_builders.training.transforms import FslTransform, tokenizer_dir_of
    from owa_builders.training.batching import SmolVLMCollator, make_dataloader

    ds = load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=ROOT, ...)["train"]
    transform = FslTransform(ROOT, tokenizer_dir_of(ds), resize=(512, 512))
    loader = make_dataloader(ds, transform=transform, collate_fn=SmolVLMCollator(transform.pad_id),
                             batch_size=4, num_workers=4, shuffle=True)  # rank/world size from torch.distributed
    for epoch in range(n):
        set_epoch(loader, epoch)
        for batch in loader: ...

Collators take the rows a transform produced (``input_ids``, ``attention_mask``, ``labels``,
``pixel_values`` or ``frames``, ``num_frames``) and return model inputs:

- :class:`InternVL3Collator`: ``pixel_values`` of every frame of the batch concatenated along
  dim 0, ``(total_frames, 3, H, W)``, in row order then frame order (the order of the image token
  runs in the flattened batch, which is how InternVL3 scatters image features);
- :class:`SmolVLMCollator`: ``pixel_values`` per row, zero-padded to ``(B, max_frames, 3, H, W)``,
  with ``pixel_attention_mask`` ``(B, max_frames, H, W)`` (bool, True on real frames: the shape
  SmolVLM / Idefics3 take) and ``frame_mask`` ``(B, max_frames)``. Those models take an all-zero
  frame for padding, so a real all-zero frame is refused (``blank_frames``).

Both batches go straight into ``transformers``' ``InternVLForConditionalGeneration`` and
``SmolVLMForConditionalGeneration`` / ``Idefics3ForConditionalGeneration`` (tested on tiny random
models) when the frames went through the model's own image processor, one tile per frame
(``HFImageProcessor(processor)`` with ``crop_to_patches=False`` / ``do_image_splitting=False``).

Both give ``input_ids``/``attention_mask``/``labels`` ``(B, L)`` (rows of different lengths are
right-padded: ``pad_id``, mask 0, label -100) and ``num_frames`` ``(B,)``; pop ``num_frames``
(and ``frame_mask``) before ``model(**batch)`` if the model does not take them.
With no frame in the batch, ``pixel_values`` (and the frame masks) are None.

torch is imported when these are used, never by ``import owa_builders``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from .transforms import IGNORE_INDEX, ToTensor, apply_transform, fsl_labels

__all__ = [
    "InternVL3Collator",
    "SmolVLMCollator",
    "distributed_context",
    "make_dataloader",
    "set_epoch",
]


# ------------------------------------------------------------------------------------------
# Collators
# ------------------------------------------------------------------------------------------
class _Collator:
    """What both collators share: text padding, labels, per-row pixel values."""

    def __init__(
        self,
        pad_id: int = 0,
        image_token_ids: Iterable[int] = (),
        *,
        image_processor: Callable[[list[Any]], Any] | None = None,
        pad_to_multiple_of: int | None = None,
        keep: Sequence[str] = (),
    ) -> None:
        self.pad_id = int(pad_id)
        self.image_token_ids = tuple(int(i) for i in image_token_ids)
        self.image_processor = image_processor
        self.pad_to_multiple_of = pad_to_multiple_of
        self.keep = tuple(keep)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pad_id={self.pad_id}, image_processor={self.image_processor!r})"

    def _text(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        ids = [torch.as_tensor(s["input_ids"]).long().reshape(-1) for s in samples]
        masks = [
            torch.as_tensor(s["attention_mask"]).long().reshape(-1) if "attention_mask" in s
            else torch.ones_like(i) for s, i in zip(samples, ids)
        ]  # fmt: skip
        if all("labels" in s for s in samples):
            labels = [torch.as_tensor(s["labels"]).long().reshape(-1) for s in samples]
        else:
            labels = [fsl_labels(i, m, self.image_token_ids) for i, m in zip(ids, masks)]
        length = max((len(i) for i in ids), default=0)
        if self.pad_to_multiple_of:
            k = self.pad_to_multiple_of
            length = (length + k - 1) // k * k
        n = len(samples)
        out_ids = torch.full((n, length), self.pad_id, dtype=torch.long)
        out_mask = torch.zeros((n, length), dtype=torch.long)
        out_labels = torch.full((n, length), IGNORE_INDEX, dtype=torch.long)
        for b, (i, m, lab) in enumerate(zip(ids, masks, labels)):
            if not (len(i) == len(m) == len(lab)):
                raise ValueError(f"row {b}: input_ids, attention_mask and labels differ in length "
                                 f"({len(i)}, {len(m)}, {len(lab)})")  # fmt: skip
            out_ids[b, : len(i)] = i
            out_mask[b, : len(m)] = m
            out_labels[b, : len(lab)] = lab
        return {"input_ids": out_ids, "attention_mask": out_mask, "labels": out_labels}

    def _frames(self, samples: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Each row's pixel values as a float tensor ``(n, 3, H, W)`` (n may be 0)."""
        import torch

        out = []
        for b, s in enumerate(samples):
            if "pixel_values" in s and s["pixel_values"] is not None:
                pv = torch.as_tensor(s["pixel_values"])
            elif "frames" in s:
                frames = list(s["frames"] or [])
                if frames:
                    proc = self.image_processor or ToTensor()
                    pv = proc(frames)
                    pv = torch.as_tensor(pv["pixel_values"] if isinstance(pv, Mapping) else pv)
                else:
                    pv = torch.zeros((0, 3, 0, 0))
            else:
                pv = torch.zeros((0, 3, 0, 0))
            if pv.ndim == 3:  # one frame
                pv = pv.unsqueeze(0)
            if pv.ndim != 4:
                raise ValueError(
                    f"row {b}: pixel_values must be (n_frames, C, H, W), got shape {tuple(pv.shape)}"
                )
            expected = s.get("num_frames")
            if expected is not None and int(expected) != pv.shape[0]:
                raise ValueError(
                    f"row {b}: num_frames is {int(expected)} but pixel_values has {pv.shape[0]} frames"
                )
            out.append(pv)
        shapes = {tuple(p.shape[1:]) for p in out if p.shape[0]}
        if len(shapes) > 1:
            raise ValueError(
                f"frames of different shapes in one batch {sorted(shapes)}: resize them (resize=)"
            )
        return out

    def _keep(self, samples: Sequence[Mapping[str, Any]], out: dict[str, Any]) -> dict[str, Any]:
        for key in self.keep:
            if all(key in s for s in samples):
                out[key] = [s[key] for s in samples]
        return out


class InternVL3Collator(_Collator):
    """Rows -> ``input_ids``, ``attention_mask``, ``labels`` ``(B, L)``, ``pixel_values``
    ``(total_frames, 3, H, W)`` (every frame of the batch, concatenated in row order) and
    ``num_frames`` ``(B,)`` (row ``b``'s frames are ``pixel_values[sum(num_frames[:b]):][:num_frames[b]]``).

    ``pad_id`` pads rows of different lengths; ``image_token_ids`` are only needed when rows
    carry no ``labels``; ``image_processor`` only for rows that carry ``frames`` instead of
    ``pixel_values`` (default :class:`~owa_builders.training.transforms.ToTensor`); ``keep`` names extra
    row keys to return as lists.
    """

    def __call__(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        out = self._text(samples)
        frames = self._frames(samples)
        real = [p for p in frames if p.shape[0]]
        out["pixel_values"] = torch.cat(real, dim=0) if real else None
        out["num_frames"] = torch.tensor([p.shape[0] for p in frames], dtype=torch.long)
        return self._keep(samples, out)


class SmolVLMCollator(_Collator):
    """Rows -> ``input_ids``, ``attention_mask``, ``labels`` ``(B, L)``, ``pixel_values``
    ``(B, max_frames, 3, H, W)`` (zeros after a row's frames), ``pixel_attention_mask``
    ``(B, max_frames, H, W)`` (bool, True on real frames), ``frame_mask`` ``(B, max_frames)``
    (bool) and ``num_frames`` ``(B,)``. Arguments as :class:`InternVL3Collator`, plus ``blank_frames``.

    SmolVLM and Idefics3 models tell padding frames from real ones by their pixels alone: a frame
    whose pixel values are all 0.0 is dropped as padding, and the model then fails with "Image
    features and image tokens do not match". A black frame scaled to [0, 1] (``ToTensor``, or a
    black placeholder through it) is exactly that; the model's own image
    processor normalizes black to -1 and never makes one. So a real frame that is all zeros is a
    ``ValueError`` naming the row and frame (``blank_frames="error"``, the default), unless
    ``blank_frames="allow"`` (a model that reads ``frame_mask`` instead, like the README's stand-in).
    """

    def __init__(
        self,
        pad_id: int = 0,
        image_token_ids: Iterable[int] = (),
        *,
        image_processor: Callable[[list[Any]], Any] | None = None,
        pad_to_multiple_of: int | None = None,
        keep: Sequence[str] = (),
        blank_frames: Literal["error", "allow"] = "error",
    ) -> None:
        super().__init__(pad_id, image_token_ids, image_processor=image_processor,
                         pad_to_multiple_of=pad_to_multiple_of, keep=keep)  # fmt: skip
        if blank_frames not in ("error", "allow"):
            raise ValueError(f"blank_frames must be 'error' or 'allow', got {blank_frames!r}")
        self.blank_frames = blank_frames

    def __call__(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        out = self._text(samples)
        frames = self._frames(samples)
        if self.blank_frames == "error":
            for b, p in enumerate(frames):
                blank = (p.flatten(1) == 0).all(dim=1).nonzero().flatten().tolist() if p.shape[0] else []
                if blank:
                    raise ValueError(
                        f"row {b}: frame(s) {blank} have all pixel values 0.0, which SmolVLM/Idefics3 models "
                        f"drop as padding (then: 'Image features and image tokens do not match'); use the model's "
                        f"image processor (it normalizes black to -1), or blank_frames='allow' for a model that "
                        f"reads frame_mask"
                    )
        counts = [p.shape[0] for p in frames]
        out["num_frames"] = torch.tensor(counts, dtype=torch.long)
        most = max(counts, default=0)
        if not most:
            out["pixel_values"] = out["pixel_attention_mask"] = out["frame_mask"] = None
            return self._keep(samples, out)
        c, h, w = next(p.shape[1:] for p in frames if p.shape[0])
        dtype = next(p.dtype for p in frames if p.shape[0])
        pixel_values = torch.zeros((len(frames), most, c, h, w), dtype=dtype)
        frame_mask = torch.zeros((len(frames), most), dtype=torch.bool)
        for b, p in enumerate(frames):
            if p.shape[0]:
                pixel_values[b, : p.shape[0]] = p
                frame_mask[b, : p.shape[0]] = True
        out["pixel_values"] = pixel_values
        out["pixel_attention_mask"] = frame_mask[:, :, None, None].expand(-1, -1, h, w).contiguous()
        out["frame_mask"] = frame_mask
        return self._keep(samples, out)


# ------------------------------------------------------------------------------------------
# DataLoaders: map-style and streaming, workers, several GPUs
# ------------------------------------------------------------------------------------------
def distributed_context(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the given values, else ``torch.distributed``'s when initialized,
    else ``(0, 1)``."""
    if rank is None or world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
    rank = 0 if rank is None else int(rank)
    world_size = 1 if world_size is None else int(world_size)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return rank, world_size


def make_dataloader(
    dataset: Any,
    *,
    batch_size: int = 1,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    transform: Callable[[Any], dict[str, Any]] | None = None,
    num_workers: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
    shuffle_buffer_size: int = 1000,
    **kwargs: Any,
) -> Any:
    """A ``torch.utils.data.DataLoader`` over a map-style ``Dataset`` or a streaming ``IterableDataset``.

    - ``transform`` (e.g. :class:`~owa_builders.training.transforms.FslTransform`) is applied with
      :func:`~owa_builders.training.transforms.apply_transform`: once per DataLoader batch for a map-style
      dataset, per ``batch_size`` rows inside each worker for a streaming one.
    - Several processes (``rank``/``world_size``, default from ``torch.distributed``): a map-style
      dataset gets a ``DistributedSampler`` (``shuffle``, ``seed``, ``drop_last``; it repeats a few
      rows so every rank has as many, unless ``drop_last``); a streaming one is split with
      ``datasets.distributed.split_dataset_by_node`` (whole shards when ``num_shards`` is a
      multiple of ``world_size``, else every ``world_size``-th row: every row on exactly one rank).
    - ``shuffle`` on a streaming dataset shuffles shards and a buffer of ``shuffle_buffer_size``
      rows with ``seed`` (the same on every rank, as ``split_dataset_by_node`` requires).
    - Call :func:`set_epoch` at the start of every epoch to reshuffle.

    Extra ``kwargs`` go to the DataLoader (``pin_memory``, ``persistent_workers``, ...).
    """
    import datasets
    from torch.utils.data import DataLoader, DistributedSampler

    rank, world_size = distributed_context(rank, world_size)
    if isinstance(dataset, datasets.IterableDataset):
        if shuffle:
            dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
        if world_size > 1:
            from datasets.distributed import split_dataset_by_node

            dataset = split_dataset_by_node(dataset, rank=rank, world_size=world_size)
        if transform is not None:
            dataset = apply_transform(dataset, transform, batch_size=batch_size)
        return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, num_workers=num_workers,
                          drop_last=drop_last, **kwargs)  # fmt: skip
    if transform is not None:
        dataset = apply_transform(dataset, transform, batch_size=batch_size)
    sampler = None
    if world_size > 1:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                     drop_last=drop_last)  # fmt: skip
    elif shuffle:
        import torch

        generator = torch.Generator()
        generator.manual_seed(seed)
        kwargs.setdefault("generator", generator)
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, num_workers=num_workers,
                      sampler=sampler, shuffle=shuffle if sampler is None else False, drop_last=drop_last,
                      **kwargs)  # fmt: skip


def set_epoch(loader: Any, epoch: int) -> None:
    """Reshuffle for ``epoch``: the DistributedSampler's ``set_epoch`` and/or the streaming
    dataset's ``set_epoch`` (no-op for what has neither)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    import datasets

    dataset = getattr(loader, "dataset", None)
    if isinstance(dataset, datasets.IterableDataset):
        dataset.set_epoch(epoch)


def collator_class(name: str) -> type:
    """The collator class a preset names (``Preset.collator``, e.g. ``"SmolVLMCollator"``); ValueError otherwise."""
    cls = globals().get(name)
    if name not in __all__ or not (isinstance(cls, type) and issubclass(cls, _Collator)):
        collators = sorted(n for n in __all__ if n.endswith("Collator"))
        raise ValueError(f"no collator {name!r} in owa_builders.training.batching (collators: {collators})")
    return cls
