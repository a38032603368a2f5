"""Ingestion: data that is not OWAMcap yet -> OWAMcap recordings (``.mcap`` + ``.mkv``), in parallel on Ray.

.. code-block:: python

    from owa_builders.ingest import create_recordings_from_source

    recs = create_recordings_from_source(torch_dataset, "recordings/", rate_hz=10)
    train, test = recs.split(0.8, 0.2)
    ds = train.to_dataset("event")

Modules: :mod:`.config` (:class:`IngestionConfig`), :mod:`.source` (the :class:`DataSource`
interface and the adapters), :mod:`.steps` (what ``transform_item`` returns), :mod:`.messages`
(desktop and JSON message types), :mod:`.writer` (one episode -> files), :mod:`.run` (the driver
and the Ray workers), :mod:`.recordings` (:class:`IngestedRecordings`, the result).
"""

from __future__ import annotations

from .config import IngestionConfig
from .messages import json_message_class
from .recordings import IngestedRecordings, SplitError
from .run import EpisodeNameError, ItemError, ItemProblem, create_recordings_from_source
from .source import (
    CallableSource,
    DataSource,
    FileListSource,
    IndexedSource,
    IteratorSource,
    SourceError,
    as_source,
)
from .writer import EpisodeExistsError

__all__ = [
    "CallableSource",
    "DataSource",
    "EpisodeExistsError",
    "EpisodeNameError",
    "FileListSource",
    "IndexedSource",
    "IngestedRecordings",
    "IngestionConfig",
    "ItemError",
    "ItemProblem",
    "IteratorSource",
    "SourceError",
    "SplitError",
    "as_source",
    "create_recordings_from_source",
    "json_message_class",
]
