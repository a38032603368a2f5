"""Tokenizer expansion, validation and the id table (local tokenizer, no Hub)."""

from __future__ import annotations

import array
import dataclasses
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken
from transformers import PreTrainedTokenizerFast

from owa_event.events import TOPIC_TYPES, Event
from owa_fsl.encoders import IMAGE_PLACEHOLDER, canonical, frame_ref, get_encoder
from owa_fsl.tokenizer import (
    INTERNVL3,
    SMOLVLM,
    ImageTokens,
    TokenTable,
    expand_tokenizer,
    get_image_tokens,
    load_base_tokenizer,
    required_tokens,
    validate_tokenizer,
)

try:
    from fsl_tokenizer_fixture import make_local_tokenizer
except ImportError:  # tests/ imported as a package
    from tests.fsl_tokenizer_fixture import make_local_tokenizer

NAMES = ["factorized", "hierarchical", "json"]
PRESETS = {"internvl3": INTERNVL3, "smolvlm": SMOLVLM}
BASE = 1_700_000_000_000_000_000
MS = 1_000_000


def ev(topic: str, t: int, fields: dict) -> Event:
    return Event(topic, t, TOPIC_TYPES[topic], orjson.dumps(fields), fields)


def every_kind() -> list[Event]:
    """At least one event of every message kind, with negative and extreme values."""
    t = BASE + 7
    out = [
        ev("screen", t, {"utc_ns": 1, "media_ref": {"uri": "a.mkv", "pts_ns": 0}}),
        ev("keyboard", t + MS, {"event_type": "press", "vk": 0}),
        ev("keyboard", t + 2 * MS, {"event_type": "release", "vk": 255}),
        ev("mouse", t + 3 * MS, {"event_type": "move", "x": -99_999, "y": 99_999}),
        ev("mouse", t + 5 * MS, {"event_type": "scroll", "x": 1, "y": 2, "dx": -1, "dy": 120}),
        ev("mouse/raw", t + 6 * MS, {"last_x": -65535, "last_y": 65535, "us_flags": 15, "button_flags": 0xFFF,
                                      "button_data": 65416}),
        ev("mouse/raw", t + 7 * MS, {"last_x": 0, "last_y": -1, "button_data": -32768}),
        ev("mouse/raw", t + 8 * MS, {"last_x": 2, "last_y": 1}),
        ev("screen", t + 9_999_999 * MS - 7, {"media_ref": {"uri": "a.mkv", "pts_ns": 9 * MS}}),
    ]  # fmt: skip
    for i, button in enumerate(["left", "right", "middle", "x1", "x2", "unknown"]):
        for pressed in (True, False):
            out.append(ev("mouse", t + (10 + i) * MS, {"event_type": "click", "x": -5, "y": 5, "button": button,
                                                         "pressed": pressed}))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok")
    make_local_tokenizer(path)
    return path / "base_tokenizer"


def fresh(base_dir: Path) -> PreTrainedTokenizerFast:
    return load_base_tokenizer(str(base_dir))


@pytest.fixture(scope="module")
def tables(base_dir: Path) -> dict[tuple[str, str], tuple[PreTrainedTokenizerFast, TokenTable]]:
    out = {}
    for name in NAMES:
        for preset, image in PRESETS.items():
            enc = get_encoder(name)
            tok = expand_tokenizer(fresh(base_dir), enc, image)
            out[name, preset] = (tok, TokenTable(tok, enc, image))
    return out


# -- image tokens ----------------------------------------------------------------------------------
def test_image_token_presets() -> None:
    assert INTERNVL3.tokens() == ["<img>", *["<IMG_CONTEXT>"] * 256, "</img>"]
    assert SMOLVLM.tokens() == ["<fake_token_around_image>", "<global-img>", *["<image>"] * 64,
                                "<fake_token_around_image>"]  # fmt: skip
    assert SMOLVLM.distinct() == ["<fake_token_around_image>", "<global-img>", "<image>"]
    assert INTERNVL3.text() == "".join(INTERNVL3.tokens())
    assert get_image_tokens("smolvlm") is SMOLVLM
    with pytest.raises(ValueError, match="unknown image token preset"):
        get_image_tokens("llava")
    with pytest.raises(dataclasses.FrozenInstanceError):
        INTERNVL3.count = 1  # type: ignore[misc]


def test_image_tokens_validation() -> None:
    assert ImageTokens(["<a>"], "<b>", 2, ["<c>"]).prefix == ("<a>",)  # lists become tuples
    with pytest.raises(ValueError, match="count"):
        ImageTokens((), "<b>", 0, ())
    with pytest.raises(ValueError, match="non-empty"):
        ImageTokens(("",), "<b>", 1, ())
    with pytest.raises(ValueError, match="placeholder"):
        ImageTokens((), IMAGE_PLACEHOLDER, 1, ())


