"""Training-time transforms for every stage's dataset: rows -> what a training loop wants.

Use them with ``Dataset.set_transform`` / ``with_transform`` (map-style) or
:func:`apply_transform` (map-style and streaming alike)::

    ds = load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=ROOT, ...)["train"]
    ds.set_transform(FslTransform(ROOT, tokenizer_dir_of(ds)))
    ds[0]  # {"input_ids": (L,), "attention_mask": (L,), "labels": (L,), "pixel_values": (n, 3, H, W), ...}

Each transform is a small picklable class (no lambdas, no open files in its state): a
``DataLoader(num_workers>0)`` gets a copy per worker, whose
:class:`~owa_builders.training.frames.FrameLoader` (pickled as its configuration, fork-aware) opens its
own videos in that worker on first use. A transform is
called with a *batch* (column -> list of values) and returns a batch; frame references of the
whole batch go to the loader in one call (batched per video) and come back grouped per row.

Frames (``output``, ``image_processor``):

- ``image_processor`` given (a callable taking one row's list of frames -- PIL images, arrays
  or tensors, as the loader gives them with ``output`` -- and returning an array/tensor of shape
  ``(n, 3, H, W)``, or a mapping with ``"pixel_values"``, e.g. a Hugging Face image processor
  wrapped by :class:`HFImageProcessor`): rows get ``pixel_values``;
- else with ``output="torch"``: rows get ``pixel_values`` from :class:`ToTensor` (float32 in
  [0, 1], CHW);
- else (``output="pil"``/``"numpy"``, or ``image_processor=False``): rows get the decoded frames
  themselves (``frames``, or ``frame`` for event rows).

Token ids (``input_ids``, ``attention_mask``, ``labels``) are ``torch.long`` tensors with
``output="torch"`` and plain lists otherwise. ``labels`` are ``input_ids`` with ``-100`` at
padding (``attention_mask == 0``) and at every id of the image expansion (prefix, image token,
suffix: what the encoders' ``<IMAGE>`` placeholder became): a model is never trained to predict
image tokens or padding. Everything else is a target -- actions and event text, a screen event's
own tokens (``<EVENT_START><SCREEN>``, its time, ``<EVENT_END>``) included. The labels are not
shifted (``transformers`` models shift them); :mod:`owa_builders.training.nanovlm` shifts the same
labels by one, as nanoVLM expects.

``resize`` is an int (square) or ``(width, height)`` (PIL order, as the FrameLoader): frames are
scaled while decoding. Frame URIs are relative to ``media_root`` (the ``data_dir`` the dataset
was built from; a local folder or any fsspec URL) and confined to it: an absolute path, a URL or
a ``..`` path in a row is a ``FrameLoadError`` naming the uri and the row, unless
``allow_outside_root=True`` (trusted datasets only; see ``owa_builders.training.frames.source``).
With ``on_missing="placeholder"``, a frame that cannot be loaded is a black frame of the video's
size (of ``resize`` when given; ``placeholder_size``, an int or ``(width, height)``, for a video
that cannot be opened).

torch is imported only when a transform runs with ``output="torch"`` (or :class:`ToTensor` is
used); ``import owa_builders`` never imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson

from owa_event.events import Event, screen_ref

if TYPE_CHECKING:  # pragma: no cover
    from owa_fsl.encoders.base import EventEncoder
    from owa_fsl.tokenizer import FslTokens

Output = Literal["torch", "numpy", "pil"]
OUTPUTS: tuple[str, ...] = ("torch", "numpy", "pil")
#: The label value a loss ignores (``torch.nn.CrossEntropyLoss(ignore_index=-100)``, HF models).
IGNORE_INDEX = -100

__all__ = [
    "IGNORE_INDEX",
    "BinnedTransform",
    "EventTransform",
    "FslTransform",
    "HFImageProcessor",
    "ToTensor",
    "apply_transform",
    "event_from_mcap_message",
    "fsl_labels",
    "tokenizer_dir_of",
]


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------
def event_from_mcap_message(message: bytes | str | Mapping[str, Any]) -> Event:
    """An :class:`~owa_event.events.Event` from a row's ``McapMessage`` JSON (``Event.mcap_message_json``)."""
    if isinstance(message, Mapping):
        m = message
    else:
        m = orjson.loads(message)
    payload = m["message"]
    if isinstance(payload, (bytes, bytearray)):
        data = bytes(payload)
    elif isinstance(payload, str):
        data = payload.encode("utf-8")
    else:  # already parsed
        data = orjson.dumps(payload)
    fields = orjson.loads(data)
    return Event(m["topic"], int(m["timestamp"]), m.get("message_type", ""), data, fields)


