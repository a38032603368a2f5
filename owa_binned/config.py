"""The binned stage's configuration: the event stage's fields plus the bin rate and topic roles."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from owa_event.config import SelectionConfig, topic_hint
from owa_event.events import KEYBOARD, KNOWN_TOPICS, MOUSE, MOUSE_RAW, SCREEN

#: The default roles: the screen is the state, the input events are the actions.
DEFAULT_STATE_TOPICS = [SCREEN]
DEFAULT_ACTION_TOPICS = [KEYBOARD, MOUSE, MOUSE_RAW]


@dataclass
class BinnedConfig(SelectionConfig):
    """Event selection (inherited: ``keep_topics``, ``rate_settings``, ``interval``, ...) + binning.

    ``keep_topics=None`` (the default) reads every topic; events of topics that are neither state
    nor action topics are counted (``not_binned``), never put in a bin.
    """

    fps: float = 10.0
    """Bins per second (> 0, finite). Bins are ``round(1e9 / fps)`` integer ns long."""

    drop_empty_bins: bool = False
    """Leave out bins without any action (counted in the report; ``bin_idx`` keeps its gaps)."""

    max_gap_s: float | None = 3600.0
    """Longest stretch without any kept event (s) that is filled with empty bins; a longer one is an
    error naming the recording and the time (use ``drop_empty_bins``, an ``Inactivity`` interval, or
    raise this; ``None``: no limit). Without it, one event a week apart would make millions of bins."""

    topic_fallbacks: dict[str, str] | None = field(default_factory=lambda: {"mouse/raw": "mouse"})
    """As in the event stage; the substitute takes the role (state or action) of the topic it stands
    for. Only matters with ``keep_topics``: by default every topic is read."""

    state_topics: list[str] = field(default_factory=lambda: list(DEFAULT_STATE_TOPICS))
    """Topics whose latest event at or before a bin's start is that bin's ``state``."""

    action_topics: list[str] = field(default_factory=lambda: list(DEFAULT_ACTION_TOPICS))
    """Topics whose events inside a bin are that bin's ``actions``."""

    def max_empty_run(self) -> int | None:
        """``max_gap_s`` in bins (None: no limit)."""
        return None if self.max_gap_s is None else int(self.max_gap_s * 1e9 // self.period_ns())

    def period_ns(self) -> int:
        """The bin length in integer ns (see :func:`owa_binned.bins.period_ns_of`)."""
        from .bins import period_ns_of

        return period_ns_of(self.fps)

    def problems(self, input_topics: Iterable[str] | None = ()) -> list[str]:
        problems = super().problems(input_topics)
        fps = self.fps
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            problems.append(f"fps must be a finite number > 0, got {fps!r}")
        elif round(1e9 / fps) < 1:
            problems.append(f"fps {fps} gives bins shorter than 1 ns")
        if not isinstance(self.drop_empty_bins, bool):
            problems.append(f"drop_empty_bins must be a bool, got {self.drop_empty_bins!r}")
        gap = self.max_gap_s
        if gap is not None and (
            isinstance(gap, bool) or not isinstance(gap, (int, float)) or not gap > 0 or gap == math.inf
        ):
            problems.append(f"max_gap_s must be a number of seconds > 0 or None, got {gap!r}")
        check_topics = input_topics is not None
        known = set(KNOWN_TOPICS) | set(input_topics or ())
        roles: dict[str, list[str]] = {}
        for name in ("state_topics", "action_topics"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                problems.append(f"{name} must be a list of topics, got {value!r}")
                continue
            topics = []
            for topic in value:
                if not isinstance(topic, str):
                    problems.append(f"{name} must list topic names (strings), got {topic!r}")
                    continue
                if topic in topics:
                    problems.append(f"{name} names {topic!r} twice")
                    continue
                topics.append(topic)
                if check_topics and topic not in known:
                    problems.append(f"{name} names unknown topic {topic!r}{topic_hint(topic, known)}")
            roles[name] = topics
        states, actions = roles.get("state_topics"), roles.get("action_topics")
        if states is not None and actions is not None:
            for topic in states:
                if topic in actions:
                    problems.append(f"topic {topic!r} is both a state and an action topic")
            if not states and not actions:
                problems.append("state_topics and action_topics are both empty: every bin would be empty")
            elif not actions and self.drop_empty_bins is True:
                problems.append("drop_empty_bins with no action_topics would drop every bin")
        keep = self.keep_topics
        if isinstance(keep, (list, tuple)) and not isinstance(keep, str) and keep:
            for name, topics in roles.items():
                for topic in topics:
                    if topic not in keep:
                        problems.append(
                            f"{name} names {topic!r} but keep_topics does not keep it "
                            f"(keep_topics: {list(keep)})"
                        )
            binned = set(states or ()) | set(actions or ())
            if states is not None and actions is not None:
                for topic in keep:
                    if isinstance(topic, str) and topic not in binned:
                        problems.append(
                            f"keep_topics keeps {topic!r}, which is neither a state nor an action topic "
                            f"(it would be read only to be counted as not_binned)"
                        )
        return problems

    def named_topics(self) -> set[str]:
        names = super().named_topics()
        for value in (self.state_topics, self.action_topics):
            if isinstance(value, (list, tuple)):
                names |= {t for t in value if isinstance(t, str)}
        return names
