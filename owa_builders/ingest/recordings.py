"""The result of an ingestion: its recordings, usable on their own and handed to the builders.

:class:`IngestedRecordings` lists the episodes written (sorted by name), the items left out, and
offers:

- :meth:`~IngestedRecordings.iter_batches`: the events of every episode, in order, in lists of dicts;
- :meth:`~IngestedRecordings.split`: disjoint subsets by episode (deterministic for a seed);
- :meth:`~IngestedRecordings.load`: the episodes resampled to a fixed rate (the binned stage);
- :meth:`~IngestedRecordings.get_stats`: episodes, duration, events per topic, frames;
- :meth:`~IngestedRecordings.to_dataset`: any stage through the builders (``datasets``).

Everything reads the recordings themselves (the ``.mcap`` files), never a cached copy of their
contents. ``owa_ingest.json`` in the output folder keeps the list (:meth:`IngestedRecordings.open`).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from owa_event.events import INPUT_TOPICS, SCREEN, TOPIC_TYPES
from owa_event.pipeline import RecordingRef

from ..errors import SplitError
from .writer import EpisodeStats

#: The ingestion's record in its output folder.
MANIFEST = "owa_ingest.json"


@dataclass
class IngestedRecordings:
    """Recordings written by an ingestion (or a subset of them, from :meth:`split`).

    ``root`` is the output folder (the dataset root); ``episodes`` the episodes with a recording,
    sorted by name; ``problems`` the items left out (dicts: index, episode, kind, reason).
    """

    root: str
    episodes: list[EpisodeStats]
    problems: list[dict[str, Any]] = field(default_factory=list)
    #: fsspec options of a remote ``root`` (credentials): kept in memory only, never written or shown.
    storage_options: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_results(
        cls,
        root: str,
        stats: list[EpisodeStats],
        problems: list[Any],
        storage_options: dict[str, Any] | None = None,
    ) -> IngestedRecordings:
        kept = sorted((s for s in stats if s.recording is not None), key=lambda s: s.name)
        listed = sorted((p.to_dict() for p in problems), key=lambda p: (p["index"], p["episode"]))
        return cls(root, kept, listed, storage_options)

    @classmethod
    def open(
        cls, root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
    ) -> IngestedRecordings:
        """The recordings of the ingestion saved in ``root`` (a folder or fsspec URL; its ``owa_ingest.json``)."""
        from ..output import Destination

        dest = Destination(root, storage_options)
        data = json.loads(dest.read_bytes(MANIFEST))
        episodes = [EpisodeStats.from_dict(e) for e in data["episodes"]]
        return cls(dest.url, episodes, data["problems"], storage_options)

    def to_dict(self) -> dict[str, Any]:
        return {"episodes": [e.to_dict() for e in self.episodes], "problems": self.problems,
                "items": self.item_counts()}  # fmt: skip

    # -- what is there ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.episodes)

    def paths(self) -> list[str]:
        """The ``.mcap`` files (absolute paths, or URLs under a remote ``root``), in episode order."""
        if "://" in self.root:
            return [f"{self.root}/{e.recording}" for e in self.episodes if e.recording]
        return [os.path.join(self.root, *e.recording.split("/")) for e in self.episodes if e.recording]

    def refs(self) -> list[RecordingRef]:
        """The recordings as the stages take them (episode paths relative to ``root``)."""
        return [RecordingRef(p, e.recording, self.root) for p, e in zip(self.paths(), self.episodes)]  # type: ignore[arg-type]

    def item_counts(self) -> dict[str, int]:
        """Items ``written`` (in these episodes), ``skipped`` (failed validation) and ``failed`` (raised)."""
        kinds = Counter(p["kind"] for p in self.problems)
        return {"written": sum(e.items for e in self.episodes), "skipped": kinds["skipped"], "failed": kinds["failed"]}  # fmt: skip

    def get_stats(self) -> dict[str, Any]:
        """Episodes, duration (s: each episode's first to last message, summed), events per topic,
        frames (messages pointing into a video) per topic and in all, and the item counts -- read from
        the recordings' summaries."""
        from owa_event.reader import Recording

        events: Counter[str] = Counter()
        frames: Counter[str] = Counter()
        duration_ns = 0
        for path, episode in zip(self.paths(), self.episodes):
            with Recording(path, episode_path=episode.recording) as rec:
                summary = rec.summary
                events.update(summary.topic_counts)
                for topic, schema in summary.topics.items():
                    if schema == TOPIC_TYPES[SCREEN]:
                        frames[topic] += summary.topic_counts.get(topic, 0)
                if summary.message_count:
                    duration_ns += summary.end_ns - summary.start_ns
        return {
            "episodes": len(self.episodes),
            "duration_s": duration_ns / 1e9,
            "events": sum(events.values()),
            "events_per_topic": dict(sorted(events.items())),
            "frames": sum(frames.values()),
            "frames_per_topic": dict(sorted(frames.items())),
            "items": self.item_counts(),
        }

    # -- reading ---------------------------------------------------------------------------------
    def iter_batches(
        self, batch_size: int = 1024, topics: list[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every event of every episode (episode after episode, in time order), ``batch_size`` at a time.

        Each event is ``{"episode_path", "topic", "timestamp_ns", "message_type", "message"}`` with
        ``message`` the payload as a dict (screen ``media_ref.uri`` relative to ``root``); ``topics``
        keeps only those topics.
        """
        from owa_event.account import RecordingReport
        from owa_event.config import SelectionConfig
        from owa_event.pipeline import kept_events

        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        config = SelectionConfig(keep_topics=topics)
        config.validate(None)
        batch: list[dict[str, Any]] = []
        for ref in self.refs():
            for _, event in kept_events(ref, config, RecordingReport(ref.episode_path)):
                batch.append({"episode_path": ref.episode_path, "topic": event.topic,
                              "timestamp_ns": event.timestamp_ns, "message_type": event.message_type,
                              "message": event.fields})  # fmt: skip
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def split(self, *fractions: float, seed: int = 0) -> tuple[IngestedRecordings, ...]:
        """Disjoint subsets of the episodes in these proportions (``split(0.8, 0.2)``), each sorted by
        name: the episodes are shuffled with ``seed`` and cut; the counts are the fractions of the
        episodes rounded so that they add up and no part is empty. Same episodes + seed -> same split."""
        n = len(self.episodes)
        if len(fractions) < 2 or any(not isinstance(f, (int, float)) or f <= 0 for f in fractions):
            raise SplitError(f"split needs two or more fractions > 0, got {fractions}")
        if abs(sum(fractions) - 1.0) > 1e-6:
            raise SplitError(f"split fractions must add up to 1, got {fractions} (sum {sum(fractions)})")
        if n < len(fractions):
            raise SplitError(f"cannot split {n} episode(s) into {len(fractions)} non-empty parts")
        exact = [f * n for f in fractions]
        counts = [int(x) for x in exact]
        for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: n - sum(counts)]:
            counts[i] += 1  # largest remainders first
        for i, c in enumerate(counts):
            if c == 0:  # take one from the largest part
                j = max(range(len(counts)), key=lambda j: counts[j])
                counts[j] -= 1
                counts[i] = 1
        order = list(range(n))
        random.Random(seed).shuffle(order)
        parts, start = [], 0
        for c in counts:
            chosen = sorted(order[start : start + c])
            start += c
            episodes = [self.episodes[i] for i in chosen]
            names = {e.name for e in episodes}
            problems = [p for p in self.problems if p["episode"] in names]
            parts.append(IngestedRecordings(self.root, episodes, problems, self.storage_options))
        return tuple(parts)

    def load(self, desired_frequency: float = 10.0, **options: Any) -> Any:
        """The episodes resampled to ``desired_frequency`` Hz: the binned stage's rows, as an in-memory
        ``datasets.Dataset`` (``state``: the latest state events at each bin start; ``actions``: the
        input events in the bin, McapMessage JSON). By default the state topics are every topic present
        that is not a keyboard/mouse input, and the actions those inputs; ``options`` are binned-stage
        config fields (``state_topics``, ``action_topics``, ``drop_empty_bins``, ...)."""
        import datasets
        import pyarrow as pa

        from owa_binned.stage import BinnedStage
        from owa_event.account import RecordingReport
        from owa_event.pipeline import convert

        topics = set(self.get_stats()["events_per_topic"])
        options.setdefault("action_topics", sorted(topics & INPUT_TOPICS))
        options.setdefault("state_topics", sorted(topics - set(options["action_topics"])))
        stage = BinnedStage(BinnedStage.make_config(fps=desired_frequency, **options))
        batches = [b for ref in self.refs() for b in convert(stage, ref, RecordingReport(ref.episode_path))]
        table = pa.Table.from_batches(batches, schema=stage.schema())
        return datasets.Dataset(datasets.table.InMemoryTable(table))

    def to_dataset(
        self, stage: str = "event", config: str | None = None, *, split: str = "train",
        cache_dir: str | None = None, **options: Any,
    ) -> Any:  # fmt: skip
        """These recordings built by a stage's builder (``event``, ``binned``, ``fsl``; ``config``: a
        preset name; ``options``: its fields) as a ``datasets.DatasetDict`` with one split, ``split``."""
        from ..build import build

        return build(stage, self.root, config=config, options=options or None,
                     data_files={split: self.paths()}, cache_dir=cache_dir,
                     storage_options=self.storage_options).dataset  # fmt: skip

    def message(self, row: dict[str, Any]) -> dict[str, Any]:
        """The payload of an event-stage row (its ``mcap_message`` JSON) as a dict."""
        return orjson.loads(orjson.loads(row["mcap_message"])["message"])
