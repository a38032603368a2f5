"""Benchmark of the whole training data path: FSL rows -> frames -> image processor -> collated batches.

``python -m devtools.bench_train [--workdir DIR] [--sizes 1920x1080,1280x720 --seconds 10 ...]``

For each capture size, writes (once, cached in ``--workdir``) one recording made by the example
generator (real ``mcap-owa-support`` writer, realistic event rates) whose video is a screen-like
H.264 MKV (scrolling text, a moving gradient, every frame stamped with its index, see
:func:`devtools.bench_frames.write_bench_video`), builds the ``fsl-smolvlm`` dataset from it
with ``datasets`` (the example tokenizer, trained on the spot), and measures in the same run:

- (a) frames only: ``FrameLoader.load`` of each row's frames, rows in order and shuffled
  (samples/s = rows/s, frames/s);
- (b) frames + the model's image processor: ``FslTransform`` with SmolVLM's and InternVL's
  image processors (built locally from ``transformers`` classes: nothing is downloaded), rows in
  order, the processor resizing full-size frames, and with the frames scaled to the processor's
  size while decoding (``resize=``, swscale) instead;
- (c) full collated batches: ``make_dataloader`` + ``SmolVLMCollator`` (SmolVLM processor,
  frames scaled while decoding unless ``--processor-resizes``) with 0, 1 and 2 workers, in order
  and shuffled, with the peak resident memory of each worker (of the main process with 0
  workers); the time includes starting the workers;
- baselines on the same video: PyAV single-thread sequential decode + RGB of the whole video,
  PyAV seek-per-frame (seek to the keyframe at or before each frame of the shuffled rows,
  decode forward to it; single thread) and, when it can be loaded, torchcodec's
  ``VideoDecoder`` (every seek mode / thread setting tried, the best kept), rows in order and
  shuffled.

Every frame of (a) and of torchcodec is checked against its stamped index (0 wrong frames, or
the bench fails). Each measurement runs ``--repeat`` times and the best is kept (shared machines
are noisy); (a) and its two PyAV baselines run in interleaved rounds, whose ratios are printed
too (``ratios_per_round``). Defaults are small (10 s of video per size, ``--rows 8`` rows for (b) and (c)) so the
whole run takes a few minutes.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.bench_frames import bench_seek_per_frame, frame_number, write_bench_video

MS = 1_000_000
NS = 1_000_000_000


@dataclass
class Prepared:
    """One capture size: its recording folder, video, frame times and FSL dataset."""

    width: int
    height: int
    root: Path  # the data_dir the dataset was built from (media root)
    video: Path
    pts_ms: list[int]
    ds: Any  # datasets.Dataset (fsl-smolvlm, train)
    tokens_dir: str
    rows: list[list[tuple[str, int]]]  # each row's frame references (uri, pts_ns), rows with frames only

    @property
    def frames(self) -> int:
        return sum(len(r) for r in self.rows)

    def expected(self, pts_ns: int) -> int:
        """Index of the frame displayed at ``pts_ns`` (latest frame with pts <= it)."""
        return bisect.bisect_right(self.pts_ms, pts_ns // MS) - 1


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"a size must be at least 16x16, got {text!r}")
    return w, h


def prepare(workdir: Path, width: int, height: int, args: argparse.Namespace) -> Prepared:
    """The recording (written once) and its FSL dataset (built once, cached in ``workdir``)."""
    import datasets

    import owa_builders  # noqa: F401  (registers the builders)
    from owa_builders.demo.recordings import SessionSpec, session_events, write_recording
    from owa_builders.demo.tokenizer import write_example_tokenizer
    from owa_builders.training.transforms import tokenizer_dir_of

    tok = workdir / "tokenizer"
    if not (tok / "tokenizer.json").exists():
        write_example_tokenizer(tok)
    root = workdir / f"train_{width}x{height}_{args.seconds:g}s_{args.fps:g}fps_gop{args.gop}_seed{args.seed}"
    mcap = root / "train" / "episode_000.mcap"
    spec = SessionSpec(duration_s=args.seconds, seed=args.seed, fps=args.fps, width=width, height=height)
    events, pts_ms = session_events(spec)
    video = mcap.with_suffix(".mkv")
    if not video.exists():
        t0 = time.perf_counter()
        write_recording(mcap, events)
        write_bench_video(video, width=width, height=height, seconds=args.seconds, fps=args.fps, gop=args.gop,
                          seed=args.seed, pts_ms=pts_ms)  # fmt: skip
        print(
            f"wrote {root} ({video.stat().st_size / 1e6:.1f} MB of video) in {time.perf_counter() - t0:.1f} s"
        )
    else:
        print(f"reusing {root}")
    datasets.disable_progress_bars()
    ds = datasets.load_dataset("owa_builders/fsl", "fsl-smolvlm", data_dir=str(root), split="train",
                               tokenizer_name=str(tok), max_sequence_length=args.max_sequence_length,
                               cache_dir=str(workdir / "hf-cache"))  # fmt: skip
    rows = [[(img["uri"], int(img["pts_ns"])) for img in images] for images in ds["images"] if images]
    keep = [i for i, images in enumerate(ds["images"]) if images]
    ds = ds.select(keep)  # rows with frames: the ones this bench is about
    return Prepared(width, height, root, video, pts_ms, ds, tokenizer_dir_of(ds), rows)


# ------------------------------------------------------------------------------------------
# Measurements (each returns (samples, frames, seconds) or more)
# ------------------------------------------------------------------------------------------
def bench_frames_only(
    p: Prepared, order: Sequence[int], check: bool
) -> tuple[int, int, float, dict[str, int]]:
    """(a) one fresh FrameLoader (index pass included), one ``load`` call per row."""
    from owa_builders.training.frames import FrameLoader

    t0 = time.perf_counter()
    loader = FrameLoader(p.root, output="numpy", tune_allocator=True)  # as the training transforms do
    n = bad = 0
    elapsed = 0.0  # loading only (the index pass included), not the check
    for r in order:
        frames = loader.load(p.rows[r])
        elapsed += time.perf_counter() - t0
        n += len(frames)
        if check:
            bad += sum(frame_number(f) != p.expected(t) for f, (_, t) in zip(frames, p.rows[r]))
        t0 = time.perf_counter()
    loader.close()
    if bad:
        raise AssertionError(f"FrameLoader returned {bad} wrong frames ({p.width}x{p.height})")
    return len(order), n, elapsed, loader.stats.as_dict()


def processors(smolvlm_px: int, internvl_px: int) -> dict[str, Any]:
    """SmolVLM's and InternVL's image processors, built from their ``transformers`` classes (no download),
    one tile per frame as the FSL token layouts assume."""
    import transformers

    size = {"longest_edge": smolvlm_px}
    return {
        "smolvlm": transformers.SmolVLMImageProcessorPil(
            do_image_splitting=False, size=size, max_image_size=size
        ),
        "internvl": transformers.GotOcr2ImageProcessorPil(
            crop_to_patches=False, size={"height": internvl_px, "width": internvl_px}
        ),
    }


def decode_size(name: str, px: int, width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` to scale frames to while decoding so that processor ``name`` (SmolVLM: longest
    edge ``px``; InternVL: ``px`` x ``px``) has nothing left to resize."""
    if name == "internvl":
        return px, px
    scale = px / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def bench_processor(
    p: Prepared, proc: Any, order: Sequence[int], resize: tuple[int, int] | None = None
) -> tuple[int, int, float]:
    """(b) ``FslTransform`` (PIL frames -> the processor's pixel values), one row per call; ``resize``:
    frames scaled while decoding (swscale) before the processor sees them."""
    from owa_builders.training.transforms import FslTransform, HFImageProcessor

    t0 = time.perf_counter()
    transform = FslTransform(
        p.root, p.tokens_dir, output="pil", image_processor=HFImageProcessor(proc), resize=resize
    )
    n = 0
    for r in order:
        out = transform(p.ds[r : r + 1])
        n += int(out["pixel_values"][0].shape[0])
    return len(order), n, time.perf_counter() - t0


