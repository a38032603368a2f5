"""Benchmark of :class:`owa_builders.training.frames.FrameLoader` against plain PyAV, on one 1080p H.264 MKV.

``python -m devtools.bench_frames [--workdir DIR] [--seconds 20 --fps 20 --gop 20 ...]``

Writes (once, cached in ``--workdir``) a desktop-like H.264 MKV (scrolling text, a moving
gradient, every frame stamped with its index), then measures in the same run, as frames/s:

- (a) ``baseline``: PyAV's own sequential decode of the whole video with RGB conversion (and,
  for reference, the same while holding each sample's frames, as a training sample does);
- (b) ``ordered``: FrameLoader loading FSL-like samples (``--window`` consecutive frames, the
  samples being consecutive windows) in time order, one ``load`` call per sample;
- (c) ``shuffled``: the same samples in shuffled order, one ``load`` call per sample;
- (d) ``seek_per_frame``: the frames of the shuffled samples (the first ``--naive-samples``)
  each decoded with its own seek (seek to the keyframe at or before it, decode forward to it);

and the ratios (b)/(a) (target >= 0.70) and (c)/(d) (target >= 4). Each measurement runs
``--repeat`` times, interleaved, and the best is kept (shared machines are noisy). All four use
the same decoder threading (``--thread-type``) and, by default, the same allocator tuning
(:func:`owa_builders.training.frames.tune_allocator`: without it glibc hands every frame that is *kept*
-- as a training sample keeps its frames, unlike the baseline which drops each frame at once --
fresh pages, which costs more than the RGB conversion; ``--malloc default`` measures that).
Loaded frames are checked against their index.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from owa_builders.demo.recordings import frame_image, frame_index_of

MS = 1_000_000


def _tile(width: int, height: int) -> int:
    """Side of the square index tile (top-right corner), a multiple of 8."""
    return max(8, min(256, width // 2, height // 2) // 8 * 8)


def video_name(width: int, height: int, seconds: float, fps: float, gop: int) -> str:
    return f"frames_bench_{width}x{height}_{seconds:g}s_{fps:g}fps_gop{gop}.mkv"


def write_bench_video(
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    seconds: float,
    fps: float,
    gop: int,
    seed: int = 0,
    pts_ms: Sequence[int] | None = None,
) -> list[int]:
    """Write the benchmark video (H.264 ultrafast, no B-frames, GOP ``gop``); returns pts in ms.

    ``pts_ms`` (strictly increasing) replaces the regular ``1000 / fps`` grid, e.g. a recording's
    own screen times; frame ``i`` is stamped with ``i`` either way."""
    import av

    if pts_ms is None:
        n = max(1, int(round(seconds * fps)))
        pts_ms = [int(round(i * 1000 / fps)) for i in range(n)]
    pts_ms = [int(p) for p in pts_ms]
    rng = np.random.default_rng(seed)
    w, h = width - width % 2, height - height % 2
    # a grey "page" of text lines, twice the height, scrolled a few pixels per frame
    page = np.full((h * 2, w), 235, dtype=np.uint8)
    line = max(4, h // 40)
    for y0 in range(line, h * 2 - 2 * line, 2 * line):
        x0, x1 = w // 8, w // 8 + int(w * rng.uniform(0.3, 0.7))
        glyphs = rng.random((line, x1 - x0)) < 0.3
        page[y0 : y0 + line, x0:x1][glyphs] = 40
    ramp = np.linspace(0, 255, max(1, w // 4), dtype=np.float32)[None, :]
    tile = _tile(w, h)
    tmp = Path(f"{os.fspath(path)}.tmp")
    with av.open(os.fspath(tmp), mode="w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = stream.time_base
        stream.codec_context.gop_size = gop
        stream.options = {
            "preset": "ultrafast",
            "bframes": "0",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        yuv = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
        for i, pts in enumerate(pts_ms):
            off = (i * max(1, h // 150)) % h
            luma = yuv[:h]
            luma[:] = page[off : off + h]
            luma[:, : ramp.shape[1]] = (ramp * (0.5 + 0.5 * np.sin(i / 7.0))).astype(np.uint8)
            luma[:tile, w - tile :] = frame_image(i, tile, tile)[:, :, 0]
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = pts
            frame.time_base = stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return pts_ms


def frame_number(rgb: np.ndarray) -> int:
    """The index stamped by :func:`write_bench_video` (top-right tile)."""
    h, w = rgb.shape[:2]
    tile = _tile(w, h)
    return frame_index_of(rgb[:tile, w - tile :])


# ------------------------------------------------------------------------------------------
# The four measurements
# ------------------------------------------------------------------------------------------
def _open(path: str, thread_type: str) -> tuple[Any, Any]:
    import av

    container = av.open(path)
    stream = container.streams.video[0]
    if thread_type:
        stream.codec_context.thread_type = thread_type
    return container, stream


def bench_sequential(path: str, thread_type: str, keep: int = 0) -> tuple[int, float]:
    """(a) every frame, in order, decoded and converted to RGB by PyAV (each frame dropped at once;
    with ``keep``, the RGB frames are held in groups of ``keep``, as samples hold them)."""
    t0 = time.perf_counter()
    container, stream = _open(path, thread_type)
    n = 0
    held: list[Any] = []
    for frame in container.decode(stream):
        rgb = frame.to_ndarray(format="rgb24")
        n += 1
        if keep:
            held.append(rgb)
            if len(held) == keep:
                held = []
    container.close()
    return n, time.perf_counter() - t0


def bench_loader(
    root: str,
    name: str,
    samples: Sequence[Sequence[int]],
    pts_ms: Sequence[int],
    thread_type: str,
    check: bool,
) -> tuple[int, float, dict[str, int]]:
    """(b)/(c) one fresh FrameLoader, one ``load`` call per sample."""
    from owa_builders.training.frames import FrameLoader

    t0 = time.perf_counter()
    loader = FrameLoader(root, output="numpy", thread_type=thread_type)  # a fresh cache: index pass included
    n = 0
    bad = 0
    for sample in samples:
        frames = loader.load([(name, pts_ms[i] * MS) for i in sample])
        n += len(frames)
        if check:
            bad += sum(frame_number(f) != i for f, i in zip(frames, sample))
    elapsed = time.perf_counter() - t0
    loader.close()
    if bad:
        raise AssertionError(f"FrameLoader returned {bad} wrong frames")
    return n, elapsed, loader.stats.as_dict()


def bench_seek_per_frame(
    path: str, frames: Sequence[int], pts_ms: Sequence[int], thread_type: str, check: bool
) -> tuple[int, float]:
    """(d) each frame with its own seek: seek to the keyframe at or before it, decode forward to it."""
    t0 = time.perf_counter()
    container, stream = _open(path, thread_type)
    n = 0
    bad = 0
    for i in frames:
        target = pts_ms[i]
        container.seek(target, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts >= target:
                rgb = frame.to_ndarray(format="rgb24")
                if check and frame_number(rgb) != i:
                    bad += 1
                n += 1
                break
    container.close()
    elapsed = time.perf_counter() - t0
    if bad:
        raise AssertionError(f"seek-per-frame returned {bad} wrong frames")
    return n, elapsed


def fsl_samples(n_frames: int, window: int) -> list[list[int]]:
    """Consecutive, non-overlapping windows of ``window`` frames."""
    return [list(range(s, s + window)) for s in range(0, n_frames - window + 1, window)]


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="owa-builders bench-frames", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The bench's options (``owa-builders bench-frames`` and ``python -m devtools.bench_frames``)."""
    p.add_argument(
        "--workdir",
        default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "owa-frames-bench"),
        help="where the benchmark video is written once and reused",
    )
    p.add_argument("--width", type=int, default=1920, help="video width in px (default: %(default)s)")
    p.add_argument("--height", type=int, default=1080, help="video height in px (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=20.0, help="video length (default: %(default)s)")
    p.add_argument("--fps", type=float, default=20.0, help="frames per second (default: %(default)s)")
    p.add_argument("--gop", type=int, default=20, help="frames between keyframes (default: %(default)s)")
    p.add_argument("--window", type=int, default=8, help="frames per FSL-like sample")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is kept")
    p.add_argument(
        "--naive-samples", type=int, default=0, help="shuffled samples measured in (d) (0: all); (d) is slow"
    )
    p.add_argument(
        "--thread-type",
        default="SLICE",
        help="decoder threading for all four: SLICE (PyAV's default), AUTO, FRAME, NONE or ''",
    )
    p.add_argument(
        "--malloc",
        choices=("tuned", "default"),
        default="tuned",
        help="tuned: frames.tune_allocator() for the whole run (all four measurements); "
        "default: glibc's defaults",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="video content and shuffle seed (default: %(default)s)"
    )
    p.add_argument("--no-check", action="store_true", help="do not verify frame indices")
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")


def run(args: argparse.Namespace) -> int:
    """``owa-builders bench-frames``."""
    measure_all(args)
    return 0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return measure_all(_parser().parse_args(argv))


def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    name = video_name(args.width, args.height, args.seconds, args.fps, args.gop)
    path = workdir / name
    n = max(1, int(round(args.seconds * args.fps)))
    pts_ms = [int(round(i * 1000 / args.fps)) for i in range(n)]
    if not path.exists():
        t0 = time.perf_counter()
        pts_ms = write_bench_video(
            path,
            width=args.width,
            height=args.height,
            seconds=args.seconds,
            fps=args.fps,
            gop=args.gop,
            seed=args.seed,
        )
        print(
            f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    else:
        print(f"reusing {path}", flush=True)
    window = max(1, min(args.window, n))
    samples = fsl_samples(n, window)
    shuffled = list(samples)
    random.Random(args.seed).shuffle(shuffled)
    naive = shuffled[: args.naive_samples] if args.naive_samples > 0 else shuffled
    naive_frames = [i for s in naive for i in s]
    check = not args.no_check
    tt = args.thread_type
    tuned = False
    if args.malloc == "tuned":
        from owa_builders.training.frames import tune_allocator

        tuned = tune_allocator()

    best: dict[str, float] = {"a": 0.0, "a_keep": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}
    stats: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    for _ in range(max(1, args.repeat)):
        k, dt = bench_sequential(str(path), tt)
        counts["a"], best["a"] = k, max(best["a"], k / dt)
        k, dt = bench_sequential(str(path), tt, keep=window)
        best["a_keep"] = max(best["a_keep"], k / dt)
        k, dt, st = bench_loader(str(workdir), name, samples, pts_ms, tt, check)
        if k / dt > best["b"]:
            stats["b"] = st
        counts["b"], best["b"] = k, max(best["b"], k / dt)
        k, dt, st = bench_loader(str(workdir), name, shuffled, pts_ms, tt, check)
        if k / dt > best["c"]:
            stats["c"] = st
        counts["c"], best["c"] = k, max(best["c"], k / dt)
        k, dt = bench_seek_per_frame(str(path), naive_frames, pts_ms, tt, check)
        counts["d"], best["d"] = k, max(best["d"], k / dt)

    ratio_ba = best["b"] / best["a"] if best["a"] else float("nan")
    ratio_cd = best["c"] / best["d"] if best["d"] else float("nan")
    print(
        f"video: {args.width}x{args.height}, {n} frames, {args.fps:g} fps, GOP {args.gop}, H.264 ultrafast; "
        f"samples of {window} frames: {len(samples)}; decoder threads: {tt or 'PyAV default'}; "
        f"malloc: {'tuned' if tuned else 'default'}; best of {max(1, args.repeat)}"
    )
    print(f"(a) PyAV sequential decode + RGB     : {best['a']:8.1f} frames/s  ({counts['a']} frames)")
    print(
        f"    same, holding each sample's frames: {best['a_keep']:8.1f} frames/s  (reference: the cost of "
        f"keeping frames)"
    )
    print(
        f"(b) FrameLoader, samples in order    : {best['b']:8.1f} frames/s  ({counts['b']} frames; "
        f"seeks={stats['b']['seeks']}, decoded={stats['b']['decoded']})"
    )
    print(
        f"(c) FrameLoader, samples shuffled    : {best['c']:8.1f} frames/s  ({counts['c']} frames; "
        f"seeks={stats['c']['seeks']}, decoded={stats['c']['decoded']})"
    )
    print(f"(d) seek + decode per frame, shuffled: {best['d']:8.1f} frames/s  ({counts['d']} frames)")
    print(f"(b)/(a) = {ratio_ba:.2f}  (target >= 0.70: {'met' if ratio_ba >= 0.70 else 'NOT met'})")
    print(f"(c)/(d) = {ratio_cd:.2f}  (target >= 4.00: {'met' if ratio_cd >= 4.0 else 'NOT met'})")
    result = {
        "video": str(path),
        "frames": n,
        "window": window,
        "samples": len(samples),
        "thread_type": tt,
        "malloc_tuned": tuned,
        "fps": {
            "a_sequential": best["a"],
            "a_sequential_holding_samples": best["a_keep"],
            "b_ordered": best["b"],
            "c_shuffled": best["c"],
            "d_seek_per_frame": best["d"],
        },
        "ratio_b_a": ratio_ba,
        "ratio_c_d": ratio_cd,
        "loader_stats": stats,
        "checked": check,
    }
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