def tokenizer_dir_of(dataset: Any) -> str:
    """The expanded tokenizer saved beside a prepared FSL dataset (``<cache dir>/tokenizer``).

    ``dataset`` is a map-style ``Dataset`` from ``load_dataset("owa_builders/fsl", ...)`` (or a
    ``DatasetDict``: its first split). Streaming datasets have no saved tokenizer: use the dir
    given by ``owa-builders build fsl ... -o DIR`` (``DIR/tokenizer``) or ``FslTokens``.
    """
    if isinstance(dataset, Mapping):  # DatasetDict
        dataset = next(iter(dataset.values()))
    from owa_fsl.tokenizer import TOKENIZER_DIR

    files = getattr(dataset, "cache_files", None) or []
    for entry in files:
        path = os.path.join(os.path.dirname(entry["filename"]), TOKENIZER_DIR)
        if os.path.isdir(path):
            return path
    raise ValueError(
        "no saved tokenizer beside this dataset's cache files (streaming, or not an owa_builders/fsl "
        "dataset); pass the tokenizer directory or an FslTokens"
    )


def _load_tokens(tokens: str | os.PathLike[str] | FslTokens) -> FslTokens:
    from owa_fsl.tokenizer import FslTokens

    if isinstance(tokens, FslTokens):
        return tokens
    if isinstance(tokens, (str, os.PathLike)):
        return FslTokens.load(os.fspath(tokens))
    raise TypeError(f"tokens must be a tokenizer directory or an FslTokens, got {type(tokens).__name__}")


def _encoder_of(encoder: str | EventEncoder | None, tokens: FslTokens | None) -> EventEncoder:
    from owa_fsl.encoders import get_encoder
    from owa_fsl.encoders.base import EventEncoder

    if encoder is None:
        return tokens.encoder if tokens is not None else get_encoder("factorized")
    if isinstance(encoder, str):
        encoder = get_encoder(encoder)
    if not isinstance(encoder, EventEncoder):
        raise TypeError(f"encoder must be an encoder name or an EventEncoder, got {type(encoder).__name__}")
    if tokens is not None and encoder != tokens.encoder:
        raise ValueError(f"encoder {encoder!r} differs from the tokenizer's encoder {tokens.encoder!r}")
    return encoder


def fsl_labels(input_ids: Any, attention_mask: Any, image_token_ids: Iterable[int]) -> Any:
    """``input_ids`` with :data:`IGNORE_INDEX` where ``attention_mask == 0`` or the id is an image id.

    Works on one sequence or a batch, as lists, numpy arrays or torch tensors (same type back;
    a tensor comes back as ``torch.long``).
    """
    image = frozenset(int(i) for i in image_token_ids)
    if type(input_ids).__module__.startswith("torch"):
        import torch

        ids = input_ids.long()
        mask = torch.as_tensor(attention_mask, device=ids.device) == 0
        if image:
            mask |= torch.isin(ids, torch.tensor(sorted(image), dtype=ids.dtype, device=ids.device))
        return ids.masked_fill(mask, IGNORE_INDEX)
    if type(input_ids).__module__ == "numpy":
        import numpy as np

        ids = input_ids.astype(np.int64)
        mask = (np.asarray(attention_mask) == 0) | np.isin(ids, sorted(image))
        return np.where(mask, IGNORE_INDEX, ids)
    if (
        input_ids
        and isinstance(input_ids[0], (list, tuple))
        or (
            input_ids
            and type(input_ids[0]).__module__ in ("numpy", "torch")
            and getattr(input_ids[0], "ndim", 0) > 0
        )
    ):
        return [fsl_labels(i, m, image) for i, m in zip(input_ids, attention_mask)]
    return [IGNORE_INDEX if (not m or int(i) in image) else int(i) for i, m in zip(input_ids, attention_mask)]


