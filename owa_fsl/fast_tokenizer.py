"""The FSL tokenizer expansion with the ``tokenizers`` library alone: the conversion's start-up without
``transformers`` (whose import alone costs about half a second per process).

:meth:`FastTokenizer.from_folder` takes a local tokenizer folder that ``transformers`` would load as the
generic fast tokenizer (``tokenizer.json`` + a ``tokenizer_config.json`` naming that class) *and* load
without changing it: every special token its config names is already an added token with the flags
``transformers`` gives it, no padding or truncation, no legacy side files. Any other folder gives None and
the caller keeps the ``transformers`` path, so both paths always agree.

A :class:`FastTokenizer` implements the part of the ``transformers`` tokenizer interface that expansion
and validation use (``len``, ``get_added_vocab``, ``add_tokens(..., special_tokens=True)``,
``convert_tokens_to_ids``, ``__call__(texts, add_special_tokens=False)``, ``unk_token(_id)``,
``pad_token_id``, ``eos_token_id``), with the same results. :meth:`FastTokenizer.save` writes the base
folder's config files unchanged beside the expanded ``tokenizer.json`` (serialized as ``transformers``'
``save_pretrained`` does): ``transformers`` loads that folder as the tokenizer today's ``save_pretrained``
output is (same size, added tokens, special tokens, encodings; tested). Anything else (decoding, text runs
of the json encoder, ``debug_text``) asks :meth:`FastTokenizer.transformers_tokenizer`: the same
tokenizer made the ``transformers`` way, on first use.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from typing import Any

from tokenizers import AddedToken, Tokenizer, processors

from .errors import TokenizerError

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
#: Files of the base folder that ``transformers`` reads besides the config and ``tokenizer.json``, copied.
COPIED_FILES = ("chat_template.jinja",)
#: Config keys that only say where the base was loaded from: left out of the saved config, as
#: ``save_pretrained`` leaves them out (a local path is private).
PRIVATE_KEYS = ("name_or_path", "special_tokens_map_file", "tokenizer_file", "device_map", "files_loaded",
                "slow_tokenizer_class")  # fmt: skip
#: Legacy side files ``transformers`` merges into the tokenizer when present: such folders take its path.
SIDE_FILES = (
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.json",
    "additional_chat_templates",
)
#: Config keys with which ``transformers`` rewrites the tokenizer on load: such folders take its path.
REWRITING_KEYS = ("add_bos_token", "add_eos_token", "split_special_tokens")
#: Above this vocabulary size, with a ``config.json`` beside it, ``transformers`` may patch the
#: pre-tokenizer's regex on load (Mistral models): such folders take its path.
PATCHED_VOCAB = 100_000
_FLAG_NAMES = ("special", "normalized", "lstrip", "rstrip", "single_word")


def _flags(token: AddedToken) -> tuple[str, bool, bool, bool, bool, bool]:
    return (token.content, *(bool(getattr(token, name)) for name in _FLAG_NAMES))


def _config_tokens(config: dict[str, Any]) -> list[Any] | None:
    """Every token value the config names (``*_token`` keys, extra/additional special tokens), or None
    when one has a shape this module does not handle."""
    values: list[Any] = [v for k, v in config.items() if k.endswith("_token") and v is not None]
    for key in ("extra_special_tokens", "additional_special_tokens"):
        extra = config.get(key)
        if isinstance(extra, dict):
            values.extend(extra.values())
        elif isinstance(extra, list):
            values.extend(extra)
        elif extra is not None:
            return None
    if all(isinstance(v, str) or _is_added_token(v) for v in values):
        return values
    return None


def _is_added_token(value: Any) -> bool:
    """A serialized special ``AddedToken`` (the only dict form ``transformers`` turns into a token)."""
    return (
        isinstance(value, dict)
        and value.get("__type") == "AddedToken"
        and isinstance(value.get("content"), str)
        and value.get("special") is True
    )


def load_folder(folder: str, generic_classes: Iterable[str]) -> tuple[FastTokenizer | None, str | None]:
    """``(tokenizer, None)`` for a folder this module expands exactly as ``transformers`` would, else
    ``(None, why not)`` (the caller then takes the ``transformers`` path); see the module doc."""
    config_path, json_path = os.path.join(folder, CONFIG_FILE), os.path.join(folder, TOKENIZER_FILE)
    if not (os.path.isfile(config_path) and os.path.isfile(json_path)):
        return None, f"no {CONFIG_FILE} and {TOKENIZER_FILE}"
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        return None, f"{CONFIG_FILE} unreadable ({exc})"
    if not isinstance(config, dict) or config.get("tokenizer_class") not in set(generic_classes):
        return None, "not the generic fast tokenizer class"
    side = [name for name in SIDE_FILES if os.path.exists(os.path.join(folder, name))]
    if side:
        return None, f"legacy side files {side}"
    keys = [key for key in REWRITING_KEYS if key in config]
    if keys:
        return None, f"config keys {keys} rewrite the tokenizer on load"
    if _config_tokens(config) is None:
        return None, "special tokens of an unexpected shape"
    try:
        backend = Tokenizer.from_file(json_path)
    except Exception as exc:  # transformers' error (raised on its path) is the one to show
        return None, f"{TOKENIZER_FILE} unreadable ({type(exc).__name__})"
    if backend.truncation is not None or backend.padding is not None:
        return None, "padding or truncation in tokenizer.json (transformers turns them into settings)"
    big = backend.get_vocab_size(with_added_tokens=False) > PATCHED_VOCAB
    if big and os.path.isfile(os.path.join(folder, "config.json")):
        return None, "a large vocabulary beside a model config (transformers may patch its regex)"
    problem = _load_changes(config, backend)
    if problem is not None:
        return None, problem
    if backend.post_processor is None:  # what transformers sets on load (no bos/eos added)
        backend.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1")
    backend.encode_special_tokens = False
    return FastTokenizer(folder, config, backend), None


def folder_problem(folder: str, generic_classes: Iterable[str]) -> str | None:
    """Why ``folder`` takes the ``transformers`` path (None when it does not): :func:`load_folder`'s reason."""
    return load_folder(folder, generic_classes)[1]


