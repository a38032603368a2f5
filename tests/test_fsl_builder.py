"""End to end through the real `datasets` library: load_dataset("owa_builders/fsl", ...).

The Hub is never reached: ``tokenizer_name`` is a local base tokenizer directory (the example
byte-level BPE); the image token layouts are the models' own (InternVL3, SmolVLM).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets
import pytest
from transformers import AutoTokenizer

import owa_builders  # noqa: F401  (registers the builders)
from owa_builders.demo.tokenizer import write_example_tokenizer
from owa_event.account import RecordingReport
from owa_event.errors import ConfigError
from owa_event.events import SCREEN, Event
from owa_event.pipeline import RecordingRef, kept_events
from owa_fsl.decode import decode_row
from owa_fsl.encoders import IMAGE_PLACEHOLDER, canonical
from owa_fsl.stage import fsl_schema
from owa_fsl.tokenizer import FSL_META, TOKENIZER_DIR, FslTokens

datasets.disable_progress_bars()

NAMES = ["fsl-internvl3", "fsl-smolvlm"]
#: The models' image token runs, spelled out (not taken from the package).
LAYOUTS = {
    "fsl-internvl3": ["<img>", *["<IMG_CONTEXT>"] * 256, "</img>"],
    "fsl-smolvlm": [
        "<fake_token_around_image>",
        "<global-img>",
        *["<image>"] * 64,
        "<fake_token_around_image>",
    ],
}
COLUMNS = list(fsl_schema().names)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_example_tokenizer(tmp_path_factory.mktemp("fsl-builder-tok") / "base"))


@pytest.fixture(scope="module")
def built(corpus: Path, tokenizer_dir: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both named configs built once on the corpus: name -> (DatasetDict, builder with the same args)."""
    cache = str(tmp_path_factory.mktemp("fsl-builder-cache"))
    out = {}
    for name in NAMES:
        kwargs = dict(data_dir=str(corpus), tokenizer_name=tokenizer_dir, cache_dir=cache)
        ds = datasets.load_dataset("owa_builders/fsl", name, **kwargs)
        builder = datasets.load_dataset_builder("owa_builders/fsl", name, **kwargs)
        out[name] = (ds, builder)
    return out


def rows(ds: datasets.Dataset | datasets.IterableDataset, columns: list[str] = COLUMNS) -> list[tuple]:
    return [tuple(r[c] for c in columns) for r in ds]


def image_runs(ids: list[int], run: list[int]) -> int:
    """Non-overlapping occurrences of ``run`` in ``ids``."""
    n, i, count = len(run), 0, 0
    while i <= len(ids) - n:
        if ids[i : i + n] == run:
            count, i = count + 1, i + n
        else:
            i += 1
    return count


def assert_image_layout(ds: datasets.Dataset, tokenizer: Any, layout: list[str]) -> None:
    """Every frame is exactly ``layout``; one run per entry of ``images``; no stray image token."""
    run = tokenizer.convert_tokens_to_ids(layout)
    for tok, tid in zip(layout, run):
        assert tokenizer(tok, add_special_tokens=False)["input_ids"] == [tid]  # one id each
    per_run = {tid: run.count(tid) for tid in set(run)}
    placeholder = tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)
    frames = 0
    for row in ds:
        ids, n_images = row["input_ids"], len(row["images"])
        assert image_runs(ids, run) == n_images
        for tid, k in per_run.items():
            assert ids.count(tid) == k * n_images
        assert placeholder not in ids  # <IMAGE> is always expanded
        frames += n_images
    assert frames > 0


def decoded_by_episode(
    ds: datasets.Dataset, tokens: FslTokens
) -> dict[tuple[str, int], list[tuple[Event, int]]]:
    out: dict[tuple[str, int], list[tuple[Event, int]]] = {}
    for row in ds:
        n = sum(row["attention_mask"])
        frames = [(img["uri"], img["pts_ns"]) for img in row["images"]]
        events = tokens.encoder.decode(tokens.table.to_tokens(row["input_ids"][:n]), row["base_ns"], frames)
        assert len(events) == row["n_events"]
        out.setdefault((row["episode_path"], row["interval_idx"]), []).extend(
            (e, row["base_ns"]) for e in events
        )
    return out


