"""The learning check: does a model learn from a built FSL dataset? (``owa-builders train-check``)

A :class:`~owa_builders.training.tinyvla.TinyVLA` (random init, CPU-sized) is trained for a fixed
number of steps on batches made by the product's own training path -- ``make_dataloader`` over the
saved dataset, :class:`~owa_builders.training.transforms.FslTransform` (frames decoded by the
``FrameLoader`` from the dataset's recordings) and :class:`~owa_builders.training.batching.InternVL3Collator`
-- and evaluated every ``eval_every`` steps on **held-out sequences from recordings it never trains
on**: a split other than the training split (``test``/``validation``), else the last quarter of the
training split's recordings (whole recordings). Reported, in nats per target token (next-token
cross-entropy on the collator's labels: image tokens and padding excluded):

- ``train``: mean training loss since the previous evaluation;
- ``heldout``: loss on the held-out sequences;
- ``control``: the same model on the same held-out sequences with their frames shuffled (every frame
  replaced by another frame of the same held-out batch): how much the model relies on the frames
  it was given. It only says something when the dataset's tokens depend on its screens (the
  cued example, :mod:`owa_builders.demo.cues`); on recordings whose input ignores the screen it
  equals ``heldout``.
- ``unigram``: the held-out loss of the training tokens' frequencies (add-one smoothed), the bar a
  model that learned nothing but token counts would reach.

The check passes when the final held-out loss is at most ``pass_ratio`` x the first one.
Deterministic for a seed: ``torch.manual_seed``, a seeded shuffle of the training rows, fixed
held-out rows.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from owa_event.errors import ConfigError

from ..errors import TrainCheckError

__all__ = ["CheckConfig", "CheckPoint", "CheckResult", "TrainCheckError", "run_check"]


@dataclass(frozen=True)
class CheckConfig:
    """How the check trains and evaluates."""

    steps: int = 150
    """Optimizer steps (one batch each)."""
    batch_size: int = 4
    """Training sequences per step."""
    eval_every: int = 25
    """Evaluate on the held-out sequences every this many steps (and at step 0)."""
    seed: int = 0
    """Seeds the model's initialisation, the training order and the control's frame shuffle."""
    lr: float = 3e-3
    """AdamW learning rate (constant after a linear warm-up over the first 10% of steps)."""
    dim: int = 64
    """Model width."""
    layers: int = 1
    """Transformer layers."""
    heads: int = 4
    """Attention heads."""
    patch: int = 4
    """Frame patch side in pixels (frames are resized to ``patch * sqrt(image tokens per frame)``)."""
    heldout_rows: int = 16
    """At most this many held-out sequences (evenly spread over the held-out rows)."""
    train_split: str = "train"
    """The split trained on."""
    heldout_split: str | None = None
    """The held-out split; ``None``: ``validation`` or ``test`` (or another split) when the folder
    has one, else the last quarter of the training split's recordings."""
    num_workers: int = 0
    """DataLoader worker processes for the training batches."""
    pass_ratio: float = 0.8
    """The check passes when final held-out loss <= ``pass_ratio`` x the first one."""

    def validate(self) -> None:
        """All problems at once, as one :class:`ConfigError`."""
        problems = []
        for name in ("steps", "batch_size", "eval_every", "dim", "layers", "heads", "patch", "heldout_rows"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be >= 0, got {self.num_workers}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0 < self.pass_ratio <= 1:
            problems.append(f"pass_ratio must be in (0, 1], got {self.pass_ratio}")
        if self.dim >= 1 and self.heads >= 1 and self.dim % self.heads:
            problems.append(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if problems:
            raise ConfigError(problems, where="train-check")


@dataclass(frozen=True)
class CheckPoint:
    """One evaluation. Losses in nats per target token."""

    step: int
    train: float
    heldout: float
    control: float


@dataclass
class CheckResult:
    """The curve and what it was measured on."""

    points: list[CheckPoint]
    unigram: float
    train_rows: int
    heldout_rows: int
    train_recordings: int
    heldout_recordings: int
    heldout_from: str
    config: CheckConfig
    seconds: float = 0.0
    frames_per_step: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def start(self) -> float:
        return self.points[0].heldout

    @property
    def final(self) -> float:
        return self.points[-1].heldout

    @property
    def passed(self) -> bool:
        """Held-out loss ended at most ``pass_ratio`` x where it started."""
        return self.final <= self.config.pass_ratio * self.start

    @property
    def frames_gain(self) -> float:
        """Control minus held-out at the end: nats per token the model gets from the right frames."""
        return self.points[-1].control - self.points[-1].heldout

    def curve_table(self) -> str:
        lines = [f"{'step':>6} {'train':>8} {'held-out':>9} {'control':>8}"]
        for p in self.points:
            lines.append(f"{p.step:>6} {p.train:>8.3f} {p.heldout:>9.3f} {p.control:>8.3f}")
        return "\n".join(lines)

    def summary(self) -> str:
        cut = 1 - self.final / self.start
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"{verdict}: held-out loss {self.start:.3f} -> {self.final:.3f} nats/token ({cut:+.0%} cut; "
            f"pass needs <= {self.config.pass_ratio:.0%} of the start); unigram baseline {self.unigram:.3f}",
            f"control (held-out, frames shuffled): {self.points[-1].control:.3f}, {self.frames_gain:+.3f} "
            "nats/token over the right frames"
            + ("" if self.frames_gain > 0.01 else " (the tokens may not depend on the screens)"),
            f"trained on {self.train_rows} sequences from {self.train_recordings} recordings; held out "
            f"{self.heldout_rows} sequences from {self.heldout_recordings} other recordings ({self.heldout_from}); "
            f"{self.config.steps} steps x {self.config.batch_size} sequences, {self.frames_per_step:.1f} frames "
            f"per step, {self.seconds:.1f} s",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": [asdict(p) for p in self.points],
            "unigram": self.unigram,
            "passed": self.passed,
            "frames_gain": self.frames_gain,
            "train_rows": self.train_rows,
            "heldout_rows": self.heldout_rows,
            "train_recordings": self.train_recordings,
            "heldout_recordings": self.heldout_recordings,
            "heldout_from": self.heldout_from,
            "seconds": self.seconds,
            "frames_per_step": self.frames_per_step,
            "config": asdict(self.config),
            **self.extra,
        }

    def png(self) -> bytes:
        """The curve as a PNG (Pillow, :func:`owa_builders.publish.plots.lines_png`): the losses above,
        the control's gap (control - held-out: what the right frames are worth) below."""
        import io

        from PIL import Image

        from ..publish.plots import lines_png

        step = self.config.eval_every
        losses = {
            "train": [p.train for p in self.points],
            "held-out": [p.heldout for p in self.points],
            "control": [p.control for p in self.points],
            "unigram": [self.unigram for _ in self.points],
        }
        gap = {"control - held-out": [max(0.0, p.control - p.heldout) for p in self.points]}
        panels = [
            lines_png(losses, step, title="train-check: loss per target token", xlabel="step",
                      ylabel="nats per target token"),
            lines_png(gap, step, title="what the right frames are worth (held-out, frames shuffled - matched)",
                      xlabel="step", ylabel="nats per target token"),
        ]  # fmt: skip
        images = [Image.open(io.BytesIO(p)).convert("RGB") for p in panels]
        out = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
        y = 0
        for image in images:
            out.paste(image, (0, y))
            y += image.height
        buffer = io.BytesIO()
        out.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


# ------------------------------------------------------------------------------------------
# The data: a built folder, split into trained-on and held-out recordings
# ------------------------------------------------------------------------------------------
@dataclass
class _Data:
    train: Any
    heldout: Any
    heldout_from: str
    media_root: str
    tokens_dir: str


def _load(folder: str, config: CheckConfig, media_root: str | None) -> _Data:
    import datasets

    from owa_fsl.tokenizer import TOKENIZER_DIR

    from ..output import BuildFolderError, load_build, read_record
    from ..stages import spec

    try:
        record = read_record(folder)
        if not spec(record.stage).token_rows:
            raise TrainCheckError(f"{folder}: a {record.stage!r} build; train-check needs an FSL build")
        loaded = load_build(folder)
    except BuildFolderError as exc:
        raise TrainCheckError(str(exc)) from None
    root = media_root or record.data_root
    if not root:
        raise TrainCheckError(f"{folder}: the build record names no data root; pass the recordings' folder")
    tokens_dir = os.path.join(folder, TOKENIZER_DIR)
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {config.train_split: loaded}
    if config.train_split not in splits:
        raise TrainCheckError(f"{folder}: no split {config.train_split!r}; its splits: {sorted(splits)}")
    train = splits[config.train_split]
    if config.heldout_split is not None:
        if config.heldout_split not in splits:
            raise TrainCheckError(
                f"{folder}: no split {config.heldout_split!r}; its splits: {sorted(splits)}"
            )
        heldout_name: str | None = config.heldout_split
    else:
        others = [s for s in ("validation", "test") if s in splits and s != config.train_split]
        others += sorted(s for s in splits if s not in others and s != config.train_split)
        heldout_name = others[0] if others else None
    if heldout_name is not None:
        heldout, heldout_from = splits[heldout_name], f"split {heldout_name!r}"
    else:
        episodes = sorted(set(train["episode_path"]))
        if len(episodes) < 2:
            raise TrainCheckError(
                f"{folder}: one split with {len(episodes)} recording(s): held-out sequences must come from "
                "recordings not trained on, so build from at least 2 recordings (or add a test split)"
            )
        held = set(episodes[-max(1, len(episodes) // 4) :])
        paths = train["episode_path"]
        heldout = train.select([i for i, p in enumerate(paths) if p in held])
        train = train.select([i for i, p in enumerate(paths) if p not in held])
        heldout_from = f"the last {len(held)} of {len(episodes)} recordings of split {config.train_split!r}"
    shared = set(train["episode_path"]) & set(heldout["episode_path"])
    if shared:
        raise TrainCheckError(
            f"{folder}: recordings in both the training and held-out rows: {sorted(shared)[:3]}"
        )
    if not len(train) or not len(heldout):
        raise TrainCheckError(f"{folder}: no rows to train on or none to hold out")
    if len(heldout) > config.heldout_rows:
        n = len(heldout)
        heldout = heldout.select(sorted({i * n // config.heldout_rows for i in range(config.heldout_rows)}))
    return _Data(train, heldout, heldout_from, root, tokens_dir)


def unigram_loss(train: Any, heldout: Any, image_token_ids: tuple[int, ...], vocab: int) -> float:
    """Held-out next-token loss of the training targets' frequencies (add-one smoothed), in nats/token."""
    from collections import Counter

    from .transforms import IGNORE_INDEX, fsl_labels

    def targets(ds: Any) -> Counter[int]:
        counts: Counter[int] = Counter()
        for ids, mask in zip(ds["input_ids"], ds["attention_mask"]):
            labels = fsl_labels(list(ids), list(mask), image_token_ids)[1:]
            counts.update(t for t in labels if t != IGNORE_INDEX)
        return counts

    train_counts, held_counts = targets(train), targets(heldout)
    total = sum(train_counts.values()) + vocab
    n = sum(held_counts.values())
    return -sum(c * math.log((train_counts[t] + 1) / total) for t, c in held_counts.items()) / max(1, n)


# ------------------------------------------------------------------------------------------
# Training and evaluation
# ------------------------------------------------------------------------------------------
def _loss_sum(model: Any, batch: dict[str, Any], frames: Any) -> tuple[Any, int]:
    """Summed next-token cross-entropy over the batch's targets, and their count."""
    import torch

    logits = model(batch["input_ids"], frames)
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum"
    )
    return loss, int((labels != -100).sum())


def _shuffled(frames: Any, generator: Any) -> Any:
    """``frames`` with every frame moved to another slot (a random cyclic permutation: none stays)."""
    import torch

    if frames is None or frames.shape[0] < 2:
        return frames
    order = torch.randperm(frames.shape[0], generator=generator)
    target = torch.empty_like(order)
    target[order] = order.roll(-1)  # slot order[i] gets frame order[i + 1]
    return frames[target]


def run_check(
    folder: str | os.PathLike[str],
    config: CheckConfig = CheckConfig(),
    *,
    media_root: str | None = None,
    log: Callable[[str], None] | None = None,
) -> CheckResult:
    """Train and evaluate on the FSL build in ``folder`` (``owa-builders build fsl ... -o DIR``).

    ``media_root`` overrides the build record's data root (recordings moved). ``log`` gets one
    line per evaluation as it happens.
    """
    import torch

    from owa_fsl.tokenizer import FslTokens

    from .batching import InternVL3Collator, make_dataloader
    from .tinyvla import TinyVLA
    from .transforms import FslTransform

    config.validate()
    t0 = time.perf_counter()
    folder = os.fspath(folder)
    data = _load(folder, config, media_root)
    tokens = FslTokens.load(data.tokens_dir)
    image_token_id = tokens.table.token_to_id[tokens.image_tokens.token]
    vocab = len(tokens.tokenizer)
    length = max(len(data.train[0]["input_ids"]), len(data.heldout[0]["input_ids"]))

    torch.manual_seed(config.seed)
    model = TinyVLA(vocab, image_token_id, tokens.image_tokens.count, dim=config.dim, layers=config.layers,
                    heads=config.heads, patch=config.patch, max_len=max(length, 1))  # fmt: skip
    size = model.frame_size
    transform = FslTransform(data.media_root, data.tokens_dir, resize=(size, size))
    collate = InternVL3Collator(transform.pad_id)
    heldout_batches = list(
        make_dataloader(data.heldout, batch_size=config.batch_size, transform=transform, collate_fn=collate)
    )
    unigram = unigram_loss(data.train, data.heldout, transform.image_token_ids, vocab)
    control_seed = torch.Generator().manual_seed(config.seed)
    control_frames = [_shuffled(b["pixel_values"], control_seed) for b in heldout_batches]

    def evaluate() -> tuple[float, float]:
        model.eval()
        sums = [0.0, 0.0]
        count = 0
        with torch.no_grad():
            for batch, shuffled in zip(heldout_batches, control_frames):
                loss, n = _loss_sum(model, batch, batch["pixel_values"])
                control, _ = _loss_sum(model, batch, shuffled)
                sums[0] += float(loss)
                sums[1] += float(control)
                count += n
        model.train()
        return sums[0] / max(1, count), sums[1] / max(1, count)

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    warmup = max(1, config.steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    loader = make_dataloader(data.train, batch_size=config.batch_size, shuffle=True, seed=config.seed,
                             transform=transform, collate_fn=collate, num_workers=config.num_workers,
                             drop_last=len(data.train) >= config.batch_size)  # fmt: skip

    def batches() -> Any:
        while True:
            yield from loader

    points: list[CheckPoint] = []
    heldout, control = evaluate()
    first = True
    window: list[float] = []
    frames_seen = 0
    stream = batches()
    for step in range(1, config.steps + 1):
        batch = next(stream)
        frames_seen += int(batch["num_frames"].sum())
        loss_sum, n = _loss_sum(model, batch, batch["pixel_values"])
        loss = loss_sum / max(1, n)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        window.append(float(loss.detach()))
        if first:  # step 0's training loss: the first batch, before any update
            points.append(CheckPoint(0, window[0], heldout, control))
            first = False
            if log:
                log(_point_line(points[-1]))
        if step % config.eval_every == 0 or step == config.steps:
            heldout, control = evaluate()
            points.append(CheckPoint(step, sum(window) / len(window), heldout, control))
            window = []
            if log:
                log(_point_line(points[-1]))
    train_eps = len(set(data.train["episode_path"]))
    held_eps = len(set(data.heldout["episode_path"]))
    return CheckResult(points, unigram, len(data.train), len(data.heldout), train_eps, held_eps,
                       data.heldout_from, config, seconds=time.perf_counter() - t0,
                       frames_per_step=frames_seen / config.steps)  # fmt: skip


def _point_line(p: CheckPoint) -> str:
    return f"{p.step:>6} {p.train:>8.3f} {p.heldout:>9.3f} {p.control:>8.3f}"


def write_outputs(result: CheckResult, png_path: str | os.PathLike[str]) -> tuple[str, str]:
    """Write the curve as ``png_path`` and its numbers next to it (``.json``); return both paths."""
    png_path = os.fspath(png_path)
    parent = os.path.dirname(png_path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(png_path, "wb") as f:
        f.write(result.png())
    json_path = os.path.splitext(png_path)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump(result.to_dict(), f, indent=1)
    return png_path, json_path


# ------------------------------------------------------------------------------------------
# The command: owa-builders train-check
# ------------------------------------------------------------------------------------------
def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "dataset", nargs="?", help="an FSL folder built by `owa-builders build fsl ... -o DIR`"
    )
    parser.add_argument("--example", metavar="WORKDIR", default=None,
                        help="first generate cued example recordings (key presses that depend on the screen) "
                             "and build them into WORKDIR/fsl, then check that")  # fmt: skip
    defaults = CheckConfig()
    parser.add_argument(
        "--steps", type=int, default=defaults.steps, help="training steps (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="sequences per step (default: %(default)s)")  # fmt: skip
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every,
                        help="evaluate every N steps (default: %(default)s)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default: %(default)s)")
    parser.add_argument("--heldout-split", default=None,
                        help="held-out split (default: validation/test, else the last quarter of the recordings)")  # fmt: skip
    parser.add_argument("--media-root", default=None,
                        help="the recordings' folder, when moved since the build (default: the build record's)")  # fmt: skip
    parser.add_argument("-o", "--output", default="train-check.png",
                        help="the PNG plot to write; its numbers go next to it as .json (default: %(default)s)")  # fmt: skip


def run(args: Any) -> int:
    """Exit code 0 when the check passes, 1 when the held-out loss did not come down enough."""
    if (args.dataset is None) == (args.example is None):
        raise TrainCheckError("give either DATASET (a built FSL folder) or --example WORKDIR")
    folder = args.dataset
    if args.example is not None:
        from ..demo.cues import build_cue_example

        t0 = time.perf_counter()
        folder = str(build_cue_example(args.example))
        print(f"built the cued example into {folder} ({time.perf_counter() - t0:.1f} s)")
    config = CheckConfig(steps=args.steps, batch_size=args.batch_size, eval_every=args.eval_every, seed=args.seed,
                         num_workers=args.workers, heldout_split=args.heldout_split)  # fmt: skip
    config.validate()
    header = [
        f"train-check {folder}: loss in nats per target token (control: held-out with frames shuffled)",
        f"{'step':>6} {'train':>8} {'held-out':>9} {'control':>8}",
    ]

    def log(line: str) -> None:  # the header once the data loaded (an error comes alone)
        while header:
            print(header.pop(0))
        print(line, flush=True)

    result = run_check(folder, config, media_root=args.media_root, log=log)
    png, numbers = write_outputs(result, args.output)
    print(result.summary())
    print(f"wrote {png} and {numbers}")
    return 0 if result.passed else 1