def _load_changes(config: dict[str, Any], backend: Tokenizer) -> str | None:
    """What ``transformers`` would add or change on load, if anything: each config token must be an added
    token with the flags it would give (a string: special, not normalized, no stripping; a serialized
    token: its own flags), and the config's ``added_tokens_decoder`` must repeat ``tokenizer.json``'s."""
    added = backend.get_added_tokens_decoder()
    by_content = {tok.content: _flags(tok) for tok in added.values()}
    for value in _config_tokens(config) or []:
        if isinstance(value, str):
            want = _flags(AddedToken(value, special=True, normalized=False))
        else:
            want = _flags(
                AddedToken(value["content"], **{k: bool(value[k]) for k in _FLAG_NAMES if k in value})
            )
        if by_content.get(want[0]) != want:
            return f"config token {want[0]!r} is not an added token with the flags transformers gives it"
    decoder = config.get("added_tokens_decoder") or {}
    if not isinstance(decoder, dict):
        return "added_tokens_decoder is not a mapping"
    for tid, value in decoder.items():
        have = added.get(int(tid)) if str(tid).isdigit() else None
        if have is None or not isinstance(value, dict) or value.get("content") != have.content:
            return f"added_tokens_decoder entry {tid!r} is not tokenizer.json's added token {tid}"
        if any(name in value and bool(value[name]) != bool(getattr(have, name)) for name in _FLAG_NAMES):
            return f"added_tokens_decoder entry {tid!r} has other flags than tokenizer.json's"
    return None


