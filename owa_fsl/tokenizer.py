"""The tokenizer side of the FSL (fixed sequence length) stage: image token layouts, vocabulary expansion, validation
and the id table that turns encoder token strings into ids without calling the tokenizer.

Flow: ``tok = load_base_tokenizer(path)``; ``expand_tokenizer(tok, encoder, image_tokens)``
(adds the encoder vocab and missing image tokens as special added tokens; resize the model's
embeddings to ``len(tok)`` afterwards); ``table = TokenTable(tok, encoder, image_tokens)``;
``table.ids(encoder.encode(event, base_ns))``.

The saved form (:class:`FslTokens`): a folder named :data:`TOKENIZER_DIR` beside the dataset holding
the expanded tokenizer (``save_pretrained``) and :data:`FSL_META` (encoder, image layout, pad id and
:func:`vocab_hash`); loading checks the hash, so ids are never read with another vocabulary.

Invariant (tested): for every encodable event, ``table.ids(tokens)`` equals
``tok("".join(tokens with <IMAGE> replaced by the image expansion), add_special_tokens=False)``.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken

from owa_fsl.encoders import get_encoder
from owa_fsl.encoders.base import EventEncoder
from owa_fsl.encoders.stream import IMAGE_PLACEHOLDER
from owa_fsl.errors import TokenizerError
from owa_fsl.fast_tokenizer import FastTokenizer, as_transformers

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class ImageTokens:
    """How a model spells one image: ``prefix``, then ``token`` repeated ``count`` times, then ``suffix``.

    Invariants: ``count >= 1``; every token is a non-empty string other than ``<IMAGE>``.
    """

    prefix: tuple[str, ...]
    token: str
    count: int
    suffix: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", tuple(self.prefix))
        object.__setattr__(self, "suffix", tuple(self.suffix))
        if not (isinstance(self.count, int) and not isinstance(self.count, bool) and self.count >= 1):
            raise ValueError(f"ImageTokens.count must be a positive integer, got {self.count!r}")
        for tok in (*self.prefix, self.token, *self.suffix):
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"image tokens must be non-empty strings, got {tok!r}")
            if tok == IMAGE_PLACEHOLDER:
                raise ValueError(f"{IMAGE_PLACEHOLDER} is the encoders' placeholder, not a model image token")

    def tokens(self) -> list[str]:
        """The full expansion of one frame (``len(prefix) + count + len(suffix)`` tokens)."""
        return [*self.prefix, *([self.token] * self.count), *self.suffix]

    def text(self) -> str:
        """The expansion as text: what ``<IMAGE>`` stands for in the tokenizer's input."""
        return "".join(self.tokens())

    def distinct(self) -> list[str]:
        """The distinct token strings of the expansion, in first-use order."""
        return list(dict.fromkeys((*self.prefix, self.token, *self.suffix)))


INTERNVL3 = ImageTokens(("<img>",), "<IMG_CONTEXT>", 256, ("</img>",))
SMOLVLM = ImageTokens(
    ("<fake_token_around_image>", "<global-img>"), "<image>", 64, ("<fake_token_around_image>",)
)
IMAGE_PRESETS: dict[str, ImageTokens] = {"internvl3": INTERNVL3, "smolvlm": SMOLVLM}


def get_image_tokens(name: str) -> ImageTokens:
    """A preset by name (``internvl3``, ``smolvlm``)."""
    try:
        return IMAGE_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown image token preset {name!r}; available: {sorted(IMAGE_PRESETS)}") from None


def required_tokens(encoder: EventEncoder, image_tokens: ImageTokens) -> list[str]:
    """The encoder vocab, then the image tokens not already in it: the deterministic order in
    which :func:`expand_tokenizer` adds tokens."""
    return list(dict.fromkeys([*encoder.vocab(), *image_tokens.distinct()]))


#: ``tokenizer_class`` values of a tokenizer folder that ``AutoTokenizer`` resolves to the generic fast
#: tokenizer (``tokenizer.json`` only): such a folder is loaded with that class directly.
GENERIC_FAST_CLASSES = frozenset({"TokenizersBackend", "PreTrainedTokenizerFast"})