def assert_rows_are_the_kept_events(ds: datasets.Dataset, tokens: FslTokens, root: Path, config: Any) -> None:
    """Decoding the rows gives back exactly the event stage's kept events (at the resolution)."""
    got = decoded_by_episode(ds, tokens)
    want: dict[tuple[str, int], list[Event]] = {}
    for episode in sorted({k[0] for k in got}):
        for idx, e in kept_events(
            RecordingRef(str(root / episode), episode, str(root)), config, RecordingReport(episode)
        ):
            want.setdefault((episode, idx), []).append(e)
    assert got.keys() == want.keys()
    res = tokens.encoder.time_resolution_ns
    for key, events in want.items():
        assert len(got[key]) == len(events), key
        for (g, base), w in zip(got[key], events):
            assert (g.topic, canonical(g)) == (w.topic, canonical(w))
            assert g.timestamp_ns == base + (w.timestamp_ns - base) // res * res


# -- both configs --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_normal_and_streaming_give_identical_rows(
    built: dict, corpus: Path, tokenizer_dir: str, name: str
) -> None:
    ds, _ = built[name]
    streamed = datasets.load_dataset("owa_builders/fsl", name, data_dir=str(corpus), tokenizer_name=tokenizer_dir,
                                     streaming=True)  # fmt: skip
    assert set(ds) == set(streamed) == {"train", "test"}
    for split in ds:
        assert ds[split].num_rows > 0
        assert rows(ds[split]) == rows(streamed[split])
    assert streamed["train"].num_shards == 2  # one shard per recording
    assert set(ds["train"]["episode_path"]) == {"train/episode_000.mcap", "train/episode_002.mcap"}
    assert set(ds["test"]["episode_path"]) == {"test/episode_001.mcap", "test/episode_003.mcap"}


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_plain_datasets_types(built: dict, name: str) -> None:
    ds, _ = built[name]
    features = ds["train"].features
    assert features == datasets.Features.from_arrow_schema(fsl_schema())
    assert features["input_ids"] == datasets.List(datasets.Value("int32"))
    assert features["attention_mask"] == datasets.List(datasets.Value("int8"))
    assert features["images"] == datasets.List(
        {
            "uri": datasets.Value("string"),
            "pts_ns": datasets.Value("int64"),
            "utc_ns": datasets.Value("int64"),
            "source_shape": datasets.List(datasets.Value("int32")),
            "shape": datasets.List(datasets.Value("int32")),
        }
    )
    assert features["episode_path"] == datasets.Value("string")
    assert features["interval_idx"] == datasets.Value("int32")
    assert features["base_ns"] == datasets.Value("int64")
    assert features["n_events"] == datasets.Value("int32")
    assert "text" not in features

    def types(node: Any) -> set[str]:
        if isinstance(node, dict):
            return {v for k, v in node.items() if k == "_type"} | {t for v in node.values() for t in types(v)}
        return set()

    assert types(features.to_dict()) == {"List", "Value"}
    # the arrow file alone (no owa package needed) gives the same features
    again = datasets.Dataset.from_file(ds["train"].cache_files[0]["filename"])
    assert again.features == features and again.num_rows == ds["train"].num_rows


@pytest.mark.parametrize("name", NAMES)
def test_image_token_runs_are_the_model_layout(built: dict, name: str) -> None:
    ds, builder = built[name]
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(builder.cache_dir, TOKENIZER_DIR))
    for split in ds:
        assert_image_layout(ds[split], tokenizer, LAYOUTS[name])
    for row in ds["train"]:
        n = sum(row["attention_mask"])
        assert len(row["input_ids"]) == len(row["attention_mask"]) == 4096
        assert row["attention_mask"] == [1] * n + [0] * (4096 - n)
        assert row["input_ids"][n:] == [tokenizer.pad_token_id] * (4096 - n)
        assert {img["uri"] for img in row["images"]} == {row["episode_path"].replace(".mcap", ".mkv")}


