"""Every error and warning of owa_builders, in one place.

All derive from :class:`~owa_event.errors.OwaError` (a ``ValueError``) or
:class:`~owa_event.errors.OwaWarning` (but :class:`RegistrationError`: the installed `datasets` does not
fit, a ``RuntimeError``, and :class:`ValueProblem`, a ``ValueError`` the ingestion turns into an error
naming the item, and :class:`NotAVideoError` / :class:`UriError`, ``ValueError`` s the frame loader turns into a
:class:`FrameLoadError` naming the reference), re-exported here with :class:`~owa_event.errors.ConfigError`, so
``except OwaError`` (from here) catches every error bad input or a bad config can cause. Each class is also
importable from the module that raises it.
"""

from __future__ import annotations

from typing import Any

from owa_event.errors import ConfigError, OwaError, OwaWarning, RecordingError, did_you_mean

__all__ = [
    "FrameLoadError",
    "NotAVideoError",
    "UriError",
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


class FrameLoadError(OwaError):
    """A frame reference that cannot be served (missing video, a uri outside the media root, time
    outside the stream, invalid reference, decode failure).

    ``media_root``, ``uri``, ``pts_ns`` (None when no time was involved) and ``reason`` are kept
    as attributes, with ``ref_index`` (the reference's position in the ``load`` call, when known)
    and ``row`` (where the reference came from, when the caller says: see :meth:`in_row`); the
    message names them all.
    """

    def __init__(
        self,
        media_root: str,
        uri: str,
        pts_ns: int | None,
        reason: str,
        *,
        ref_index: int | None = None,
        row: str | None = None,
    ) -> None:
        at = f" at pts_ns={pts_ns}" if pts_ns is not None else ""
        where = f", in {row}" if row else ""
        super().__init__(f"cannot load frame uri={uri!r}{at} from media_root={media_root!r}{where}: {reason}")
        self.media_root, self.uri, self.pts_ns, self.reason = media_root, uri, pts_ns, reason
        self.ref_index, self.row = ref_index, row

    def in_row(self, row: str) -> FrameLoadError:
        """The same error, naming the row (e.g. ``"row 3 of the batch (episode_path='a.mcap')"``)."""
        return type(self)(
            self.media_root, self.uri, self.pts_ns, self.reason, ref_index=self.ref_index, row=row
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_frame_load_error,
            (type(self), self.media_root, self.uri, self.pts_ns, self.reason, self.ref_index, self.row),
        )


def _rebuild_frame_load_error(cls: type[FrameLoadError], *args: Any) -> FrameLoadError:
    media_root, uri, pts_ns, reason, ref_index, row = args
    return cls(media_root, uri, pts_ns, reason, ref_index=ref_index, row=row)


class NotAVideoError(ValueError):
    """A file that is not a video the loader reads; ``reason`` says what it is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UriError(ValueError):
    """A ``uri`` the media root refuses; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
