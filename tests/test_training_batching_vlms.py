"""Real transformers VLMs accept the collators' batches (owa_builders.training.batching).

For each FSL config, a batch of 2 rows from generated recordings goes through a real model class built
from a tiny config with random weights (no download): ``SmolVLMForConditionalGeneration`` and
``Idefics3ForConditionalGeneration`` for ``fsl-smolvlm``, ``InternVLForConditionalGeneration`` for
``fsl-internvl3``, frames through the model's own image processor class (built locally). The configs'
own image layouts are used unchanged: the tiny vision towers are sized so one frame gives exactly as
many features as the preset has image tokens (SmolVLM: (32 / 2)^2 patches / 2^2 = 64; InternVL:
(64 / 2)^2 patches x 0.5^2 = 256). The model's ``image_token_id`` is the id the dataset's expanded
tokenizer gives the image token, its vocabulary ``len(tokenizer)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import datasets  # noqa: E402
from test_training_transforms import build_fsl  # noqa: E402

import owa_builders  # noqa: E402,F401  (registers the builders)
from owa_builders.demo.tokenizer import write_example_tokenizer  # noqa: E402
from owa_builders.training.batching import InternVL3Collator, SmolVLMCollator, make_dataloader  # noqa: E402
from owa_builders.training.transforms import (  # noqa: E402
    FslTransform,
    HFImageProcessor,
    ToTensor,
    tokenizer_dir_of,
)
from owa_fsl.tokenizer import FslTokens  # noqa: E402

datasets.disable_progress_bars()
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=2048)  # fmt: skip
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)


@pytest.fixture(scope="module")
def smol(current_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_fsl(current_corpus, tmp_path_factory)  # fsl-smolvlm, max_sequence_length 1024, shared cache


@pytest.fixture(scope="module")
def internvl(current_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("vlm-internvl")
    write_example_tokenizer(base / "tokenizer")
    ds = datasets.load_dataset("owa_builders/fsl", "fsl-internvl3", data_dir=str(current_corpus), split="train",
                               tokenizer_name=str(base / "tokenizer"), max_sequence_length=1024,
                               cache_dir=str(base / "cache"))  # fmt: skip
    tokens_dir = tokenizer_dir_of(ds)
    return {
        "ds": ds,
        "root": str(current_corpus),
        "tokens_dir": tokens_dir,
        "tokens": FslTokens.load(tokens_dir),
    }


def two_rows(ds: datasets.Dataset) -> datasets.Dataset:
    """Two rows with frames, with different frame counts when the dataset has such (frame padding)."""
    counts = [len(images) for images in ds["images"]]
    first = next(i for i, n in enumerate(counts) if n)
    other = next((i for i, n in enumerate(counts) if n and n != counts[first]), first + 1)
    return ds.select([first, other])


def smolvlm_family(family: str, tokens: FslTokens) -> tuple[Any, Any]:
    """A tiny SmolVLM or Idefics3 model (32 px frames, 64 features each) and its image processor."""
    image_id = tokens.table.token_to_id[tokens.image_tokens.token]
    vision = dict(VISION, image_size=32, patch_size=2)
    text = dict(TEXT, model_type="llama", vocab_size=len(tokens.tokenizer), pad_token_id=tokens.pad_id)
    size = {"longest_edge": 32}
    if family == "smolvlm":
        config = transformers.SmolVLMConfig(image_token_id=image_id, scale_factor=2, vision_config=vision,
                                            text_config=text)  # fmt: skip
        model = transformers.SmolVLMForConditionalGeneration(config)
        proc = transformers.SmolVLMImageProcessorPil(do_image_splitting=False, size=size, max_image_size=size)
    else:
        config = transformers.Idefics3Config(image_token_id=image_id, scale_factor=2, vision_config=vision,
                                             text_config=text)  # fmt: skip
        model = transformers.Idefics3ForConditionalGeneration(config)
        proc = transformers.Idefics3ImageProcessorPil(
            do_image_splitting=False, size=size, max_image_size=size
        )
    return model, proc


def tiny_internvl(tokens: FslTokens) -> tuple[Any, Any]:
    """A tiny InternVL model (64 px frames, 256 features each) and its image processor (one tile per frame)."""
    config = transformers.InternVLConfig(
        image_token_id=tokens.table.token_to_id[tokens.image_tokens.token],
        downsample_ratio=0.5,
        vision_config=dict(VISION, image_size=[64, 64], patch_size=[2, 2]),
        text_config=dict(TEXT, model_type="qwen2", vocab_size=len(tokens.tokenizer)),
    )
    proc = transformers.GotOcr2ImageProcessorPil(crop_to_patches=False, size={"height": 64, "width": 64})
    return transformers.InternVLForConditionalGeneration(config), proc


def check_loss_and_gradients(model: Any, out: Any, batch: dict[str, Any]) -> None:
    """Finite loss equal to next-token cross-entropy on our (unshifted) labels; gradients reach
    both the text embeddings and the vision tower."""
    assert torch.isfinite(out.loss)
    logits = out.logits.float()
    manual = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(), ignore_index=-100
    )
    assert torch.allclose(out.loss, manual, rtol=1e-4, atol=1e-5)  # the model shifts the labels itself
    out.loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert grads and all(torch.isfinite(g).all() for g in grads.values())
    embed = model.get_input_embeddings().weight.grad
    assert embed is not None and embed.abs().sum() > 0
    vision = [g for name, g in grads.items() if "vision" in name and "embed" in name]
    assert vision and any(g.abs().sum() > 0 for g in vision)


# -- fsl-smolvlm -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["smolvlm", "idefics3"])
def test_smolvlm_family_trains_on_fsl_smolvlm_batches(smol: dict[str, Any], family: str) -> None:
    torch.manual_seed(0)
    tokens = smol["tokens"]
    model, proc = smolvlm_family(family, tokens)
    # the preset's layout is what the model's own processor writes for one unsplit image
    from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string

    layout = get_image_prompt_string(0, 0, model.model.image_seq_len, "<fake_token_around_image>", "<image>",
                                     "<global-img>")  # fmt: skip
    assert tokens.tokenizer(layout, add_special_tokens=False)["input_ids"] == list(tokens.table.image_ids)

    ds = two_rows(smol["ds"])
    transform = FslTransform(
        smol["root"], smol["tokens_dir"], output="pil", image_processor=HFImageProcessor(proc)
    )
    loader = make_dataloader(ds, transform=transform, batch_size=2, collate_fn=SmolVLMCollator(tokens.pad_id))
    batch = next(iter(loader))
    n_frames = batch["num_frames"].tolist()
    assert n_frames == [len(images) for images in ds["images"]] and min(n_frames) > 0
    assert batch["pixel_values"].shape == (2, max(n_frames), 3, 32, 32)
    out = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels", "pixel_values",
                                         "pixel_attention_mask")})  # fmt: skip
    image_tokens = (batch["input_ids"] == model.config.image_token_id).sum(dim=1).tolist()
    features = [f.shape[0] for f in out.image_outputs.pooler_output]  # per row: its frames' features
    assert image_tokens == features == [n * model.model.image_seq_len for n in n_frames]
    check_loss_and_gradients(model, out, batch)


def test_smolvlm_drops_all_zero_frames_so_the_collator_refuses_them(smol: dict[str, Any]) -> None:
    """The mismatch this suite found: the generated videos' frame 0 is black, ToTensor makes it all
    zeros, and SmolVLM takes an all-zero frame for padding. The collator now says so."""
    torch.manual_seed(0)
    tokens = smol["tokens"]
    model, _ = smolvlm_family("smolvlm", tokens)
    ds = smol["ds"]
    first = next(i for i, images in enumerate(ds["images"]) if images and images[0]["pts_ns"] == 0)
    transform = FslTransform(smol["root"], smol["tokens_dir"], image_processor=ToTensor(resize=32))
    rows = transform(ds[first : first + 1])
    sample = [{k: v[0] for k, v in rows.items()}]
    assert sample[0]["pixel_values"][0].abs().sum() == 0  # the black frame, as ToTensor gives it
    with pytest.raises(ValueError, match=r"row 0: frame\(s\) \[0\] have all pixel values 0.0"):
        SmolVLMCollator(tokens.pad_id)(sample)
    batch = SmolVLMCollator(tokens.pad_id, blank_frames="allow")(sample)
    with pytest.raises(ValueError, match="Image features and image tokens do not match"):
        model(
            **{k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "pixel_attention_mask")}
        )


# -- fsl-internvl3 ---------------------------------------------------------------------------------------------
def test_internvl_trains_on_fsl_internvl3_batches(internvl: dict[str, Any]) -> None:
    torch.manual_seed(0)
    tokens = internvl["tokens"]
    model, proc = tiny_internvl(tokens)
    ds = two_rows(internvl["ds"])
    transform = FslTransform(internvl["root"], internvl["tokens_dir"], output="pil",
                             image_processor=HFImageProcessor(proc))  # fmt: skip
    loader = make_dataloader(
        ds, transform=transform, batch_size=2, collate_fn=InternVL3Collator(tokens.pad_id)
    )
    batch = next(iter(loader))
    n_frames = batch["num_frames"].tolist()
    assert n_frames == [len(images) for images in ds["images"]] and min(n_frames) > 0
    assert batch["pixel_values"].shape == (sum(n_frames), 3, 64, 64)
    out = model(**batch)  # extra keys (num_frames) are accepted as they are
    features = out.image_outputs.pooler_output  # (frames of the batch, features per frame, hidden)
    assert features.shape[:2] == (sum(n_frames), tokens.image_tokens.count)
    image_tokens = (batch["input_ids"] == model.config.image_token_id).sum(dim=1).tolist()
    assert image_tokens == [n * features.shape[1] for n in n_frames]
    assert sum(image_tokens) == features.shape[0] * features.shape[1]
    check_loss_and_gradients(model, out, batch)
