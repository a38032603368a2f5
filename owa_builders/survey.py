"""``owa-builders inspect``: what recordings (or a built dataset folder) hold, without building anything.

Per recording: writer version, duration, messages per topic with their rates (Hz), screen size,
whether the video is there, what each stage with its default config would keep and drop (the same
account a build prints) and every problem found. In total: recordings, hours, messages per topic.
A built folder (``owa-builders build ... -o DIR``) shows its stage, config, package version, rows
and episodes per split and the build's accounts.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections import Counter
from typing import Any

from owa_event.account import RecordingReport, total
from owa_event.pipeline import RecordingRef, convert, default_media_exists, kept_events, open_recording

from .discovery import find_recordings, relative_path
from .errors import OwaError, OwaWarning
from .output import RECORD_NAME as BUILD_RECORD
from .output import Destination
from .stages import STAGES, spec

#: The stages inspected (every stage), with their default configs. A stage whose default config
#: needs a tokenizer (FSL) is shown without it: its shared front's account, packing not run.


def inspect_recording(ref: RecordingRef, stages: tuple[str, ...] = tuple(STAGES)) -> dict[str, Any]:
    """Facts about one recording and what each stage's default config would keep (JSON-compatible)."""
    out: dict[str, Any] = {"path": ref.path, "episode_path": ref.episode_path, "problems": [], "warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OwaWarning)
        try:
            _facts(ref, out)
        except OwaError as exc:
            out["problems"].append(str(exc))
            return out
        out["stages"] = {}
        for name in stages:
            try:
                out["stages"][name] = _stage_account(name, ref)
            except OwaError as exc:
                out["stages"][name] = {"error": str(exc)}
                if str(exc) not in out["problems"]:
                    out["problems"].append(str(exc))
    out["warnings"] = sorted({str(w.message) for w in caught if issubclass(w.category, OwaWarning)})
    return out


def _facts(ref: RecordingRef, out: dict[str, Any]) -> None:
    from owa_event.config import SelectionConfig
    from owa_event.events import SCREEN

    with open_recording(ref, SelectionConfig()) as rec:
        census = rec.census()
        duration_s = (census.end_ns - census.start_ns) / 1e9 if census.message_count else 0.0
        out["writer"] = rec.writer
        out["truncated"] = rec.truncated
        out["start_ns"], out["end_ns"] = census.start_ns, census.end_ns
        out["duration_s"] = round(duration_s, 3)
        out["messages"] = census.message_count
        out["topics"] = {
            topic: {
                "messages": n,
                "hz": round(n / duration_s, 2) if duration_s > 0 else None,
                "type": rec.topics[topic],
            }
            for topic, n in sorted(census.topic_counts.items())
        }
        for screen in rec.events(topics=[SCREEN]) if SCREEN in rec.topics else ():
            if "screen_size" not in out:
                out["screen_size"] = screen.fields.get("shape") or screen.fields.get("source_shape")
        uris, outside = sorted(rec.stats.media_uris), sorted(rec.stats.outside_media)
    out["videos"] = {u: ("present" if default_media_exists(ref.root, u) else "missing") for u in uris}
    out["videos"].update({u: "outside the dataset root" for u in outside})


def _stage_account(name: str, ref: RecordingRef) -> dict[str, Any]:
    report = RecordingReport(ref.episode_path)
    stage_cls = spec(name).stage
    config = stage_cls.make_config()
    if spec(name).inspect_front_only:
        # no tokenizer here: the account of read -> keep -> select -> resample (packing not run)
        for _, event in kept_events(ref, config, report):
            report.account.emit(event.topic)
        note = "packing not run (no tokenizer): events that would be encoded"
    else:
        for _ in convert(stage_cls(config), ref, report):
            pass
        note = ""
    acc = report.account
    result = {
        "config": stage_cls.presets and next(iter(stage_cls.presets)),
        "events_out": dict(sorted(acc.out.items())),
        "dropped": {rule: dict(sorted(c.items())) for rule, c in sorted(acc.dropped.items()) if +c},
        "merged": dict(sorted(acc.merged.items())),
        "substitutions": report.substitutions,
        "summary": report.summary_line(),
    }
    if note:
        result["note"] = note
    if report.stats:
        result["stats"] = {k: v for k, v in sorted(report.stats.items()) if v}
    return result


def inspect_built(folder: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts about a build (local folder or URL), from its build record and rows."""
    import pyarrow.parquet as pq

    dest = Destination(folder, storage_options)
    record = dest.read_record()
    reports = record.recording_reports()
    acc = total(reports)
    out: dict[str, Any] = {
        "path": folder if dest.local else dest.shown,
        "kind": "built dataset",
        "stage": record.stage,
        "config_name": record.config_name,
        "config": record.config,
        "version": record.version,
        "data_root": record.data_root,
        "splits": {},
        "recordings": len(reports),
        "messages_in": sum(acc.messages_in.values()),
        "events_out": sum(acc.out.values()),
        "dropped": {rule: sum(c.values()) for rule, c in sorted(acc.dropped.items()) if +c},
        "warnings": sum(len(r.warnings) for r in reports),
        "skipped": [r.episode_path for r in reports if r.skipped],
    }
    for split, rels in record.shards.items():
        episodes: set[tuple[str, int]] = set()
        rows = 0
        for rel in rels:
            with dest.open(rel) as f:
                table = pq.read_table(f, columns=["episode_path", "interval_idx"])
            rows += table.num_rows
            episodes.update(
                zip(table.column("episode_path").to_pylist(), table.column("interval_idx").to_pylist())
            )
        out["splits"][split] = {
            "rows": rows,
            "episodes": len(episodes),
            "recordings": len({p for p, _ in episodes}),
        }
    return out


def inspect_paths(paths: list[str], stages: tuple[str, ...] = tuple(STAGES)) -> dict[str, Any]:
    """Every path inspected: built folders as such; ``.mcap`` files and folders of recordings per
    recording, with totals. Problems with a path are reported, not raised."""
    items: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in paths:
        try:
            if os.path.isdir(path) and os.path.isfile(os.path.join(path, BUILD_RECORD)):
                items.append(inspect_built(path))
                continue
            if path.lower().endswith(".mcap") and (os.path.isfile(path) or "://" in path):
                root = os.path.dirname(os.path.abspath(path)) if "://" not in path else path.rsplit("/", 1)[0]
                refs = [
                    RecordingRef(
                        path if "://" in path else os.path.abspath(path), relative_path(path, root), root
                    )
                ]
            else:
                refs = find_recordings(path).all()
        except OwaError as exc:
            problems.append(str(exc))
            continue
        items.extend(inspect_recording(ref, stages) for ref in refs)
    recordings = [i for i in items if "kind" not in i]
    topics: Counter[str] = Counter()
    for item in recordings:
        topics.update({t: v["messages"] for t, v in item.get("topics", {}).items()})
    totals = {
        "recordings": len(recordings),
        "hours": round(sum(i.get("duration_s", 0.0) for i in recordings) / 3600, 4),
        "messages_per_topic": dict(sorted(topics.items())),
        "recordings_with_problems": sum(1 for i in recordings if i["problems"]),
        "missing_videos": sorted(
            {u for i in recordings for u, s in i.get("videos", {}).items() if s == "missing"}
        ),
    }
    return {"items": items, "total": totals, "problems": problems}


def format_text(result: dict[str, Any]) -> str:
    """The human-readable form of :func:`inspect_paths`' result."""
    lines: list[str] = []
    for item in result["items"]:
        if item.get("kind") == "built dataset":
            lines.append(f"{item['path']}: built {item['stage']} dataset (config {item['config_name']}, "
                         f"owa-builders {item['version']}), {item['recordings']} recordings")  # fmt: skip
            for split, s in item["splits"].items():
                lines.append(
                    f"  [{split}] {s['rows']} rows, {s['episodes']} episodes from {s['recordings']} recordings"
                )
            lines.append(
                f"  messages in {item['messages_in']}, events out {item['events_out']}, dropped {item['dropped']}"
            )
            if item["warnings"] or item["skipped"]:
                lines.append(f"  warnings: {item['warnings']}; skipped: {item['skipped']}")
            lines.append(f"  config: {json.dumps(item['config'], sort_keys=True, default=str)}")
            continue
        lines.append(f"{item['path']}:")
        if "writer" in item:
            lines.append(f"  writer: {item['writer']}; {item['duration_s']:.1f} s; {item['messages']} messages"
                         + ("; TRUNCATED (recovered)" if item.get("truncated") else ""))  # fmt: skip
            for topic, t in item["topics"].items():
                hz = f"{t['hz']:.1f} Hz" if t["hz"] is not None else "-"
                lines.append(f"    {topic:<15} {t['messages']:>8}  {hz:>10}  {t['type']}")
            if item.get("screen_size"):
                lines.append(f"  screen: {item['screen_size'][0]}x{item['screen_size'][1]}")
            for uri, state in item.get("videos", {}).items():
                lines.append(f"  video {uri}: {state}")
            for name, acc in item.get("stages", {}).items():
                if "error" in acc:
                    lines.append(f"  {name} (default config): ERROR {acc['error']}")
                    continue
                out = sum(acc["events_out"].values())
                drops = (
                    "; ".join(f"{rule} {sum(c.values())}" for rule, c in acc["dropped"].items())
                    or "nothing dropped"
                )
                subs = "".join(
                    f"; {used!r} serves for {wanted!r}" for wanted, used in acc["substitutions"].items()
                )
                lines.append(f"  {name} (default config {acc['config']}): {out} events out; {drops}{subs}")
        for problem in item["problems"]:
            lines.append(f"  PROBLEM: {problem}")
        for warning in item["warnings"]:
            lines.append(f"  warning: {warning}")
    total_ = result["total"]
    if total_["recordings"]:
        lines.append(f"total: {total_['recordings']} recordings, {total_['hours']:.4f} hours, "
                     f"{total_['recordings_with_problems']} with problems")  # fmt: skip
        lines.append(
            "  messages per topic: " + ", ".join(f"{t} {n}" for t, n in total_["messages_per_topic"].items())
        )
        if total_["missing_videos"]:
            lines.append(f"  missing videos: {', '.join(total_['missing_videos'])}")
    for problem in result["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", help=".mcap files, folders of recordings, or built dataset folders"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="stages whose default-config account to show, comma-separated (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        from .errors import ConfigError

        raise ConfigError(
            [f"unknown stage {s!r} (stages: {', '.join(STAGES)})" for s in unknown], where="--stages"
        )
    result = inspect_paths(list(args.paths), stages)
    print(json.dumps(result, indent=1, sort_keys=True, default=str) if args.json else format_text(result))
    problems = len(result["problems"]) + sum(len(i.get("problems") or []) for i in result["items"])
    if problems:  # the report is out; the command fails like every other (error: ..., exit code 2)
        from owa_event.errors import OwaError

        raise OwaError(f"{problems} problem(s) found, listed above")
    return 0
