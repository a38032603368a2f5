"""Progress lines: done/total, events/s, ETA (a fake clock, so the figures are exact)."""

from __future__ import annotations

import io

from owa_builders.distributed.progress import Progress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_format_duration() -> None:
    assert format_duration(0) == "0:00:00"
    assert format_duration(59.2) == "0:01:00"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(-3) == "0:00:00"


def test_lines_show_done_rate_and_an_eta_by_input_bytes() -> None:
    clock, out = Clock(), io.StringIO()
    bar = Progress("ray build", 4, total_bytes=1000, stream=out, clock=clock, interval_s=0)
    clock.now += 10
    bar.update(events=5000, nbytes=100)  # 100 of 1000 bytes in 10 s -> 90 s left
    clock.now += 10
    bar.update(events=5000, nbytes=300)  # 400 bytes in 20 s -> 30 s left
    lines = out.getvalue().splitlines()
    assert lines[0] == "ray build: 1/4 recordings, 5,000 events, 500 events/s, elapsed 0:00:10, ETA 0:01:30"
    assert lines[1] == "ray build: 2/4 recordings, 10,000 events, 500 events/s, elapsed 0:00:20, ETA 0:00:30"


def test_reused_units_are_done_but_not_in_the_rate() -> None:
    clock, out = Clock(), io.StringIO()
    bar = Progress("ray build", 3, reused=2, stream=out, clock=clock, interval_s=0)
    assert bar.line().startswith("ray build: 2/3 recordings (2 already done)") and "ETA unknown" in bar.line()
    clock.now += 4
    bar.update(events=800)
    assert out.getvalue().strip().endswith("200 events/s, elapsed 0:00:04, done")


def test_lines_are_throttled_but_the_last_always_prints() -> None:
    clock, out = Clock(), io.StringIO()
    bar = Progress("ingest", 5, unit="episodes", stream=out, clock=clock, interval_s=5)
    for _ in range(5):
        clock.now += 1
        bar.update(events=10)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first (nothing printed yet) and the last
    assert lines[-1].startswith("ingest: 5/5 episodes, 50 events")
    silent = Progress("x", 1, stream=None)
    silent.update()
    assert silent.done == 1