def load_base_tokenizer(name_or_path: str, **kwargs: Any) -> PreTrainedTokenizerBase:
    """``transformers.AutoTokenizer.from_pretrained``; a local directory works offline.

    A local folder whose ``tokenizer_config.json`` names the generic fast tokenizer class (as a saved
    expanded tokenizer does) is loaded with that class itself: the same tokenizer, without the import of
    ``AutoTokenizer``'s model configuration machinery (which imports torch: seconds of start-up per process).
    """
    config_path = os.path.join(name_or_path, "tokenizer_config.json")
    if os.path.isfile(config_path) and os.path.isfile(os.path.join(name_or_path, "tokenizer.json")):
        try:
            with open(config_path) as f:
                tokenizer_class = json.load(f).get("tokenizer_class")
        except (OSError, ValueError, AttributeError):
            tokenizer_class = None
        if tokenizer_class in GENERIC_FAST_CLASSES:
            from transformers import PreTrainedTokenizerFast

            return PreTrainedTokenizerFast.from_pretrained(name_or_path, **kwargs)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path, **kwargs)


def expand_tokenizer(
    tokenizer: PreTrainedTokenizerBase, encoder: EventEncoder, image_tokens: ImageTokens
) -> PreTrainedTokenizerBase:
    """Add the encoder vocab and any missing image tokens as special added tokens (never split,
    not normalized, no stripping), in :func:`required_tokens` order. Modifies ``tokenizer`` in
    place and returns it.

    Deterministic: the same base tokenizer always gets the same ids (a token already in the
    base vocabulary keeps its id). Idempotent: tokens already added are skipped.
    """
    present = tokenizer.get_added_vocab()
    new = [tok for tok in required_tokens(encoder, image_tokens) if tok not in present]
    if new:
        flags = {"special": True, "normalized": False, "lstrip": False, "rstrip": False, "single_word": False}
        tokenizer.add_tokens([AddedToken(t, **flags) for t in new], special_tokens=True)
    return tokenizer


def _check(
    tokenizer: PreTrainedTokenizerBase, encoder: EventEncoder, image_tokens: ImageTokens
) -> tuple[dict[str, int], list[str]]:
    """Every required token's id, and every problem found (empty when the tokenizer is ready)."""
    image_set = set(image_tokens.distinct())
    problems: list[str] = []
    ids: dict[str, int] = {}

    def kind(tok: str) -> str:
        return "image token" if tok in image_set else f"{encoder.name} token"

    unk_id, unk = getattr(tokenizer, "unk_token_id", None), getattr(tokenizer, "unk_token", None)
    for tok in required_tokens(encoder, image_tokens):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is None or (tid == unk_id and tok != unk):
            problems.append(f"{kind(tok)} {tok!r} is missing (run expand_tokenizer)")
        else:
            ids[tok] = tid
    if ids:
        encoded = tokenizer(list(ids), add_special_tokens=False)["input_ids"]
        for (tok, tid), got in zip(list(ids.items()), encoded):
            if got != [tid]:
                problems.append(
                    f"{kind(tok)} {tok!r} is not a single id: tokenizes to {got}, its id is {tid}"
                )
        by_id: dict[int, list[str]] = {}
        for tok, tid in ids.items():
            by_id.setdefault(tid, []).append(tok)
        problems.extend(f"tokens {toks} share the id {tid}" for tid, toks in by_id.items() if len(toks) > 1)
        single = [tok for tok, got in zip(ids, encoded) if got == [ids[tok]]]
        joined = tokenizer("".join(single), add_special_tokens=False)["input_ids"]
        expected = [ids[tok] for tok in single]
        if joined != expected:
            diffs = (i for i, (a, b) in enumerate(zip(joined, expected)) if a != b)
            pos = next(diffs, min(len(joined), len(expected)))
            culprit = single[pos] if pos < len(single) else "<end>"
            problems.append(
                f"the concatenated tokens do not tokenize to their ids (first difference at {culprit!r}); "
                f"check the added tokens' lstrip/rstrip/single_word/normalized flags"
            )
    return ids, problems


