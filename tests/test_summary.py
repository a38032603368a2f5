from __future__ import annotations

import pyarrow as pa

from owa_builders.summary import event_summary, format_event_summary


def test_event_summary_counts_episodes_hours_and_topics() -> None:
    table = pa.table(
        {
            "episode_path": ["a.mcap", "a.mcap", "a.mcap", "b.mcap", "b.mcap"],
            "interval_idx": [0, 0, 1, 0, 0],
            "topic": ["screen", "keyboard", "screen", "screen", "mouse"],
            "timestamp_ns": [0, 1_800 * 10**9, 5 * 10**12, 0, 3_600 * 10**9],
        }
    )
    s = event_summary(table)
    assert s["recordings"] == 2 and s["episodes"] == 3 and s["rows"] == 5
    assert s["hours"] == 1.5  # 0.5 h + 0 h (one event) + 1 h
    assert s["events_per_topic"] == {"keyboard": 1, "mouse": 1, "screen": 3}
    text = format_event_summary(s)
    assert "5 rows, 3 episodes from 2 recordings, 1.5000 hours" in text
    assert "  screen    3" in text


def test_empty_summary() -> None:
    table = pa.table(
        {
            "episode_path": pa.array([], pa.string()),
            "interval_idx": pa.array([], pa.int32()),
            "topic": pa.array([], pa.string()),
            "timestamp_ns": pa.array([], pa.int64()),
        }
    )
    assert event_summary(table)["rows"] == 0
