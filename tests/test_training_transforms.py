"""owa_builders.training.transforms: FslTransform, EventTransform, BinnedTransform on real datasets built
with load_dataset from generated recordings (frames decoded from the real videos; every frame
shows its own index, read back with ``frame_index_of``).

Helpers here (``build_fsl``, ``expected_labels``, ...) are shared with test_torch.py.
"""

from __future__ import annotations

import os
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import datasets  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import owa_builders  # noqa: E402,F401  (registers the builders)
from owa_builders.demo.recordings import frame_index_of  # noqa: E402
from owa_builders.demo.tokenizer import write_example_tokenizer  # noqa: E402
from owa_builders.training.transforms import (  # noqa: E402
    IGNORE_INDEX,
    BinnedTransform,
    EventTransform,
    FslTransform,
    ToTensor,
    apply_transform,
    event_from_mcap_message,
    fsl_labels,
    tokenizer_dir_of,
)
from owa_event.events import Event  # noqa: E402
from owa_fsl.encoders import IMAGE_PLACEHOLDER, get_encoder  # noqa: E402
from owa_fsl.tokenizer import FslTokens  # noqa: E402

datasets.disable_progress_bars()
MS = 1_000_000
WIDTH, HEIGHT = 64, 48  # generate_corpus's default frame size


# -- shared helpers --------------------------------------------------------------------------------------------
class CountingProcessor:
    """A picklable image processor hook: counts its calls; with ``size`` = (h, w) its output is
    ``(n, 3, h, w)`` filled with ``n / 100`` (so a test can tell it ran, even in a worker)."""

    def __init__(self, size: tuple[int, int] | None = None) -> None:
        self.size = size
        self.calls = 0

    def __call__(self, frames: list[Any]) -> Any:
        self.calls += 1
        if self.size is None:
            return ToTensor()(frames)
        return torch.full((len(frames), 3, *self.size), len(frames) / 100)