def validate_tokenizer(
    tokenizer: PreTrainedTokenizerBase, encoder: EventEncoder, image_tokens: ImageTokens
) -> None:
    """Check that every encoder token and image token is one id and stays one id in context.

    Collects every problem and raises a single ``ValueError`` listing them all.
    """
    _, problems = _check(tokenizer, encoder, image_tokens)
    if problems:
        raise ValueError(_problem_message(encoder, image_tokens, problems))


def _problem_message(encoder: EventEncoder, image_tokens: ImageTokens, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return (
        f"tokenizer is not ready for the {encoder.name!r} encoder with image token {image_tokens.token!r}: "
        f"{len(problems)} problem(s):\n{lines}"
    )


class TokenTable:
    """Token strings -> ids by plain dict lookups, built once from an expanded tokenizer.

    ``ids`` expands ``<IMAGE>`` into :attr:`image_ids` (one frame's expansion). For encoders
    whose strings are not all vocab tokens (``single_tokens`` False: json), each run of
    non-vocab text is tokenized by the tokenizer, prefixed by the vocab token before it so
    the result matches tokenizing the whole text (prefix-space schemes included); that path
    is for debugging, not speed. Construction validates the tokenizer (``ValueError``).
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, encoder: EventEncoder, image_tokens: ImageTokens
    ) -> None:
        ids, problems = _check(tokenizer, encoder, image_tokens)
        if problems:
            raise ValueError(_problem_message(encoder, image_tokens, problems))
        self.encoder = encoder
        self.image_tokens = image_tokens
        self.token_to_id: dict[str, int] = ids
        self.id_to_token: dict[int, str] = {tid: tok for tok, tid in ids.items()}
        self.image_ids: tuple[int, ...] = tuple(ids[t] for t in image_tokens.tokens())
        #: token -> its id as int32 bytes (``<IMAGE>``: the expansion's), built on first use.
        self._id_bytes: dict[str, bytes] | None = None
        self._image_last = image_tokens.tokens()[-1]
        #: ``len(tokenizer)``: the model's embedding table must have at least this many rows.
        self.tokenizer_size: int = len(tokenizer)
        self._tokenizer = tokenizer

    def without_tokenizer(self) -> TokenTable:
        """A copy holding only the id tables (small, cheap to pickle: no tokenizer library needed to
        use it). Enough for single-token encoders; :meth:`to_tokens` and text runs need the tokenizer."""
        copy = object.__new__(TokenTable)
        copy.__dict__.update({**self.__dict__, "_tokenizer": None})
        return copy

    def _text_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise TokenizerError(
                "this TokenTable has no tokenizer (made by without_tokenizer()): use the full table to tokenize "
                "text or decode ids"
            )
        return as_transformers(self._tokenizer)

    def __repr__(self) -> str:
        image = f"{self.image_tokens.token!r}x{self.image_tokens.count}"
        return f"TokenTable({self.encoder!r}, {image}, {len(self.token_to_id)} tokens)"

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The ids of encoder token strings, ``<IMAGE>`` expanded; ``ValueError`` for a string
        outside the vocab of a single-token encoder."""
        table, image, out = self.token_to_id, self.image_ids, []
        try:
            if IMAGE_PLACEHOLDER not in tokens:  # most events: one lookup per token, in C
                return list(map(table.__getitem__, tokens))
            for tok in tokens:
                if tok == IMAGE_PLACEHOLDER:
                    out.extend(image)
                else:
                    out.append(table[tok])
        except KeyError as exc:
            if self.encoder.single_tokens:
                name = self.encoder.name
                raise ValueError(f"token {exc.args[0]!r} is not in the {name} vocabulary") from None
            return self._ids_with_text(tokens)
        return out

    def append_ids(self, out: array.array[int], tokens: Sequence[str]) -> None:
        """Append the ids of ``tokens`` (as :meth:`ids`) to the int32 array ``out``, as bytes: each token's
        id (and ``<IMAGE>``'s whole expansion) is kept as its int32 bytes, so an event's ids are one join
        and one copy, never converted int by int."""
        as_bytes = self._id_bytes
        if as_bytes is None:
            as_bytes = {tok: array.array("i", [tid]).tobytes() for tok, tid in self.token_to_id.items()}
            as_bytes[IMAGE_PLACEHOLDER] = array.array("i", self.image_ids).tobytes()
            self._id_bytes = as_bytes
        try:
            out.frombytes(b"".join(map(as_bytes.__getitem__, tokens)))
        except KeyError:
            out.extend(self.ids(tokens))  # raises the error of ids (or takes the text path)

    def _ids_with_text(self, tokens: Sequence[str]) -> list[int]:
        table, out = self.token_to_id, []
        run: list[str] = []
        prev: str | None = None

        def flush() -> None:
            if not run:
                return
            text = "".join(run)
            run.clear()
            if prev is None:
                out.extend(self._text_tokenizer()(text, add_special_tokens=False)["input_ids"])
                return
            got = self._text_tokenizer()(prev + text, add_special_tokens=False)["input_ids"]
            if not got or got[0] != table[prev]:
                raise ValueError(f"tokenizer splits {prev!r} when followed by text {text[:40]!r}")
            out.extend(got[1:])

        for tok in tokens:
            if tok == IMAGE_PLACEHOLDER:
                flush()
                out.extend(self.image_ids)
                prev = self._image_last
            elif tok in table:
                flush()
                out.append(table[tok])
                prev = tok
            else:
                run.append(tok)
        flush()
        return out

    def to_tokens(self, ids: Sequence[int]) -> list[str]:
        """The inverse of :meth:`ids`: table ids become token strings, exact image runs
        ``<IMAGE>``, and runs of other ids their decoded text (exact for byte-level BPE)."""
        image, n = self.image_ids, len(self.image_ids)
        out: list[str] = []
        run: list[int] = []

        def flush() -> None:
            if run:
                decode = self._text_tokenizer().decode
                out.append(decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False))
                run.clear()

        i, end = 0, len(ids)
        while i < end:
            tid = ids[i]
            if tid == image[0] and tuple(ids[i : i + n]) == image:
                flush()
                out.append(IMAGE_PLACEHOLDER)
                i += n
                continue
            tok = self.id_to_token.get(tid)
            if tok is None:
                run.append(tid)
            else:
                flush()
                out.append(tok)
            i += 1
        flush()
        return out


