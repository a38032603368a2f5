"""Long recordings as several time-slice tasks whose rows, in order, are exactly the one-task rows.

A recording longer than ``task_ns`` is planned (:func:`plan_windows`) as consecutive windows of log
time ``[start, end)`` covering the whole time line (the first starts at ``None``, the last ends at
``None``), one task and one shard each, numbered in order, so reading the shards gives the rows in
recording order. A slice is the recording's :class:`~owa_event.pipeline.RecordingRef` with its
``window`` set (:func:`slice_ref`); the stage runs on it unchanged.

Seams are exact because they fall only where the stage allows (:meth:`Stage.seam_rule`):

- ``"any"`` (the event stage without rate limits): a row is made from its message alone, so a seam
  at any time gives the same rows; the windows are ``task_ns`` long.
- ``"episodes"`` (the event stage with rate limits, binned, FSL): every stateful step -- resampling
  (held keys, pending raw-mouse sums, rate periods), binning (the bin grid, the latest state) and
  packing (the open sequence) -- starts afresh per episode (kept interval) and nothing of it crosses
  into the next. Seams fall at the start of a kept interval, grouping whole episodes to about
  ``task_ns`` of recording each. A recording that is one long episode is not split (one task).
- ``"none"`` (the default of :class:`Stage`, e.g. a stage of the user's own): never split.

Never split (one task, exactly as before): recordings with ``on_bad_file="skip"`` or
``on_missing_media="skip"`` (skipping is all or nothing per recording), truncated recordings
(recovery reads the file as a whole), files without a Statistics record (their span is unknown
until the whole file is read), and recordings not longer than ``task_ns``.

Accounting: each slice counts exactly its window's messages (in, out, dropped by rule, merged);
the recording's own facts (kept intervals and their length, the writer, substitutions) are
reported once; :func:`merge_reports` adds the slices' reports up and issues the recording's
warnings once, from the merged counts, in the order the one-task conversion issues them, so the
merged :class:`~owa_event.account.RecordingReport` equals the unsplit one.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from owa_event.account import RecordingReport
from owa_event.pipeline import RecordingRef, Stage, media_warnings, open_recording, topic_warnings

#: Default task length (recorded minutes) above which a recording is split: long enough that a
#: slice's fixed costs (opening the file, the first slice's span scan) stay small next to its work.
DEFAULT_TASK_MINUTES = 30.0
NS_PER_MINUTE = 60_000_000_000

Window = tuple[int | None, int | None]


def task_ns(task_minutes: float | None) -> int | None:
    """``task_minutes`` in ns (``None`` or 0: never split); ValueError for a negative or odd value."""
    if task_minutes is None or task_minutes == 0:
        return None
    if isinstance(task_minutes, bool) or not isinstance(task_minutes, (int, float)) or not task_minutes > 0:
        raise ValueError(f"task_minutes must be a number of minutes > 0 (or None), got {task_minutes!r}")
    return max(1, int(task_minutes * NS_PER_MINUTE))


def slice_ref(ref: RecordingRef, window: Window | None) -> RecordingRef:
    """``ref`` limited to ``window`` (``None``: the whole recording)."""
    return ref if window is None else dataclasses.replace(ref, window=window)


def plan_windows(stage: Stage, ref: RecordingRef, task_ns: int | None) -> list[Window] | None:
    """The slices of ``ref`` (consecutive windows covering all time), or ``None`` to convert it whole.

    Reads the file's summary (its time span); with ``"episodes"`` seams, for a long recording, also the
    interval selection's topics (the intervals). Deterministic: the same file and config give the same
    windows. Any error (a file that cannot be read) gives ``None``: its one task reports it.
    """
    config = stage.config
    if task_ns is None or config.on_bad_file == "skip" or config.on_missing_media == "skip":
        return None
    try:
        return _plan(stage, ref, task_ns)
    except Exception:  # a file that cannot be read is converted whole: its task reports the error
        return None


def _plan(stage: Stage, ref: RecordingRef, task_ns: int) -> list[Window] | None:
    config = stage.config
    rule = stage.seam_rule()
    if rule not in ("any", "episodes"):
        return None
    selection = config.selection()
    with open_recording(ref, config) as rec:
        if rec.truncated:
            return None
        # The summary's claim of the time span is enough to plan (exactness never depends on where
        # the seams are); a file without one is converted whole rather than scanned on the driver.
        statistics = rec._scan.statistics
        if statistics is None or not statistics.message_count:
            return None
        first, last = statistics.message_start_time, statistics.message_end_time
        if last - first < task_ns:
            return None
        if rule == "any":
            cuts = list(range(first + task_ns, last + 1, task_ns))
        elif selection is None:
            return None  # one episode: no seam the stage allows
        else:
            census = rec.census()
            needed = [t for t in rec.topics if t in selection.topics()]
            intervals = selection.select(rec.events(topics=needed), census.start_ns, census.end_ns)
            cuts = episode_cuts([s for s, _ in intervals], task_ns)
    if not cuts:
        return None
    bounds: list[int | None] = [None, *cuts, None]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def episode_cuts(starts: Sequence[int], task_ns: int) -> list[int]:
    """Seams at episode starts: a new slice begins at the first episode starting ``task_ns`` or more
    after the current slice's first episode (whole episodes per slice, in order)."""
    cuts: list[int] = []
    if not starts:
        return cuts
    begin = starts[0]
    for start in starts[1:]:
        if start - begin >= task_ns:
            cuts.append(start)
            begin = start
    return cuts


def merge_reports(parts: Sequence[RecordingReport], stage: Stage, path: str) -> RecordingReport:
    """The report of a recording converted as the slices ``parts`` (in order): equal to the report of
    converting it as one task (see the module docstring). ``path``: the recording's file."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    out = RecordingReport(
        first.episode_path, writer=first.writer, recovered_messages=first.recovered_messages
    )
    out.substitutions = dict(first.substitutions)
    unknown: Counter[str] = Counter()
    legacy: Counter[str] = Counter()
    outside: set[str] = set()
    missing: set[str] = set()
    notes: list[str] = []
    n_substitutions = len(first.substitutions)  # each slice warns about them first, identically
    for part in parts:
        out.account.add(part.account)
        out.intervals += part.intervals
        out.kept_ns += part.kept_ns
        unknown.update(part.unknown_types)
        legacy.update(part.legacy_upgraded)
        outside.update(part.outside_media)
        missing.update(part.missing_media)
        for name, n in part.stats.items():
            out.stats[name] = out.stats.get(name, 0) + n
        notes += [w for w in part.warnings[n_substitutions:] if w not in notes]
    out.unknown_types, out.legacy_upgraded = unknown, legacy
    out.outside_media, out.missing_media = sorted(outside), sorted(missing)
    out.warnings = list(first.warnings[:n_substitutions])
    keep = stage.config.keep_topics
    if keep is not None:
        kept = set(keep) | set(out.substitutions.values())
        out.warnings += topic_warnings(first.episode_path, kept, out.account.messages_in, out.substitutions)
    out.warnings += notes
    out.warnings += [
        message for message, _ in media_warnings(first.episode_path, out.outside_media, out.missing_media)
    ]
    return out
