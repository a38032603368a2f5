"""How damaged videos come out of :class:`owa_builders.training.frames.FrameLoader`: a measurement.

``python -m devtools.video_damage [--cases 270] [--seed 0] [--thread-type SLICE] [--json OUT]``

Writes small barcoded videos (every frame shows its index, :func:`owa_builders.demo.recordings.frame_image`;
H.264, H.264 with B-frames, HEVC when libx265 is there), damages copies byte-wise the way the
held-out fuzz campaign does (truncation, bits flipped past the header, a zeroed range, garbage
appended, header bytes set), loads every frame through ``FrameLoader`` (one reference per call,
shuffled, and all in one call with placeholders), each case in a forked child with a time limit,
and tabulates per served reference:

- ``correct``: the original frame's pixels, exactly;
- ``concealed``: pixels that match no frame of the original (the decoder concealed damage);
- ``wrong_frame``: exactly another original frame's pixels;
- ``refused``: a :class:`FrameLoadError` / a counted placeholder;

and per case the worst of these. For the concealed frames it says which libav signals a plain
sequential PyAV decode of the same damaged file raises between the frame's random-access point and
the frame (see :mod:`owa_builders.training.frames.integrity` for the signals), with the loader's
decoder options and without them, so one run shows what is detectable and what is not.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import random
import shutil
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from owa_builders.demo.recordings import frame_image

W, H = 64, 48
N_FRAMES = 30
MS = 1_000_000
CASE_SECONDS = 30
KINDS = ("truncated", "bits_flipped", "range_zeroed", "garbage_appended", "header_damaged")
OUTCOMES = ("correct", "concealed", "wrong_frame", "refused")

#: name -> (encoder, options); frames at 0, 50, ... ms, frame i shows index i + 1 (no frame is black)
VIDEOS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"preset": "ultrafast", "bframes": "0", "x264-params": "keyint=10:min-keyint=10"}),
    "h264-bframes": (
        "libx264",
        {"preset": "veryfast", "bframes": "2", "x264-params": "keyint=12:min-keyint=12:scenecut=0"},
    ),
    "hevc": (
        "libx265",
        {"preset": "ultrafast", "x265-params": "keyint=10:min-keyint=10:bframes=2:log-level=error"},
    ),
}


def write_barcoded(path: Path, codec: str, options: dict[str, str], n: int = N_FRAMES) -> Path:
    """An MKV of ``n`` frames 50 ms apart (time base 1 ms), frame ``i`` showing index ``i + 1``."""
    import av

    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream(codec, rate=20)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = stream.time_base
        stream.options = dict(options)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frame_image(i + 1, W, H), format="rgb24")
            frame.pts, frame.time_base = i * 50, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass(frozen=True)
class Original:
    """An intact video: bytes, frame times (ns), decoded RGB frames (presentation order)."""

    name: str
    data: bytes
    times: tuple[int, ...]
    frames: tuple[np.ndarray, ...]
    header_end: int  # file offset of the first video packet


def describe(path: Path, name: str) -> Original:
    import av

    with av.open(str(path)) as c:
        frames = {f.pts: f.to_ndarray(format="rgb24") for f in c.decode(video=0)}
    with av.open(str(path)) as c:
        first = min(int(p.pos) for p in c.demux(video=0) if p.size)
    pts = sorted(frames)
    return Original(name, path.read_bytes(), tuple(p * MS for p in pts), tuple(frames[p] for p in pts), first)


# ------------------------------------------------------------------------------------------
# Damage (the fuzz test's mutations, drawn from one seeded RNG)
# ------------------------------------------------------------------------------------------
def damage(video: Original, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """A damaged copy of ``video.data`` and a description."""
    data = bytearray(video.data)
    n, start = len(data), video.header_end
    if kind == "truncated":
        at = rng.randrange(start, n)
        return bytes(data[:at]), f"truncated at {at}/{n}"
    if kind == "bits_flipped":
        where = sorted({rng.randrange(start, n) for _ in range(rng.randint(1, 8))})
        for at in where:
            data[at] ^= 1 << rng.randrange(8)
        return bytes(data), f"bits flipped at {where}"
    if kind == "range_zeroed":
        a = rng.randrange(start, n)
        b = min(n, a + rng.randint(1, 600))
        data[a:b] = bytes(b - a)
        return bytes(data), f"bytes {a}..{b} zeroed"
    if kind == "garbage_appended":
        garbage = rng.randbytes(rng.randint(1, 4096))
        return bytes(data) + garbage, f"{len(garbage)} bytes appended"
    where = [(rng.randrange(start), rng.randrange(256)) for _ in range(rng.randint(1, 4))]
    for at, value in where:
        data[at] = value
    return bytes(data), f"header bytes set {where}"


# ------------------------------------------------------------------------------------------
# One case, in a forked child
# ------------------------------------------------------------------------------------------
def classify(video: Original, j: int, got: np.ndarray | None) -> str:
    """``correct``, ``wrong_frame``, ``concealed`` or ``refused`` (None: an error or a placeholder)."""
    if got is None:
        return "refused"
    if got.shape == video.frames[j].shape and np.array_equal(got, video.frames[j]):
        return "correct"
    if any(got.shape == f.shape and np.array_equal(got, f) for f in video.frames):
        return "wrong_frame"
    return "concealed"


def probe(path: Path, options: dict[str, str], thread_type: str) -> dict[int, list[str]]:
    """A plain sequential PyAV decode of ``path``: decode position -> the signals raised there."""
    import av

    from owa_builders.training.frames import build_index
    from owa_builders.training.frames.integrity import FrameJudge

    with av.open(str(path)) as c:
        index = build_index(c, c.streams.video[0])
    judge = FrameJudge(index.position_of_pts)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        cc = stream.codec_context
        if thread_type:
            cc.thread_type = thread_type
        cc.options = dict(options)
        for packet in c.demux(stream):
            where = judge.position_of(packet) if packet.size else None
            judge.packet(packet, where)
            try:
                frames = cc.decode(packet if packet.size else None)
            except (av.error.FFmpegError, OSError, EOFError) as e:
                judge.error(e, where)
                continue
            for frame in frames:
                judge.frame(frame)
    return judge.signals


def run_case(video: Original, data: bytes, thread_type: str, seed: int) -> dict[str, Any]:
    """Load every frame of ``data`` twice (single shuffled calls; one call with placeholders)."""
    from owa_builders.training.frames import FrameLoader, FrameLoadError

    root = Path(tempfile.mkdtemp(prefix="owa-vdamage-"))
    try:
        (root / "v.mkv").write_bytes(data)
        n = len(video.times)
        order = list(range(n))
        random.Random(seed).shuffle(order)
        loader = FrameLoader(root, output="numpy", resume_within=0, thread_type=thread_type)
        single: dict[int, str] = {}
        reasons: Counter[str] = Counter()
        for j in order:
            try:
                single[j] = classify(video, j, loader.load_one("v.mkv", video.times[j]))
            except FrameLoadError as e:
                single[j] = "refused"
                reasons[_reason_kind(e.reason)] += 1
        lenient = FrameLoader(
            root, output="numpy", on_missing="placeholder", placeholder_size=(W, H), thread_type=thread_type
        )
        got = lenient.load([("v.mkv", t) for t in video.times])
        holes = lenient.stats.placeholders
        batch = [classify(video, j, None if not g.any() else g) for j, g in enumerate(got)]
        black = sum(not g.any() for g in got)
        signals: dict[str, dict[int, list[str]]] = {}
        position: dict[int, tuple[int, int]] = {}
        try:
            import av

            from owa_builders.training.frames import build_index
            from owa_builders.training.frames.integrity import decoder_options

            with av.open(str(root / "v.mkv")) as c:
                idx = build_index(c, c.streams.video[0])
            for j, t in enumerate(video.times):
                k = idx.locate(t)
                if k is not None:
                    pos = int(idx.order[k])
                    start = idx.start_for(pos)
                    position[j] = (start if start is not None else 0, pos)
            signals["plain"] = probe(root / "v.mkv", {}, thread_type)
            signals["loader"] = probe(root / "v.mkv", decoder_options(thread_type), thread_type)
        except Exception as e:  # the file cannot be indexed: nothing to attribute
            signals["unreadable"] = {-1: [type(e).__name__]}
        return {
            "single": single,
            "batch": batch,
            "placeholders": holes,
            "black": black,
            "reasons": dict(reasons),
            "signals": signals,
            "position": position,
            "stats": loader.stats.as_dict(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _reason_kind(reason: str) -> str:
    for key in ("flagged", "concealed", "log:", "timestamps", "no frame", "InvalidData", "outside", "cannot"):
        if key in reason:
            return key
    return reason[:40]


def in_child(fn: Callable[[], dict[str, Any]], seconds: float) -> dict[str, Any]:
    """``fn()`` in a forked child (a hang inside FFmpeg cannot be interrupted from Python)."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def target() -> None:  # pragma: no cover - child
        try:
            child.send(fn())
        except BaseException as e:
            child.send({"crash": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"})
        finally:
            child.close()

    proc = ctx.Process(target=target, daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(seconds):
            return {"hang": True}
        return parent.recv()
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()


def worst(outcomes: list[str]) -> str:
    for o in ("wrong_frame", "concealed", "refused"):
        if o in outcomes:
            return o
    return "correct"


def fired(result: dict[str, Any], which: str, j: int) -> list[str]:
    """Signals of probe ``which`` between frame ``j``'s random-access point and it."""
    if j not in result["position"] or which not in result["signals"]:
        return []
    a, b = result["position"][j]
    out: set[str] = set()
    for pos, names in result["signals"][which].items():
        if a <= int(pos) <= b:
            out.update(names)
    return sorted(out)


def campaign(cases: int, seed: int, thread_type: str, workdir: Path) -> dict[str, Any]:
    import av

    originals = []
    for name, (codec, options) in VIDEOS.items():
        try:
            av.codec.Codec(codec, "w")
        except Exception:
            print(f"(no {codec} encoder here: {name} left out)", file=sys.stderr)
            continue
        originals.append(describe(write_barcoded(workdir / f"{name}.mkv", codec, options), name))
    rng = random.Random(seed)
    per_case: Counter[str] = Counter()
    per_ref: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    concealed_signals: dict[str, Counter[str]] = {"plain": Counter(), "loader": Counter()}
    concealed_cases_signalled: dict[str, int] = {"plain": 0, "loader": 0}
    failures: list[str] = []
    examples: list[str] = []
    missed: list[str] = []  # served bad frames with a libav signal in their GOP (the loader should refuse)
    reasons: Counter[str] = Counter()
    for i in range(cases):
        video = originals[i % len(originals)]
        kind = KINDS[(i // len(originals)) % len(KINDS)]
        data, what = damage(video, kind, rng)
        result = in_child(functools.partial(run_case, video, data, thread_type, i), CASE_SECONDS)
        if "hang" in result or "crash" in result:
            failures.append(f"{video.name} {what}: {result.get('crash', 'hang')}")
            per_case["failed"] += 1
            continue
        reasons.update(result["reasons"])
        outcomes = list(result["single"].values()) + result["batch"]
        if result["black"] != result["placeholders"]:
            failures.append(f"{video.name} {what}: {result['black']} black, {result['placeholders']} counted")
        per_ref.update(outcomes)
        case = worst(outcomes)
        per_case[case] += 1
        by_kind[kind][case] += 1
        if case in ("concealed", "wrong_frame"):
            bad = sorted(
                {int(j) for j, o in result["single"].items() if o == case}
                | {j for j, o in enumerate(result["batch"]) if o == case}
            )
            for which in ("plain", "loader"):
                names = set()
                for j in bad:
                    names.update(fired(result, which, j))
                concealed_signals[which].update(names or {"(none)"})
                concealed_cases_signalled[which] += bool(names)
                if names and which == "loader":
                    missed.append(
                        f"{case}: case {i} {video.name} {what} frames {bad} signals={sorted(names)}"
                    )
            if len(examples) < 12 or case == "wrong_frame":
                examples.append(
                    f"{case}: case {i} {video.name} {what} frames {bad} loader-signals={sorted(names)}"
                )
    return {
        "cases": cases,
        "thread_type": thread_type,
        "per_case": dict(per_case),
        "per_reference": dict(per_ref),
        "by_kind": {k: dict(v) for k, v in by_kind.items()},
        "bad_cases_with_a_signal": concealed_cases_signalled,
        "signals_in_bad_cases": {k: dict(v) for k, v in concealed_signals.items()},
        "refusal_reasons": dict(reasons),
        "failures": failures,
        "examples": examples,
        "missed": missed,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.video_damage", description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=270, help="damaged cases (cycling videos, then kinds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the damage RNG")
    p.add_argument(
        "--thread-type", default="SLICE", help="FrameLoader's thread_type (SLICE, FRAME, AUTO, NONE)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="owa-vdamage-src-"))
    try:
        out = campaign(args.cases, args.seed, args.thread_type, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{out['cases']} damaged cases, thread_type={out['thread_type']}")
    print("per case (worst reference):", out["per_case"])
    print("per reference:", out["per_reference"])
    for kind, counts in out["by_kind"].items():
        print(f"  {kind:18s}", counts)
    print("concealed/wrong cases with a libav signal in the frame's GOP:", out["bad_cases_with_a_signal"])
    print("signals in those cases:", out["signals_in_bad_cases"])
    print("why references were refused:", out["refusal_reasons"])
    for line in out["examples"]:
        print("  e.g.", line)
    for line in out["missed"]:
        print("  SIGNALLED BUT SERVED", line)
    for line in out["failures"]:
        print("  FAILURE", line)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, sort_keys=True))
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
