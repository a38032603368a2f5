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
