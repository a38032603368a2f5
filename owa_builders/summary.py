"""Human summaries of built datasets (what the CLI prints)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def event_summary(table: pa.Table) -> dict[str, Any]:
    """Episodes, hours, rows and events per topic of an event-stage table.

    An episode is one (``episode_path``, ``interval_idx``); its duration is last - first
    ``timestamp_ns``; hours are the sum over episodes.
    """
    if table.num_rows == 0:
        return {"recordings": 0, "episodes": 0, "hours": 0.0, "rows": 0, "events_per_topic": {}}
    grouped = table.group_by(["episode_path", "interval_idx"]).aggregate(
        [("timestamp_ns", "min"), ("timestamp_ns", "max")]
    )
    span_ns = pc.sum(pc.subtract(grouped["timestamp_ns_max"], grouped["timestamp_ns_min"])).as_py() or 0
    topics = table.group_by("topic").aggregate([("topic", "count")])
    per_topic = dict(sorted(zip(topics["topic"].to_pylist(), topics["topic_count"].to_pylist())))
    return {
        "recordings": len(set(grouped["episode_path"].to_pylist())),
        "episodes": grouped.num_rows,
        "hours": span_ns / 3.6e12,
        "rows": table.num_rows,
        "events_per_topic": per_topic,
    }


def format_event_summary(summary: dict[str, Any], title: str = "event dataset") -> str:
    lines = [
        f"{title}: {summary['rows']} rows, {summary['episodes']} episodes from {summary['recordings']} recordings, "
        f"{summary['hours']:.4f} hours",
        "events per topic:",
    ]
    width = max((len(t) for t in summary["events_per_topic"]), default=0)
    for topic, n in summary["events_per_topic"].items():
        lines.append(f"  {topic:<{width}}  {n}")
    return "\n".join(lines)