@pytest.mark.parametrize("name", NAMES)
def test_expanded_tokenizer_is_saved_and_interprets_the_rows(built: dict, corpus: Path, name: str) -> None:
    ds, builder = built[name]
    path = os.path.join(builder.cache_dir, TOKENIZER_DIR)
    assert Path(ds["train"].cache_files[0]["filename"]).parent == Path(builder.cache_dir)
    saved = AutoTokenizer.from_pretrained(path)
    fresh = builder.stage.tokens  # rebuilt from the base tokenizer by a new builder: must give the same ids
    assert len(saved) == len(fresh.tokenizer) == fresh.table.tokenizer_size
    assert saved.get_added_vocab() == fresh.tokenizer.get_added_vocab()
    table = fresh.table.token_to_id
    assert saved.convert_tokens_to_ids(list(table)) == list(table.values())
    assert os.path.exists(os.path.join(path, FSL_META))
    loaded = FslTokens.load(path)
    assert loaded.describe() == fresh.describe()
    assert loaded.image_tokens.tokens() == LAYOUTS[name]
    assert_rows_are_the_kept_events(ds["train"], loaded, corpus, builder.config)


def test_num_proc_2_gives_the_same_rows_as_num_proc_1(
    built: dict, corpus: Path, tokenizer_dir: str, tmp_path: Path
) -> None:
    one, _ = built["fsl-internvl3"]
    two = datasets.load_dataset("owa_builders/fsl", "fsl-internvl3", data_dir=str(corpus), tokenizer_name=tokenizer_dir,
                                cache_dir=str(tmp_path / "two"), num_proc=2)  # fmt: skip
    assert set(one) == set(two)
    for split in one:
        assert rows(one[split]) == rows(two[split])


# -- config through load_dataset -----------------------------------------------------------------------------
def test_image_token_fields_overridden_by_load_dataset_kwargs(
    built: dict, corpus: Path, tokenizer_dir: str, tmp_path: Path
) -> None:
    kwargs = dict(data_dir=str(corpus), tokenizer_name=tokenizer_dir, cache_dir=str(tmp_path / "cache"))
    ds = datasets.load_dataset(
        "owa_builders/fsl", "fsl-internvl3", split="train", image_token_count=16, **kwargs
    )
    builder = datasets.load_dataset_builder(
        "owa_builders/fsl", "fsl-internvl3", image_token_count=16, **kwargs
    )
    assert builder.config.image_token_count == 16
    default_builder = built["fsl-internvl3"][1]
    assert builder.config_id != default_builder.config_id  # a separate cache entry
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(builder.cache_dir, TOKENIZER_DIR))
    assert_image_layout(ds, tokenizer, ["<img>", *["<IMG_CONTEXT>"] * 16, "</img>"])
    assert FslTokens.load(os.path.join(builder.cache_dir, TOKENIZER_DIR)).image_tokens.count == 16
    # smaller frames: more events fit in a sequence, and the data is the same events
    default = built["fsl-internvl3"][0]["train"]
    assert ds.num_rows < default.num_rows
    assert sum(ds["n_events"]) == sum(default["n_events"])


def test_debug_text_adds_a_text_column(corpus: Path, tokenizer_dir: str, cache_dir: str) -> None:
    ds = datasets.load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=str(corpus), tokenizer_name=tokenizer_dir,
                               cache_dir=cache_dir, split="test", debug_text=True)  # fmt: skip
    assert ds.features == datasets.Features.from_arrow_schema(fsl_schema(debug_text=True))
    assert ds.features["text"] == datasets.Value("string")
    builder = datasets.load_dataset_builder("owa_builders/fsl", "fsl-smolvlm", data_dir=str(corpus),
                                            tokenizer_name=tokenizer_dir, cache_dir=cache_dir, debug_text=True)  # fmt: skip
    tokenizer = builder.stage.tokens.tokenizer
    for row in ds:
        n = sum(row["attention_mask"])
        assert row["text"] == tokenizer.decode(row["input_ids"][:n], skip_special_tokens=False)
        assert row["text"].count("<EVENT_START>") == row["n_events"]
        assert row["text"].count("<global-img>") == len(row["images"])
        assert "<pad>" not in row["text"]


def test_missing_tokenizer_is_a_clear_error(corpus: Path, tmp_path: Path, cache_dir: str) -> None:
    missing = str(tmp_path / "no-such-tokenizer")
    with pytest.raises(ValueError, match=r"cannot load tokenizer '.*no-such-tokenizer'.*tokenizer_name="):
        datasets.load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=str(corpus), tokenizer_name=missing,
                              cache_dir=cache_dir)  # fmt: skip
    with pytest.raises(ValueError, match="cannot load tokenizer"):
        next(iter(datasets.load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=str(corpus),
                                        tokenizer_name=missing, split="train", streaming=True)))  # fmt: skip