# ------------------------------------------------------------------------------------------
# Image processors
# ------------------------------------------------------------------------------------------
def _size_hw(resize: Any) -> tuple[int, int] | None:
    """``resize`` as (height, width): an int (square) or a ``(width, height)`` pair (PIL order,
    as :class:`~owa_builders.training.frames.FrameLoader`)."""
    if resize is None:
        return None
    if isinstance(resize, int) and not isinstance(resize, bool):
        return resize, resize
    if isinstance(resize, Sequence) and len(resize) == 2 and all(isinstance(v, int) for v in resize):
        width, height = resize
        return int(height), int(width)
    raise ValueError(f"resize must be an int or a (width, height) pair, got {resize!r}")


def _to_chw_float(frame: Any) -> Any:
    """One frame (PIL image, HWC/CHW array or tensor, uint8 or float) -> float32 CHW tensor in [0, 1]."""
    import numpy as np
    import torch

    if hasattr(frame, "convert") and hasattr(frame, "size") and not hasattr(frame, "shape"):  # PIL
        frame = np.asarray(frame.convert("RGB"))
    # arrays (and PIL images) are HWC unless that cannot be; tensors are CHW unless that cannot be
    channels_last = not isinstance(frame, torch.Tensor)
    if isinstance(frame, np.ndarray):
        frame = np.ascontiguousarray(frame)
        if not frame.flags.writeable:  # e.g. np.asarray(PIL image): torch wants a writable buffer
            frame = frame.copy()
    t = torch.as_tensor(frame)
    if t.ndim == 2:
        t = t.unsqueeze(0)
        channels_last = False
    if t.ndim != 3:
        raise ValueError(f"a frame must have 2 or 3 dimensions, got shape {tuple(t.shape)}")
    last, first = t.shape[-1] in (1, 3, 4), t.shape[0] in (1, 3, 4)
    if not (last or first):
        raise ValueError(f"cannot tell the channel axis of a frame of shape {tuple(t.shape)}")
    if last and (channels_last or not first):
        t = t.permute(2, 0, 1)
    if t.shape[0] == 1:
        t = t.expand(3, *t.shape[1:])
    elif t.shape[0] == 4:
        t = t[:3]
    if t.dtype == torch.uint8:
        return t.to(torch.float32).div_(255.0)
    return t.to(torch.float32)


class ToTensor:
    """The default image processor: frames -> one float32 tensor ``(n, 3, H, W)`` in [0, 1].

    Accepts PIL images, numpy arrays or tensors (HWC or CHW, uint8 or float in [0, 1]).
    ``resize`` (an int or ``(width, height)``) resizes with antialiased bilinear interpolation;
    without it every frame must have the same size. Zero frames give ``(0, 3, H, W)`` with the
    resize size, or ``(0, 3, 0, 0)``.
    """

    def __init__(self, resize: int | tuple[int, int] | None = None) -> None:
        self.resize = resize
        self._hw = _size_hw(resize)

    def __repr__(self) -> str:
        return f"ToTensor(resize={self.resize!r})"

    def __call__(self, frames: Sequence[Any]) -> Any:
        import torch

        tensors = [_to_chw_float(f) for f in frames]
        if self._hw is not None:
            import torch.nn.functional as F

            tensors = [
                t if tuple(t.shape[1:]) == self._hw else
                F.interpolate(t[None], size=self._hw, mode="bilinear", align_corners=False, antialias=True)[0].clamp_(0, 1)
                for t in tensors
            ]  # fmt: skip
        if not tensors:
            h, w = self._hw or (0, 0)
            return torch.zeros((0, 3, h, w), dtype=torch.float32)
        sizes = {tuple(t.shape) for t in tensors}
        if len(sizes) > 1:
            raise ValueError(f"frames of different sizes {sorted(sizes)}: pass resize= to stack them")
        return torch.stack(tensors)


class HFImageProcessor:
    """Adapt a Hugging Face image processor (``AutoImageProcessor.from_pretrained(...)``) to the
    ``image_processor`` hook: ``processor(frames, return_tensors="pt", **kwargs)["pixel_values"]``.

    Picklable when the processor is (HF image processors are). Models whose processor splits
    an image into tiles/patches give more than one ``(3, H, W)`` entry per frame; the FSL token
    layouts of this package assume one entry per frame (e.g. ``do_image_splitting=False``).
    """

    def __init__(self, processor: Any, **kwargs: Any) -> None:
        self.processor = processor
        self.kwargs = kwargs

    def __call__(self, frames: Sequence[Any]) -> Any:
        out = self.processor(list(frames), return_tensors="pt", **self.kwargs)
        pv = out["pixel_values"] if isinstance(out, Mapping) or hasattr(out, "keys") else out
        if getattr(pv, "ndim", 0) == 5 and pv.shape[0] == 1:  # (1, n, 3, H, W): one "sample" of n images
            pv = pv[0]
        return pv