# ------------------------------------------------------------------------------------------
# The saved tokenizer files: one owner
# ------------------------------------------------------------------------------------------
#: The folder, beside a built FSL dataset, that holds its expanded tokenizer and :data:`FSL_META`.
TOKENIZER_DIR = "tokenizer"
#: The file (inside :data:`TOKENIZER_DIR`) describing how the ids were made.
FSL_META = "owa_fsl.json"


def vocab_hash(table: TokenTable) -> str:
    """SHA-256 of what the ids mean: every encoder/image token with its id (in table order), the
    encoder and its options, the image layout and the tokenizer's size. Equal hashes = same ids."""
    digest = hashlib.sha256()
    head = {
        "encoder": table.encoder.name,
        "options": table.encoder.options(),
        "image": [list(table.image_tokens.prefix), table.image_tokens.token, table.image_tokens.count,
                  list(table.image_tokens.suffix)],
        "size": table.tokenizer_size,
    }  # fmt: skip
    digest.update(json.dumps(head, sort_keys=True).encode())
    for token, tid in table.token_to_id.items():
        digest.update(f"\0{token}\0{tid}".encode())
    return digest.hexdigest()


def load_tokenizer(name: str) -> Any:
    """The base tokenizer (hub name or local folder), with an error that says what to do."""
    try:
        return load_base_tokenizer(name)
    except Exception as exc:
        raise TokenizerError(
            f"cannot load tokenizer {name!r} ({type(exc).__name__}: {exc}); pass tokenizer_name= a local "
            f"tokenizer directory, or make the Hub reachable"
        ) from exc