def _peak_rss_kb(pid: int) -> int:
    """``VmHWM`` (peak resident set) of a live process, in kB; 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def bench_dataloader(
    p: Prepared,
    proc: Any,
    resize: tuple[int, int] | None,
    rows: int,
    workers: int,
    shuffle: bool,
    batch_size: int,
    seed: int,
) -> tuple[int, int, float, list[int]]:
    """(c) collated SmolVLM batches of the first ``rows`` rows through a DataLoader; returns the peak
    RSS (MB) of each worker (or of the main process with 0 workers), sampled after every batch."""
    from owa_builders.training.batching import SmolVLMCollator, make_dataloader
    from owa_builders.training.transforms import FslTransform, HFImageProcessor

    transform = FslTransform(
        p.root, p.tokens_dir, output="pil", image_processor=HFImageProcessor(proc), resize=resize
    )
    ds = p.ds.select(range(min(rows, len(p.ds)))) if rows > 0 else p.ds
    loader = make_dataloader(ds, transform=transform, collate_fn=SmolVLMCollator(transform.pad_id),
                             batch_size=batch_size, num_workers=workers, shuffle=shuffle, seed=seed,
                             rank=0, world_size=1)  # fmt: skip
    t0 = time.perf_counter()
    it = iter(loader)
    pids = [w.pid for w in getattr(it, "_workers", [])] or [os.getpid()]
    peak = dict.fromkeys(pids, 0)
    samples = frames = 0
    for batch in it:
        samples += int(batch["input_ids"].shape[0])
        frames += int(batch["num_frames"].sum())
        for pid in pids:
            peak[pid] = max(peak[pid], _peak_rss_kb(pid))
    elapsed = time.perf_counter() - t0
    return samples, frames, elapsed, [peak[pid] // 1024 for pid in pids]


def bench_pyav_sequential(p: Prepared) -> tuple[int, float]:
    """Baseline: PyAV, one decoder thread, every frame in order + RGB (``to_ndarray``)."""
    import av

    t0 = time.perf_counter()
    with av.open(str(p.video)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "NONE"
        n = sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24") is not None)
    return n, time.perf_counter() - t0


def torchcodec_status() -> str | None:
    """None if torchcodec's ``VideoDecoder`` can be used here, else why not."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception as e:  # ImportError, or OSError/RuntimeError when its libraries do not load
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        why = f"{type(e).__name__}: {first[:200]}"
        if not isinstance(e, ImportError):  # installed, but its libraries do not load
            why += (
                " (torchcodec needs FFmpeg's shared libraries, and a build matching torch's: PyPI's "
                "wheels are CUDA builds; with the CPU torch use --index-url https://download.pytorch.org/whl/cpu)"
            )
        return why
    return None


