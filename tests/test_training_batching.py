"""owa_builders.training.batching: collators (InternVL3, SmolVLM), DataLoaders over map-style and streaming
FSL datasets with workers, and splitting across ranks (DistributedSampler, split_dataset_by_node).

The end-to-end tests share one small FSL dataset (fsl-smolvlm, max_sequence_length 1024, the
local example tokenizer) built from the session's ``current_corpus`` (see test_transforms.py).
"""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import datasets  # noqa: E402
from test_training_transforms import (  # noqa: E402
    CountingProcessor,
    build_fsl,
    expected_labels,
    row_key,
)
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from owa_builders.training.batching import (  # noqa: E402
    InternVL3Collator,
    SmolVLMCollator,
    distributed_context,
    make_dataloader,
    set_epoch,
)
from owa_builders.training.transforms import IGNORE_INDEX, FslTransform, ToTensor  # noqa: E402

IMAGE_IDS = (7, 8, 9)


# -- collators on hand-made rows -------------------------------------------------------------------------------
def _row(ids: list[int], n_pad: int, frames: int, tag: int, hw: tuple[int, int] = (4, 6)) -> dict[str, Any]:
    """A transform-like row: ``frames`` frames whose pixels are all ``tag * 10 + frame`` / 255."""
    full = ids + [0] * n_pad
    mask = [1] * len(ids) + [0] * n_pad
    pv = torch.stack([torch.full((3, *hw), (tag * 10 + j) / 255.0) for j in range(frames)]) if frames else \
        torch.zeros((0, 3, *hw))  # fmt: skip
    return {
        "input_ids": torch.tensor(full),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(
            [IGNORE_INDEX if (m == 0 or i in IMAGE_IDS) else i for i, m in zip(full, mask)]
        ),
        "pixel_values": pv,
        "num_frames": frames,
        "episode_path": f"ep{tag}",
    }


def _rows() -> list[dict[str, Any]]:
    return [
        _row([1, 7, 8, 8, 9, 2, 7, 8, 8, 9, 3], 1, 2, 0),  # 12 tokens, 2 frames
        _row([4, 5, 6], 2, 0, 1),  # 5 tokens, no frame
        _row([7, 8, 8, 9, 1, 7, 8, 8, 9, 7, 8, 8, 9, 2], 0, 3, 2),  # 14 tokens, 3 frames
    ]


