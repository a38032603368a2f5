"""The learning check's tiny VLA (owa_builders.training.tinyvla): causal, frames where the image tokens are."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from owa_builders.training.tinyvla import TinyVLA  # noqa: E402

IMAGE = 5  # the image token id in these tests
VOCAB = 20


def sequence(frames: int, tokens: int, text: int = 3) -> list[int]:
    """``text`` text tokens, then per frame a prefix (1), ``tokens`` image tokens, a suffix (2) and text."""
    ids = [10 + i % 5 for i in range(text)]
    for _ in range(frames):
        ids += [1] + [IMAGE] * tokens + [2] + [10 + i % 5 for i in range(text)]
    return ids


@pytest.mark.parametrize("tokens", [16, 12])  # a square count (patches) and not (the frame's summary)
def test_logits_are_causal_and_frames_matter_only_after_their_first_image_token(tokens: int) -> None:
    torch.manual_seed(0)
    model = TinyVLA(VOCAB, IMAGE, tokens, dim=16, heads=2, patch=2, max_len=128).eval()
    ids = torch.tensor([sequence(2, tokens)])
    size = model.frame_size
    frames = torch.rand(2, 3, size, size)
    with torch.no_grad():
        base = model(ids, frames)
        assert base.shape == (1, ids.shape[1], VOCAB)
        later = ids.clone()
        later[0, -1] = 11 if int(ids[0, -1]) != 11 else 12
        assert torch.equal(model(later, frames)[0, :-1], base[0, :-1])  # no position sees a later token
        other = frames.clone()
        other[1] = torch.rand(3, size, size)
        changed = (model(ids, other) - base).abs().amax(dim=-1)[0]
    second = ids[0].tolist().index(IMAGE, ids[0].tolist().index(2))  # first image token of frame 2
    assert changed[:second].max() == 0  # before the second frame: untouched
    assert (changed[second:] > 0).all()  # from its first image token on: it is seen


def test_frames_of_several_rows_go_to_their_own_rows() -> None:
    torch.manual_seed(0)
    model = TinyVLA(VOCAB, IMAGE, 16, dim=16, heads=2, patch=2, max_len=128).eval()
    ids = torch.tensor([sequence(1, 16) + [0] * 21, sequence(2, 16)])  # row 0 right-padded
    frames = torch.rand(3, 3, 8, 8)  # row 0: frame 0; row 1: frames 1, 2 (the collator's order)
    with torch.no_grad():
        base = model(ids, frames)
        other = frames.clone()
        other[0] = torch.rand(3, 8, 8)
        out = model(ids, other)
    assert not torch.equal(out[0], base[0]) and torch.equal(out[1], base[1])


def test_mismatched_frames_and_image_tokens_are_errors() -> None:
    model = TinyVLA(VOCAB, IMAGE, 16, dim=16, heads=2, patch=2, max_len=128)
    ids = torch.tensor([sequence(2, 16)])
    with pytest.raises(ValueError, match="32 image token positions but 1 frames x 16"):
        model(ids, torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="frames must be 8x8, got 16x16"):
        model(ids, torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="image_tokens must be >= 1"):
        TinyVLA(VOCAB, IMAGE, 0)
    assert model(torch.tensor([sequence(0, 16)]), None).shape[-1] == VOCAB  # no frames at all
