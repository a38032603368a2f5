"""A tiny vision-language-action model of our own, for the learning check (random init, CPU-sized).

It reads what the collators give (``input_ids`` ``(B, L)`` and every frame of the batch as one
``(N, 3, S, S)`` tensor in the order of the image token runs, :class:`InternVL3Collator`'s layout)
and predicts the next token, like a VLM:

- text: token embedding + learned position embedding;
- frames: split into ``g x g`` patches (``g * g`` = image tokens per frame, ``S = g * patch``), each
  embedded (linear, + patch position, GELU, linear) and written into the positions of that frame's image tokens, in order (as a
  VLM scatters image features); when the image token count is not a square, every image position
  gets the frame's summary plus a learned slot embedding;
- every token after a frame also gets that frame's summary (a small MLP over its ``g x g``
  average-pooled pixels): the latest frame as context, so a small model can use the screen without
  first learning to find it by attention;
- a pre-norm causal transformer and a linear head over the vocabulary.

torch is imported by this module: import it only where torch is installed.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TinyVLA(nn.Module):
    """Next-token logits ``(B, L, vocab)`` from token ids and the batch's frames.

    ``image_token_id`` is the id repeated ``image_tokens`` times per frame (the dataset's image
    token); ``patch`` the patch side in pixels; ``max_len`` the longest sequence.
    """

    def __init__(
        self,
        vocab: int,
        image_token_id: int,
        image_tokens: int,
        *,
        dim: int = 64,
        layers: int = 2,
        heads: int = 4,
        patch: int = 4,
        max_len: int = 4096,
    ) -> None:
        super().__init__()
        if image_tokens < 1:
            raise ValueError(f"image_tokens must be >= 1, got {image_tokens}")
        self.image_token_id = int(image_token_id)
        self.image_tokens = int(image_tokens)
        side = math.isqrt(self.image_tokens)
        self.square = side * side == self.image_tokens
        self.grid = side if self.square else 4
        self.patch = int(patch)
        #: The frame side in pixels the model takes (frames are resized to ``(frame_size, frame_size)``).
        self.frame_size = self.grid * self.patch
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(max_len, dim)
        self.patch_embed = nn.Linear(3 * self.patch * self.patch, dim)
        self.vision = nn.Sequential(nn.GELU(), nn.Linear(dim, dim))
        self.patch_position = nn.Parameter(torch.zeros(self.grid * self.grid, dim))
        self.slot = nn.Parameter(torch.zeros(self.image_tokens, dim))
        self.summary = nn.Sequential(
            nn.Linear(3 * self.grid * self.grid, dim), nn.GELU(), nn.Linear(dim, dim)
        )
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        nn.init.normal_(self.patch_position, std=0.02)
        nn.init.normal_(self.slot, std=0.02)

    def encode_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, S, S)`` -> per image token ``(N, image_tokens, dim)`` and pooled ``(N, dim)``."""
        n, c, h, w = frames.shape
        if (h, w) != (self.frame_size, self.frame_size):
            raise ValueError(f"frames must be {self.frame_size}x{self.frame_size}, got {h}x{w}")
        g, p = self.grid, self.patch
        patches = frames.reshape(n, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(n, g * g, c * p * p)
        # position enters before the non-linearity, so the pooled embedding still says where things are
        features = self.vision(self.patch_embed(patches) + self.patch_position)
        # the frame's summary: a small MLP over its g x g average-pooled pixels (where things are, kept)
        pooled = self.summary(nn.functional.adaptive_avg_pool2d(frames, g).flatten(1))
        if self.square:
            return features, pooled
        return pooled[:, None, :] + self.slot, pooled

    def forward(self, input_ids: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        b, length = input_ids.shape
        x = self.embed(input_ids) + self.position(torch.arange(length, device=input_ids.device))
        is_image = input_ids == self.image_token_id
        n_image = int(is_image.sum())
        n_frames = 0 if frames is None else frames.shape[0]
        if n_image != n_frames * self.image_tokens:
            raise ValueError(
                f"{n_image} image token positions but {n_frames} frames x {self.image_tokens} tokens per frame"
            )
        if n_frames:
            assert frames is not None
            features, pooled = self.encode_frames(frames)
            x = x.masked_scatter(is_image[..., None], features.reshape(-1, x.shape[-1]).to(x.dtype))
            # the latest frame's pooled embedding on every position from its first image token on
            previous = torch.zeros_like(is_image)
            previous[:, 1:] = is_image[:, :-1]
            starts = is_image & ~previous  # first token of each image run (runs are whole frames)
            per_row_runs = starts.sum(dim=1)
            if (per_row_runs * self.image_tokens != is_image.sum(dim=1)).any():
                raise ValueError(f"image token runs are not {self.image_tokens} tokens long")
            seen = starts.long().cumsum(dim=1)  # frames started so far, per row
            offset = torch.cumsum(per_row_runs, dim=0) - per_row_runs  # first frame index of each row
            index = (offset[:, None] + seen - 1).clamp(min=0)
            context = pooled[index] * (seen > 0)[..., None]
            x = x + context
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=input_ids.device)
        x = self.blocks(x, mask=mask, is_causal=True)
        return self.head(self.norm(x))
