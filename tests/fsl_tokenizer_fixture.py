"""A small local byte-level BPE tokenizer for the FSL tests (no Hub access).

``make_local_tokenizer(tmp_path)`` trains (once per process, well under a second) on a few
hundred generated lines, saves the result to ``tmp_path / "base_tokenizer"`` and returns a
fresh ``PreTrainedTokenizerFast`` loaded from there, so every call gives an independent,
identical copy. ``vocab_extras`` are put into the BPE model's vocabulary as *plain* tokens
(not added tokens): the byte-level pre-tokenizer then splits them in text, which is how a
real base tokenizer can "know" a token without keeping it whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from owa_builders.demo.tokenizer import EOS, PAD, example_tokenizer_json, write_example_tokenizer  # noqa: F401


def make_local_tokenizer(tmp_path: Path, vocab_extras: Sequence[str] = ()) -> PreTrainedTokenizerFast:
    """A fresh copy of the local base tokenizer (saved under ``tmp_path / "base_tokenizer"``)."""
    spec = json.loads(example_tokenizer_json())
    vocab = spec["model"]["vocab"]
    for tok in vocab_extras:
        vocab.setdefault(tok, max(vocab.values()) + 1)
    out = write_example_tokenizer(Path(tmp_path) / "base_tokenizer", json.dumps(spec))
    return PreTrainedTokenizerFast.from_pretrained(out)
