"""The recording selection every stage starts with (:class:`SelectionConfig`), which is all the
event stage's config is (:data:`EventConfig`): one dataclass, validated once, up front.

The binned and FSL (fixed sequence length) stages' configs derive from it and add their own fields.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

from .errors import ConfigError, did_you_mean
from .events import KNOWN_TOPICS

C = TypeVar("C", bound="SelectionConfig")
OnBadFile = Literal["error", "skip"]
OnMissingMedia = Literal["keep", "skip"]
OnTruncated = Literal["recover", "error"]


@dataclass
class SelectionConfig:
    """What a stage keeps from each recording, and what it does with bad input: the shared front
    (:func:`owa_event.pipeline.kept_events`: read -> keep topics -> select intervals -> resample) of
    every stage. The default keeps everything (lossless)."""

    rate_settings: dict[str, float] | None = None
    """Topic -> maximum rate in Hz. A topic absent or at 0 keeps every event. Rules per topic are
    in :mod:`owa_event.resample` (raw mouse moves are summed, never lost)."""

    keep_topics: list[str] | None = None
    """Topics to keep; ``None`` keeps every topic, including ones this package does not know."""

    interval: Any = None
    """Which parts of each recording to keep, as an :class:`owa_event.intervals.IntervalSelection`
    or its dict form (``{"type": "start_stop_key", "start_vk": 119}``); ``None`` keeps all of it.
    Each kept interval is an episode (``interval_idx`` in the rows)."""

    keyboard_repeat: bool = False
    """With a keyboard rate set: re-emit presses of a held key at that rate (from the OS
    auto-repeats) instead of dropping every auto-repeat."""

    topic_fallbacks: dict[str, str] | None = None
    """Kept topic -> the topic used in its place in a recording that does not have it (e.g.
    ``{"mouse/raw": "mouse"}``: writers up to 0.5.1 record ``mouse`` only). The substitute is kept,
    at the kept topic's rate, and the recording's report says which topic served."""

    on_bad_file: OnBadFile = "error"
    """``"error"``: a bad recording stops the build with an error naming it. ``"skip"``: it is
    skipped whole, with a counted warning (it is converted completely, into a temporary file, before
    any of its rows is given out)."""

    on_missing_media: OnMissingMedia = "keep"
    """A recording whose screen messages point to a video that is not there: ``"keep"`` its rows
    (with a warning; frames cannot be loaded at training time) or ``"skip"`` it whole (counted)."""

    on_truncated: OnTruncated = "recover"
    """``"recover"``: a truncated recording (recorder crash) keeps the messages of its complete
    chunks, with a warning. ``"error"``: it is a bad file."""

    def problems(self, input_topics: Iterable[str] | None = ()) -> list[str]:
        """Every problem of the selection fields (empty when valid).

        Topics must be OWAMcap topics or appear in ``input_topics`` (the inputs' topics);
        ``None`` skips that check (inputs not listed yet).
        """
        from .intervals import IntervalSelection, selection_from_dict

        problems: list[str] = []
        check_topics = input_topics is not None
        known = set(KNOWN_TOPICS) | set(input_topics or ())
        rates = self.rate_settings
        if rates is not None:
            if not isinstance(rates, Mapping):
                problems.append(f"rate_settings must be a mapping topic -> Hz, got {type(rates).__name__}")
            else:
                for topic, hz in rates.items():
                    if check_topics and topic not in known:
                        problems.append(
                            f"rate_settings names unknown topic {topic!r}{topic_hint(topic, known)}"
                        )
                    if isinstance(hz, bool) or not isinstance(hz, (int, float)) or not math.isfinite(hz):
                        problems.append(f"rate_settings[{topic!r}] must be a finite number of Hz, got {hz!r}")
                    elif hz < 0:
                        problems.append(
                            f"rate_settings[{topic!r}] is negative ({hz} Hz); use 0 to keep every event"
                        )
        if self.keep_topics is not None:
            if isinstance(self.keep_topics, str) or not isinstance(self.keep_topics, (list, tuple)):
                problems.append(f"keep_topics must be a list of topics or None, got {self.keep_topics!r}")
            else:
                if not self.keep_topics:
                    problems.append(
                        "keep_topics is empty: nothing would be kept (use None to keep every topic)"
                    )
                for topic in self.keep_topics:
                    if check_topics and topic not in known:
                        problems.append(
                            f"keep_topics names unknown topic {topic!r}{topic_hint(topic, known)}"
                        )
        if self.interval is not None and not isinstance(self.interval, IntervalSelection):
            if isinstance(self.interval, Mapping):
                try:
                    selection_from_dict(dict(self.interval))
                except ValueError as exc:
                    problems.append(f"interval: {exc}")
            else:
                problems.append(
                    f"interval must be an IntervalSelection, a dict or None, got {self.interval!r}"
                )
        fallbacks = self.topic_fallbacks
        if fallbacks is not None:
            if not isinstance(fallbacks, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) and k != v for k, v in fallbacks.items()
            ):
                problems.append(f"topic_fallbacks must map a topic to another topic, got {fallbacks!r}")
        if self.on_missing_media not in ("keep", "skip"):
            problems.append(f"on_missing_media must be 'keep' or 'skip', got {self.on_missing_media!r}")
        if self.on_bad_file not in ("error", "skip"):
            problems.append(f"on_bad_file must be 'error' or 'skip', got {self.on_bad_file!r}")
        if self.on_truncated not in ("recover", "error"):
            problems.append(f"on_truncated must be 'recover' or 'error', got {self.on_truncated!r}")
        if not isinstance(self.keyboard_repeat, bool):
            problems.append(f"keyboard_repeat must be a bool, got {self.keyboard_repeat!r}")
        return problems

    def validate(self, input_topics: Iterable[str] | None = ()) -> None:
        """Raise :class:`ConfigError` listing every problem at once (see :meth:`problems`)."""
        problems = self.problems(input_topics)
        if problems:
            raise ConfigError(problems)

    def selection(self) -> Any:
        """The interval selection as an object (``None`` = the whole recording)."""
        from .intervals import IntervalSelection, selection_from_dict

        if self.interval is None or isinstance(self.interval, IntervalSelection):
            return self.interval
        return selection_from_dict(dict(self.interval))

    def named_topics(self) -> set[str]:
        """Every topic the config names (in rate_settings or keep_topics)."""
        names = set(self.rate_settings or {}) if isinstance(self.rate_settings, Mapping) else set()
        if isinstance(self.keep_topics, (list, tuple)):
            names |= set(self.keep_topics)
        return names

    @classmethod
    def from_fields(cls: type[C], obj: Any) -> C:
        """A ``cls`` with the values of ``obj``'s fields of the same names (e.g. from a builder config)."""
        return cls(**{f.name: getattr(obj, f.name) for f in fields(cls)})

    def rates(self) -> dict[str, float]:
        """The non-zero rates (Hz) per topic."""
        return {t: float(hz) for t, hz in (self.rate_settings or {}).items() if hz}


#: The event stage's config: the recording selection, nothing more (the same class, so every stage's
#: config is an ``EventConfig`` too).
EventConfig = SelectionConfig


def topic_hint(topic: str, known: Iterable[str]) -> str:
    """What to say after an unknown topic: the closest known one, else the known ones."""
    return did_you_mean(topic, known) or f" (known: {sorted(known)})"