# -- expansion -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("preset", PRESETS)
def test_expansion_deterministic_and_idempotent(base_dir: Path, name: str, preset: str) -> None:
    enc, image = get_encoder(name), PRESETS[preset]
    a = expand_tokenizer(fresh(base_dir), enc, image)
    b = expand_tokenizer(fresh(base_dir), get_encoder(name), image)
    assert a.get_added_vocab() == b.get_added_vocab()
    required = required_tokens(enc, image)
    ids = a.convert_tokens_to_ids(required)
    assert ids == b.convert_tokens_to_ids(required)
    assert ids == list(range(1000, 1000 + len(required)))  # appended in required_tokens order
    size, added = len(a), a.get_added_vocab()
    assert expand_tokenizer(a, enc, image) is a
    assert len(a) == size and a.get_added_vocab() == added
    assert all(t.special for t in a.added_tokens_decoder.values())
    validate_tokenizer(a, enc, image)


def test_expansion_survives_save_and_reload(base_dir: Path, tmp_path: Path) -> None:
    enc = get_encoder()
    tok = expand_tokenizer(fresh(base_dir), enc, SMOLVLM)
    tok.save_pretrained(tmp_path / "expanded")
    again = load_base_tokenizer(str(tmp_path / "expanded"))
    assert again.get_added_vocab() == tok.get_added_vocab()
    size = len(again)
    expand_tokenizer(again, enc, SMOLVLM)
    assert len(again) == size
    validate_tokenizer(again, enc, SMOLVLM)


def test_expansion_for_a_second_encoder_adds_only_new_tokens(base_dir: Path) -> None:
    tok = expand_tokenizer(fresh(base_dir), get_encoder("factorized"), INTERNVL3)
    first = tok.get_added_vocab()
    expand_tokenizer(tok, get_encoder("hierarchical"), SMOLVLM)
    second = tok.get_added_vocab()
    assert all(second[t] == i for t, i in first.items())  # existing ids unchanged
    assert set(second) - set(first) == (
        set(get_encoder("hierarchical").vocab()) | set(SMOLVLM.distinct())
    ) - set(first)
    validate_tokenizer(tok, get_encoder("factorized"), INTERNVL3)
    validate_tokenizer(tok, get_encoder("hierarchical"), SMOLVLM)


def test_token_in_base_vocab_keeps_its_id(tmp_path: Path) -> None:
    base = make_local_tokenizer(tmp_path, vocab_extras=["<IMG_CONTEXT>"])
    known = base.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert base("<IMG_CONTEXT>", add_special_tokens=False)["input_ids"] != [known]  # split in text
    tok = expand_tokenizer(base, get_encoder(), INTERNVL3)
    assert tok.convert_tokens_to_ids("<IMG_CONTEXT>") == known
    assert tok("<IMG_CONTEXT>", add_special_tokens=False)["input_ids"] == [known]
    validate_tokenizer(tok, get_encoder(), INTERNVL3)


# -- validation ------------------------------------------------------------------------------------
def test_validation_lists_every_problem(tmp_path: Path) -> None:
    enc = get_encoder()
    base = make_local_tokenizer(tmp_path, vocab_extras=["<IMG_CONTEXT>"])
    base.add_tokens([AddedToken("<img>", special=True, normalized=False)], special_tokens=True)
    with pytest.raises(ValueError) as info:
        validate_tokenizer(base, enc, INTERNVL3)
    message = str(info.value)
    expected = len(enc.vocab()) + 2  # every encoder token missing, '</img>' missing, '<IMG_CONTEXT>' split
    assert f"{expected} problem(s)" in message
    assert "factorized token '<EVENT_START>' is missing" in message
    assert "factorized token '<VK_255>' is missing" in message
    assert "image token '</img>' is missing" in message
    assert "image token '<IMG_CONTEXT>' is not a single id" in message
    assert "'<img>'" not in message  # present and fine
    assert message.count("\n  - ") == expected
    with pytest.raises(ValueError, match="is missing"):
        TokenTable(base, enc, INTERNVL3)


def test_validation_catches_context_splits(base_dir: Path) -> None:
    enc = get_encoder()
    tok = fresh(base_dir)
    # a longer added token swallowing the start of the next token breaks concatenations
    tok.add_tokens([AddedToken("<EVENT_START><", normalized=False)])
    expand_tokenizer(tok, enc, SMOLVLM)
    with pytest.raises(ValueError, match="concatenated tokens do not tokenize to their ids"):
        validate_tokenizer(tok, enc, SMOLVLM)