@dataclass
class FslTokens:
    """Everything token-related: the encoder, the image layout, the expanded tokenizer, its id table
    and the pad id. Built once per process (:meth:`build`), saved with a dataset (:meth:`save`) and
    loaded back (:meth:`load`)."""

    encoder: EventEncoder
    image_tokens: ImageTokens
    expanded: Any
    """The expanded tokenizer: a ``transformers`` tokenizer, a :class:`~owa_fsl.fast_tokenizer.FastTokenizer`
    (built without ``transformers``), or None (a worker's copy: the id table only)."""
    table: TokenTable
    pad_id: int

    @property
    def tokenizer(self) -> Any:
        """The expanded tokenizer as a ``transformers`` tokenizer (made on first use when it was built
        without ``transformers``); None in a worker's id-table-only copy."""
        return as_transformers(self.expanded)

    @classmethod
    def build(cls, tokenizer: str | Any, encoder: EventEncoder, image_tokens: ImageTokens) -> FslTokens:
        """Load (a name or folder) or take (an object) the base tokenizer, expand it, build the table.

        A local generic fast tokenizer folder is expanded with ``tokenizers`` alone (no ``transformers``
        import: :mod:`owa_fsl.fast_tokenizer`) when the encoder is single-token; the ids, the table and the
        saved folder are the same as on the ``transformers`` path (tested)."""
        name = tokenizer if isinstance(tokenizer, str) else type(tokenizer).__name__
        if isinstance(tokenizer, str):
            fast = None
            if encoder.single_tokens and os.path.isdir(tokenizer):
                fast = FastTokenizer.from_folder(tokenizer, GENERIC_FAST_CLASSES)
            tokenizer = fast if fast is not None else load_tokenizer(tokenizer)
        expand_tokenizer(tokenizer, encoder, image_tokens)
        try:
            table = TokenTable(tokenizer, encoder, image_tokens)
        except ValueError as exc:
            raise TokenizerError(f"tokenizer {name!r}: {exc}") from None
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_id is None:
            raise TokenizerError(f"tokenizer {name!r} has neither a pad nor an eos token to pad with")
        return cls(encoder, image_tokens, tokenizer, table, int(pad_id))

    @property
    def vocab_hash(self) -> str:
        """:func:`vocab_hash` of the table."""
        return vocab_hash(self.table)

    def describe(self) -> dict[str, Any]:
        """What a reader of the token ids needs besides the tokenizer (saved as :data:`FSL_META`)."""
        return {
            "encoder_type": self.encoder.name,
            "encoder_options": self.encoder.options(),
            "image_tokens": {
                "prefix": list(self.image_tokens.prefix),
                "token": self.image_tokens.token,
                "count": self.image_tokens.count,
                "suffix": list(self.image_tokens.suffix),
            },
            "pad_id": self.pad_id,
            "vocab_hash": self.vocab_hash,
        }

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Save the expanded tokenizer and :meth:`describe` into ``directory``."""
        directory = os.fspath(directory)
        if isinstance(self.expanded, FastTokenizer):
            self.expanded.save(directory)
        else:
            self.tokenizer.save_pretrained(directory)
        with open(os.path.join(directory, FSL_META), "w") as f:
            json.dump(self.describe(), f, indent=2, sort_keys=True)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> FslTokens:
        """The inverse of :meth:`save`. Raises :class:`TokenizerError` naming the folder when it is
        not an expanded FSL tokenizer, or when its vocabulary hash differs from :data:`FSL_META`'s."""
        directory = os.fspath(directory)
        meta_path = os.path.join(directory, FSL_META)
        try:
            with open(meta_path) as f:
                meta = json.load(f)
            encoder = get_encoder(meta["encoder_type"], **meta["encoder_options"])
            img = meta["image_tokens"]
            image_tokens = ImageTokens(tuple(img["prefix"]), img["token"], img["count"], tuple(img["suffix"]))
            pad_id = int(meta["pad_id"])
            expected = meta["vocab_hash"]
        except FileNotFoundError:
            raise TokenizerError(
                f"{directory}: no {FSL_META}: not an expanded FSL tokenizer folder"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TokenizerError(f"{meta_path}: unreadable ({type(exc).__name__}: {exc})") from None
        tokenizer = load_tokenizer(directory)
        try:
            table = TokenTable(tokenizer, encoder, image_tokens)
        except ValueError as exc:
            raise TokenizerError(f"{directory}: {exc}") from None
        tokens = cls(encoder, image_tokens, tokenizer, table, pad_id)
        if tokens.vocab_hash != expected:
            raise TokenizerError(
                f"{directory}: the tokenizer's vocabulary hash {tokens.vocab_hash[:12]} differs from the one "
                f"recorded in {FSL_META} ({str(expected)[:12]}): its ids were made with another vocabulary"
            )
        return tokens
