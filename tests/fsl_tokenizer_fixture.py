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
import random
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<pad>"


def _training_lines(n: int = 400) -> list[str]:
    rng = random.Random(1234)
    words = ["the", "mouse", "moves", "key", "press", "release", "screen", "click", "scroll", "window"]
    lines = []
    for i in range(n):
        payload = {"x": rng.randint(-3000, 3000), "y": rng.randint(0, 2000), "vk": rng.randint(0, 255)}
        text = " ".join(rng.choice(words) for _ in range(6))
        event = {"topic": "mouse", "offset": rng.randint(0, 10**6), "payload": payload}
        lines.append(f"{json.dumps(event, separators=(',', ':'))} {text} {i}")
        lines.append(f"<{rng.randint(0, 9)}><VK_{rng.randint(0, 255)}> <img></img> {text.upper()}")
    return lines


@lru_cache(maxsize=1)
def _trained_json() -> str:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_lines(), trainer)
    return tok.to_str()


def make_local_tokenizer(tmp_path: Path, vocab_extras: Sequence[str] = ()) -> PreTrainedTokenizerFast:
    """A fresh copy of the local base tokenizer (saved under ``tmp_path / "base_tokenizer"``)."""
    spec = json.loads(_trained_json())
    vocab = spec["model"]["vocab"]
    for tok in vocab_extras:
        vocab.setdefault(tok, max(vocab.values()) + 1)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token=EOS, pad_token=PAD
    )
    out = Path(tmp_path) / "base_tokenizer"
    tokenizer.save_pretrained(out)
    return PreTrainedTokenizerFast.from_pretrained(out)