TORCHCODEC_MODES = (("exact", 1), ("exact", 0), ("approximate", 1), ("approximate", 0))


def bench_torchcodec(
    p: Prepared, order: Sequence[int], seek_mode: str, threads: int, check: bool
) -> tuple[int, int, float, int]:
    """torchcodec ``VideoDecoder`` (``seek_mode``, ``num_ffmpeg_threads``; 0 = FFmpeg's choice): one
    ``get_frames_played_at`` call per row, HWC uint8 frames; the last element counts wrong frames
    (``approximate`` mode places frames by the average frame rate: wrong on jittered frame times)."""
    from torchcodec.decoders import VideoDecoder

    t0 = time.perf_counter()
    decoder = VideoDecoder(
        str(p.video), seek_mode=seek_mode, num_ffmpeg_threads=threads, dimension_order="NHWC"
    )
    n = bad = 0
    elapsed = 0.0  # decoding only (opening and its scan included), not the check
    for r in order:
        times = [t / NS for _, t in p.rows[r]]
        data = decoder.get_frames_played_at(seconds=times).data
        elapsed += time.perf_counter() - t0
        n += int(data.shape[0])
        if check:
            bad += sum(frame_number(data[k].numpy()) != p.expected(t) for k, (_, t) in enumerate(p.rows[r]))
        t0 = time.perf_counter()
    return len(order), n, elapsed, bad


