"""Every error and warning of ours, in one place.

All errors derive from :class:`OwaError` (a ``ValueError``), so ``except OwaError`` catches any
problem with the input or the configuration, and each message names the file (or the config
field) and the problem. Builders re-raise them unwrapped (see ``owa_builders.builder``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class OwaError(ValueError):
    """Base of every error of ours: bad input, bad configuration, data that cannot be converted."""


class RecordingError(OwaError):
    """A recording that cannot be read as asked; the message names the file and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (type(self), (self.path, self.problem))


class ConfigError(OwaError):
    """A configuration with one or more problems; the message lists all of them."""

    def __init__(self, problems: list[str], where: str = "config") -> None:
        self.problems = list(problems)
        self.where = where
        if len(self.problems) == 1:
            text = self.problems[0]
        else:
            text = f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {where}: {text}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems, self.where))


class OwaWarning(UserWarning):
    """Base of every warning of ours. Each is also kept, as text, in the recording's report
    (``RecordingReport.warnings``), so it can be shown again after a build."""


class TruncatedRecordingWarning(OwaWarning):
    """A truncated recording was recovered from its complete chunks."""


class DamagedRecordingWarning(OwaWarning):
    """A recording whose own claims (summary, Statistics record) disagree with its contents; what was
    read is used (with ``on_truncated="error"`` this is an error instead)."""


class TopicWarning(OwaWarning):
    """A kept topic is absent from a recording, or the topic filter drops all of its input events."""


class MissingMediaWarning(OwaWarning):
    """A recording's screen messages point to a video that is not there."""


class SkippedFileWarning(OwaWarning):
    """A bad recording was skipped (``on_bad_file="skip"``)."""


class PayloadError(OwaError):
    """A message payload that cannot be written back as JSON (nesting deeper than 254 levels, an
    integer beyond 64 bits): the caller adds which file and message."""


class EventOrderError(OwaError):
    """Events that go back in time (or intervals that end before they start) where a step needs time
    order; the caller adds which file."""


class McapScanError(ValueError):
    """(Internal: the reader turns it into a :class:`RecordingError`.) An MCAP file this module cannot read as asked; the message names the file, the problem and where."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem
