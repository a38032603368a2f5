"""A line-based progress printer for long runs: units done / total, events/s, ETA.

One line per update, at most every ``interval_s`` seconds (and always for the last unit), so it
reads the same in a terminal, a log file or CI. The ETA assumes the remaining work goes at the rate
seen so far, measured in input bytes when the sizes are known (recordings differ in length), else
in units.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (seconds rounded up)."""
    s = int(-(-max(seconds, 0.0) // 1))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Progress of ``total`` units (recordings, episodes; ``None``: not known in advance, no ETA) of
    ``total_bytes`` input bytes (0: unknown); the rate counts ``rate_unit`` (events, items).

    Units done before the run (``reused``) count as done but not towards the rate.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        unit: str = "recordings",
        rate_unit: str = "events",
        total_bytes: int = 0,
        reused: int = 0,
        reused_bytes: int = 0,
        stream: TextIO | None = None,
        interval_s: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.rate_unit = rate_unit
        self.total_bytes = total_bytes
        self.done = reused
        self.reused = reused
        self.events = 0
        self.bytes_done = 0
        self._bytes_left = max(0, total_bytes - reused_bytes)
        self._stream = stream
        self._interval = interval_s
        self._clock = clock or time.perf_counter
        self._start = self._clock()
        self._last_print = float("-inf")

    def update(self, events: int = 0, nbytes: int = 0, *, units: int = 1) -> None:
        """Count ``units`` more done, with ``events`` events read and ``nbytes`` input bytes; maybe print."""
        self.done += units
        self.events += events
        self.bytes_done += nbytes
        now = self._clock()
        if (self.total is not None and self.done >= self.total) or now - self._last_print >= self._interval:
            self._last_print = now
            self.print(self.line(now))

    def line(self, now: float | None = None) -> str:
        """The progress line: done/total, events, events/s, elapsed, ETA (with a total)."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.events / elapsed
        done = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"{self.label}: {done} {self.unit}"]
        if self.reused:
            parts[0] += f" ({self.reused} already done)"
        parts.append(f"{self.events:,} {self.rate_unit}, {rate:,.0f} {self.rate_unit}/s")
        parts.append(f"elapsed {format_duration(elapsed)}")
        if self.total is not None and self.total - self.done <= 0:
            parts.append("done")
        elif self.total is not None:
            eta = self.eta(elapsed)
            parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA unknown")
        return ", ".join(parts)

    def eta(self, elapsed: float) -> float | None:
        """Seconds left at the rate so far (``None`` before the first unit of this run is done)."""
        converted = self.done - self.reused
        if converted <= 0 or self.total is None:
            return None
        if self._bytes_left and self.bytes_done:
            return elapsed * (self._bytes_left - self.bytes_done) / self.bytes_done
        return elapsed * (self.total - self.done) / converted

    def print(self, line: str) -> None:
        if self._stream is not None:
            print(line, file=self._stream, flush=True)


def stderr_progress(enabled: bool) -> TextIO | None:
    """``sys.stderr`` when progress is shown, else ``None``."""
    return sys.stderr if enabled else None