def test_config_problems_fail_up_front_listing_every_problem(corpus: Path, cache_dir: str) -> None:
    with pytest.raises(ConfigError) as info:
        datasets.load_dataset(
            "owa_builders/fsl",
            "fsl-internvl3",
            data_dir=str(corpus),
            cache_dir=cache_dir,
            encoder_type="bogus",
            keep_topics=["screen", "window"],
            max_sequence_length=100,
            tokenizer_name="",
        )
    found = info.value.problems
    assert len(found) == 4, found
    message = str(info.value)
    for fragment in (
        "encoder_type 'bogus'",
        "'window' cannot be encoded",
        "cannot hold one frame",
        "tokenizer_name",
    ):
        assert fragment in message
    with pytest.raises(ConfigError, match="on_oversize"):
        datasets.load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=str(corpus), cache_dir=cache_dir,
                              on_oversize="truncate")  # fmt: skip


def test_the_real_shared_recording_builds(shared_recording: Path, tokenizer_dir: str, tmp_path: Path) -> None:
    data = tmp_path / "real"
    data.mkdir()
    for suffix in (".mcap", ".mkv"):
        os.symlink(shared_recording.with_suffix(suffix), data / shared_recording.with_suffix(suffix).name)
    kwargs = dict(data_dir=str(data), tokenizer_name=tokenizer_dir, cache_dir=str(tmp_path / "cache"))
    ds = datasets.load_dataset("owa_builders/fsl", "fsl-internvl3", split="train", **kwargs)
    builder = datasets.load_dataset_builder("owa_builders/fsl", "fsl-internvl3", **kwargs)
    assert ds.num_rows > 0 and set(ds["episode_path"]) == {"0.5.1.mcap"}
    images = [img for row in ds for img in row["images"]]
    assert images and {img["uri"] for img in images} == {"0.5.1.mkv"}
    pts = [img["pts_ns"] for img in images]
    assert pts == sorted(pts)
    tokens = FslTokens.load(os.path.join(builder.cache_dir, TOKENIZER_DIR))
    assert_rows_are_the_kept_events(ds, tokens, data, builder.config)
    kept = [e for _, e in kept_events(RecordingRef(str(data / "0.5.1.mcap"), "0.5.1.mcap", str(data)), builder.config, RecordingReport("0.5.1.mcap"))]  # fmt: skip
    assert sum(ds["n_events"]) == len(kept)
    assert len(images) == sum(e.topic == SCREEN for e in kept)
    # writer 0.5.1 records `mouse`, not `mouse/raw`: the default build keeps its mouse input
    builder.download_and_prepare()
    (report,) = builder.reports
    assert report.substitutions == {"mouse/raw": "mouse"}
    assert report.account.out["mouse"] > 0 and "mouse" not in report.account.dropped.get("topic_not_kept", {})
    assert sum(e.topic == "mouse" for e in kept) == report.account.out["mouse"]
    decoded = [e for row in ds for e in decode_row(row, tokens) if e.topic == SCREEN]
    originals = [e for e in kept if e.topic == SCREEN]
    assert len(decoded) == len(originals) > 0
    for got, want in zip(decoded, originals, strict=True):  # decoded screen messages carry every field
        assert got.fields == want.fields and set(got.fields) == {
            "utc_ns",
            "source_shape",
            "shape",
            "media_ref",
        }


def test_cache_fingerprint_follows_the_local_tokenizer_contents(tmp_path: Path, current_corpus: Path) -> None:
    import datasets as ds_lib

    from owa_builders.demo.tokenizer import write_example_tokenizer

    tok = write_example_tokenizer(tmp_path / "tok")

    def cache_dir() -> str:
        return ds_lib.load_dataset_builder(
            "owa_builders/fsl",
            "fsl-smolvlm",
            data_dir=str(current_corpus),
            tokenizer_name=str(tok),
            cache_dir=str(tmp_path / "c"),
        ).cache_dir

    first = cache_dir()
    assert cache_dir() == first
    config = tok / "tokenizer_config.json"
    config.write_text(config.read_text().replace('"<pad>"', '"<|endoftext|>"', 1))
    assert cache_dir() != first
