"""A small local base tokenizer for the built-in example, the tests and the benchmark.

There is no Hub access in the demo, the tests or CI, so the FSL stage's example uses a byte-level
BPE trained on the spot (well under a second) with the `tokenizers` library and saved as a
`transformers` tokenizer directory. Real use passes ``tokenizer_name`` = the model's tokenizer.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path

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
def example_tokenizer_json() -> str:
    """The trained tokenizer as a `tokenizers` JSON string (deterministic, cached per process)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

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


def write_example_tokenizer(path: str | Path, spec_json: str | None = None) -> Path:
    """Save the example base tokenizer (a ``PreTrainedTokenizerFast``) as a directory at ``path``."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(spec_json or example_tokenizer_json()),
        eos_token=EOS,
        pad_token=PAD,
    )
    out = Path(path)
    tokenizer.save_pretrained(out)
    return out