# ------------------------------------------------------------------------------------------
# The shared frame-loading part
# ------------------------------------------------------------------------------------------
class _FrameTransform:
    """Frames of rows: one :class:`~owa_builders.training.frames.FrameLoader`, then pixel values or frames.

    The loader is built here, from the arguments (so they are validated at construction); it
    pickles as its configuration only and opens videos lazily in each process, so a pickled
    transform (spawned ``DataLoader`` workers) carries no open video, and a forked worker's copy
    starts with no open video of its parent (the loader's cache is fork-aware).
    """

    #: Columns passed through unchanged by default (cheap metadata).
    KEEP: tuple[str, ...] = ()

    def __init__(
        self,
        media_root: str | os.PathLike[str],
        *,
        output: Output = "torch",
        resize: Any = None,
        image_processor: Callable[[list[Any]], Any] | None | Literal[False] = None,
        max_open_videos: int = 4,
        on_missing: Literal["error", "placeholder"] = "error",
        storage_options: Mapping[str, Any] | None = None,
        keep_columns: Sequence[str] | None = None,
        allow_outside_root: bool = False,
        placeholder_size: Any = None,
    ) -> None:
        from .frames import FrameLoader

        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if image_processor is not None and image_processor is not False and not callable(image_processor):
            raise TypeError(
                f"image_processor must be callable, None or False, got {type(image_processor).__name__}"
            )
        hw = _size_hw(resize)  # an int or (width, height); the loader takes (width, height)
        placeholder_hw = _size_hw(placeholder_size)
        self.output = output
        self.image_processor = image_processor
        self.keep_columns = tuple(self.KEEP if keep_columns is None else keep_columns)
        #: This transform's frame loader (its videos are opened on first use, in each process).
        self.loader = FrameLoader(
            media_root,
            output=output,
            resize=(hw[1], hw[0]) if hw is not None else None,
            max_open_videos=max_open_videos,
            on_missing=on_missing,
            storage_options=storage_options,
            allow_outside_root=allow_outside_root,
            placeholder_size=(placeholder_hw[1], placeholder_hw[0]) if placeholder_hw is not None else None,
            # a training process keeps each row's frames until its batch is built: without this, glibc
            # serves every kept frame with fresh pages (devtools/bench_train: ~2x fewer frames/s at 1080p)
            tune_allocator=True,
        )

    @property
    def media_root(self) -> str:
        return self.loader.media_root

    @property
    def resize(self) -> tuple[int, int] | None:
        """``(width, height)`` frames are scaled to while decoding, or None."""
        return self.loader.resize

    @property
    def returns_pixel_values(self) -> bool:
        """Whether rows get ``pixel_values`` (else the decoded frames)."""
        if self.image_processor is False:
            return False
        return self.image_processor is not None or self.output == "torch"

    def _processor(self) -> Callable[[list[Any]], Any]:
        if self.image_processor is None:
            proc = getattr(self, "_default_processor", None)
            if proc is None:
                proc = self._default_processor = ToTensor()  # frames are already resized by the loader
            return proc
        return self.image_processor  # type: ignore[return-value]

    def _load_groups(
        self, groups: Sequence[Sequence[Any]], batch: Mapping[str, Sequence[Any]] | None = None
    ) -> list[list[Any]]:
        """Frames for each group of refs (one group per row): one loader call for all of them
        (batched per video). A :class:`FrameLoadError` names the row of ``batch`` it came from."""
        from .frames import FrameLoadError

        flat = [ref for group in groups for ref in group]
        try:
            frames = list(self.loader.load(flat)) if flat else []
        except FrameLoadError as e:
            if e.ref_index is None:
                raise
            row, end = 0, len(groups[0])
            while e.ref_index >= end:
                row += 1
                end += len(groups[row])
            raise e.in_row(_row_label(batch, row)) from e
        if len(frames) != len(flat):
            raise RuntimeError(f"FrameLoader returned {len(frames)} frames for {len(flat)} references")
        out, i = [], 0
        for group in groups:
            out.append(frames[i : i + len(group)])
            i += len(group)
        return out

    def _pixel_values(self, frames: list[Any]) -> Any:
        """One row's frames through the image processor (tensor with ``output="torch"``)."""
        if not frames:
            return self._empty_pixels()
        pv = self._processor()(frames)
        if isinstance(pv, Mapping) or (hasattr(pv, "keys") and "pixel_values" in pv.keys()):
            pv = pv["pixel_values"]
        if self.output == "torch":
            import torch

            pv = torch.as_tensor(pv)
        return pv

    def _empty_pixels(self) -> Any:
        if self.output == "torch":
            import torch

            hw = _size_hw(self.resize) or (0, 0)
            return torch.zeros((0, 3, *hw), dtype=torch.float32)
        import numpy as np

        hw = _size_hw(self.resize) or (0, 0)
        return np.zeros((0, 3, *hw), dtype=np.float32)

    def _frames_out(
        self, groups: Sequence[Sequence[Any]], batch: Mapping[str, Sequence[Any]] | None = None
    ) -> tuple[str, list[Any]]:
        """``("pixel_values", per-row pixel values)`` or ``("frames", per-row frame lists)``."""
        frames = self._load_groups(groups, batch)
        if self.returns_pixel_values:
            return "pixel_values", [self._pixel_values(f) for f in frames]
        return "frames", frames

    def _keep(self, batch: Mapping[str, Sequence[Any]], out: dict[str, Any]) -> dict[str, Any]:
        for col in self.keep_columns:
            if col in batch and col not in out:
                out[col] = list(batch[col])
        return out

    def _ids_out(self, rows: list[list[int]], dtype: str = "long") -> Any:
        """Token id rows as a (B, L) tensor (equal lengths) or a list of 1-D tensors, or lists."""
        if self.output != "torch":
            return [list(map(int, r)) for r in rows]
        import torch

        if rows and len({len(r) for r in rows}) == 1:
            return torch.tensor(rows, dtype=torch.long)
        return [torch.tensor(r, dtype=torch.long) for r in rows]

    def _repr_args(self) -> str:
        proc = "False" if self.image_processor is False else repr(self.image_processor)
        return f"{self.media_root!r}, output={self.output!r}, resize={self.resize!r}, image_processor={proc}"


