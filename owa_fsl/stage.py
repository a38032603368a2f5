"""The FSL stage: one recording -> packed, pre-tokenized sequences, straight from MCAP.

Pipeline per recording: the event stage's kept events (read -> select -> resample, per
interval) -> shift actions (optional) -> encode + table lookup -> pack (:mod:`owa_fsl.pack`).
Video is never opened: screen events contribute image tokens and a frame reference.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from owa_event.events import INPUT_TOPICS, Event
from owa_event.stage import EpisodeReport, kept_events

from .config import FslConfig
from .pack import Packer, PackStats
from .tokenizer import FslTokens

FSL_COLUMNS = ("input_ids", "attention_mask", "images", "episode_path", "interval_idx", "base_ns", "n_events")


def shift_actions(events: Iterable[Event], shift_ns: int) -> Iterator[Event]:
    """Input events (keyboard, mouse, mouse/raw) moved by ``shift_ns``; output stays time-ordered.

    Memory is bounded by the events within ``|shift_ns|`` of each other. Ties keep non-input
    events first.
    """
    if not shift_ns:
        yield from events
        return
    # One pass (a tee + merge would buffer a whole stretch without input or without other events).
    # Held back: shifted actions (shift > 0) or other events (shift < 0) that a later event may precede.
    held: deque[Event] = deque()
    for e in events:
        t = e.timestamp_ns
        if shift_ns > 0:
            while held and held[0].timestamp_ns < t:  # later events are all at >= t
                yield held.popleft()
            if e.topic in INPUT_TOPICS:
                held.append(e.at(t + shift_ns))
            else:
                yield e
        elif e.topic in INPUT_TOPICS:
            shifted = t + shift_ns
            while held and held[0].timestamp_ns <= shifted:  # ties: non-input first
                yield held.popleft()
            yield e.at(shifted)
        else:
            held.append(e)
            while held and held[0].timestamp_ns <= t + shift_ns:  # no later action comes before
                yield held.popleft()
    yield from held


def fsl_rows(
    path: str,
    *,
    episode_path: str,
    root: str,
    config: FslConfig,
    tokens: FslTokens,
    report: EpisodeReport | None = None,
    pack_stats: PackStats | None = None,
) -> Iterator[dict[str, Any]]:
    """The FSL rows of one recording (:data:`FSL_COLUMNS`, plus ``text`` with ``debug_text``)."""
    report = report if report is not None else EpisodeReport(episode_path)
    packer = Packer(
        tokens.encoder,
        tokens.table,
        config.max_sequence_length,
        tokens.pad_id,
        drop_frameless=config.drop_frameless,
        on_oversize=config.on_oversize,
        stats=pack_stats,
    )
    events = kept_events(path, episode_path=episode_path, root=root, config=config, report=report)
    for interval_idx, group in itertools.groupby(events, key=lambda item: item[0]):
        episode = shift_actions((event for _, event in group), config.action_shift_ns)
        for seq in packer.pack(episode, where=f"{path} (interval {interval_idx})"):
            row: dict[str, Any] = {
                "input_ids": seq.input_ids,
                "attention_mask": seq.attention_mask,
                "images": [{"uri": uri, "pts_ns": pts} for uri, pts in seq.images],
                "episode_path": episode_path,
                "interval_idx": interval_idx,
                "base_ns": seq.base_ns,
                "n_events": seq.n_events,
            }
            if config.debug_text:
                row["text"] = tokens.tokenizer.decode(
                    seq.input_ids[: seq.n_tokens], skip_special_tokens=False
                )
            yield row