def _assert_text(batch: dict[str, Any], rows: list[dict[str, Any]], pad_id: int) -> None:
    n, length = len(rows), max(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["labels"].shape == (n, length)
    assert batch["input_ids"].dtype == batch["labels"].dtype == torch.long
    for b, r in enumerate(rows):
        k = len(r["input_ids"])
        assert batch["input_ids"][b, :k].tolist() == r["input_ids"].tolist()
        assert batch["input_ids"][b, k:].tolist() == [pad_id] * (length - k)
        assert batch["attention_mask"][b, k:].sum() == 0
        labels = batch["labels"][b].tolist()
        ids, mask = batch["input_ids"][b].tolist(), batch["attention_mask"][b].tolist()
        # -100 exactly at padding and image tokens, the ids everywhere else
        assert labels == [IGNORE_INDEX if (m == 0 or i in IMAGE_IDS) else i for i, m in zip(ids, mask)]


def test_internvl3_collator_concatenates_every_frame_of_the_batch() -> None:
    rows = _rows()
    batch = InternVL3Collator(pad_id=99)(rows)
    _assert_text(batch, rows, 99)
    assert batch["pixel_values"].shape == (5, 3, 4, 6)
    assert batch["num_frames"].tolist() == [2, 0, 3]
    tags = (batch["pixel_values"][:, 0, 0, 0] * 255).round().int().tolist()
    assert tags == [0, 1, 20, 21, 22]  # row order, then frame order
    assert "episode_path" not in batch


def test_smolvlm_collator_pads_frames_per_row_with_masks() -> None:
    rows = _rows()
    batch = SmolVLMCollator(pad_id=99, keep=("episode_path",), blank_frames="allow")(rows)
    _assert_text(batch, rows, 99)
    assert batch["pixel_values"].shape == (3, 3, 3, 4, 6)
    assert (
        batch["pixel_attention_mask"].shape == (3, 3, 4, 6)
        and batch["pixel_attention_mask"].dtype == torch.bool
    )
    assert batch["frame_mask"].tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    assert batch["num_frames"].tolist() == [2, 0, 3]
    assert torch.equal(batch["pixel_attention_mask"].all(dim=(-1, -2)), batch["frame_mask"])
    assert not batch["pixel_attention_mask"][~batch["frame_mask"]].any()
    tags = (batch["pixel_values"][:, :, 0, 0, 0] * 255).round().int().tolist()
    assert tags == [[0, 1, 0], [0, 0, 0], [20, 21, 22]]
    assert (
        batch["pixel_values"][0, 2].abs().sum() == 0 and batch["pixel_values"][1].abs().sum() == 0
    )  # zero padding
    assert batch["episode_path"] == ["ep0", "ep1", "ep2"]


def test_smolvlm_collator_refuses_all_zero_frames_unless_allowed() -> None:
    """SmolVLM/Idefics3 drop an all-zero frame as padding (test_training_torch_vlms.py shows the model
    failing on one), so the collator names it instead; frame 0 of row 0 below is all zeros."""
    rows = _rows()
    with pytest.raises(
        ValueError, match=r"row 0: frame\(s\) \[0\] have all pixel values 0.0.*blank_frames='allow'"
    ):
        SmolVLMCollator(pad_id=99)(rows)
    rows[0]["pixel_values"][0] = -1.0  # black as the model's processor normalizes it
    batch = SmolVLMCollator(pad_id=99)(rows)
    assert batch["frame_mask"].sum().item() == 5
    with pytest.raises(ValueError, match="blank_frames"):
        SmolVLMCollator(blank_frames="warn")  # type: ignore[arg-type]


def test_collators_without_any_frame_give_no_pixel_values() -> None:
    rows = [_row([1, 2], 0, 0, 0), _row([3], 1, 0, 1)]
    assert InternVL3Collator()(rows)["pixel_values"] is None
    out = SmolVLMCollator()(rows)
    assert out["pixel_values"] is None and out["pixel_attention_mask"] is None
    assert out["num_frames"].tolist() == [0, 0]


def test_collators_build_labels_and_pixel_values_when_rows_lack_them() -> None:
    frames = [np.full((4, 6, 3), 51, np.uint8), np.full((4, 6, 3), 102, np.uint8)]
    rows = [
        {"input_ids": [1, 7, 8, 9, 2, 0], "attention_mask": [1, 1, 1, 1, 1, 0], "frames": frames},
        {"input_ids": [3, 4], "attention_mask": [1, 1], "frames": []},
    ]
    proc = CountingProcessor()
    for collator in (InternVL3Collator(0, IMAGE_IDS, image_processor=proc), SmolVLMCollator(0, IMAGE_IDS)):
        batch = collator(rows)
        assert batch["labels"].tolist() == [[1, -100, -100, -100, 2, -100], [3, 4, -100, -100, -100, -100]]
        assert batch["num_frames"].tolist() == [2, 0]
    assert proc.calls == 1  # the hook: one call for the row with frames
    batch = SmolVLMCollator(0, IMAGE_IDS)(rows)  # default: ToTensor, [0, 1]
    assert torch.allclose(batch["pixel_values"][0, :, 0, 0, 0], torch.tensor([0.2, 0.4]))


def test_collator_rejects_inconsistent_rows() -> None:
    bad = _row([1, 7, 8, 9], 0, 2, 0)
    bad["num_frames"] = 3
    with pytest.raises(ValueError, match="num_frames is 3"):
        InternVL3Collator()([bad])
    a, b = _row([1], 0, 1, 0, hw=(4, 6)), _row([1], 0, 1, 1, hw=(8, 8))
    with pytest.raises(ValueError, match="different shapes"):
        SmolVLMCollator()([a, b])


def test_collators_pickle() -> None:
    for c in (
        InternVL3Collator(5, IMAGE_IDS, image_processor=ToTensor(8)),
        SmolVLMCollator(5, keep=("x",), blank_frames="allow"),
    ):
        again = pickle.loads(pickle.dumps(c))
        assert again.pad_id == 5
        assert torch.equal(again(_rows())["input_ids"], c(_rows())["input_ids"])


def test_distributed_context_defaults_to_one_process() -> None:
    assert distributed_context() == (0, 1)
    assert distributed_context(1, 2) == (1, 2)
    with pytest.raises(ValueError):
        distributed_context(2, 2)


# -- end to end on a real FSL dataset --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fsl(current_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_fsl(current_corpus, tmp_path_factory)


@pytest.mark.parametrize("collator_cls", [SmolVLMCollator, InternVL3Collator])
def test_map_style_dataloader_with_workers_and_collator(fsl: dict[str, Any], collator_cls: type) -> None:
    ds, transform = fsl["ds"], fsl["transform"]
    # ToTensor's frames: the generated videos' frame 0 is black, all zeros in [0, 1]
    extra = {"blank_frames": "allow"} if collator_cls is SmolVLMCollator else {}
    loader = make_dataloader(ds, transform=transform, collate_fn=collator_cls(transform.pad_id, **extra), batch_size=4,
                             num_workers=2)  # fmt: skip
    raw = list(ds)
    seen = 0
    for batch in loader:
        rows = raw[seen : seen + len(batch["input_ids"])]
        assert batch["input_ids"].shape == (len(rows), 1024)
        for b, row in enumerate(rows):
            assert batch["input_ids"][b].tolist() == row["input_ids"]
            assert batch["labels"][b].tolist() == expected_labels(row, fsl["image_ids"])
        n = batch["num_frames"].tolist()
        assert n == [len(r["images"]) for r in rows]
        if collator_cls is InternVL3Collator:
            assert batch["pixel_values"].shape == (sum(n), 3, 48, 64)
            per_row = torch.split(batch["pixel_values"], n)
        else:
            assert batch["pixel_values"].shape == (len(rows), max(n), 3, 48, 64)
            assert batch["pixel_attention_mask"].shape == (len(rows), max(n), 48, 64)
            assert batch["frame_mask"].sum(dim=1).tolist() == n
            per_row = [batch["pixel_values"][b, : n[b]] for b in range(len(rows))]
        for row, pv in zip(rows, per_row):
            fsl["check_frames"](row["images"], pv)
        seen += len(rows)
    assert seen == len(raw)


def test_streaming_dataset_dataloader_with_workers(fsl: dict[str, Any]) -> None:
    streamed = fsl["load"](streaming=True)
    assert isinstance(streamed, datasets.IterableDataset) and streamed.num_shards == 3
    transform = fsl["transform"]
    keep = ("episode_path", "interval_idx", "base_ns")
    loader = make_dataloader(streamed, transform=transform, batch_size=4, num_workers=2,
                             collate_fn=SmolVLMCollator(transform.pad_id, keep=keep, blank_frames="allow"))  # fmt: skip
    by_key = {row_key(r): r for r in fsl["ds"]}
    got: list[tuple] = []
    for batch in loader:
        keys = list(zip(*(batch[k] for k in keep)))
        n = batch["num_frames"].tolist()
        for b, key in enumerate(keys):
            row = by_key[key]
            assert batch["input_ids"][b].tolist() == row["input_ids"]
            assert batch["labels"][b].tolist() == expected_labels(row, fsl["image_ids"])
            assert n[b] == len(row["images"])
            fsl["check_frames"](row["images"], batch["pixel_values"][b, : n[b]])
        got.extend(keys)
    assert len(by_key) == len(fsl["ds"])
    assert Counter(got) == Counter(list(by_key))  # every row exactly once across the workers


@pytest.mark.parametrize("world_size", [2, 3])
def test_split_dataset_by_node_covers_every_row_once(fsl: dict[str, Any], world_size: int) -> None:
    streamed = fsl["load"](streaming=True)  # 3 shards: 2 ranks split by example, 3 ranks by shard
    parts = []
    for rank in range(world_size):
        loader = make_dataloader(streamed, rank=rank, world_size=world_size, batch_size=5, collate_fn=list)
        parts.append([row_key(r) for batch in loader for r in batch])
    assert all(parts)
    everything = [k for p in parts for k in p]
    assert Counter(everything) == Counter(row_key(r) for r in fsl["ds"])
    for rank in range(world_size):  # datasets' own function gives the same split
        split = datasets.distributed.split_dataset_by_node(streamed, rank=rank, world_size=world_size)
        assert [row_key(r) for r in split] == parts[rank]


@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sampler_partitions_a_map_style_dataset(fsl: dict[str, Any], shuffle: bool) -> None:
    ds = fsl["ds"]
    n = len(ds)
    indices = []
    for rank in range(2):
        loader = make_dataloader(
            ds, rank=rank, world_size=2, shuffle=shuffle, seed=3, batch_size=4, collate_fn=list
        )
        assert isinstance(loader.sampler, DistributedSampler) and loader.sampler.num_replicas == 2
        set_epoch(loader, 1)
        got = list(loader.sampler)
        assert len(got) == (n + 1) // 2
        assert [row_key(r) for batch in loader for r in batch] == [row_key(ds[i]) for i in got]
        indices.append(got)
    assert set(indices[0]) | set(indices[1]) == set(range(n))
    # disjoint except the rows DistributedSampler repeats to even out the ranks
    assert len(set(indices[0]) & set(indices[1])) == (2 - n % 2) % 2
    plain = DistributedSampler(ds, num_replicas=2, rank=0, shuffle=False)
    assert list(plain) == list(range(0, n, 2))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_get_the_transform_by_fork_or_pickle(fsl: dict[str, Any], context: str) -> None:
    """Spawned workers get the dataset and its transform by a real pickle round trip; forked ones a
    copy of the parent's, whose open videos the parent closed before forking."""
    if context not in torch.multiprocessing.get_all_start_methods():
        pytest.skip(f"no {context} start method here")
    ds, transform = fsl["ds"].select(range(8)), fsl["transform"]
    transform(ds[:2])  # the parent's loader has open videos when the workers start
    assert len(transform.loader.cache) > 0
    parent_frames = transform.loader.stats.frames
    loader = DataLoader(ds.with_transform(transform), batch_size=2, num_workers=2, multiprocessing_context=context,
                        collate_fn=InternVL3Collator(transform.pad_id))  # fmt: skip
    batches = list(loader)
    assert sum(len(b["input_ids"]) for b in batches) == 8
    for b, batch in enumerate(batches):
        rows = [ds[2 * b], ds[2 * b + 1]]
        for row, pv in zip(rows, torch.split(batch["pixel_values"], batch["num_frames"].tolist())):
            fsl["check_frames"](row["images"], pv)
    assert transform.loader.stats.frames == parent_frames  # the workers loaded with their own loaders
    transform(ds[:2])  # and the parent's loader still works after the fork


def test_image_processor_hook_in_workers(fsl: dict[str, Any]) -> None:
    ds = fsl["ds"].select(range(6))
    transform = FslTransform(fsl["root"], fsl["tokens_dir"], image_processor=CountingProcessor(size=(8, 12)))
    loader = make_dataloader(ds, transform=transform, collate_fn=InternVL3Collator(transform.pad_id), batch_size=3,
                             num_workers=2)  # fmt: skip
    for batch in loader:
        # CountingProcessor marks its output: every pixel is the number of frames it was given / 100
        n = batch["num_frames"].tolist()
        assert batch["pixel_values"].shape == (sum(n), 3, 8, 12)
        for count, pv in zip(n, torch.split(batch["pixel_values"], n)):
            assert torch.allclose(pv, torch.full_like(pv, count / 100))