#: Columns that identify a row in error messages, when the batch has them.
_ROW_KEYS = ("episode_path", "interval_idx", "bin_idx", "timestamp_ns")


def _row_label(batch: Mapping[str, Sequence[Any]] | None, row: int) -> str:
    """``"row 3 of the batch (episode_path='a.mcap', interval_idx=0)"``."""
    ids = []
    for key in _ROW_KEYS:
        values = batch.get(key) if batch is not None else None
        if values is not None and row < len(values):
            ids.append(f"{key}={values[row]!r}")
    return f"row {row} of the batch" + (f" ({', '.join(ids)})" if ids else "")


def _batch_size(batch: Mapping[str, Sequence[Any]]) -> int:
    for values in batch.values():
        return len(values)
    return 0


# ------------------------------------------------------------------------------------------
# FSL rows
# ------------------------------------------------------------------------------------------
class FslTransform(_FrameTransform):
    """FSL rows -> ``input_ids``, ``attention_mask``, ``labels``, ``num_frames`` and
    ``pixel_values`` (or ``frames``) -- one entry per row.

    ``tokens`` is the expanded tokenizer directory (:func:`tokenizer_dir_of`, or
    ``DIR/tokenizer`` of ``owa-builders build fsl -o DIR``) or an :class:`~owa_fsl.stage.FslTokens`;
    only its image token ids (for the labels) and pad id are kept, so the transform pickles in a
    few bytes. ``media_root`` is the root the FSL dataset was built from (the ``data_dir``):
    frame URIs in the rows are relative to it.

    Per row, with ``output="torch"``: ``input_ids``/``attention_mask``/``labels`` are ``(L,)``
    long tensors (a batch of equal-length rows is one ``(B, L)`` tensor), ``pixel_values`` is
    ``(n_frames, 3, H, W)`` in the row's frame order (the order of its image token runs), and
    ``num_frames`` the number of frames. ``keep_columns`` (default: ``episode_path``,
    ``interval_idx``, ``base_ns``, ``n_events``) are passed through.
    """

    KEEP = ("episode_path", "interval_idx", "base_ns", "n_events")

    def __init__(
        self,
        media_root: str | os.PathLike[str],
        tokens: str | os.PathLike[str] | FslTokens,
        *,
        output: Output = "torch",
        resize: Any = None,
        image_processor: Callable[[list[Any]], Any] | None | Literal[False] = None,
        max_open_videos: int = 4,
        on_missing: Literal["error", "placeholder"] = "error",
        storage_options: Mapping[str, Any] | None = None,
        keep_columns: Sequence[str] | None = None,
        allow_outside_root: bool = False,
        placeholder_size: Any = None,
    ) -> None:
        super().__init__(
            media_root, output=output, resize=resize, image_processor=image_processor,
            max_open_videos=max_open_videos, on_missing=on_missing, storage_options=storage_options,
            keep_columns=keep_columns, allow_outside_root=allow_outside_root,
            placeholder_size=placeholder_size,
        )  # fmt: skip
        loaded = _load_tokens(tokens)
        self.tokens_source = os.fspath(tokens) if isinstance(tokens, (str, os.PathLike)) else None
        #: Every distinct id of one frame's expansion (prefix, image token, suffix).
        self.image_token_ids: tuple[int, ...] = tuple(dict.fromkeys(int(i) for i in loaded.table.image_ids))
        self.image_token_run: tuple[int, ...] = tuple(int(i) for i in loaded.table.image_ids)
        self.pad_id: int = int(loaded.pad_id)

    def __repr__(self) -> str:
        return f"FslTransform({self._repr_args()}, tokens={self.tokens_source!r})"

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        ids_rows = [list(r) for r in batch["input_ids"]]
        mask_rows = [list(r) for r in batch["attention_mask"]]
        label_rows = [fsl_labels(i, m, self.image_token_ids) for i, m in zip(ids_rows, mask_rows)]
        groups = [[(img["uri"], img["pts_ns"]) for img in (images or [])] for images in batch["images"]]
        out: dict[str, Any] = {
            "input_ids": self._ids_out(ids_rows),
            "attention_mask": self._ids_out(mask_rows),
            "labels": self._ids_out(label_rows),
        }
        key, values = self._frames_out(groups, batch)
        out[key] = values
        out["num_frames"] = [len(g) for g in groups]
        return self._keep(batch, out)


