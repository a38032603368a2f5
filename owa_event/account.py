"""The one accounting type: what became of every message of a recording, per topic.

Every step of every stage reports into the same :class:`Account`, with one argument order
(``rule, topic, n``):

- the reader counts what goes in (:meth:`Account.take_in`), from what it actually read;
- each step counts what it drops (:meth:`Account.drop`, under a named rule) or folds into another
  event (:meth:`Account.merge`, e.g. raw mouse moves summed into one);
- the step that makes rows counts what comes out (:meth:`Account.emit`).

Invariant, per topic, once a recording is converted: ``messages_in == out + dropped + merged``;
:meth:`Account.unaccounted` lists the topics where it does not hold (empty when all is accounted
for). Accounts of several recordings add up with :meth:`Account.add`.

:class:`RecordingReport` is one recording's account plus what else the conversion saw (legacy
upgrades, unknown types, missing media, recovery, warnings, stage statistics); it round-trips
through plain JSON (:meth:`RecordingReport.to_dict` / :meth:`RecordingReport.from_dict`) so worker
processes and caches can keep it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Rules under which events are dropped (every drop names one of these, or a stage's own rule).
TOPIC_NOT_KEPT = "topic_not_kept"
OUTSIDE_INTERVALS = "outside_intervals"
RECORDING_SKIPPED = "recording_skipped"


@dataclass
class Account:
    """Counts per topic: in, out, dropped by rule, merged. See the module docstring."""

    messages_in: Counter[str] = field(default_factory=Counter)
    out: Counter[str] = field(default_factory=Counter)
    dropped: dict[str, Counter[str]] = field(default_factory=dict)  # rule -> topic -> count
    merged: Counter[str] = field(default_factory=Counter)

    def take_in(self, topic: str, n: int = 1) -> None:
        """Count ``n`` messages of ``topic`` read from the input."""
        if n:
            self.messages_in[topic] += n

    def emit(self, topic: str, n: int = 1) -> None:
        """Count ``n`` events of ``topic`` that reached the output rows."""
        if n:
            self.out[topic] += n

    def drop(self, rule: str, topic: str, n: int = 1) -> None:
        """Count ``n`` events of ``topic`` dropped by ``rule``."""
        if n:
            self.dropped.setdefault(rule, Counter())[topic] += n

    def merge(self, topic: str, n: int = 1) -> None:
        """Count ``n`` events of ``topic`` folded into another event (their content is not lost)."""
        if n:
            self.merged[topic] += n

    def add(self, other: Account) -> None:
        """Add ``other``'s counts to this account (e.g. the accounts of several recordings)."""
        self.messages_in.update(other.messages_in)
        self.out.update(other.out)
        for rule, counts in other.dropped.items():
            self.dropped.setdefault(rule, Counter()).update(counts)
        self.merged.update(other.merged)

    def dropped_of(self, topic: str) -> int:
        """Events of ``topic`` dropped by any rule."""
        return sum(counts[topic] for counts in self.dropped.values())

    def dropped_by(self, rule: str) -> int:
        """Events of any topic dropped by ``rule``."""
        return sum(self.dropped.get(rule, Counter()).values())

    def unaccounted(self) -> dict[str, int]:
        """Topics whose input is not exactly out + dropped + merged (``topic -> in - accounted``)."""
        out: dict[str, int] = {}
        for topic in set(self.messages_in) | set(self.out) | set(self.merged):
            diff = self.messages_in[topic] - self.out[topic] - self.merged[topic] - self.dropped_of(topic)
            if diff:
                out[topic] = diff
        for counts in self.dropped.values():
            for topic in counts:
                if topic not in self.messages_in and topic not in out:
                    out[topic] = -self.dropped_of(topic)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form (sorted keys, so equal accounts give equal dicts)."""
        return {
            "messages_in": dict(sorted(self.messages_in.items())),
            "out": dict(sorted(self.out.items())),
            "dropped": {rule: dict(sorted(c.items())) for rule, c in sorted(self.dropped.items()) if +c},
            "merged": dict(sorted(self.merged.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Account:
        return cls(
            messages_in=Counter(d.get("messages_in", {})),
            out=Counter(d.get("out", {})),
            dropped={rule: Counter(c) for rule, c in d.get("dropped", {}).items()},
            merged=Counter(d.get("merged", {})),
        )


@dataclass
class RecordingReport:
    """What converting one recording did: its :class:`Account` and what else was seen."""

    episode_path: str
    account: Account = field(default_factory=Account)
    writer: str = ""
    """The MCAP header's library string (e.g. ``mcap-owa-support 0.5.1; mcap 1.3.0``)."""
    intervals: int = 0
    """Kept intervals (episodes) of the recording."""
    kept_ns: int = 0
    """Total length of the kept intervals, ns."""
    unknown_types: Counter[str] = field(default_factory=Counter)
    """Messages of types this package does not know (kept verbatim), by type."""
    legacy_upgraded: Counter[str] = field(default_factory=Counter)
    """Messages upgraded from a legacy layout, by original schema name."""
    missing_media: list[str] = field(default_factory=list)
    """Screen media URIs (relative to the dataset root) that do not exist."""
    outside_media: list[str] = field(default_factory=list)
    """Screen media URIs outside the dataset root (absolute, URLs, ``../``): never checked or served."""
    recovered_messages: int | None = None
    """Set when a truncated file was recovered: how many messages its complete chunks held."""
    skipped: str | None = None
    """Set when the recording was skipped whole (``on_bad_file="skip"``): why."""
    substitutions: dict[str, str] = field(default_factory=dict)
    """Kept topic -> the topic that served in its place (``topic_fallbacks``)."""
    warnings: list[str] = field(default_factory=list)
    """Every warning issued for this recording, in order (text)."""
    stats: dict[str, int] = field(default_factory=dict)
    """Stage statistics that are not accounting (sequences, frames, tokens, bins, ...)."""

    def warn(self, message: str) -> None:
        """Record a warning for this recording (the caller also issues it with ``warnings.warn``)."""
        self.warnings.append(message)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the statistic ``name``."""
        self.stats[name] = self.stats.get(name, 0) + n

    def unaccounted(self) -> dict[str, int]:
        """:meth:`Account.unaccounted` of the recording's account."""
        return self.account.unaccounted()

    def summary_line(self) -> str:
        """One line: messages in, events out, drops by rule, and anything unusual."""
        acc = self.account
        parts = [
            f"{self.episode_path}: {sum(acc.messages_in.values())} messages in, {sum(acc.out.values())} events out"
        ]
        if self.skipped:
            parts.append(f"SKIPPED ({self.skipped})")
        for wanted, used in sorted(self.substitutions.items()):
            parts.append(f"{used!r} served for {wanted!r}")
        for rule, counts in sorted(acc.dropped.items()):
            if +counts:
                topics = ", ".join(f"{t} {n}" for t, n in sorted(counts.items()) if n)
                parts.append(f"dropped by {rule}: {sum(counts.values())} ({topics})")
        if acc.merged:
            parts.append(
                f"merged: {sum(acc.merged.values())} ({', '.join(f'{t} {n}' for t, n in sorted(acc.merged.items()))})"
            )
        if self.unknown_types:
            parts.append(f"unknown message types kept verbatim: {dict(sorted(self.unknown_types.items()))}")
        if self.legacy_upgraded:
            parts.append(f"legacy messages upgraded: {sum(self.legacy_upgraded.values())}")
        if self.recovered_messages is not None:
            parts.append(f"truncated file: recovered {self.recovered_messages} messages")
        if self.missing_media:
            parts.append(f"missing video: {', '.join(self.missing_media)}")
        if self.outside_media:
            parts.append(f"media outside the dataset root: {len(self.outside_media)}")
        if any(self.stats.values()):
            parts.append(", ".join(f"{k} {v}" for k, v in sorted(self.stats.items()) if v))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode_path": self.episode_path,
            "account": self.account.to_dict(),
            "writer": self.writer,
            "intervals": self.intervals,
            "kept_ns": self.kept_ns,
            "unknown_types": dict(sorted(self.unknown_types.items())),
            "legacy_upgraded": dict(sorted(self.legacy_upgraded.items())),
            "missing_media": list(self.missing_media),
            "outside_media": list(self.outside_media),
            "recovered_messages": self.recovered_messages,
            "skipped": self.skipped,
            "substitutions": dict(sorted(self.substitutions.items())),
            "warnings": list(self.warnings),
            "stats": dict(sorted(self.stats.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecordingReport:
        return cls(
            episode_path=d["episode_path"],
            account=Account.from_dict(d.get("account", {})),
            writer=d.get("writer", ""),
            intervals=int(d.get("intervals", 0)),
            kept_ns=int(d.get("kept_ns", 0)),
            unknown_types=Counter(d.get("unknown_types", {})),
            legacy_upgraded=Counter(d.get("legacy_upgraded", {})),
            missing_media=list(d.get("missing_media", [])),
            outside_media=list(d.get("outside_media", [])),
            recovered_messages=d.get("recovered_messages"),
            skipped=d.get("skipped"),
            substitutions=dict(d.get("substitutions", {})),
            warnings=list(d.get("warnings", [])),
            stats=dict(d.get("stats", {})),
        )


def total(reports: list[RecordingReport]) -> Account:
    """The sum of the reports' accounts."""
    acc = Account()
    for report in reports:
        acc.add(report.account)
    return acc
