"""Tests of owa_event.account: the one accounting type and the recording report."""

from __future__ import annotations

import json
from collections import Counter

from owa_event.account import Account, RecordingReport, total


def test_unaccounted_names_topics_that_do_not_balance() -> None:
    acc = Account()
    acc.take_in("screen", 3)
    acc.take_in("keyboard", 2)
    acc.emit("screen", 2)
    acc.emit("keyboard", 2)
    assert acc.unaccounted() == {"screen": 1}
    acc.drop("oversize", "screen")
    assert acc.unaccounted() == {}
    acc.drop("frameless_sequence", "keyboard", 1)
    assert acc.unaccounted() == {"keyboard": -1}
    acc.drop("rate_limit", "window", 1)  # dropped but never came in
    assert acc.unaccounted() == {"keyboard": -1, "window": -1}


def test_merged_events_balance_and_zero_counts_are_not_recorded() -> None:
    acc = Account()
    acc.take_in("mouse/raw", 10)
    acc.merge("mouse/raw", 7)
    acc.emit("mouse/raw", 3)
    acc.drop("rate_limit", "mouse/raw", 0)
    assert acc.unaccounted() == {} and acc.dropped == {}
    assert acc.dropped_of("mouse/raw") == 0 and acc.dropped_by("rate_limit") == 0


def test_accounts_add_up_with_one_rule_topic_order() -> None:
    a, b = Account(), Account()
    a.take_in("screen", 5)
    a.drop("rate_limit", "screen", 2)
    a.emit("screen", 3)
    b.take_in("screen", 4)
    b.drop("rate_limit", "screen", 1)
    b.drop("outside_intervals", "screen", 3)
    a.add(b)
    assert a.messages_in == Counter(screen=9) and a.out == Counter(screen=3)
    assert a.dropped == {"rate_limit": Counter(screen=3), "outside_intervals": Counter(screen=3)}
    assert a.dropped_by("rate_limit") == 3 and a.dropped_of("screen") == 6 and a.unaccounted() == {}


def test_report_round_trips_through_json_and_sums() -> None:
    report = RecordingReport(
        "train/a.mcap", writer="mcap-owa-support 0.5.1; mcap 1.3.0", intervals=2, kept_ns=5
    )
    report.account.take_in("keyboard", 4)
    report.account.emit("keyboard", 3)
    report.account.drop("keyboard_autorepeat", "keyboard")
    report.unknown_types["custom/Thing"] += 2
    report.missing_media.append("train/a.mkv")
    report.warn("train/a.mcap: screen messages point to missing video train/a.mkv")
    report.count("bins", 7)
    again = RecordingReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    line = report.summary_line()
    assert "4 messages in, 3 events out" in line and "dropped by keyboard_autorepeat: 1 (keyboard 1)" in line
    assert "missing video: train/a.mkv" in line and "bins 7" in line
    assert total([report, again]).out == Counter(keyboard=6)
