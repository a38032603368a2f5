"""Previews: one episode (event, binned) or one FSL (fixed sequence length) row of a built folder as a self-contained HTML page.

The page (``owa-builders preview``) needs nothing but a browser: inline CSS, an inline SVG
timeline, thumbnails as ``data:`` URIs (JPEG). It shows

- a timeline of the events by topic (one lane per topic; event density per pixel column, so an
  hour of 1 kHz mouse input draws as fast as a second of it), with the thumbnails' times marked;
- decoded frames as thumbnails at the screen events (at most ``max_thumbnails``, evenly spread
  over the episode's screen events), through the training-time
  :class:`~owa_builders.training.frames.FrameLoader`; a frame that cannot be decoded is drawn
  black and counted on the page (``missing_frames``), never silently;
- for an FSL row, the decoded token text of the sequence (runs of image tokens shown as
  ``<image> x 64``) and the events decoded from its ids;
- the first events as a table.

The same input gives the same page, byte for byte. The page names no local path (notes go through
:mod:`.redact`); the returned ``notes`` (printed by the command) keep them.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc

from owa_event.events import SCREEN, screen_ref

from ..errors import PreviewError
from ..stages import spec, specs
from ..training.transforms import event_from_mcap_message
from . import redact
from .plots import PALETTE
from .source import BuiltFolder, open_built

#: Events listed in the page's table.
MAX_TABLE_EVENTS = 400
#: Width of the timeline drawing (px) and of one density column (px).
TIMELINE_WIDTH, COLUMN_PX = 1100, 2


@dataclass
class PreviewEvent:
    """One event on the page: time (ns since the epoch), topic, a one-line summary, its frame if any."""

    timestamp_ns: int
    topic: str
    summary: str
    frame: tuple[str, int] | None = None


@dataclass
class PreviewResult:
    """What :func:`write_preview` wrote."""

    path: str
    title: str
    events: int
    thumbnails: int
    missing_frames: int
    token_text: str | None = None
    notes: list[str] = field(default_factory=list)


def write_preview(
    folder: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    split: str | None = None,
    episode: str | None = None,
    row: int | None = None,
    media_root: str | None = None,
    max_thumbnails: int = 24,
    thumb_width: int = 192,
) -> PreviewResult:
    """Write the preview page of one episode (event, binned; default: the split's first) or one FSL row
    (``row``, default 0; or the first row of ``episode``) of the built ``folder`` to ``output``.

    Frames are read from ``media_root`` (default: the build's ``data_root``).
    """
    built = open_built(folder)
    split_name = split or next(iter(built.splits))
    if split_name not in built.splits:
        raise PreviewError(f"{built.path}: no split {split_name!r} (splits: {', '.join(built.splits)})")
    root = media_root if media_root is not None else built.data_root
    token_text = None
    stage = spec(built.stage)
    if stage.preview_by_row:
        selected, where = _one_row(built, split_name, episode, row)
        events, token_text, facts = stage.preview_row(built, selected)
    else:
        if row is not None:
            by_row = ", ".join(s.name for s in specs() if s.preview_by_row)
            raise PreviewError(
                f"--row selects an FSL sequence (stages previewed by row: {by_row}); for the {stage.name} stage "
                "pass --episode"
            )
        rows, where = _episode_rows(built, split_name, episode)
        events = stage.preview_events(rows)
        facts = {"rows": len(rows)}
    title = f"{built.config_name} [{split_name}] {where}"
    thumbs, missing, notes = _thumbnails(events, root, max_thumbnails, thumb_width)
    shown = [redact.redactor(built.path, built.data_root).text(n) for n in notes]  # no local path on the page
    page = render_page(title, built, events, thumbs, missing, shown, token_text, facts)
    output = os.fspath(output)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        f.write(page)
    return PreviewResult(output, title, len(events), len(thumbs), missing, token_text, notes)


# ------------------------------------------------------------------------------------------
# Selecting and reading events
# ------------------------------------------------------------------------------------------
def _one_row(
    built: BuiltFolder, split: str, episode: str | None, row: int | None
) -> tuple[dict[str, Any], str]:
    data = built.splits[split]
    if episode is not None:
        offset = 0
        for batch in data.batches(["episode_path"]):
            matches = pc.equal(batch.column(0), episode)
            if pc.any(matches).as_py():
                row = offset + pc.index(matches, True).as_py()
                break
            offset += batch.num_rows
        else:
            raise PreviewError(f"{built.path} [{split}]: no row of episode {episode!r}")
    row = 0 if row is None else row
    if not 0 <= row < data.num_rows:
        raise PreviewError(f"{built.path} [{split}]: row {row} out of range (0..{data.num_rows - 1})")
    selected = data.read(row, row + 1).to_pylist()[0]
    return selected, f"row {row} ({selected['episode_path']}, interval {selected['interval_idx']})"


def _episode_rows(built: BuiltFolder, split: str, episode: str | None) -> tuple[list[dict[str, Any]], str]:
    data = built.splits[split]
    key: tuple[str, int] | None = None
    rows: list[dict[str, Any]] = []
    for batch in data.batches():
        paths = batch.column(batch.schema.get_field_index("episode_path"))
        if key is None:
            if episode is None:
                key = (
                    paths[0].as_py(),
                    batch.column(batch.schema.get_field_index("interval_idx"))[0].as_py(),
                )
            else:
                matches = pc.equal(paths, episode)
                if not pc.any(matches).as_py():
                    continue
                first = pc.index(matches, True).as_py()
                key = (episode, batch.column(batch.schema.get_field_index("interval_idx"))[first].as_py())
        mask = pc.and_(
            pc.equal(paths, key[0]),
            pc.equal(batch.column(batch.schema.get_field_index("interval_idx")), key[1]),
        )
        rows += batch.filter(mask).to_pylist()
    if key is None:
        raise PreviewError(f"{built.path} [{split}]: no rows of episode {episode!r}")
    return rows, f"{key[0]}, interval {key[1]}"


def field_summary(fields: Any) -> str:
    """A message's fields as one line of JSON (at most 160 characters)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def preview_event(message: bytes) -> PreviewEvent:
    """One McapMessage JSON (an event row's, a binned state's or action's) as a :class:`PreviewEvent`."""
    event = event_from_mcap_message(message)
    ref = screen_ref(event)
    frame = (ref[0], ref[1]) if ref is not None and ref[1] is not None else None
    return PreviewEvent(event.timestamp_ns, event.topic, field_summary(event.fields), frame)


def token_text(ids: Sequence[int], tokens: Any) -> str:
    """The decoded text of ``ids``, with each run of the image token written once as ``<token> x N``."""
    tokenizer = tokens.tokenizer
    image_id = tokenizer.convert_tokens_to_ids(tokens.image_tokens.token)
    parts: list[str] = []
    run: list[int] = []
    i = 0
    while i < len(ids):
        if ids[i] == image_id:
            j = i
            while j < len(ids) and ids[j] == image_id:
                j += 1
            if run:
                parts.append(
                    tokenizer.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                )
                run = []
            parts.append(f"{tokens.image_tokens.token} x {j - i}")
            i = j
        else:
            run.append(ids[i])
            i += 1
    if run:
        parts.append(tokenizer.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False))
    return "".join(parts)


# ------------------------------------------------------------------------------------------
# Thumbnails
# ------------------------------------------------------------------------------------------
@dataclass
class Thumbnail:
    timestamp_ns: int
    uri: str
    pts_ns: int
    data_uri: str
    missing: bool


def _pick(frames: list[PreviewEvent], count: int) -> list[PreviewEvent]:
    if len(frames) <= count:
        return frames
    return (
        [frames[round(i * (len(frames) - 1) / (count - 1))] for i in range(count)]
        if count > 1
        else frames[:1]
    )


def _thumbnails(
    events: list[PreviewEvent], root: str | None, count: int, width: int
) -> tuple[list[Thumbnail], int, list[str]]:
    screens = [e for e in events if e.topic == SCREEN and e.frame is not None]
    picked = _pick(screens, count) if count > 0 else []
    if not picked:
        return [], 0, ([] if not screens else ["thumbnails disabled"])
    if root is None:
        return [], len(picked), ["no media root (the build record has no data_root): frames not shown"]
    from PIL import Image

    from ..training.frames import FrameLoader

    # a missing video is drawn as a black 16:9 thumbnail (its own size is unknown) and counted on the page
    loader = FrameLoader(
        root, output="pil", on_missing="placeholder", placeholder_size=(width, width * 9 // 16)
    )
    thumbs: list[Thumbnail] = []
    missing = 0
    for event in picked:
        assert event.frame is not None
        before = loader.stats.placeholders
        image = loader.load([event.frame])[0]
        lost = loader.stats.placeholders > before
        missing += lost
        image = image.convert("RGB")
        image.thumbnail((width, width * 3), Image.Resampling.BILINEAR)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=82)
        data = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
        thumbs.append(Thumbnail(event.timestamp_ns, event.frame[0], event.frame[1], data, lost))
    notes = (
        [f"{missing} of {len(picked)} frames could not be decoded from {root} (drawn black)"]
        if missing
        else []
    )
    return thumbs, missing, notes


# ------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.facts span{display:inline-block;margin:0 14px 4px 0;padding:2px 8px;background:#eef2f7;border-radius:4px}
.note{background:#fff3cd;border:1px solid #e0c36c;padding:6px 10px;border-radius:4px;margin:8px 0}
svg{background:#fff;border:1px solid #ddd}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:4px;font-size:11px}
figure.missing{border-color:#c33} figcaption{max-width:200px;word-break:break-all}
pre{white-space:pre-wrap;word-break:break-all;background:#fff;border:1px solid #ddd;padding:10px;max-height:480px;overflow:auto}
table{border-collapse:collapse;background:#fff;font-size:12px} td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
td.msg{font-family:ui-monospace,Menlo,monospace;word-break:break-all}
"""


def _lanes(events: Sequence[PreviewEvent]) -> list[str]:
    topics = sorted({e.topic for e in events})
    return sorted(topics, key=lambda t: (t != SCREEN, t))


def timeline_svg(events: Sequence[PreviewEvent], thumbs: Sequence[Thumbnail]) -> str:
    """The timeline: one lane per topic, event density per column, thumbnail times marked."""
    if not events:
        return "<p>No events.</p>"
    lanes = _lanes(events)
    t0 = min(e.timestamp_ns for e in events)
    t1 = max(e.timestamp_ns for e in events)
    span = max(1, t1 - t0)
    label_w, lane_h, top = 150, 22, 20
    columns = TIMELINE_WIDTH // COLUMN_PX
    counts = {t: [0] * columns for t in lanes}
    for e in events:
        counts[e.topic][min(columns - 1, (e.timestamp_ns - t0) * columns // span)] += 1
    height = top + lane_h * len(lanes) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + TIMELINE_WIDTH + 10}" height="{height}">'
    ]
    for i, topic in enumerate(lanes):
        y = top + i * lane_h
        colour = PALETTE[i % len(PALETTE)]
        out.append(
            f'<text x="4" y="{y + 15}" font-size="12">{html.escape(topic)} ({sum(counts[topic])})</text>'
        )
        out.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{TIMELINE_WIDTH}" height="{lane_h - 4}" fill="#f3f3f3"/>'
        )
        peak = max(counts[topic])
        for c, n in enumerate(counts[topic]):
            if n:
                opacity = 0.35 + 0.65 * n / peak
                out.append(
                    f'<rect x="{label_w + c * COLUMN_PX}" y="{y + 2}" width="{COLUMN_PX}" height="{lane_h - 4}" '
                    f'fill="{colour}" fill-opacity="{opacity:.2f}"/>'
                )
    for k, thumb in enumerate(thumbs, 1):
        x = label_w + (thumb.timestamp_ns - t0) * TIMELINE_WIDTH / span
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{top + lane_h * len(lanes)}" stroke="#333" '
                   f'stroke-width="0.6" stroke-dasharray="2,2"/>')  # fmt: skip
        out.append(f'<text x="{x:.1f}" y="{top - 8}" font-size="9" text-anchor="middle">{k}</text>')
    axis_y = top + lane_h * len(lanes) + 14
    for tick in range(11):
        x = label_w + tick * TIMELINE_WIDTH / 10
        out.append(
            f'<text x="{x:.1f}" y="{axis_y}" font-size="10" text-anchor="middle">{span * tick / 10 / 1e9:.2f} s</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def render_page(
    title: str,
    built: BuiltFolder,
    events: list[PreviewEvent],
    thumbs: list[Thumbnail],
    missing: int,
    notes: Iterable[str],
    token_text: str | None,
    facts: dict[str, Any],
) -> str:
    """The whole HTML page (see the module docstring)."""
    esc = html.escape
    t0 = min((e.timestamp_ns for e in events), default=0)
    span = (max((e.timestamp_ns for e in events), default=0) - t0) / 1e9
    per_topic: dict[str, int] = {}
    for e in events:
        per_topic[e.topic] = per_topic.get(e.topic, 0) + 1
    chips = [f"stage: {built.stage}", f"events: {len(events)}", f"duration: {span:.3f} s",
             f"thumbnails: {len(thumbs)}", *(f"{k}: {v}" for k, v in facts.items())]  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<div class="facts">{"".join(f"<span>{esc(c)}</span>" for c in chips)}</div>',
        *(f'<div class="note">{esc(n)}</div>' for n in notes),
        "<h2>Timeline by topic</h2>",
        timeline_svg(events, thumbs),
        f"<p>{', '.join(f'{esc(t)}: {n}' for t, n in sorted(per_topic.items()))}</p>",
    ]
    if thumbs:
        parts.append(f"<h2>Frames ({len(thumbs)} of {sum(1 for e in events if e.frame)} screen events)</h2>")
        parts.append('<div class="thumbs">')
        for k, t in enumerate(thumbs, 1):
            cls = ' class="missing"' if t.missing else ""
            parts.append(
                f'<figure{cls}><img src="{t.data_uri}" alt="frame {k}"><figcaption>{k}: +{(t.timestamp_ns - t0) / 1e9:.3f} s'
                f" &middot; {esc(t.uri)} @ {t.pts_ns / 1e9:.3f} s{' (missing)' if t.missing else ''}</figcaption></figure>"
            )
        parts.append("</div>")
    if token_text is not None:
        parts.append("<h2>Token text (decoded input_ids, padding left out)</h2>")
        parts.append(f'<pre class="tokens">{esc(token_text)}</pre>')
    shown = events[:MAX_TABLE_EVENTS]
    parts.append(f"<h2>Events ({len(shown)} of {len(events)})</h2>")
    parts.append("<table><tr><th>#</th><th>time (s)</th><th>topic</th><th>message</th></tr>")
    for i, e in enumerate(shown):
        parts.append(
            f"<tr><td>{i}</td><td>{(e.timestamp_ns - t0) / 1e9:.3f}</td><td>{esc(e.topic)}</td>"
            f'<td class="msg">{esc(e.summary)}</td></tr>'
        )
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------
# Command line: owa-builders preview
# ------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``owa-builders preview``."""
    parser.add_argument("folder", help="a built folder (`owa-builders build STAGE DATA -o DIR`)")
    parser.add_argument("-o", "--output", required=True, help="the HTML page to write")
    parser.add_argument("--split", help="split (default: the first)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--episode", help="episode_path to show (default: the split's first)")
    which.add_argument("--row", type=int, help="FSL: the row to show (default 0)")
    parser.add_argument("--media-root", help="where the videos are (default: the build's data_root)")
    parser.add_argument(
        "--max-thumbnails", type=int, default=24, help="frames shown as thumbnails (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    """``owa-builders preview``; errors propagate as :class:`OwaError` (the CLI prints them, exit 2)."""
    result = write_preview(
        args.folder,
        args.output,
        split=args.split,
        episode=args.episode,
        row=args.row,
        media_root=args.media_root,
        max_thumbnails=args.max_thumbnails,
    )
    print(f"wrote {result.path}: {result.title}; {result.events} events, {result.thumbnails} thumbnails")
    for note in result.notes:
        print(f"warning: {note}")
    return 0
