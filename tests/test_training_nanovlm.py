"""owa_builders.training.nanovlm: NanoVLMDataset / NanoVLMIterableDataset items in nanoVLM's contract,
NanoVLMCollator (left padding as nanoVLM's VQACollator), layout checks, DataLoader workers.

The FSL dataset is built the way the README tells nanoVLM users to: from a base tokenizer that already
has nanoVLM's extra tokens (``<|image|>``, ``<|global_image|>``), one frame = ``<|global_image|>`` +
``MP`` x ``<|image|>`` (one tile). ``TileProcessor`` is a nanoVLM-style image processor written from
nanoVLM's documented behaviour: resize so both sides are multiples of the tile size (longest side at
most ``max_size``), split into tiles, a global view first when there is more than one tile, return
``(tiles, (rows, cols))``.
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import datasets  # noqa: E402
from test_training_transforms import frame_index, hwc, image_run_positions  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import owa_builders  # noqa: E402,F401  (registers the builders)
from owa_builders.demo.recordings import frame_index_of  # noqa: E402
from owa_builders.demo.tokenizer import write_example_tokenizer  # noqa: E402
from owa_builders.training.frames import FrameLoadError  # noqa: E402
from owa_builders.training.nanovlm import (  # noqa: E402
    NanoVLMCollator,
    NanoVLMDataset,
    NanoVLMIterableDataset,
    NanoVLMLayoutError,
    NanoVLMSkipWarning,
    shift_labels,
)
from owa_builders.training.transforms import IGNORE_INDEX, HFImageProcessor, tokenizer_dir_of  # noqa: E402
from owa_fsl.tokenizer import FslTokens  # noqa: E402

datasets.disable_progress_bars()
MP = 16  # nanoVLM's mp_image_token_length in these tests
NANOVLM_EXTRA = {
    "image_token": "<|image|>",
    "global_image_token": "<|global_image|>",
    "r1c1": "<row_1_col_1>",
}
KEYS = {"images", "input_ids", "attention_mask", "labels"}


class TileProcessor:
    """nanoVLM-style image processor (module docstring): PIL image -> ``(tiles (n, 3, t, t) in [0, 1], (rows, cols))``."""

    def __init__(self, tile: int, max_size: int) -> None:
        self.tile, self.max_size = tile, max_size

    def __call__(self, image: Any) -> tuple[Any, tuple[int, int]]:
        w, h = image.size
        t = self.tile
        long, short = max(w, h), min(w, h)
        new_long = min(self.max_size, math.ceil(long / t) * t)
        new_short = max(t, math.ceil(short * new_long / long / t) * t)
        size = (new_long, new_short) if w >= h else (new_short, new_long)
        arr = np.asarray(image.convert("RGB").resize(size), dtype=np.float32) / 255.0
        x = torch.from_numpy(arr).permute(2, 0, 1)
        rows, cols = x.shape[1] // t, x.shape[2] // t
        tiles = [x[:, r * t : (r + 1) * t, c * t : (c + 1) * t] for r in range(rows) for c in range(cols)]
        if len(tiles) > 1:
            glob = np.asarray(image.convert("RGB").resize((t, t)), dtype=np.float32) / 255.0
            tiles.insert(0, torch.from_numpy(glob).permute(2, 0, 1))
        return torch.stack(tiles), (rows, cols)


@pytest.fixture(scope="module")
def nano(current_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("nanovlm")
    write_example_tokenizer(base / "plain")
    # nanoVLM's get_tokenizer: the LM tokenizer + its extra special tokens; saved, it is the FSL base tokenizer
    nanovlm_tok = transformers.AutoTokenizer.from_pretrained(
        str(base / "plain"), extra_special_tokens=NANOVLM_EXTRA
    )
    nanovlm_tok.save_pretrained(str(base / "nanovlm-tokenizer"))
    kwargs = dict(
        data_dir=str(current_corpus), tokenizer_name=str(base / "nanovlm-tokenizer"), max_sequence_length=512,
        image_token="<|image|>", image_prefix=["<|global_image|>"], image_suffix=[], image_token_count=MP,
    )  # fmt: skip

    def load(streaming: bool = False) -> Any:
        extra = {} if streaming else {"cache_dir": str(base / "cache")}
        return datasets.load_dataset("owa_builders/fsl", "fsl-smolvlm", split="train", streaming=streaming,
                                     **kwargs, **extra)  # fmt: skip

    ds = load()
    tokens_dir = tokenizer_dir_of(ds)
    tokens = FslTokens.load(tokens_dir)
    # nanoVLM's model tokenizer, made the way its get_tokenizer does, from the dataset's expanded tokenizer
    model_tok = transformers.AutoTokenizer.from_pretrained(tokens_dir, extra_special_tokens=NANOVLM_EXTRA)
    return {
        "ds": ds,
        "load": load,
        "root": str(current_corpus),
        "tokens_dir": tokens_dir,
        "tokens": tokens,
        "model_tok": model_tok,
        "plain_dir": str(base / "plain"),
        "nano": NanoVLMDataset(
            ds,
            current_corpus,
            tokens_dir,
            TileProcessor(32, 32),
            mp_image_token_length=MP,
            model_tokenizer=model_tok,
        ),  # fmt: skip
    }


def expected_shifted_labels(row: dict[str, Any], image_run: tuple[int, ...]) -> list[int]:
    """Spelled out: target of position t = input_ids[t + 1], -100 where that is inside an image run; last -100."""
    n = sum(row["attention_mask"])
    ids = row["input_ids"][:n]
    image = image_run_positions(ids, image_run)
    return [IGNORE_INDEX if (t + 1 >= n or t + 1 in image) else ids[t + 1] for t in range(n)]


def check_frames(root: str, row: dict[str, Any], images: list[Any]) -> None:
    assert len(images) == len(row["images"])
    for ref, tiles in zip(row["images"], images):
        assert frame_index_of(hwc(tiles[0])) == frame_index(root, ref["uri"], ref["pts_ns"]), ref


# -- the item contract -----------------------------------------------------------------------------------------
def test_items_follow_the_nanovlm_contract(nano: dict[str, Any]) -> None:
    ds, ds_nano, tokens = nano["ds"], nano["nano"], nano["tokens"]
    run = tuple(tokens.table.image_ids)
    image_id = tokens.table.token_to_id["<|image|>"]
    assert run == (tokens.table.token_to_id["<|global_image|>"],) + (image_id,) * MP
    assert ds_nano.image_token_id == image_id == nano["model_tok"].image_token_id
    assert len(ds_nano) == len(ds) > 4
    assert any(sum(r) < 512 for r in ds["attention_mask"])  # rows with padding to strip
    supervised: Counter[str] = Counter()
    for idx in range(len(ds)):
        row, item = ds[idx], ds_nano[idx]
        assert set(item) == KEYS
        n = sum(row["attention_mask"])
        assert row["attention_mask"] == [1] * n + [0] * (512 - n)
        for key in ("input_ids", "attention_mask", "labels"):
            assert item[key].dtype == torch.long and item[key].shape == (n,)
        assert item["input_ids"].tolist() == row["input_ids"][:n]  # unpadded
        assert item["attention_mask"].tolist() == [1] * n
        labels = item["labels"].tolist()
        assert labels == expected_shifted_labels(row, run)
        assert labels[-1] == IGNORE_INDEX and item["labels"][:-1].ne(IGNORE_INDEX).any()
        # never an image id as a target; one image-token run of MP per frame
        assert not set(labels) & set(run)
        assert int((item["input_ids"] == image_id).sum()) == MP * len(row["images"])
        assert isinstance(item["images"], list) and len(item["images"]) == len(row["images"])
        for tiles in item["images"]:
            assert tiles.shape == (1, 3, 32, 32) and tiles.dtype == torch.float32
        check_frames(nano["root"], row, item["images"])
        supervised.update(tokens.table.id_to_token.get(i, "?") for i in labels if i != IGNORE_INDEX)
    # actions and event text are targets, the screen event's own tokens included
    for token in ("<EVENT_START>", "<EVENT_END>", "<SCREEN>", "<KEYBOARD>", "<MOUSE_RAW>"):
        assert supervised[token] > 0, token


def test_shift_labels_is_nanovlms_roll() -> None:
    labels = torch.tensor([IGNORE_INDEX, 5, 6, IGNORE_INDEX, 7])
    assert shift_labels(labels).tolist() == [5, 6, IGNORE_INDEX, 7, IGNORE_INDEX]
    assert shift_labels(torch.tensor([], dtype=torch.long)).tolist() == []


def test_hf_image_processor_gives_one_tile_per_frame(nano: dict[str, Any]) -> None:
    size = {"longest_edge": 32}
    proc = transformers.SmolVLMImageProcessorPil(do_image_splitting=False, size=size, max_image_size=size)
    for processor in (proc, HFImageProcessor(proc)):
        ds_nano = NanoVLMDataset(
            nano["ds"], nano["root"], nano["tokens"], processor, mp_image_token_length=MP
        )
        item = ds_nano[1]
        assert [tuple(t.shape) for t in item["images"]] == [(1, 3, 32, 32)] * len(nano["ds"][1]["images"])
        assert item["images"][0].min() < 0  # the processor's normalization, not ToTensor's [0, 1]
        assert torch.equal(item["input_ids"], nano["nano"][1]["input_ids"])


# -- layout checks ---------------------------------------------------------------------------------------------
def test_construction_checks_the_token_counts_and_the_tokenizer(nano: dict[str, Any]) -> None:
    ds, root, tokens = nano["ds"], nano["root"], nano["tokens"]
    with pytest.raises(
        NanoVLMLayoutError, match=r"16 x '<\|image\|>'.*mp_image_token_length=12.*image_token_count=12"
    ):
        NanoVLMDataset(ds, root, tokens, TileProcessor(32, 32), mp_image_token_length=12)
    # a tokenizer with other ids: nanoVLM's tokenizer made from the plain LM tokenizer, not the dataset's
    other = transformers.AutoTokenizer.from_pretrained(nano["plain_dir"], extra_special_tokens=NANOVLM_EXTRA)
    other.add_tokens(["<EVENT_END>"], special_tokens=True)
    with pytest.raises(NanoVLMLayoutError, match=r"other ids than the dataset's tokenizer") as e:
        NanoVLMIterableDataset(ds, root, tokens, TileProcessor(32, 32), mp_image_token_length=MP,
                               model_tokenizer=other)  # fmt: skip
    table = tokens.table.token_to_id
    assert f"'<EVENT_START>': None vs {table['<EVENT_START>']}" in str(e.value)
    assert f"'<EVENT_END>': {other.convert_tokens_to_ids('<EVENT_END>')} vs {table['<EVENT_END>']}" in str(
        e.value
    )
    wrong = transformers.AutoTokenizer.from_pretrained(
        nano["tokens_dir"], extra_special_tokens={"image_token": "<|global_image|>"}
    )
    with pytest.raises(NanoVLMLayoutError) as e:
        NanoVLMDataset(
            ds, root, tokens, TileProcessor(32, 32), mp_image_token_length=12, model_tokenizer=wrong
        )
    message = str(e.value)  # every problem at once
    assert "image_token is '<|global_image|>'" in message and "image_token_id is" in message
    assert "mp_image_token_length=12" in message
    with pytest.raises(ValueError, match="mp_image_token_length"):
        NanoVLMDataset(ds, root, tokens, TileProcessor(32, 32), mp_image_token_length=0)
    with pytest.raises(TypeError, match="map-style"):
        NanoVLMDataset(
            nano["load"](streaming=True), root, tokens, TileProcessor(32, 32), mp_image_token_length=MP
        )


def test_frames_split_into_tiles_are_a_clear_error_or_a_counted_skip(nano: dict[str, Any]) -> None:
    ds, root, tokens = nano["ds"], nano["root"], nano["tokens"]
    tiled = TileProcessor(32, 64)  # 64x48 frames -> 2x2 tiles + a global view
    strict = NanoVLMDataset(ds, root, tokens, tiled, mp_image_token_length=MP)
    with pytest.raises(NanoVLMLayoutError) as e:
        strict[0]
    message = str(e.value)
    assert message.startswith(f"row 0 of the dataset (episode_path={ds[0]['episode_path']!r}")
    assert "frame 0: the image processor gave 5 tile(s)" in message and "5 x 16 image tokens" in message
    # 2 tiles per frame expected (32 = 2 x 16) but frames give 1
    two = NanoVLMDataset(ds, root, tokens, TileProcessor(32, 32), mp_image_token_length=8)
    assert two.tiles_per_frame == 2
    with pytest.raises(NanoVLMLayoutError, match="gave 1 tile"):
        two[0]
    lenient = NanoVLMDataset(ds, root, tokens, tiled, mp_image_token_length=MP, on_bad_row="skip")
    with pytest.warns(NanoVLMSkipWarning, match="row 2 of the dataset"):
        assert lenient[2] is None
    assert lenient.skipped == 1


def test_missing_videos_name_the_row_or_are_skipped(nano: dict[str, Any], tmp_path: Path) -> None:
    ds, tokens = nano["ds"], nano["tokens"]
    with pytest.raises(FrameLoadError, match=r"in row 3 of the dataset \(episode_path="):
        NanoVLMDataset(ds, tmp_path, tokens, TileProcessor(32, 32), mp_image_token_length=MP)[3]
    lenient = NanoVLMDataset(ds, tmp_path, tokens, TileProcessor(32, 32), mp_image_token_length=MP,
                             on_bad_row="skip")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [lenient[i] for i in range(3)]
    assert items == [None, None, None] and lenient.skipped == 3
    assert [type(w.message) for w in caught] == [NanoVLMSkipWarning] * 3


# -- the collator ----------------------------------------------------------------------------------------------
def _item(ids: list[int], labels: list[int], images: int = 0) -> dict[str, Any]:
    return {
        "images": [torch.full((1, 3, 2, 2), float(i)) for i in range(images)],
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.ones(len(ids), dtype=torch.long),
        "labels": torch.tensor(labels),
    }


def test_collator_left_pads_and_skips_none() -> None:
    a, b = _item([5, 6, 7], [6, 7, -100], images=2), _item([8], [-100])
    out = NanoVLMCollator(pad_id=1)([a, None, b])
    assert out["input_ids"].tolist() == [[5, 6, 7], [1, 1, 8]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert out["labels"].tolist() == [[6, 7, -100], [-100, -100, -100]]
    assert out["images"] == [a["images"], []] and out["images"][0][1] is a["images"][1]
    # max_length: longer items dropped (warned, counted), the rest left-padded to max_length
    collator = NanoVLMCollator(pad_id=1, max_length=2)
    with pytest.warns(
        NanoVLMSkipWarning, match=r"dropped 1 item\(s\) longer than max_length=2 \(lengths \[3\]\)"
    ):
        out = collator([a, b])
    assert out["input_ids"].tolist() == [[1, 8]] and out["labels"].tolist() == [[-100, -100]]
    assert collator.dropped == 1
    assert NanoVLMCollator(0)([None, None]) == {
        "input_ids": [],
        "attention_mask": [],
        "labels": [],
        "images": [],
    }
    with pytest.raises(ValueError, match="differ in length"):
        NanoVLMCollator(0)([{**a, "labels": torch.tensor([1])}])


def test_collator_on_real_items(nano: dict[str, Any]) -> None:
    items = [nano["nano"][i] for i in range(3)]
    out = NanoVLMCollator(nano["nano"].pad_id)([items[0], None, items[1], items[2]])
    length = max(len(i["input_ids"]) for i in items)
    assert out["input_ids"].shape == out["labels"].shape == out["attention_mask"].shape == (3, length)
    for b, item in enumerate(items):
        k = len(item["input_ids"])
        assert torch.equal(out["input_ids"][b, length - k :], item["input_ids"])
        assert out["input_ids"][b, : length - k].eq(nano["nano"].pad_id).all()
        assert torch.equal(out["labels"][b, length - k :], item["labels"])
        assert out["labels"][b, : length - k].eq(IGNORE_INDEX).all()
        assert out["attention_mask"][b].sum() == k
        assert len(out["images"][b]) == len(item["images"])


# -- DataLoader workers: map-style and streaming --------------------------------------------------------------
def _unpadded(batch: dict[str, Any]) -> list[tuple[tuple[int, ...], tuple[int, ...], int]]:
    out = []
    for ids, mask, labels, images in zip(batch["input_ids"], batch["attention_mask"], batch["labels"],
                                         batch["images"]):  # fmt: skip
        keep = mask.bool()
        out.append((tuple(ids[keep].tolist()), tuple(labels[keep].tolist()), len(images)))
    return out


def test_map_style_dataloader_with_workers(nano: dict[str, Any]) -> None:
    ds_nano = nano["nano"]
    direct = [ds_nano[i] for i in range(len(ds_nano))]
    loader = DataLoader(ds_nano, batch_size=3, num_workers=2, collate_fn=NanoVLMCollator(ds_nano.pad_id))
    got = [row for batch in loader for row in _unpadded(batch)]
    want = [(tuple(i["input_ids"].tolist()), tuple(i["labels"].tolist()), len(i["images"])) for i in direct]
    assert got == want  # same items, same order
    assert [x for x in ds_nano.iter_for_worker()][1]["input_ids"].tolist() == direct[1]["input_ids"].tolist()


@pytest.mark.parametrize("source", ["streaming", "list"])
def test_iterable_dataset_with_workers_gives_every_row_once(nano: dict[str, Any], source: str) -> None:
    rows = nano["load"](streaming=True) if source == "streaming" else list(nano["ds"])
    if source == "streaming":
        assert isinstance(rows, datasets.IterableDataset) and rows.num_shards == 3
    stream = NanoVLMIterableDataset(rows, nano["root"], nano["tokens_dir"], TileProcessor(32, 32),
                                    mp_image_token_length=MP)  # fmt: skip
    loader = DataLoader(stream, batch_size=2, num_workers=2, collate_fn=NanoVLMCollator(stream.pad_id))
    got: list[tuple] = []
    for batch in loader:
        got.extend(_unpadded(batch))
    ds_nano = nano["nano"]
    want = [(tuple(i["input_ids"].tolist()), tuple(i["labels"].tolist()), len(i["images"])) for i in ds_nano]
    assert Counter(got) == Counter(want)
    # pixels too: one streamed item against the map-style one with the same ids
    first = next(iter(stream))
    match = next(i for i in ds_nano if torch.equal(i["input_ids"], first["input_ids"]))
    assert all(torch.equal(a, b) for a, b in zip(first["images"], match["images"]))


def test_datasets_pickle_small_and_offer_what_nanovlm_reads(nano: dict[str, Any]) -> None:
    ds_nano = NanoVLMDataset(nano["ds"], nano["root"], nano["tokens_dir"], TileProcessor(32, 32),
                             mp_image_token_length=MP)  # fmt: skip
    blob = pickle.dumps(ds_nano)
    again = pickle.loads(blob)
    assert again._items._tokens is None  # the tokenizer is re-loaded lazily, not shipped to workers
    assert torch.equal(again[2]["labels"], ds_nano[2]["labels"])
    # what nanoVLM's ConstantLengthDataset reads
    assert again.dataset is not None and again.mp_image_token_length == MP
    assert again.tokenizer.pad_token_id == ds_nano.pad_id == nano["tokens"].pad_id
    assert len(again.tokenizer) == len(nano["tokens"].tokenizer)
    assert "NanoVLMDataset(" in repr(again) and "mp_image_token_length=16" in repr(again)
