"""The shape every stage has, and the front of the pipeline that every stage shares.

A stage (:class:`Stage`: the event stage, ``owa_binned``, ``owa_fsl``) is a validated config plus
one function from a recording (:class:`RecordingRef`) to Arrow record batches of the stage's
schema, reporting into a :class:`~owa_event.account.RecordingReport`. Builders, ``inspect``,
publishing and the Ray build all drive stages through :func:`convert`; none re-implements one.

Shared front (:func:`kept_events`): read (:mod:`owa_event.reader`) -> keep topics -> select
intervals (:mod:`owa_event.intervals`) -> resample per interval (:mod:`owa_event.resample`).
Every message read is counted in (``take_in``); what is not kept is dropped under a named rule;
the stage that makes rows counts what comes out (``emit``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa

from .account import OUTSIDE_INTERVALS, RECORDING_SKIPPED, TOPIC_NOT_KEPT, RecordingReport
from .config import SelectionConfig
from .errors import (
    ConfigError,
    MissingMediaWarning,
    OwaError,
    RecordingError,
    SkippedFileWarning,
    TopicWarning,
    did_you_mean,
)
from .events import INPUT_TOPICS, MOUSE_RAW, Event, Move
from .reader import Recording
from .resample import resample

#: Where a stage allows a slice seam (:meth:`Stage.seam_rule`).
SeamRule = Literal["any", "episodes", "none"]


@dataclass(frozen=True)
class RecordingRef:
    """One recording to convert.

    ``path`` is the ``.mcap`` (local path or fsspec URL); ``root`` is the dataset root it belongs
    to (local folder or fsspec URL; screen media URIs in the output are relative to it);
    ``episode_path`` is the POSIX path of the file relative to ``root`` (the rows' ``episode_path``).
    ``window``: set for one time slice of a split recording (:mod:`owa_builders.distributed.slices`):
    only messages with ``start <= log time < end`` (``None``: unbounded) are read and counted; the
    slices' reports add up to the recording's (``slices.merge_reports``).
    """

    path: str
    episode_path: str
    root: str
    window: tuple[int | None, int | None] | None = None


@dataclass(frozen=True)
class Preset:
    """A named config of a stage (``event``, ``fsl-internvl3``, ...): a description, the fields it
    sets (every other field keeps its default) and, for a model's layout, the name of the training
    collator that batches its rows (a class of ``owa_builders.training.batching``)."""

    description: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    collator: str | None = None


class Stage(ABC):
    """A conversion stage: a validated config -> per recording, record batches of :meth:`schema`.

    Subclasses set :attr:`name`, :attr:`config_class` and :attr:`presets` (the first is the default)
    and implement :meth:`schema` and :meth:`batches`. A preset + overrides are validated in one place,
    :meth:`checked_config` (every problem at once, :class:`~owa_event.errors.ConfigError`); the
    constructor only re-checks a config made by hand. A stage pickles (worker processes,
    Ray tasks); per-process resources (a tokenizer) are rebuilt lazily after unpickling.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[SelectionConfig]]
    presets: ClassVar[Mapping[str, Preset]]
    #: Whether a screen media URI exists (``(root, uri) -> bool``); replaceable, e.g. in tests.
    media_exists: Callable[[str, str], bool] = staticmethod(lambda root, uri: default_media_exists(root, uri))

    def seam_rule(self) -> SeamRule:
        """Where a long recording may be cut into slices whose rows, put together, are exactly the
        whole recording's (:mod:`owa_builders.distributed.slices`): ``"any"`` time (rows independent
        per message), ``"episodes"`` (only at the start of a kept interval: the stage's state starts
        afresh per episode) or ``"none"`` (never split; the default, safe for any stage)."""
        return "none"

    @classmethod
    def make_config(cls, preset: str | None = None, **overrides: Any) -> SelectionConfig:
        """The config of ``preset`` (default: the stage's first) with ``overrides`` applied.

        Raises :class:`~owa_event.errors.ConfigError` listing every problem at once: an unknown
        preset or field name (with a "did you mean"), and every invalid value.
        """
        return cls.config_of(preset, overrides)

    @classmethod
    def config_of(
        cls,
        preset: str | None,
        overrides: Mapping[str, Any],
        recordings: Callable[[], Iterable[RecordingRef]] | None = None,
    ) -> SelectionConfig:
        """:meth:`make_config`, with the topic names also checked against the topics of
        ``recordings()`` (called only when the config names a topic that is not an OWAMcap one)."""
        name = preset if preset is not None else next(iter(cls.presets))
        problems: list[str] = []
        if name not in cls.presets:
            problems.append(f"unknown config {name!r} for the {cls.name} stage{did_you_mean(name, cls.presets)} "
                            f"(configs: {', '.join(cls.presets)})")  # fmt: skip
            name = next(iter(cls.presets))
        values = {**cls.presets[name].fields, **overrides}
        return cls.checked_config(
            values, problems=problems, recordings=recordings, where=f"{cls.name} config {name!r}"
        )

    @classmethod
    def checked_config(
        cls,
        values: Mapping[str, Any],
        *,
        problems: Iterable[str] = (),
        also: Iterable[str] = (),
        recordings: Callable[[], Iterable[RecordingRef]] | None = None,
        where: str,
    ) -> SelectionConfig:
        """THE validation of a stage's config (every driver's: :meth:`make_config`, the `datasets`
        builder after it applied the overrides, the Ray build): ``values`` (a preset's fields with the
        overrides applied) -> the config, or :class:`~owa_event.errors.ConfigError` listing every
        problem at once under ``where``: ``problems`` found by the caller (e.g. an unknown preset), then
        each name of ``values`` that is not a field (nor in ``also``, names the caller handles itself),
        then every invalid value (topic names checked against the topics of ``recordings()`` when
        given: :func:`config_problems`)."""
        names = config_field_names(cls.config_class)
        found = [*problems, *unknown_field_problems(cls.config_class, values, also)]
        config = cls.config_class(**{k: v for k, v in values.items() if k in names})
        found += config_problems(config, recordings)
        if found:
            raise ConfigError(found, where=where)
        return config

    def __init__(self, config: SelectionConfig) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        config.validate(None)  # topic names are checked against the inputs by config_problems
        self.config = config

    @abstractmethod
    def schema(self) -> pa.Schema:
        """The Arrow schema of every batch (column order included)."""

    @abstractmethod
    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[pa.RecordBatch]:
        """The rows of one recording, in order, as record batches; counts go into ``report``."""

    def describe(self) -> dict[str, Any]:
        """JSON-compatible facts about the stage and its config (dataset info, cards, inspect)."""
        return {"stage": self.name, "config": config_dict(self.config, self.config_class)}

    def fingerprint(self) -> str:
        """Extra input to the cache fingerprint beyond the config and the code (e.g. a local tokenizer's
        contents); empty when there is none."""
        return ""

    def save_artifacts(self, directory: str) -> None:  # noqa: B027 - optional hook
        """Write files a built dataset needs besides its rows into ``directory`` (e.g. the tokenizer)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def config_field_names(config_class: type) -> set[str]:
    """The field names of a stage config class."""
    return {f.name for f in fields(config_class)}


def unknown_field_problems(config_class: type, names: Iterable[str], also: Iterable[str] = ()) -> list[str]:
    """One problem per name that is not a field of ``config_class`` (nor in ``also``), with the
    closest field name when one is close."""
    known = config_field_names(config_class) | set(also)
    return [
        f"unknown field {name!r}{did_you_mean(name, known) or f' (fields: {sorted(known)})'}"
        for name in names
        if name not in known
    ]


def config_dict(config: SelectionConfig, config_class: type[SelectionConfig] | None = None) -> dict[str, Any]:
    """The fields of ``config_class`` (default: ``config``'s own class) in ``config`` as plain data."""
    names = config_field_names(config_class or type(config))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(config, name)
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        elif is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        out[name] = value
    return out


def input_topics(recordings: Iterable[RecordingRef], config: SelectionConfig) -> set[str]:
    """The topics declared by ``recordings`` (their channels; a bad file is reported when converted)."""
    topics: set[str] = set()
    for ref in recordings:
        try:
            with open_recording(ref, config) as rec:
                topics |= set(rec.topics)
        except Exception:
            continue
    return topics


def config_problems(
    config: SelectionConfig, recordings: Callable[[], Iterable[RecordingRef]] | None = None
) -> list[str]:
    """Every problem of ``config``; topic names that are not OWAMcap topics are checked against the
    topics of ``recordings()`` (only called, and the files only opened, when there are such names)."""
    from .events import KNOWN_TOPICS

    problems = config.problems(None)
    if recordings is not None and not config.named_topics() <= KNOWN_TOPICS:
        with_inputs = config.problems(input_topics(recordings(), config))
        problems += [p for p in with_inputs if p not in problems]
    return problems


# ------------------------------------------------------------------------------------------
# Running a stage on one recording
# ------------------------------------------------------------------------------------------
def convert(
    stage: Stage, recording: RecordingRef, report: RecordingReport | None = None
) -> Iterator[pa.RecordBatch]:
    """The batches of one recording, with ``on_bad_file`` applied.

    ``"error"``: batches stream as they are made; an error stops the iteration (an error that does not
    name the file is re-raised as a :class:`RecordingError` that does). ``"skip"``: the recording is
    converted completely first, its batches spooled to a temporary Arrow file; any error it causes
    (ours, I/O, or a bug triggered by its content) skips it whole -- nothing of it is yielded,
    ``report.skipped`` says why and a :class:`SkippedFileWarning` is issued. A file is never
    half-written. ``on_missing_media="skip"`` spools likewise, and skips a recording whose video is
    missing (its messages counted under the rule ``recording_skipped``).
    """
    report = report if report is not None else RecordingReport(recording.episode_path)
    config = stage.config
    if config.on_bad_file != "skip" and config.on_missing_media != "skip":
        try:
            yield from stage.batches(recording, report)
        except Exception as exc:
            named = naming_the_file(exc, recording.path)
            if named is exc:
                raise
            raise named from exc
        return
    attempt = RecordingReport(recording.episode_path)
    folder = tempfile.mkdtemp(prefix="owa-spool-")
    spool = os.path.join(folder, "batches.arrow")
    try:
        try:
            with pa.OSFile(spool, "wb") as sink, pa.ipc.new_file(sink, stage.schema()) as writer:
                for batch in stage.batches(recording, attempt):
                    writer.write_batch(batch)
        except (Exception, Warning) as exc:  # a warning raised as an error (filters) is a failure too
            named = naming_the_file(exc, recording.path)
            if config.on_bad_file != "skip":
                if named is exc:
                    raise
                raise named from exc
            report.skipped = str(named)
            _warn(report, f"skipping bad recording {recording.path} ({named})", SkippedFileWarning)
            return
        if config.on_missing_media == "skip" and attempt.missing_media:
            report.skipped = f"missing video: {', '.join(attempt.missing_media)}"
            report.missing_media = attempt.missing_media
            for topic, n in attempt.account.messages_in.items():
                report.account.take_in(topic, n)
                report.account.drop(RECORDING_SKIPPED, topic, n)
            message = f"skipping recording {recording.path}: its video is missing ({report.skipped}; on_missing_media='skip')"
            _warn(report, message, SkippedFileWarning)
            return
        _copy_report(attempt, report)
        with pa.memory_map(spool) as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def naming_the_file(exc: BaseException, path: str) -> BaseException:
    """``exc`` when its message already names ``path``; else a :class:`RecordingError` that does (for an
    error of ours raised by a step that does not know the file, or for a bug this file triggered)."""
    if isinstance(exc, RecordingError) or str(exc).startswith(path):
        return exc
    if isinstance(exc, OwaError):
        return RecordingError(path, str(exc))
    return RecordingError(
        path,
        f"cannot be converted ({type(exc).__name__}: {exc}); this is a bug of owa-builders that this file "
        f"triggers, please report it",
    )


def _copy_report(src: RecordingReport, dst: RecordingReport) -> None:
    for f in fields(RecordingReport):
        if f.name != "episode_path":
            setattr(dst, f.name, getattr(src, f.name))


def rows(
    stage: Stage, recording: RecordingRef, report: RecordingReport | None = None
) -> Iterator[dict[str, Any]]:
    """The rows of one recording as dicts (column -> value), in order (for tests and tools)."""
    for batch in convert(stage, recording, report):
        yield from batch.to_pylist()


# ------------------------------------------------------------------------------------------
# The shared front: read -> keep topics -> select intervals -> resample
# ------------------------------------------------------------------------------------------
def default_media_exists(root: str, uri: str) -> bool:
    """Whether ``uri`` (relative to the dataset root ``root``, local path or fsspec URL) exists."""
    if "://" in root:
        import fsspec

        fs, path = fsspec.core.url_to_fs(root.rstrip("/") + "/" + uri)
        return bool(fs.exists(path))
    return os.path.exists(os.path.join(root, uri))


def open_recording(recording: RecordingRef, config: SelectionConfig) -> Recording:
    """Open ``recording.path`` (local path or fsspec URL) as a :class:`Recording`."""
    path = recording.path
    if "://" in path:
        import fsspec

        stream = fsspec.open(path, "rb").open()
        try:
            return Recording(
                path, episode_path=recording.episode_path, on_truncated=config.on_truncated, stream=stream
            )
        except BaseException:
            stream.close()
            raise
    return Recording(path, episode_path=recording.episode_path, on_truncated=config.on_truncated)


def kept_episodes(
    recording: RecordingRef,
    config: SelectionConfig,
    report: RecordingReport,
    *,
    media_exists: Callable[[str, str], bool] = default_media_exists,
    batches: bool = False,
) -> Iterator[tuple[int, Iterator[Any]]]:
    """``(interval_idx, events)`` for every kept interval (episode) of one recording, in order; each
    ``events`` iterator gives the episode's kept events in time order and must be consumed before
    the next episode is asked for (as with ``itertools.groupby``).

    ``batches=True`` (only for a lossless config: :func:`is_lossless`): one episode whose iterator
    gives :class:`~owa_event.reader.MessageBatch` es instead of events (the same messages and counts).

    Counts every message in, and every drop (``topic_not_kept``, ``outside_intervals``, the
    resampling rules) and merge into ``report.account``; the caller counts what it emits. After
    the last episode, screen media that do not exist (or lie outside the dataset root) are reported
    (:class:`MissingMediaWarning`).
    """
    if batches and not is_lossless(config):
        raise ValueError("kept_episodes(batches=True) needs a lossless config (is_lossless)")
    window = recording.window
    if batches and window is not None:
        raise ValueError("kept_episodes(batches=True) reads whole recordings (no window)")
    with open_recording(recording, config) as rec:
        yield from _select(rec, config, report, window, batches)
        report.writer = rec.writer
        uris, outside = rec.stats.media_uris, rec.stats.outside_media
        for note in rec.stats.warnings:
            report.warn(note)
    report.outside_media.extend(sorted(outside))
    missing = [u for u in sorted(uris) if not media_exists(recording.root, u)]
    report.missing_media.extend(missing)
    if window is not None:  # one slice: its media lists are merged first, then warned about once
        return
    for message, category in media_warnings(
        recording.episode_path, report.outside_media, report.missing_media
    ):
        _warn(report, message, category)


def media_warnings(path: str, outside: list[str], missing: list[str]) -> list[tuple[str, type[Warning]]]:
    """The warnings about a recording's screen media outside the dataset root / missing (sorted lists)."""
    out: list[tuple[str, type[Warning]]] = []
    if outside:
        shown = ", ".join(outside[:5]) + (" ..." if len(outside) > 5 else "")
        message = (
            f"{path}: screen messages point to media outside the dataset root: {shown} (never checked "
            f"or opened; the frame loader refuses them unless told to trust such paths)"
        )
        out.append((message, MissingMediaWarning))
    if missing:
        message = (
            f"{path}: screen messages point to missing video {', '.join(missing)} "
            f"(the rows are complete; frames cannot be loaded at training time)"
        )
        out.append((message, MissingMediaWarning))
    return out


def kept_events(
    recording: RecordingRef,
    config: SelectionConfig,
    report: RecordingReport,
    *,
    media_exists: Callable[[str, str], bool] = default_media_exists,
) -> Iterator[tuple[int, Event]]:
    """``(interval_idx, event)`` for every kept event of one recording (:func:`kept_episodes` flattened)."""
    for idx, events in kept_episodes(recording, config, report, media_exists=media_exists):
        for event in events:
            yield idx, event


def is_lossless(config: SelectionConfig) -> bool:
    """Whether ``config`` keeps every message of every recording unchanged (no topic filter, no
    interval selection, no rate)."""
    return config.keep_topics is None and config.interval is None and not config.rates()


def _select(
    rec: Recording,
    config: SelectionConfig,
    report: RecordingReport,
    window: tuple[int | None, int | None] | None,
    batches: bool = False,
) -> Iterator[tuple[int, Iterator[Any]]]:
    """With a ``window`` (one slice of a split recording) only its messages are read and counted; the
    intervals are those of the whole recording (same ``interval_idx``), clipped to the window; the
    recording's span (no selection) is reported by the first slice; topic warnings are left to the
    merge of the slices' reports. ``batches``: message batches instead of events (the lossless path,
    whole recordings only)."""
    account = report.account
    keep = None if config.keep_topics is None else set(config.keep_topics)
    selection = config.selection()
    rates = config.rates()
    lo, hi = window if window is not None else (None, None)
    if keep is not None:
        for wanted, used in (config.topic_fallbacks or {}).items():
            if wanted in keep and wanted not in rec.topics and used in rec.topics and used not in keep:
                keep.add(used)
                if wanted in rates:
                    rates[used] = rates[wanted]
                report.substitutions[wanted] = used
                message = f"{rec.episode_path}: has no {wanted!r} topic; its {used!r} messages are kept in its place (topic_fallbacks)"
                _warn(report, message, TopicWarning)
    # Raw moves that the resampler sums are read as Move tuples (no Event per move): the same output.
    moves = rates.get(MOUSE_RAW, 0) > 0
    stats = rec.stats
    unknown_before, legacy_before = Counter(stats.unknown_types), Counter(stats.legacy_upgraded)
    if selection is None:
        # One pass over every message: what is read is counted in (topic filter applied after counting).
        seen: Counter[str] = Counter()
        span: list[int] = []  # a slice reading every topic: the first and last log time it read
        events: Iterator[Any]
        if batches:
            events = rec.message_batches(seen=seen)
        else:
            events = rec.events(topics=keep, start_ns=lo, end_ns=hi, seen=seen, moves=moves)
        if window is not None and keep is None:
            events = _spanning(events, span)
        if rates:
            events = resample(events, rates, keyboard_repeat=config.keyboard_repeat, account=account)
        yield 0, events
        for _ in events:  # the caller stopped early: the account counts what was read
            pass
        counts: dict[str, int] = dict(seen)
        if window is None:
            census = rec.census()  # set by the full read above
            if census.message_count:
                report.intervals = 1
                report.kept_ns = census.end_ns - census.start_ns + 1
        else:
            # The recording's span, telescoped over its slices: each reports [lower, upper) of its window,
            # the first slice from the first message, the last to just after the last message (read, or
            # else from a scan of the file). A split recording has messages.
            first = last = 0
            if lo is None or hi is None:
                if span:
                    first, last = span[0], span[-1]
                else:
                    census = rec.census()
                    first, last = census.start_ns, census.end_ns
            report.kept_ns += (hi if hi is not None else last + 1) - (lo if lo is not None else first)
            if lo is None:
                report.intervals = 1
    else:
        census = rec.census()
        counts = dict(census.topic_counts)
        if window is not None:  # the window's messages, counted (not parsed)
            in_window: Counter[str] = Counter()
            for _ in rec.events(topics=(), start_ns=lo, end_ns=hi, seen=in_window):
                pass
            counts = dict(in_window)
        if census.message_count:
            needed = [t for t in rec.topics if t in selection.topics()]
            intervals = selection.select(rec.events(topics=needed), census.start_ns, census.end_ns)
            # The selection pass already counted its events in rec.stats: count only the row passes.
            unknown_before, legacy_before = Counter(stats.unknown_types), Counter(stats.legacy_upgraded)
            read_in_intervals: Counter[str] = Counter()
            for idx, (start, end) in enumerate(intervals):
                if window is None:
                    report.intervals += 1
                    report.kept_ns += min(end, census.end_ns + 1) - start
                else:  # the part of the interval in the window; the slice holding its start counts it
                    owns = (lo is None or lo <= start) and (hi is None or start < hi)
                    start, end = (
                        max(start, lo if lo is not None else start),
                        min(end, hi if hi is not None else end),
                    )
                    if not owns and start >= end:
                        continue
                    report.intervals += owns
                    report.kept_ns += max(0, min(end, census.end_ns + 1) - start)
                events = _counting(
                    rec.events(topics=keep, start_ns=start, end_ns=end, moves=moves), read_in_intervals
                )
                if rates:
                    events = resample(events, rates, keyboard_repeat=config.keyboard_repeat, account=account)
                yield idx, events
                for _ in events:
                    pass
            for topic in counts if keep is None else keep & counts.keys():
                account.drop(OUTSIDE_INTERVALS, topic, counts[topic] - read_in_intervals[topic])
    for topic, n in counts.items():
        account.take_in(topic, n)
        if keep is not None and topic not in keep:
            account.drop(TOPIC_NOT_KEPT, topic, n)
    if keep is not None and window is None:
        for message in topic_warnings(rec.episode_path, keep, counts, report.substitutions):
            _warn(report, message, TopicWarning)
    report.unknown_types.update(stats.unknown_types - unknown_before)
    report.legacy_upgraded.update(stats.legacy_upgraded - legacy_before)
    report.recovered_messages = stats.recovered_messages


def _warn(report: RecordingReport, message: str, category: type[Warning]) -> None:
    """Keep ``message`` in the recording's report and issue it as a warning of ``category``. Warnings
    about a recording's content name it by its ``episode_path`` (relative to the dataset root: the
    report, and so the build record, carries no local path); errors keep the full path."""
    report.warn(message)
    warnings.warn(message, category, stacklevel=3)


def topic_warnings(
    path: str, keep: set[str], counts: Mapping[str, int], substitutions: Mapping[str, str]
) -> list[str]:
    """The warnings (text) when a kept topic is absent, or when the topic filter drops every input
    event of a recording that has some (``counts``: messages per topic of the whole recording)."""
    out: list[str] = []
    absent = sorted(t for t in keep if not counts.get(t) and t not in substitutions)
    if absent:
        out.append(f"{path}: kept topic(s) {', '.join(map(repr, absent))} have no message in this recording")
    inputs = {t: n for t, n in counts.items() if t in INPUT_TOPICS and n}
    if inputs and not any(t in keep for t in inputs):
        shown = ", ".join(f"{t!r}: {n}" for t, n in sorted(inputs.items()))
        out.append(
            f"{path}: the topic filter drops every input event of this recording ({shown}); keep_topics={sorted(keep)}"
        )
    return out


def _spanning(events: Iterator[Event | list[Move]], span: list[int]) -> Iterator[Event | list[Move]]:
    """``events`` (Events and lists of Moves), leaving the first and the last log time in ``span``."""
    last = None
    for event in events:
        if type(event) is list:
            first, last = event[0][0], event[-1][0]
        else:
            first = last = event.timestamp_ns
        if not span:
            span.append(first)
        yield event
    if last is not None:
        span.append(last)


def _counting(events: Iterator[Event | list[Move]], counter: Counter[str]) -> Iterator[Event | list[Move]]:
    """``events`` (Events and lists of Moves), each counted by topic in ``counter``."""
    for event in events:
        if type(event) is list:
            counter[MOUSE_RAW] += len(event)
        else:
            counter[event.topic] += 1
        yield event