# ------------------------------------------------------------------------------------------
# Event and binned rows
# ------------------------------------------------------------------------------------------
class _TextTransform(_FrameTransform):
    """Encoding of events as text (encoder tokens joined) and, with ``tokens``, as token ids."""

    def __init__(
        self,
        media_root: str | os.PathLike[str],
        *,
        encoder: str | EventEncoder | None = None,
        tokens: str | os.PathLike[str] | FslTokens | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(media_root, **kwargs)
        loaded = _load_tokens(tokens) if tokens is not None else None
        self.encoder = _encoder_of(encoder, loaded)
        # A directory is re-loaded lazily in each process (small pickles); an object is kept.
        self._tokens_dir = os.fspath(tokens) if isinstance(tokens, (str, os.PathLike)) else None
        self._tokens = loaded

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if state.get("_tokens_dir"):
            state["_tokens"] = None
        return state

    @property
    def tokens(self) -> FslTokens | None:
        if self._tokens is None and self._tokens_dir:
            self._tokens = _load_tokens(self._tokens_dir)
        return self._tokens

    def _encode(self, events: Sequence[Event], base_ns: int) -> list[str]:
        out: list[str] = []
        for e in events:
            if self.encoder.supports(e.topic):
                out.extend(self.encoder.encode(e, base_ns))
        return out

    def _text_and_ids(self, token_rows: list[list[str]], out: dict[str, Any]) -> None:
        out["text"] = ["".join(t) for t in token_rows]
        tokens = self.tokens
        if tokens is not None:
            ids = [tokens.table.ids(t) for t in token_rows]
            if self.output == "torch":
                import torch

                out["input_ids"] = [torch.tensor(r, dtype=torch.long) for r in ids]
            else:
                out["input_ids"] = ids


class EventTransform(_TextTransform):
    """Event rows -> ``text`` (the event's encoder tokens joined, its time relative to its own
    timestamp, so the offset digits are zero), ``input_ids`` (with ``tokens``: the ids of those
    tokens, ``<IMAGE>`` expanded) and, for screen rows, the decoded frame: ``pixel_values``
    ``(3, H, W)`` or ``frame`` (None for other rows).

    Topics the encoder does not support (window, keyboard/state, ...) get ``text == ""``.
    ``encoder`` is a name (``factorized``, ``hierarchical``, ``json``) or an encoder; default: the
    tokens' encoder, else ``factorized``. Passed through by default: ``episode_path``,
    ``interval_idx``, ``topic``, ``timestamp_ns``.
    """

    KEEP = ("episode_path", "interval_idx", "topic", "timestamp_ns")

    def __repr__(self) -> str:
        return f"EventTransform({self._repr_args()}, encoder={self.encoder!r})"

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        events = [event_from_mcap_message(m) for m in batch["mcap_message"]]
        out: dict[str, Any] = {}
        self._text_and_ids([self._encode([e], e.timestamp_ns) for e in events], out)
        refs = [screen_ref(e) for e in events]
        key, values = self._frames_out([[r] if r is not None else [] for r in refs], batch)
        if key == "pixel_values":
            out["pixel_values"] = [v[0] if r is not None else None for v, r in zip(values, refs)]
        else:
            out["frame"] = [v[0] if v else None for v in values]
        return self._keep(batch, out)


class BinnedTransform(_TextTransform):
    """Binned rows -> the state frames decoded (``pixel_values`` ``(n, 3, H, W)`` or ``frames``;
    ``num_frames``), the actions as ``text`` (encoder tokens joined; times relative to
    ``base_ns``) and, with ``tokens``, ``input_ids``.

    ``base_ns`` is the bin's ``timestamp_ns`` (its start: every action of a bin is at or after
    it), or the earliest action when a row has an earlier one. Only screen state events give
    frames; actions of topics the encoder does not support are skipped. Passed through by
    default: ``episode_path``, ``bin_idx``, ``timestamp_ns``.
    """

    KEEP = ("episode_path", "interval_idx", "bin_idx", "timestamp_ns")

    def __repr__(self) -> str:
        return f"BinnedTransform({self._repr_args()}, encoder={self.encoder!r})"

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        times = batch.get("timestamp_ns") or [None] * _batch_size(batch)
        token_rows, bases, groups = [], [], []
        for state, actions, t in zip(batch["state"], batch["actions"], times):
            acts = [event_from_mcap_message(m) for m in actions or []]
            starts = [a.timestamp_ns for a in acts] + ([int(t)] if t is not None else [])
            base = min(starts) if starts else 0
            bases.append(base)
            token_rows.append(self._encode(acts, base))
            refs = [screen_ref(event_from_mcap_message(m)) for m in state or []]
            groups.append([r for r in refs if r is not None])
        out: dict[str, Any] = {}
        key, values = self._frames_out(groups, batch)
        out[key] = values
        out["num_frames"] = [len(g) for g in groups]
        self._text_and_ids(token_rows, out)
        out["base_ns"] = bases
        return self._keep(batch, out)


# ------------------------------------------------------------------------------------------
# Map-style and streaming alike
# ------------------------------------------------------------------------------------------
def apply_transform(dataset: Any, transform: Callable[[Any], dict[str, Any]], *, batch_size: int = 8) -> Any:
    """``dataset`` with ``transform`` applied on access, for map-style and streaming datasets.

    A ``Dataset`` gets ``with_transform(transform)`` (lazy; ``DataLoader`` batches call it once per
    batch); an ``IterableDataset`` gets ``map(transform, batched=True, batch_size=batch_size)``
    with its input columns removed (the transform passes its ``keep_columns`` through), so each
    ``DataLoader`` worker transforms the shards it reads. A ``DatasetDict`` / ``IterableDatasetDict``
    gets it on every split.
    """
    import datasets

    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return type(dataset)(
            {k: apply_transform(v, transform, batch_size=batch_size) for k, v in dataset.items()}
        )
    if isinstance(dataset, datasets.Dataset):
        return dataset.with_transform(transform)
    if isinstance(dataset, datasets.IterableDataset):
        columns = dataset.column_names
        return dataset.map(transform, batched=True, batch_size=batch_size, remove_columns=columns)
    raise TypeError(f"expected a datasets Dataset or IterableDataset, got {type(dataset).__name__}")