@cache
def video_pts_ms(path: str) -> tuple[int, ...]:
    """The pts (ms) of every frame of a video, in order: frame i is the i-th."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        return tuple(sorted(p.pts for p in container.demux(stream) if p.pts is not None))


def frame_index(root: Path | str, uri: str, pts_ns: int) -> int:
    """The index of the frame at ``pts_ns`` in ``root/uri`` (its position among the video's pts)."""
    return video_pts_ms(os.path.join(str(root), uri)).index(pts_ns // MS)


def hwc(frame: Any) -> np.ndarray:
    """A frame as an (H, W, 3) array on the 0..255 scale (from PIL, HWC/CHW arrays or tensors)."""
    if hasattr(frame, "convert") and not hasattr(frame, "shape"):
        return np.asarray(frame.convert("RGB"))
    arr = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = arr * 255.0
    return arr


def make_frame_checker(root: Path | str):
    def check(images: list[dict[str, Any]], frames: Any) -> None:
        assert len(frames) == len(images)
        for img, frame in zip(images, frames):
            assert frame_index_of(hwc(frame)) == frame_index(root, img["uri"], img["pts_ns"]), img

    return check


def expected_labels(row: dict[str, Any], image_ids: set[int]) -> list[int]:
    """The labels spelled out: -100 at padding and at every position inside an image token run."""
    ids, mask = row["input_ids"], row["attention_mask"]
    return [IGNORE_INDEX if (m == 0 or i in image_ids) else i for i, m in zip(ids, mask)]


def image_run_positions(ids: list[int], run: tuple[int, ...]) -> set[int]:
    """Positions covered by exact occurrences of ``run`` (one frame's full expansion)."""
    out, i, n = set(), 0, len(run)
    while i <= len(ids) - n:
        if tuple(ids[i : i + n]) == run:
            out.update(range(i, i + n))
            i += n
        else:
            i += 1
    return out


def row_key(row: dict[str, Any]) -> tuple:
    return (row["episode_path"], int(row["interval_idx"]), int(row["base_ns"]))


def build_fsl(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """fsl-smolvlm (max_sequence_length 1024, local tokenizer) on ``root``; the cache dir is
    fixed per session so a second module reuses the prepared dataset."""
    base = tmp_path_factory.getbasetemp()
    tok = base / "transforms-base-tokenizer"
    if not tok.exists():
        write_example_tokenizer(tok)
    kwargs = dict(data_dir=str(root), tokenizer_name=str(tok), max_sequence_length=1024)

    def load(streaming: bool = False) -> Any:
        extra = {} if streaming else {"cache_dir": str(base / "transforms-fsl-cache")}
        return datasets.load_dataset("owa_builders/fsl", "fsl-smolvlm", split="train", streaming=streaming,
                                     **kwargs, **extra)  # fmt: skip

    ds = load()
    tokens_dir = tokenizer_dir_of(ds)
    tokens = FslTokens.load(tokens_dir)
    return {
        "ds": ds,
        "root": str(root),
        "tokens_dir": tokens_dir,
        "tokens": tokens,
        "image_ids": set(tokens.table.image_ids),
        "image_run": tuple(tokens.table.image_ids),
        "transform": FslTransform(str(root), tokens_dir),
        "load": load,
        "check_frames": make_frame_checker(root),
    }


def assert_fsl_batch(out: dict[str, Any], rows: list[dict[str, Any]], fsl: dict[str, Any]) -> None:
    """A transformed batch (output="torch") against its raw rows."""
    n = len(rows)
    for key in ("input_ids", "attention_mask", "labels"):
        assert isinstance(out[key], torch.Tensor) and out[key].dtype == torch.long
        assert out[key].shape == (n, 1024)
    assert out["num_frames"] == [len(r["images"]) for r in rows]
    for b, row in enumerate(rows):
        assert out["input_ids"][b].tolist() == row["input_ids"]
        assert out["attention_mask"][b].tolist() == row["attention_mask"]
        labels = out["labels"][b].tolist()
        assert labels == expected_labels(row, fsl["image_ids"])
        # -100 exactly at padding and at the image runs (prefix, tokens, suffix of every frame)
        masked = {i for i, v in enumerate(labels) if v == IGNORE_INDEX}
        pad = {i for i, m in enumerate(row["attention_mask"]) if m == 0}
        runs = image_run_positions(row["input_ids"], fsl["image_run"])
        assert len(runs) == len(row["images"]) * len(fsl["image_run"])
        assert masked == pad | runs
        pv = out["pixel_values"][b]
        assert pv.shape == (len(row["images"]), 3, HEIGHT, WIDTH) and pv.dtype == torch.float32
        assert 0.0 <= pv.min() and pv.max() <= 1.0
        fsl["check_frames"](row["images"], pv)


@pytest.fixture(scope="module")
def fsl(current_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_fsl(current_corpus, tmp_path_factory)


@pytest.fixture(scope="module")
def events(current_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> datasets.Dataset:
    cache = tmp_path_factory.mktemp("transforms-event-cache")
    return datasets.load_dataset(
        "owa_builders/event", data_dir=str(current_corpus), cache_dir=str(cache), split="train"
    )


def sample_event_rows(events: datasets.Dataset, per_topic: int = 6) -> datasets.Dataset:
    """A few rows of every topic, screens of every episode included."""
    topics, episodes = events["topic"], events["episode_path"]
    picked: dict[tuple[str, str], list[int]] = {}
    for i, (topic, ep) in enumerate(zip(topics, episodes)):
        bucket = picked.setdefault((topic, ep) if topic == "screen" else (topic, ""), [])
        if len(bucket) < per_topic:
            bucket.append(i)
    return events.select(sorted(i for b in picked.values() for i in b))


# -- labels and ToTensor ---------------------------------------------------------------------------------------
def test_fsl_labels_on_lists_arrays_and_tensors() -> None:
    ids, mask, image = [5, 7, 8, 9, 6, 0, 0], [1, 1, 1, 1, 1, 0, 0], (7, 8, 9)
    want = [5, -100, -100, -100, 6, -100, -100]
    assert fsl_labels(ids, mask, image) == want
    assert fsl_labels([ids, ids], [mask, mask], image) == [want, want]
    assert fsl_labels(np.array(ids, np.int32), np.array(mask, np.int8), image).tolist() == want
    t = fsl_labels(torch.tensor([ids, ids], dtype=torch.int32), torch.tensor([mask, mask]), image)
    assert t.dtype == torch.long and t.tolist() == [want, want]
    # a pad id that also occurs as a real token is masked only where attention_mask is 0
    assert fsl_labels([0, 5, 0], [1, 1, 0], ()) == [0, 5, -100]


def test_to_tensor_accepts_pil_arrays_and_tensors() -> None:
    from PIL import Image

    hwc_u8 = np.zeros((4, 6, 3), np.uint8)
    hwc_u8[..., 0] = 255
    frames = [
        Image.fromarray(hwc_u8),
        hwc_u8,
        torch.from_numpy(hwc_u8).permute(2, 0, 1),
        hwc_u8.astype(np.float32) / 255,
    ]
    out = ToTensor()(frames)
    assert out.shape == (4, 3, 4, 6) and out.dtype == torch.float32
    assert torch.allclose(out[:, 0], torch.ones(4, 4, 6)) and out[:, 1:].abs().sum() == 0
    assert ToTensor(resize=(12, 8))(frames).shape == (4, 3, 8, 12)  # (width, height)
    assert ToTensor(resize=5)([hwc_u8]).shape == (1, 3, 5, 5)
    assert ToTensor()([]).shape == (0, 3, 0, 0)
    with pytest.raises(ValueError, match="resize"):
        ToTensor()([hwc_u8, np.zeros((8, 8, 3), np.uint8)])


def test_event_from_mcap_message_is_the_inverse_of_mcap_message_json() -> None:
    e = Event(
        "keyboard",
        123,
        "desktop/KeyboardEvent",
        b'{"event_type":"press","vk":65}',
        {"event_type": "press", "vk": 65},
    )
    back = event_from_mcap_message(e.mcap_message_json())
    assert back == e and back.data == e.data


# -- FslTransform ----------------------------------------------------------------------------------------------
def test_fsl_transform_pickles_small_and_works_after_a_round_trip(fsl: dict[str, Any]) -> None:
    transform = fsl["transform"]
    rows = fsl["ds"].select(range(2))[:]
    first = transform(rows)  # opens this process's loader
    blob = pickle.dumps(transform)
    assert len(blob) < 4000  # ids only: no tokenizer, no open video
    again = pickle.loads(blob)
    assert len(transform.loader.cache) > 0 and transform.loader.stats.frames > 0
    # the copy's loader has the same configuration, no open video and its own counters
    assert again.loader is not transform.loader and len(again.loader.cache) == 0
    assert again.loader.stats.frames == 0 and repr(again.loader) == repr(transform.loader)
    assert again.image_token_ids == transform.image_token_ids
    second = again(rows)
    for key in ("input_ids", "labels"):
        assert torch.equal(first[key], second[key])
    assert all(torch.equal(a, b) for a, b in zip(first["pixel_values"], second["pixel_values"]))
    assert repr(again).startswith("FslTransform(") and fsl["tokens_dir"] in repr(again)


def test_fsl_transform_batch_shapes_labels_and_frames(fsl: dict[str, Any]) -> None:
    ds = fsl["ds"]
    assert len(ds) > 8 and all(len(r) for r in ds["images"])
    rows = [ds[i] for i in range(6)]
    out = fsl["transform"](ds[:6])
    assert_fsl_batch(out, rows, fsl)
    assert out["episode_path"] == [r["episode_path"] for r in rows]  # metadata passed through
    assert out["base_ns"] == [r["base_ns"] for r in rows]


def test_set_transform_rows_through_dataloader_workers(fsl: dict[str, Any]) -> None:
    ds = fsl["load"]()  # a fresh object: set_transform changes it in place
    raw = list(fsl["ds"])
    ds.set_transform(fsl["transform"])
    row = ds[3]
    assert row["input_ids"].shape == (1024,) and row["pixel_values"].shape[1:] == (3, HEIGHT, WIDTH)
    loader = DataLoader(ds, batch_size=None, num_workers=2)  # one transformed row per item
    n = 0
    for i, got in enumerate(loader):
        want = raw[i]
        assert got["input_ids"].tolist() == want["input_ids"]
        assert got["labels"].tolist() == expected_labels(want, fsl["image_ids"])
        assert got["num_frames"] == len(want["images"])
        fsl["check_frames"](want["images"], got["pixel_values"])
        n += 1
    assert n == len(raw)


@pytest.mark.parametrize("output", ["numpy", "pil"])
def test_fsl_transform_without_torch_output_gives_lists_and_frames(fsl: dict[str, Any], output: str) -> None:
    transform = FslTransform(fsl["root"], fsl["tokens"], output=output)
    assert transform.pad_id == fsl["tokens"].pad_id
    rows = [fsl["ds"][i] for i in range(3)]
    out = transform(fsl["ds"][:3])
    assert "pixel_values" not in out
    for b, row in enumerate(rows):
        assert out["input_ids"][b] == row["input_ids"] and isinstance(out["input_ids"][b], list)
        assert out["labels"][b] == expected_labels(row, fsl["image_ids"])
        frames = out["frames"][b]
        if output == "pil":
            assert all(f.size == (WIDTH, HEIGHT) for f in frames)
        else:
            assert all(isinstance(f, np.ndarray) and f.shape == (HEIGHT, WIDTH, 3) for f in frames)
        fsl["check_frames"](row["images"], frames)


def test_fsl_transform_image_processor_hook_and_resize(fsl: dict[str, Any]) -> None:
    proc = CountingProcessor()
    transform = FslTransform(
        fsl["root"], fsl["tokens_dir"], output="pil", image_processor=proc, resize=(32, 24)
    )
    out = transform(fsl["ds"][:3])
    assert proc.calls == 3  # once per row, with that row's frames (as PIL images here)
    for pv, images in zip(out["pixel_values"], fsl["ds"][:3]["images"]):
        assert pv.shape == (len(images), 3, 24, 32)  # resize=(width, height), applied by the loader
        fsl["check_frames"](images, pv)
    # output="torch": the hook's result becomes a tensor
    marked = FslTransform(fsl["root"], fsl["tokens_dir"], image_processor=CountingProcessor(size=(2, 3)))
    pv = marked(fsl["ds"][:1])["pixel_values"][0]
    n = len(fsl["ds"][0]["images"])
    assert torch.equal(pv, torch.full((n, 3, 2, 3), n / 100))


def test_tokenizer_dir_of_finds_the_saved_tokenizer(fsl: dict[str, Any]) -> None:
    assert os.path.isdir(fsl["tokens_dir"]) and Path(fsl["tokens_dir"]).name == "tokenizer"
    assert tokenizer_dir_of(datasets.DatasetDict({"train": fsl["ds"]})) == fsl["tokens_dir"]
    with pytest.raises(ValueError, match="saved tokenizer"):
        tokenizer_dir_of(fsl["load"](streaming=True))
    with pytest.raises(TypeError):
        FslTransform(fsl["root"], 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output"):
        FslTransform(fsl["root"], fsl["tokens"], output="jax")  # type: ignore[arg-type]


# -- EventTransform --------------------------------------------------------------------------------------------
def test_event_transform_text_ids_and_frames(
    events: datasets.Dataset, fsl: dict[str, Any], current_corpus: Path
) -> None:
    rows = sample_event_rows(events)
    batch = rows[:]
    topics = set(batch["topic"])
    assert {"screen", "keyboard", "mouse", "mouse/raw", "window"} <= topics
    transform = EventTransform(current_corpus, tokens=fsl["tokens_dir"])
    out = pickle.loads(pickle.dumps(transform))(batch)
    encoder, table = fsl["tokens"].encoder, fsl["tokens"].table
    for i, message in enumerate(batch["mcap_message"]):
        event = event_from_mcap_message(message)
        assert out["topic"][i] == event.topic and out["timestamp_ns"][i] == event.timestamp_ns
        if encoder.supports(event.topic):
            tokens = encoder.encode(event, event.timestamp_ns)  # relative to its own time: offset 0
            assert out["text"][i] == "".join(tokens)
            assert out["input_ids"][i].tolist() == table.ids(tokens)
            assert encoder.decode(encoder.split_text(out["text"][i]), event.timestamp_ns,
                                  [("x", 0)])[0].timestamp_ns == event.timestamp_ns  # fmt: skip
        else:
            assert out["text"][i] == "" and out["input_ids"][i].numel() == 0
        if event.topic == "screen":
            assert IMAGE_PLACEHOLDER in out["text"][i]
            ref = event.fields["media_ref"]
            pv = out["pixel_values"][i]
            assert pv.shape == (3, HEIGHT, WIDTH)
            assert frame_index_of(hwc(pv)) == frame_index(current_corpus, ref["uri"], ref["pts_ns"])
        else:
            assert out["pixel_values"][i] is None


def test_event_transform_encoder_by_name_pil_frames_and_streaming(
    events: datasets.Dataset, current_corpus: Path
) -> None:
    rows = sample_event_rows(events, per_topic=2)[:]
    transform = EventTransform(current_corpus, encoder="hierarchical", output="pil")
    out = transform(rows)
    enc = get_encoder("hierarchical")
    assert "input_ids" not in out
    for i, message in enumerate(rows["mcap_message"]):
        e = event_from_mcap_message(message)
        assert out["text"][i] == ("".join(enc.encode(e, e.timestamp_ns)) if enc.supports(e.topic) else "")
        frame = out["frame"][i]
        if e.topic == "screen":
            assert frame.size == (WIDTH, HEIGHT)
            assert frame_index_of(hwc(frame)) == frame_index(current_corpus, e.fields["media_ref"]["uri"],
                                                             e.fields["media_ref"]["pts_ns"])  # fmt: skip
        else:
            assert frame is None
    # streaming: the same transform through apply_transform (IterableDataset.map, batched)
    streamed = datasets.load_dataset(
        "owa_builders/event", data_dir=str(current_corpus), split="train", streaming=True
    )
    screens = streamed.filter(lambda r: r["topic"] == "screen").take(5)
    got = list(apply_transform(screens, EventTransform(current_corpus), batch_size=2))
    assert len(got) == 5 and set(got[0]) == {
        "text",
        "pixel_values",
        "episode_path",
        "interval_idx",
        "topic",
        "timestamp_ns",
    }
    assert [frame_index_of(hwc(r["pixel_values"])) for r in got] == list(range(5))


# -- BinnedTransform -------------------------------------------------------------------------------------------
def binned_rows(events: datasets.Dataset, period_ns: int = 100 * MS, n_bins: int = 6) -> list[dict[str, Any]]:
    """Hand-made binned rows in the binned stage's schema from one episode's event rows: state =
    the latest screen (and keyboard/state) at or before the bin start, actions = input events inside."""
    ep = events[0]["episode_path"]
    evs = [
        event_from_mcap_message(m) for m, e in zip(events["mcap_message"], events["episode_path"]) if e == ep
    ]
    start = next(e.timestamp_ns for e in evs if e.topic == "screen")
    rows = []
    for k in range(n_bins):
        lo, hi = start + k * period_ns, start + (k + 1) * period_ns
        state = []
        for topic in ("screen", "keyboard/state"):
            before = [e for e in evs if e.topic == topic and e.timestamp_ns <= lo]
            if before:
                state.append(before[-1].mcap_message_json())
        actions = [e.mcap_message_json() for e in evs
                   if e.topic in ("keyboard", "mouse", "mouse/raw") and lo <= e.timestamp_ns < hi]  # fmt: skip
        rows.append({"episode_path": ep, "interval_idx": 0, "bin_idx": k, "timestamp_ns": lo, "state": state,
                     "actions": actions})  # fmt: skip
    rows.append({"episode_path": ep, "interval_idx": 0, "bin_idx": n_bins, "timestamp_ns": start + n_bins * period_ns,
                 "state": [], "actions": []})  # fmt: skip
    return rows


from owa_binned.stage import BINNED_SCHEMA  # noqa: E402


def test_binned_transform_on_the_binned_builder_through_a_dataloader(
    current_corpus: Path, tmp_path: Path
) -> None:
    """BinnedTransform on real `owa_builders/binned` rows, in DataLoader workers."""
    from torch.utils.data import DataLoader

    ds = datasets.load_dataset(
        "owa_builders/binned",
        data_dir=str(current_corpus),
        cache_dir=str(tmp_path / "c"),
        split="train",
        fps=5,
    )
    loader = DataLoader(
        ds.with_transform(BinnedTransform(current_corpus, output="numpy")),
        batch_size=4,
        num_workers=2,
        collate_fn=lambda rows: rows,
    )
    seen = 0
    for batch in loader:
        for row in batch:
            assert row["num_frames"] == len(row["frames"]) <= 1
            for frame in row["frames"]:
                assert frame.ndim == 3 and frame.shape[2] == 3
            seen += 1
    assert seen == ds.num_rows
    with_actions = [r for r in ds.with_transform(BinnedTransform(current_corpus, output="numpy"))
                    if r["text"]]  # fmt: skip
    assert with_actions and all(t.startswith("<EVENT_START>") for t in (r["text"] for r in with_actions))


def test_binned_transform_state_frames_and_action_text(events: datasets.Dataset, fsl: dict[str, Any],
                                                       current_corpus: Path) -> None:  # fmt: skip
    rows = binned_rows(events)
    assert any(r["actions"] for r in rows) and sum(1 for r in rows if r["state"]) >= 5
    ds = datasets.Dataset.from_list(rows, features=datasets.Features.from_arrow_schema(BINNED_SCHEMA))
    transform = pickle.loads(pickle.dumps(BinnedTransform(current_corpus, tokens=fsl["tokens"])))
    ds.set_transform(transform)
    encoder, table = fsl["tokens"].encoder, fsl["tokens"].table
    for k, raw in enumerate(rows):
        got = ds[k]
        assert got["bin_idx"] == k and got["base_ns"] == raw["timestamp_ns"] and got["interval_idx"] == 0
        acts = [event_from_mcap_message(m) for m in raw["actions"]]
        tokens = [t for a in acts for t in encoder.encode(a, raw["timestamp_ns"])]
        assert got["text"] == "".join(tokens)
        assert got["input_ids"].tolist() == table.ids(tokens)
        decoded = encoder.decode(encoder.split_text(got["text"]), got["base_ns"])
        base = got["base_ns"]
        assert [(d.topic, d.timestamp_ns) for d in decoded] == [
            (a.topic, encoder.quantize(a.timestamp_ns, base)) for a in acts
        ]
        screens = [event_from_mcap_message(m) for m in raw["state"]]
        screens = [s for s in screens if s.topic == "screen"]  # keyboard/state gives no frame
        assert got["num_frames"] == len(screens) == got["pixel_values"].shape[0]
        if screens:
            assert got["pixel_values"].shape[1:] == (3, HEIGHT, WIDTH)
        for s, pv in zip(screens, got["pixel_values"]):
            ref = s.fields["media_ref"]
            assert frame_index_of(hwc(pv)) == frame_index(current_corpus, ref["uri"], ref["pts_ns"])
    assert ds[len(rows) - 1]["text"] == "" and ds[len(rows) - 1]["num_frames"] == 0
    # DataLoader workers over the binned rows (each row alone: frame counts differ)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    assert [r["bin_idx"] for r in loader] == list(range(len(rows)))


def test_binned_transform_numpy_frames_and_earlier_actions(
    events: datasets.Dataset, current_corpus: Path
) -> None:
    rows = binned_rows(events, n_bins=3)
    row = dict(rows[1])
    row["timestamp_ns"] = (
        max(event_from_mcap_message(m).timestamp_ns for m in row["actions"]) + 1
    )  # after its actions
    out = BinnedTransform(current_corpus, output="numpy")({k: [v] for k, v in row.items()})
    first = min(event_from_mcap_message(m).timestamp_ns for m in row["actions"])
    assert out["base_ns"] == [first]  # the earliest action when it precedes the bin time
    assert isinstance(out["frames"][0][0], np.ndarray) and out["frames"][0][0].shape == (HEIGHT, WIDTH, 3)
    assert out["text"][0].startswith("<EVENT_START>")


# -- a model's own image processor, and life without torch -----------------------------------------------------
def test_hf_image_processor_adapter_in_fsl_transform(fsl: dict[str, Any]) -> None:
    transformers = pytest.importorskip("transformers")
    from owa_builders.training.batching import SmolVLMCollator
    from owa_builders.training.transforms import HFImageProcessor

    size = {"longest_edge": 64}
    proc = transformers.Idefics3ImageProcessor(do_image_splitting=False, size=size, max_image_size=size)
    transform = FslTransform(
        fsl["root"], fsl["tokens_dir"], output="pil", image_processor=HFImageProcessor(proc)
    )
    transform = pickle.loads(pickle.dumps(transform))
    ds = fsl["ds"].select(range(4))
    loader = DataLoader(ds.with_transform(transform), batch_size=2, num_workers=2,
                        collate_fn=SmolVLMCollator(transform.pad_id))  # fmt: skip
    for b, batch in enumerate(loader):
        n = [len(ds[2 * b + i]["images"]) for i in range(2)]
        assert batch["num_frames"].tolist() == n
        assert batch["pixel_values"].shape == (2, max(n), 3, 64, 64)


def test_import_and_non_torch_outputs_work_without_torch(current_corpus: Path, fsl: dict[str, Any]) -> None:
    """``import owa_builders`` (and its transforms/torch modules) never imports torch; numpy/pil
    transforms run with torch unimportable."""
    import subprocess
    import sys

    image = fsl["ds"][0]["images"][1]
    code = f"""
import sys
import importlib.machinery
class NoTorch(importlib.machinery.PathFinder):  # as if torch were not installed
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return None
        return super().find_spec(name, path, target)
sys.meta_path[:] = [NoTorch if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
try:
    import torch
    raise SystemExit("torch is still importable")
except ImportError:
    pass
import owa_builders, owa_builders.training.transforms, owa_builders.training.batching
from owa_builders.training.transforms import EventTransform, FslTransform
from owa_builders.demo.recordings import frame_index_of
from owa_event.events import Event
import orjson
fields = {{"utc_ns": 0, "source_shape": [64, 48], "shape": [64, 48], "media_ref": {image!r}}}
e = Event("screen", 1748854800000000000, "desktop/ScreenCaptured", orjson.dumps(fields), fields)
out = EventTransform({str(current_corpus)!r}, output="numpy")({{"mcap_message": [e.mcap_message_json()]}})
assert out["text"][0].count("<IMAGE>") == 1, out
print(frame_index_of(out["frame"][0]))
fsl = FslTransform({str(current_corpus)!r}, {fsl["tokens_dir"]!r}, output="numpy")
import datasets
row = datasets.Dataset.from_file({fsl["ds"].cache_files[0]["filename"]!r})[:1]
assert isinstance(fsl(row)["labels"][0], list)
assert "torch" not in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) == frame_index(current_corpus, image["uri"], image["pts_ns"]) == 1


# -- references outside the media root -------------------------------------------------------------------------
def _screen_batch(uris: list[str]) -> dict[str, list[Any]]:
    """Event rows (screen events with these media URIs, frame 1 each), as an event dataset has them."""
    import orjson

    rows = []
    for uri in uris:
        fields = {
            "utc_ns": 0,
            "source_shape": [64, 48],
            "shape": [64, 48],
            "media_ref": {"uri": uri, "pts_ns": 50 * MS},
        }
        rows.append(
            Event("screen", 1748854800000000000, "desktop/ScreenCaptured", orjson.dumps(fields), fields)
        )
    return {
        "mcap_message": [e.mcap_message_json() for e in rows],
        "episode_path": [f"ep{i}.mcap" for i in range(len(rows))],
        "interval_idx": [0] * len(rows),
    }


def test_transform_confines_uris_to_the_media_root_and_names_the_row(tmp_path: Path) -> None:
    from owa_builders.demo.recordings import write_video
    from owa_builders.training.frames import FrameLoadError

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    for folder in (root, outside):
        write_video(folder / "v.mkv", [i * 50 for i in range(4)], WIDTH, HEIGHT, gop=2)
    batch = _screen_batch(["v.mkv", str(outside / "v.mkv"), "../outside/v.mkv"])
    transform = EventTransform(root, output="numpy")
    with pytest.raises(FrameLoadError) as e:
        transform(batch)
    assert e.value.uri == str(outside / "v.mkv") and "absolute path" in e.value.reason
    assert e.value.row == "row 1 of the batch (episode_path='ep1.mcap', interval_idx=0)"
    assert e.value.row in str(e.value) and repr(e.value.uri) in str(e.value)
    again = pickle.loads(pickle.dumps(e.value))  # crosses DataLoader worker boundaries whole
    assert (again.row, again.ref_index, str(again)) == (e.value.row, e.value.ref_index, str(e.value))
    with pytest.raises(
        FrameLoadError,
        match=r", in row 0 of the batch \(episode_path='ep2.mcap', interval_idx=0\): the uri leaves",
    ):
        transform({k: v[2:] for k, v in batch.items()} | {"episode_path": ["ep2.mcap"], "interval_idx": [0]})
    trusted = EventTransform(root, output="numpy", allow_outside_root=True)
    out = pickle.loads(pickle.dumps(trusted))(batch)  # the opt-in survives pickling (DataLoader workers)
    assert [frame_index_of(f) for f in out["frame"]] == [1, 1, 1]


def test_transform_placeholders_have_a_real_size(tmp_path: Path) -> None:
    from owa_builders.demo.recordings import write_video
    from owa_builders.training.frames import FrameLoadError

    write_video(tmp_path / "v.mkv", [i * 50 for i in range(4)], WIDTH, HEIGHT, gop=2)
    batch = _screen_batch(["gone.mkv", "v.mkv"])
    lenient = EventTransform(tmp_path, output="numpy", on_missing="placeholder")
    gone, frame = lenient(batch)["frame"]  # the missing video's placeholder: the size of the call's frames
    assert gone.shape == frame.shape == (HEIGHT, WIDTH, 3) and not gone.any() and frame_index_of(frame) == 1
    alone = _screen_batch(["gone.mkv"])
    with pytest.raises(FrameLoadError, match="pass placeholder_size") as e:
        EventTransform(tmp_path, output="numpy", on_missing="placeholder")(alone)
    assert e.value.row == "row 0 of the batch (episode_path='ep0.mcap', interval_idx=0)"
    sized = EventTransform(tmp_path, on_missing="placeholder", placeholder_size=(WIDTH, HEIGHT))
    pv = pickle.loads(pickle.dumps(sized))(alone)["pixel_values"][0]
    assert tuple(pv.shape) == (3, HEIGHT, WIDTH) and float(pv.sum()) == 0.0
    assert sized.loader.stats.placeholders == 0  # the copy counted it, in its own loader