# -- the id table ----------------------------------------------------------------------------------
def expanded_ids(tok: PreTrainedTokenizerFast, tokens: list[str], image: ImageTokens) -> list[int]:
    text = "".join(image.text() if t == IMAGE_PLACEHOLDER else t for t in tokens)
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("preset", PRESETS)
def test_table_ids_match_tokenizer(tables: dict, name: str, preset: str) -> None:
    """THE KEY TEST: table lookups give exactly what the tokenizer gives on the text."""
    tok, table = tables[name, preset]
    enc, image = table.encoder, PRESETS[preset]
    events = every_kind()
    kinds = set()
    for event in events:
        tokens = enc.encode(event, BASE)
        ids = table.ids(tokens)
        assert ids == expanded_ids(tok, tokens, image), (event, tokens)
        assert table.to_tokens(ids) == tokens
        kinds.add((event.topic, event.fields.get("event_type")))
    assert len(kinds) == 7  # keyboard x2, mouse x3, mouse/raw, screen
    stream = enc.encode_many(events, BASE)
    ids = table.ids(stream)
    assert ids == expanded_ids(tok, stream, image)
    assert ids.count(table.image_ids[0]) >= 2 and len(ids) >= len(stream)
    # and back through the tokenizer's own decode
    frames = [frame_ref(e) for e in events if e.topic == "screen"]
    text = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    decoded = enc.decode_text(text, BASE, frames, image_tokens=image.tokens())
    assert [d.fields for d in decoded] == [canonical(e) for e in events]
    assert enc.decode(table.to_tokens(ids), BASE, frames) == decoded


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.tuples(st.sampled_from(NAMES), st.sampled_from(list(PRESETS))),
    x=st.integers(-99_999, 99_999),
    y=st.integers(-99_999, 99_999),
    flags=st.integers(0, 0xFFF),
    data=st.integers(-32_768, 65_535),
    dt=st.integers(0, 9_999_999 * MS),
)
def test_table_ids_match_tokenizer_property(tables: dict, key: tuple, x: int, y: int, flags: int, data: int,
                                            dt: int) -> None:  # fmt: skip
    tok, table = tables[key]
    raw = ev("mouse/raw", BASE + dt, {"last_x": x, "last_y": y, "button_flags": flags, "button_data": data})
    mouse = ev("mouse", BASE + dt, {"event_type": "move", "x": x, "y": y})
    for event in (raw, mouse):
        tokens = table.encoder.encode(event, BASE)
        assert table.ids(tokens) == expanded_ids(tok, tokens, PRESETS[key[1]])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("preset", PRESETS)
def test_append_ids_appends_exactly_the_ids(tables: dict, name: str, preset: str) -> None:
    _, table = tables[name, preset]
    out = array.array("i", [7])
    want = [7]
    for event in every_kind():
        tokens = table.encoder.encode(event, BASE)
        table.append_ids(out, tokens)
        want += table.ids(tokens)
    assert out.tolist() == want
    if table.encoder.single_tokens:  # an unknown token: the error of ids, nothing appended
        with pytest.raises(ValueError, match="is not in the"):
            table.append_ids(out, ["<EVENT_START>", IMAGE_PLACEHOLDER, "<nope>"])
        assert out.tolist() == want


def test_table_basics(tables: dict) -> None:
    tok, table = tables["factorized", "internvl3"]
    assert len(table.image_ids) == 258 and table.tokenizer_size == len(tok)
    assert table.ids([IMAGE_PLACEHOLDER]) == list(table.image_ids)
    assert table.ids([]) == []
    with pytest.raises(ValueError, match="'<nope>' is not in the factorized vocabulary"):
        table.ids(["<EVENT_START>", "<nope>"])
    json_tok, json_table = tables["json", "smolvlm"]
    assert json_table.ids(["<EVENT_START>", "hello", " world", "<EVENT_END>"]) == expanded_ids(
        json_tok, ["<EVENT_START>", "hello world", "<EVENT_END>"], SMOLVLM
    )


def test_table_is_fast(tables: dict) -> None:
    import time

    _, table = tables["factorized", "internvl3"]
    enc = table.encoder
    events = [ev("mouse/raw", BASE + i * MS, {"last_x": i % 50 - 25, "last_y": 3}) for i in range(5000)]
    start = time.perf_counter()
    for event in events:
        table.ids(enc.encode(event, BASE))
    assert time.perf_counter() - start < 2.0  # ~10 us per event in practice


def test_generic_fast_folder_loads_as_auto_tokenizer_does(base_dir: Path, tmp_path: Path) -> None:
    """The direct load of a generic fast tokenizer folder (no AutoTokenizer import) is the same tokenizer."""
    from transformers import AutoTokenizer

    encoder = get_encoder("factorized")
    for folder in (base_dir, tmp_path / "expanded"):
        if folder != base_dir:
            expand_tokenizer(load_base_tokenizer(str(base_dir)), encoder, INTERNVL3).save_pretrained(folder)
        direct, auto = load_base_tokenizer(str(folder)), AutoTokenizer.from_pretrained(str(folder))
        assert type(direct) is type(auto)
        assert direct.get_vocab() == auto.get_vocab() and direct.get_added_vocab() == auto.get_added_vocab()
        assert (direct.pad_token_id, direct.eos_token_id) == (auto.pad_token_id, auto.eos_token_id)
        text = "hello <|endoftext|> " + "".join(encoder.vocab()[:20])
        assert direct(text)["input_ids"] == auto(text)["input_ids"]
        direct.save_pretrained(tmp_path / "a")
        auto.save_pretrained(tmp_path / "b")
        for name in ("tokenizer.json", "tokenizer_config.json"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