def _best(repeat: int, fn: Callable[..., tuple[Any, ...]], *args: Any) -> tuple[Any, ...]:
    """The fastest of ``repeat`` runs of ``fn``; its result's seconds are element 2 (``(samples, frames,
    seconds, ...)``) or element 1 (``(frames, seconds)``)."""
    runs = [fn(*args) for _ in range(max(1, repeat))]
    return min(runs, key=lambda r: r[2] if len(r) > 2 and isinstance(r[2], float) else r[1])


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="owa-builders bench-train", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The bench's options (``owa-builders bench-train`` and ``python -m devtools.bench_train``)."""
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "owa-train-bench"),
                   help="where recordings, tokenizer and datasets are written once and reused")  # fmt: skip
    p.add_argument("--sizes", type=lambda s: [_parse_size(v) for v in s.split(",")],
                   default=[(1920, 1080), (1280, 720)],
                   help="capture sizes WIDTHxHEIGHT, comma-separated (default: 1920x1080,1280x720)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=10.0, help="recording length (default: %(default)s)")
    p.add_argument("--fps", type=float, default=20.0, help="screen frames per second (default: %(default)s)")
    p.add_argument("--gop", type=int, default=20, help="frames between keyframes (default: %(default)s)")
    p.add_argument("--max-sequence-length", type=int, default=1024,
                   help="FSL tokens per row (sets the frames per row; default: %(default)s)")  # fmt: skip
    p.add_argument("--smolvlm-px", type=int, default=512, help="SmolVLM processor's longest edge")
    p.add_argument("--internvl-px", type=int, default=448, help="InternVL processor's tile side")
    p.add_argument("--workers", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2],
                   help="DataLoader worker counts (default: 0,1,2)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=2, help="DataLoader batch size (default: %(default)s)")
    p.add_argument("--seek-rows", type=int, default=4,
                   help="shuffled rows measured by seek-per-frame (0: all; it is slow)")  # fmt: skip
    p.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is kept")
    p.add_argument("--no-torchcodec", action="store_true", help="skip torchcodec even if it loads")
    p.add_argument("--rows", type=int, default=8,
                   help="FSL rows measured by (b) and (c) (0: all; the processors are slow at 1080p)")  # fmt: skip
    p.add_argument("--processor-resizes", action="store_true",
                   help="(c): let the SmolVLM processor resize full-size frames (default: resize while decoding)")  # fmt: skip
    p.add_argument("--no-dataloader", action="store_true", help="skip (c)")
    p.add_argument("--seed", type=int, default=0, help="content and shuffle seed (default: %(default)s)")
    p.add_argument("--no-check", action="store_true", help="do not verify frame indices")
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")


def run(args: argparse.Namespace) -> int:
    """``owa-builders bench-train``."""
    measure_all(args)
    return 0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return measure_all(_parser().parse_args(argv))


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    check = not args.no_check
    repeat = args.repeat
    tc_why = "disabled (--no-torchcodec)" if args.no_torchcodec else torchcodec_status()
    procs = processors(args.smolvlm_px, args.internvl_px)
    results: dict[str, Any] = {"sizes": {}, "torchcodec": tc_why or "available", "checked": check}
    for width, height in args.sizes:
        p = prepare(workdir, width, height, args)
        in_order = list(range(len(p.rows)))
        shuffled = list(in_order)
        random.Random(args.seed).shuffle(shuffled)
        seek_rows = shuffled[: args.seek_rows] if args.seek_rows > 0 else shuffled
        r: dict[str, Any] = {"rows": len(p.rows), "frames": p.frames, "video_frames": len(p.pts_ms)}
        print(f"\n== {width}x{height}: {len(p.pts_ms)} video frames, {len(p.rows)} FSL rows with "
              f"{p.frames} frames (max_sequence_length {args.max_sequence_length}), GOP {args.gop}; "
              f"(b), (c): {args.rows or len(p.rows)} rows, SmolVLM {args.smolvlm_px} px, InternVL {args.internvl_px} px")  # fmt: skip

        def line(label: str, samples: int, frames: int, seconds: float, extra: str = "") -> dict[str, float]:
            sps, fps = _rate(samples, seconds), _rate(frames, seconds)
            print(f"  {label:<44}: {sps:8.1f} samples/s {fps:8.1f} frames/s{extra}")
            return {"samples_per_s": sps, "frames_per_s": fps}

        # (a) and its two baselines in interleaved rounds (baseline, seek, in order, shuffled; repeat
        # times): a change of load hits all four alike, and each round gives its own ratios.
        seek_frames = [p.expected(t) for row in seek_rows for _, t in p.rows[row]]
        rounds: list[dict[str, tuple[Any, ...]]] = []
        for _ in range(max(1, repeat)):
            rounds.append({
                "seq": bench_pyav_sequential(p),
                "seek": bench_seek_per_frame(str(p.video), seek_frames, p.pts_ms, "NONE", False),
                "in_order": bench_frames_only(p, in_order, check),
                "shuffled": bench_frames_only(p, shuffled, check),
            })  # fmt: skip
        n, dt = min((rd["seq"] for rd in rounds), key=lambda x: x[1])
        r["pyav_sequential"] = {"frames_per_s": _rate(n, dt)}
        print(f"  {'baseline: PyAV 1 thread, sequential + RGB':<44}: {'':>18} {_rate(n, dt):8.1f} frames/s")
        n, dt = min((rd["seek"] for rd in rounds), key=lambda x: x[1])
        r["pyav_seek_per_frame"] = {"frames_per_s": _rate(n, dt)}
        print(f"  {'baseline: PyAV 1 thread, seek per frame':<44}: {'':>18} {_rate(n, dt):8.1f} frames/s")
        for name in ("in_order", "shuffled"):
            s, f, dt, st = min((rd[name] for rd in rounds), key=lambda x: x[2])
            r[f"frames_{name}"] = line(f"(a) FrameLoader, rows {name.replace('_', ' ')}", s, f, dt,
                                       f"  (seeks={st['seeks']}, decoded={st['decoded']})")  # fmt: skip
        per_round = {
            "frames_in_order/pyav_sequential": [
                _rate(rd["in_order"][1], rd["in_order"][2]) / _rate(*rd["seq"]) for rd in rounds
            ],
            "frames_shuffled/pyav_seek_per_frame": [
                _rate(rd["shuffled"][1], rd["shuffled"][2]) / _rate(*rd["seek"]) for rd in rounds
            ],
        }
        r["ratios_per_round"] = per_round
        for k, v in per_round.items():
            print(f"  {k} per round: {', '.join(f'{x:.2f}' for x in v)}")
        if tc_why is None:
            for name, order in (("in_order", in_order), ("shuffled", shuffled)):
                best: tuple[float, str] = (0.0, "")
                for mode, threads in TORCHCODEC_MODES:
                    s, f, dt, bad = _best(repeat, bench_torchcodec, p, order, mode, threads, check)
                    rate = _rate(f, dt)
                    if bad:
                        print(f"  {'torchcodec ' + mode + ', threads=' + str(threads):<44}: {bad} of {f} "
                              "frames wrong: not counted")  # fmt: skip
                        r.setdefault("torchcodec_wrong_frames", {})[f"{name}/{mode}/{threads}"] = bad
                    elif rate > best[0]:
                        best = (rate, f"{mode}, num_ffmpeg_threads={threads}")
                        r[f"torchcodec_{name}"] = {"samples_per_s": _rate(s, dt), "frames_per_s": rate,
                                                   "mode": best[1]}  # fmt: skip
                if best[0]:
                    print(f"  {'torchcodec, rows ' + name.replace('_', ' '):<44}: "
                          f"{r[f'torchcodec_{name}']['samples_per_s']:8.1f} samples/s {best[0]:8.1f} frames/s  "
                          f"(best correct mode: {best[1]})")  # fmt: skip
        px = {"smolvlm": args.smolvlm_px, "internvl": args.internvl_px}
        proc_rows = in_order[: args.rows] if args.rows > 0 else in_order
        for proc_name, proc in procs.items():
            s, f, dt = _best(repeat, bench_processor, p, proc, proc_rows)
            r[f"processor_{proc_name}"] = line(f"(b) + {proc_name} processor (it resizes)", s, f, dt)
            size = decode_size(proc_name, px[proc_name], width, height)
            s, f, dt = _best(repeat, bench_processor, p, proc, proc_rows, size)
            r[f"processor_{proc_name}_resize_decoding"] = line(
                f"(b) + {proc_name} processor, resize={size[0]}x{size[1]} decoding", s, f, dt
            )
        if not args.no_dataloader:
            r["dataloader"] = {}
            resize = (
                None if args.processor_resizes else decode_size("smolvlm", args.smolvlm_px, width, height)
            )
            r["dataloader_resize"] = resize
            for workers in args.workers:
                for shuffle in (False, True):
                    s, f, dt, peaks = _best(
                        repeat, bench_dataloader, p, procs["smolvlm"], resize, args.rows, workers, shuffle,
                        args.batch_size, args.seed,
                    )  # fmt: skip
                    key = f"{workers}w_{'shuffled' if shuffle else 'in_order'}"
                    who = "main process" if workers == 0 else "per worker"
                    label = f"(c) DataLoader {workers} workers, {'shuffled' if shuffle else 'in order'}"
                    r["dataloader"][key] = {**line(label, s, f, dt, f"  (peak RSS {who}: {peaks} MB)"),
                                            "peak_rss_mb": peaks}  # fmt: skip
        ratios = {
            "frames_in_order/pyav_sequential": r["frames_in_order"]["frames_per_s"]
            / r["pyav_sequential"]["frames_per_s"],
            "frames_shuffled/pyav_seek_per_frame": r["frames_shuffled"]["frames_per_s"]
            / r["pyav_seek_per_frame"]["frames_per_s"],
        }
        for name in ("in_order", "shuffled"):
            if f"torchcodec_{name}" in r:
                ratios[f"frames_{name}/torchcodec_{name}"] = (
                    r[f"frames_{name}"]["frames_per_s"] / r[f"torchcodec_{name}"]["frames_per_s"]
                )
        r["ratios"] = ratios
        targets = {"frames_in_order/pyav_sequential": 1.5, "frames_shuffled/pyav_seek_per_frame": 5.0}
        for k, v in ratios.items():
            goal = (
                f"  (target >= {targets[k]:.1f}: {'met' if v >= targets[k] else 'NOT met'})"
                if k in targets
                else ""
            )
            print(f"  {k} = {v:.2f}{goal}")
        results["sizes"][f"{width}x{height}"] = r
    if tc_why is not None:
        print(f"\ntorchcodec not measured: {tc_why}")
    print(f"\nbest of {max(1, repeat)} runs each; frames checked: {check}; machine: {os.cpu_count()} cores")
    if args.json:
        print(json.dumps(results))
    return results


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
