"""The tokenizers-only expansion (owa_fsl/fast_tokenizer.py) against today's transformers path.

Every base tokenizer is built here with the real ``tokenizers`` library (no Hub): the demo byte-level BPE,
a BPE with a prefix-space (Metaspace) pre-tokenizer, one whose vocabulary already holds some image tokens
(plain and added), and a lower-casing WordPiece saved by ``tokenizers`` alone (no post-processor) with a
hand-written config. For each, the folder written without transformers must load in transformers
(``AutoTokenizer`` and ``PreTrainedTokenizerFast``) as the very tokenizer ``save_pretrained`` wrote.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from owa_builders.demo.tokenizer import (
    EOS,
    PAD,
    _training_lines,
    example_tokenizer_json,
    write_example_tokenizer,
)
from owa_fsl.config import FslConfig
from owa_fsl.encoders import get_encoder
from owa_fsl.errors import TokenizerError
from owa_fsl.fast_tokenizer import FastTokenizer, folder_problem
from owa_fsl.stage import FslStage
from owa_fsl.tokenizer import (
    FSL_META,
    GENERIC_FAST_CLASSES,
    IMAGE_PRESETS,
    TOKENIZER_DIR,
    FslTokens,
    load_base_tokenizer,
    required_tokens,
)

SAMPLES = [
    "the mouse moves",
    "  Leading spaces and <img>inline</img> tags",
    "<EVENT_START><IMG_CONTEXT><IMG_CONTEXT></img> after",
    "Unicode: é漢字 🙂 <image><fake_token_around_image>",
    "<|endoftext|><pad> trailing ",
]


def _save(tokenizer: Tokenizer, folder: Path, **special: Any) -> Path:
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special).save_pretrained(folder)
    return folder


def demo_base(folder: Path) -> Path:
    return write_example_tokenizer(folder)


def prefix_space_base(folder: Path) -> Path:
    """A BPE whose pre-tokenizer prepends a space (Metaspace), with unk/bos/eos and no pad token."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    tok.train_from_iterator(_training_lines(), trainer)
    return _save(tok, folder, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def image_known_base(folder: Path) -> Path:
    """The demo BPE with ``<img>``/``</img>`` as plain vocabulary tokens and ``<image>`` an added special token."""
    spec = json.loads(example_tokenizer_json())
    vocab = spec["model"]["vocab"]
    for tok in ("<img>", "</img>"):
        vocab.setdefault(tok, max(vocab.values()) + 1)
    tok = Tokenizer.from_str(json.dumps(spec))
    return _save(tok, folder, eos_token=EOS, pad_token=PAD, extra_special_tokens=["<image>"])


def bare_wordpiece_base(folder: Path) -> Path:
    """A lower-casing WordPiece saved by ``tokenizers`` alone (no post-processor), with a hand-written config."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(_training_lines(), trainers.WordPieceTrainer(vocab_size=500, special_tokens=specials,
                                                                          show_progress=False))  # fmt: skip
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "pad_token": "[PAD]",
              "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]", "model_max_length": 512}  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def v4_config_base(folder: Path) -> Path:
    """The demo BPE with a config as older transformers wrote it: ``added_tokens_decoder``, legacy
    ``additional_special_tokens``, a private ``name_or_path`` and a chat template."""
    write_example_tokenizer(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
    config.update(
        added_tokens_decoder={"0": {"content": EOS, **flags}, "1": {"content": PAD, **flags}},
        additional_special_tokens=[PAD],
        name_or_path="/home/someone/private/tokenizer",
        chat_template="{% for m in messages %}{{ m['content'] }}{{ eos_token }}{% endfor %}",
        clean_up_tokenization_spaces=False,
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


BASES: dict[str, Callable[[Path], Path]] = {
    "v4_config": v4_config_base,
    "demo": demo_base,
    "prefix_space": prefix_space_base,
    "image_known": image_known_base,
    "bare_wordpiece": bare_wordpiece_base,
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fast-bases")
    return {name: str(make(root / name)) for name, make in BASES.items()}


def both_ways(base: str, preset: str, out: Path, encoder: str = "factorized") -> tuple[FslTokens, FslTokens]:
    """(tokenizers-only, transformers) expansions of ``base``, saved in ``out/fast`` and ``out/slow``."""
    enc, image = get_encoder(encoder), IMAGE_PRESETS[preset]
    fast = FslTokens.build(base, enc, image)
    assert isinstance(fast.expanded, FastTokenizer), folder_problem(base, GENERIC_FAST_CLASSES)
    slow = FslTokens.build(load_base_tokenizer(base), enc, image)
    assert not isinstance(slow.expanded, FastTokenizer)
    fast.save(out / "fast")
    slow.save(out / "slow")
    return fast, slow


def loaded_facts(tokenizer: Any) -> dict[str, Any]:
    """What a trainer sees of a tokenizer: size, vocab, added tokens with flags, special tokens, the backend
    (serialized) and the encodings and decodings of :data:`SAMPLES`."""
    return {
        "len": len(tokenizer),
        "vocab": tokenizer.get_vocab(),
        "added": {
            i: (t.content, t.special, t.normalized, t.lstrip, t.rstrip, t.single_word)
            for i, t in tokenizer.added_tokens_decoder.items()
        },  # fmt: skip
        "special": tokenizer.special_tokens_map,
        "all_special": tokenizer.all_special_tokens,
        "ids": [
            tokenizer.pad_token_id,
            tokenizer.eos_token_id,
            tokenizer.bos_token_id,
            tokenizer.unk_token_id,
        ],
        "backend": tokenizer.backend_tokenizer.to_str(),
        "encode": [tokenizer(s)["input_ids"] for s in SAMPLES],
        "plain": tokenizer(SAMPLES, add_special_tokens=False)["input_ids"],
        "decode": [tokenizer.decode(tokenizer(s)["input_ids"]) for s in SAMPLES],
        "chat_template": tokenizer.chat_template,
    }


@pytest.mark.parametrize("preset", sorted(IMAGE_PRESETS))
@pytest.mark.parametrize("base_name", sorted(BASES))
def test_saved_folder_loads_as_the_transformers_one(bases: dict, base_name: str, preset: str,
                                                    tmp_path: Path) -> None:  # fmt: skip
    fast, slow = both_ways(bases[base_name], preset, tmp_path)
    assert fast.table.token_to_id == slow.table.token_to_id
    assert fast.table.image_ids == slow.table.image_ids
    assert fast.table.tokenizer_size == slow.table.tokenizer_size == len(slow.tokenizer)
    assert fast.pad_id == slow.pad_id
    assert fast.describe() == slow.describe()  # FSL_META, vocab_hash included
    assert (tmp_path / "fast" / FSL_META).read_text() == (tmp_path / "slow" / FSL_META).read_text()
    for load in (PreTrainedTokenizerFast.from_pretrained, AutoTokenizer.from_pretrained):
        assert loaded_facts(load(str(tmp_path / "fast"))) == loaded_facts(load(str(tmp_path / "slow")))
    # the expanded tokenizer itself (its backend is transformers' one), and the loaded folders' tables
    assert fast.expanded.backend.to_str() == slow.tokenizer.backend_tokenizer.to_str()
    assert loaded_facts(fast.tokenizer) == loaded_facts(slow.tokenizer)
    again = FslTokens.load(tmp_path / "fast")
    assert again.table.token_to_id == slow.table.token_to_id and again.vocab_hash == slow.vocab_hash


def test_saved_tokenizer_json_is_the_save_pretrained_bytes(bases: dict, tmp_path: Path) -> None:
    both_ways(bases["demo"], "internvl3", tmp_path)
    assert (tmp_path / "fast" / "tokenizer.json").read_bytes() == (
        tmp_path / "slow" / "tokenizer.json"
    ).read_bytes()


@pytest.mark.parametrize("encoder", ["factorized", "hierarchical"])
def test_every_encoder_token_gets_the_transformers_id(bases: dict, encoder: str, tmp_path: Path) -> None:
    fast, slow = both_ways(bases["prefix_space"], "smolvlm", tmp_path, encoder)
    tokens = required_tokens(get_encoder(encoder), IMAGE_PRESETS["smolvlm"])
    assert [fast.table.token_to_id[t] for t in tokens] == slow.tokenizer.convert_tokens_to_ids(tokens)
    assert fast.expanded(tokens)["input_ids"] == slow.tokenizer(tokens, add_special_tokens=False)["input_ids"]


def test_decoding_uses_the_transformers_tokenizer_on_first_use(bases: dict, tmp_path: Path) -> None:
    fast, slow = both_ways(bases["demo"], "internvl3", tmp_path)
    ids = slow.tokenizer("the mouse moves <EVENT_START>", add_special_tokens=False)["input_ids"]
    assert fast.table.to_tokens(ids) == slow.table.to_tokens(ids)
    assert type(fast.tokenizer) is type(slow.tokenizer)
    assert fast.tokenizer is fast.tokenizer  # made once


def test_saved_config_leaves_the_private_path_out(bases: dict, tmp_path: Path) -> None:
    both_ways(bases["v4_config"], "internvl3", tmp_path)
    config = json.loads((tmp_path / "fast" / "tokenizer_config.json").read_text())
    assert "name_or_path" not in config and "/home/someone" not in json.dumps(config)
    assert config["chat_template"].startswith("{% for m in messages %}")


def test_base_vocab_image_tokens_keep_their_ids(bases: dict, tmp_path: Path) -> None:
    fast, _ = both_ways(bases["image_known"], "internvl3", tmp_path)
    base = json.loads((Path(bases["image_known"]) / "tokenizer.json").read_text())
    assert fast.table.token_to_id["<img>"] == base["model"]["vocab"]["<img>"]
    assert fast.table.token_to_id["</img>"] == base["model"]["vocab"]["</img>"]


def _variant(base: str, folder: Path, edit: Callable[[Path], None]) -> str:
    folder.mkdir()
    for name in os.listdir(base):
        (folder / name).write_bytes((Path(base) / name).read_bytes())
    edit(folder)
    return str(folder)


def _edit_config(**changes: Any) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config.update(changes)
        (folder / "tokenizer_config.json").write_text(json.dumps(config))

    return edit


def _enable_padding(folder: Path) -> None:
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_padding(pad_token=PAD, pad_id=tok.token_to_id(PAD))
    tok.save(str(folder / "tokenizer.json"))


FALLBACKS: dict[str, Callable[[Path], None]] = {
    "special token not added": _edit_config(pad_token="<not-added>"),
    "model-specific token not added": _edit_config(image_token="<IMG_CONTEXT>"),
    "add_bos_token": _edit_config(add_bos_token=True),
    "split_special_tokens": _edit_config(split_special_tokens=True),
    "special token other flags": _edit_config(
        eos_token={"__type": "AddedToken", "content": EOS, "lstrip": True, "special": True}
    ),
    "added_tokens_decoder differs": _edit_config(added_tokens_decoder={"0": {"content": "<other>"}}),
    "side file": lambda f: (f / "special_tokens_map.json").write_text(json.dumps({"pad_token": PAD})),
    "model class": _edit_config(tokenizer_class="Qwen2Tokenizer"),
    "padding in tokenizer.json": _enable_padding,
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_folders_transformers_would_change_keep_the_transformers_path(bases: dict, case: str,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    folder = _variant(bases["demo"], tmp_path / "base", FALLBACKS[case])
    assert FastTokenizer.from_folder(folder, GENERIC_FAST_CLASSES) is None
    if case == "model class":
        return  # AutoTokenizer would look for a Qwen2 tokenizer's files: the point is only the refusal
    if case == "split_special_tokens":  # transformers splits the added tokens: its validation says so
        with pytest.raises(TokenizerError, match="is not a single id"):
            FslTokens.build(folder, get_encoder("factorized"), IMAGE_PRESETS["internvl3"])
        return
    tokens = FslTokens.build(folder, get_encoder("factorized"), IMAGE_PRESETS["internvl3"])
    assert not isinstance(tokens.expanded, FastTokenizer)


REASONS = {
    "special token not added": "'<not-added>' is not an added token",
    "model-specific token not added": "'<IMG_CONTEXT>' is not an added token",
    "add_bos_token": "['add_bos_token'] rewrite",
    "split_special_tokens": "['split_special_tokens'] rewrite",
    "special token other flags": "'<|endoftext|>' is not an added token with the flags",
    "added_tokens_decoder differs": "added_tokens_decoder entry '0'",
    "side file": "special_tokens_map.json",
    "model class": "not the generic fast tokenizer class",
    "padding in tokenizer.json": "padding or truncation",
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_folder_problem_names_the_reason(bases: dict, case: str, tmp_path: Path) -> None:
    assert folder_problem(bases["demo"], GENERIC_FAST_CLASSES) is None
    folder = _variant(bases["demo"], tmp_path / "base", FALLBACKS[case])
    assert REASONS[case] in (folder_problem(folder, GENERIC_FAST_CLASSES) or "")


def test_folder_problem_of_a_folder_without_tokenizer_files(tmp_path: Path) -> None:
    assert "no tokenizer_config.json" in (folder_problem(str(tmp_path), GENERIC_FAST_CLASSES) or "")


def test_json_encoder_keeps_the_transformers_path(bases: dict) -> None:
    tokens = FslTokens.build(bases["demo"], get_encoder("json"), IMAGE_PRESETS["internvl3"])
    assert not isinstance(tokens.expanded, FastTokenizer)


def test_fast_tokenizer_refuses_what_it_does_not_do(bases: dict) -> None:
    fast = FastTokenizer.from_folder(bases["demo"], GENERIC_FAST_CLASSES)
    assert fast is not None
    with pytest.raises(ValueError, match="special tokens"):
        fast.add_tokens([], special_tokens=False)
    with pytest.raises(ValueError, match="without special tokens"):
        fast("x", add_special_tokens=True)
    assert fast.convert_tokens_to_ids("<never-seen-token>") is None  # no unk token: None, as transformers


BUILD_SCRIPT = """
import json, os, sys
import datasets
import owa_builders
from owa_fsl.tokenizer import TOKENIZER_DIR
datasets.disable_progress_bars()
data_dir, tokenizer, cache = sys.argv[1:4]
builder = datasets.load_dataset_builder("owa_builders/fsl", "fsl-smolvlm", data_dir=data_dir,
                                        tokenizer_name=tokenizer, cache_dir=cache)
builder.download_and_prepare()
rows = sum(split.num_examples for split in builder.info.splits.values())
print(json.dumps({"transformers": "transformers" in sys.modules, "rows": rows,
                  "tokenizer_dir": os.path.join(builder.cache_dir, TOKENIZER_DIR)}))
"""


def test_a_build_with_a_local_tokenizer_never_imports_transformers(current_corpus: Path, bases: dict,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", BUILD_SCRIPT, str(current_corpus), bases["demo"], str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["rows"] > 0
    assert out["transformers"] is False
    slow = FslTokens.build(
        load_base_tokenizer(bases["demo"]), get_encoder("factorized"), IMAGE_PRESETS["smolvlm"]
    )
    slow.save(tmp_path / "slow")
    for load in (PreTrainedTokenizerFast.from_pretrained, AutoTokenizer.from_pretrained):
        assert loaded_facts(load(out["tokenizer_dir"])) == loaded_facts(load(str(tmp_path / "slow")))
    assert FslTokens.load(out["tokenizer_dir"]).describe() == slow.describe()
    assert os.path.basename(out["tokenizer_dir"]) == TOKENIZER_DIR


def test_a_worker_copy_of_the_stage_holds_only_the_id_table(bases: dict) -> None:
    stage = FslStage(FslConfig(tokenizer_name=bases["demo"], image_preset="smolvlm"))
    assert isinstance(stage.tokens.expanded, FastTokenizer)
    data = pickle.dumps(stage)
    assert b"tokenizers" not in data and b"FastTokenizer" not in data
    copy = pickle.loads(data)
    assert copy.tokens.expanded is None and copy.tokens.tokenizer is None
    assert copy.tokens.table.token_to_id == stage.tokens.table.token_to_id
    assert copy.tokens.describe() == stage.tokens.describe()


@pytest.mark.parametrize("which", ["fast", "slow"])
def test_an_expanded_folder_as_the_base_gives_the_same_ids(bases: dict, which: str, tmp_path: Path) -> None:
    """A dataset's own tokenizer/ folder (written either way) passed back as the base tokenizer."""
    fast, _ = both_ways(bases["demo"], "internvl3", tmp_path)
    again = FslTokens.build(str(tmp_path / which), get_encoder("factorized"), IMAGE_PRESETS["internvl3"])
    assert isinstance(again.expanded, FastTokenizer)
    assert again.describe() == fast.describe()
    assert len(again.expanded) == len(fast.expanded)