class FastTokenizer:
    """A base tokenizer folder loaded with ``tokenizers`` only (:func:`load_folder`), then expanded in place.

    Invariant: the backend (``self.backend``) equals the backend of the ``transformers`` tokenizer made
    from the same folder with the same :meth:`add_tokens` calls.
    """

    def __init__(self, folder: str, config: dict[str, Any], backend: Tokenizer) -> None:
        self.folder = folder
        self.config = config
        self.backend = backend
        self._added: list[list[AddedToken]] = []
        self._transformers: Any = None

    @classmethod
    def from_folder(cls, folder: str, generic_classes: Iterable[str]) -> FastTokenizer | None:
        """The folder's tokenizer, or None when ``transformers`` must load it (:func:`load_folder`)."""
        return load_folder(folder, generic_classes)[0]

    # ---- the transformers interface used by expand_tokenizer / _check / TokenTable -------------------
    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def get_added_vocab(self) -> dict[str, int]:
        """Added token content -> id (as ``transformers``' ``get_added_vocab``)."""
        return {tok.content: tid for tid, tok in sorted(self.backend.get_added_tokens_decoder().items())}

    def add_tokens(self, tokens: Sequence[AddedToken], special_tokens: bool = False) -> int:
        """Add ``tokens`` (``AddedToken`` objects) as special added tokens: what ``transformers`` does with
        ``special_tokens=True`` (the only form expansion uses)."""
        if not special_tokens:
            raise ValueError("FastTokenizer only adds special tokens (as expand_tokenizer does)")
        tokens = list(tokens)
        self._added.append(tokens)
        self._transformers = None
        return self.backend.add_special_tokens(tokens)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        """The token's id; the unknown token's id (None without one) for a token not in the vocabulary."""
        tid = self.backend.token_to_id(token)
        return self.unk_token_id if tid is None else tid

    def __call__(self, texts: str | list[str], add_special_tokens: bool = False) -> dict[str, Any]:
        """``{"input_ids": ...}`` of one text or a list of texts, without special tokens."""
        if add_special_tokens:
            raise ValueError("FastTokenizer encodes without special tokens only")
        if isinstance(texts, str):
            return {"input_ids": self.backend.encode(texts, add_special_tokens=False).ids}
        return {"input_ids": [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]}

    def _token(self, name: str) -> str | None:
        value = self.config.get(name)
        return value["content"] if isinstance(value, dict) else value

    def _token_id(self, name: str) -> int | None:
        token = self._token(name)
        return None if token is None else self.backend.token_to_id(token)

    @property
    def unk_token(self) -> str | None:
        return self._token("unk_token")

    @property
    def unk_token_id(self) -> int | None:
        return self._token_id("unk_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._token_id("pad_token")

    @property
    def eos_token_id(self) -> int | None:
        return self._token_id("eos_token")

    # ---- saving and the transformers tokenizer ------------------------------------------------------
    def save(self, directory: str) -> None:
        """Write the loadable folder: the base config without :data:`PRIVATE_KEYS` (formatted as
        ``save_pretrained`` formats it), the base folder's :data:`COPIED_FILES` and the expanded
        ``tokenizer.json`` (pretty-printed, as ``save_pretrained`` writes it)."""
        os.makedirs(directory, exist_ok=True)
        config = {k: v for k, v in self.config.items() if k not in PRIVATE_KEYS}
        with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
            f.write(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        for name in COPIED_FILES:
            source = os.path.join(self.folder, name)
            if os.path.isfile(source) and not _same_file(source, os.path.join(directory, name)):
                shutil.copyfile(source, os.path.join(directory, name))
        self.backend.save(os.path.join(directory, TOKENIZER_FILE))

    def transformers_tokenizer(self) -> Any:
        """The same expanded tokenizer as a ``transformers`` tokenizer (loaded from the base folder, the
        same tokens added), made on first use; :class:`TokenizerError` if it came out another size."""
        if self._transformers is None:
            from transformers import PreTrainedTokenizerFast

            tokenizer = PreTrainedTokenizerFast.from_pretrained(self.folder)
            for tokens in self._added:
                tokenizer.add_tokens(tokens, special_tokens=True)
            if len(tokenizer) != len(self):
                raise TokenizerError(
                    f"{self.folder}: transformers loads {len(tokenizer)} tokens where tokenizers has {len(self)} "
                    f"(has the folder changed since the build started?)"
                )
            self._transformers = tokenizer
        return self._transformers


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def as_transformers(tokenizer: Any) -> Any:
    """``tokenizer`` itself, or for a :class:`FastTokenizer` its :meth:`~FastTokenizer.transformers_tokenizer`."""
    return tokenizer.transformers_tokenizer() if isinstance(tokenizer, FastTokenizer) else tokenizer
