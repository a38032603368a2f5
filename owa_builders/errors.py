"""Every error and warning of owa_builders, in one place.

All derive from :class:`~owa_event.errors.OwaError` (a ``ValueError``) or
:class:`~owa_event.errors.OwaWarning` (but :class:`RegistrationError`: the installed `datasets` does not
fit, a ``RuntimeError``, and :class:`ValueProblem`, a ``ValueError`` the ingestion turns into an error
naming the item), re-exported here with :class:`~owa_event.errors.ConfigError`, so
``except OwaError`` (from here) catches every error bad input or a bad config can cause. Each class is also importable
from the module that raises it. (Errors of the Ray build, the Hub push, the frame loader and the
build folders still live beside their code: ``distributed/``, ``publish/hub.py``,
``training/frames/``, ``build.py``, ``publish/source.py``.)
"""

from __future__ import annotations

from typing import Any

from owa_event.errors import ConfigError, OwaError, OwaWarning, RecordingError, did_you_mean

__all__ = [
    "BuildFolderError",
    "TaskTimeoutError",
    "RayMissingError",
    "ShardFailedError",
    "PublishError",
    "IncompleteBuildError",
    "TrainCheckError",
    "CardError",
    "ConfigError",
    "EmptyDatasetError",
    "EpisodeExistsError",
    "EpisodeNameError",
    "ItemError",
    "LayoutError",
    "MissingMediaError",
    "NanoVLMLayoutError",
    "NanoVLMSkipWarning",
    "NoRecordingsError",
    "OwaError",
    "OwaWarning",
    "PreviewError",
    "RecordingError",
    "RegistrationError",
    "SourceError",
    "SplitError",
    "UnknownBuilderError",
    "UnknownStageError",
    "UnsafeMediaPathError",
    "ValueProblem",
    "did_you_mean",
]


class UnknownBuilderError(OwaError):
    """A name under ``owa_builders/`` that is not one of our builders."""


class UnknownStageError(OwaError):
    """A stage name that is not one of :data:`STAGES`."""


class EmptyDatasetError(OwaError):
    """A build whose rows would all be dropped: the message says why, per recording."""


class NoRecordingsError(OwaError):
    """The data given holds no recording, or cannot be read as a set of recordings."""


class CardError(OwaError):
    """A template that cannot be rendered, or an existing card that cannot be updated safely."""


class LayoutError(OwaError):
    """A config or split name, or a set of shard files, that does not fit the layout."""


class UnsafeMediaPathError(OwaError):
    """A media uri that would read or write outside the recordings' root."""


class MissingMediaError(OwaError):
    """Media referenced by rows that is not on disk."""


class PreviewError(OwaError):
    """A preview that cannot be made (no such split, episode or row)."""


class SplitError(OwaError):
    """Fractions that do not split the episodes (they must be > 0, sum to 1, leave no part empty)."""


class ItemError(OwaError):
    """An item that failed validation or raised, with ``on_bad_item="error"``: names the item."""

    def __init__(self, problem: Any) -> None:  # an owa_builders.ingest.run.ItemProblem
        super().__init__(
            f"item {problem.index} (episode {problem.episode!r}) {problem.kind}: {problem.reason}"
        )
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problem,))


class EpisodeNameError(OwaError):
    """A source named an episode with a name that cannot be a recording's path, or twice."""


class SourceError(OwaError):
    """A source that cannot be ingested as given (the message says what to pass instead)."""


class EpisodeExistsError(OwaError):
    """An episode would replace a recording already in the output folder (``overwrite=False``)."""


class NanoVLMLayoutError(OwaError):
    """The FSL dataset's image tokens and what nanoVLM expects disagree (counts, tiles or ids)."""


class NanoVLMSkipWarning(OwaWarning):
    """A row skipped (``on_bad_row="skip"``) or an item dropped (longer than ``max_length``)."""


class ValueProblem(ValueError):
    """A value that cannot be written as asked (the message says where and why)."""


class RegistrationError(RuntimeError):
    """The installed `datasets` no longer has the internals this module relies on."""


class BuildFolderError(OwaError):
    """A destination that is not a complete build, or cannot be written as one."""


class TaskTimeoutError(OwaError):
    """A job that ran longer than the task timeout on every attempt."""

    def __init__(self, job: str, timeout_s: float, attempts: int) -> None:
        super().__init__(f"{job}: timed out after {timeout_s:g} s on each of {attempts} attempt(s)")
        self.job = job
        self.timeout_s = timeout_s
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job, self.timeout_s, self.attempts))


class RayMissingError(OwaError):
    """Ray is needed (``engine="ray"``, ingestion with workers) but is not installed."""


class ShardFailedError(OwaError):
    """A recording whose conversion failed on Ray for a reason that is not its content (a bug, a
    worker lost more often than it may be restarted, an I/O error that persisted through retries)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem))


class PublishError(OwaError):
    """A push that was refused or failed; the message says what the repo shows now."""


class IncompleteBuildError(OwaError):
    """A built folder that is empty, half written or inconsistent with its record."""


class TrainCheckError(OwaError):
    """The folder cannot be checked (not an FSL build, no recordings to hold out, ...)."""
