"""The FSL (fixed sequence length) stage: one recording -> packed, pre-tokenized sequences, straight from MCAP.

Pipeline per recording: the shared front (:func:`owa_event.pipeline.kept_events`: read -> keep
topics -> select intervals -> resample) -> shift actions (optional) -> encode + table lookup ->
pack (:mod:`owa_fsl.pack`). Video is never opened: screen events contribute image tokens and a
frame reference.
"""

from __future__ import annotations

import array
import hashlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from owa_event.account import RecordingReport
from owa_event.events import INPUT_TOPICS, Event
from owa_event.pipeline import RecordingRef, SeamRule, Stage, kept_episodes

from .config import FSL_PRESETS, FslConfig
from .encoders import EncodeError
from .encoders.errors import describe
from .pack import Packer, PackStats
from .tokenizer import TOKENIZER_DIR, FslTokens

#: One frame of a sequence: its reference (``uri`` relative to the dataset root, ``pts_ns``) and the
#: screen message's other fields (``utc_ns``, ``source_shape``, ``shape``: null when the message has
#: none), so that decoded screen messages carry every field of the original.
IMAGE_STRUCT = pa.struct(
    [
        ("uri", pa.string()),
        ("pts_ns", pa.int64()),
        ("utc_ns", pa.int64()),
        ("source_shape", pa.list_(pa.int32())),
        ("shape", pa.list_(pa.int32())),
    ]
)
#: The FSL rows' schema (plain types only, so a published copy loads without this package); with
#: ``debug_text`` a ``text`` column follows (:func:`fsl_schema`).
FSL_SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),  # exactly max_sequence_length ids, padding after the real tokens
        ("attention_mask", pa.list_(pa.int8())),  # 1 for real tokens, 0 for padding
        ("images", pa.list_(IMAGE_STRUCT)),  # one per screen event, in order (see IMAGE_STRUCT)
        ("episode_path", pa.string()),
        ("interval_idx", pa.int32()),
        ("base_ns", pa.int64()),  # the sequence's first event time: encoded times are offsets from it
        ("n_events", pa.int32()),
    ]
)
FSL_COLUMNS = tuple(FSL_SCHEMA.names)
#: Rows per record batch.
BATCH_ROWS = 64


def image_of(ref: tuple[str, int | None], event: Event) -> dict[str, Any]:
    """The ``images`` entry of a screen event (see :data:`IMAGE_STRUCT`); :class:`EncodeError` for a
    ``utc_ns`` or shape that is not what the format says (an int64; ``[width, height]`` of ints)."""
    fields = event.fields
    utc = fields.get("utc_ns")
    if utc is not None and (type(utc) is not int or not -(2**63) <= utc < 2**63):
        raise EncodeError(f"{describe(event)}: field 'utc_ns' = {utc!r} is not an int64 (ns)")
    out: dict[str, Any] = {"uri": ref[0], "pts_ns": ref[1], "utc_ns": utc}
    for name in ("source_shape", "shape"):
        value = fields.get(name)
        if value is not None and not (
            isinstance(value, list)
            and len(value) == 2
            and all(type(v) is int and 0 <= v < 2**31 for v in value)
        ):
            raise EncodeError(
                f"{describe(event)}: field {name!r} = {value!r} is not [width, height] in pixels"
            )
        out[name] = value
    return out


def rows_batch(rows: list[dict[str, Any]], schema: pa.Schema, max_len: int) -> pa.RecordBatch:
    """One record batch of FSL rows (``schema``; each row's ``input_ids`` has exactly ``max_len`` ids,
    ``n_tokens`` of them real: an int32 ``array.array``, as the packer makes them, or a list). The two
    token columns are built from buffers (one int32 / int8 buffer and fixed offsets), not converted int
    by int from Python lists: the same values as ``RecordBatch.from_pylist``, several times cheaper."""
    n = len(rows)
    ids = array.array("i")
    for row in rows:
        ids.extend(row["input_ids"])
    if len(ids) != n * max_len:
        raise ValueError(f"FSL rows must have exactly {max_len} input_ids each")
    offsets = pa.array(np.arange(0, (n + 1) * max_len, max_len, dtype=np.int32))
    mask = np.arange(max_len, dtype=np.int32)[None, :] < np.array([r["n_tokens"] for r in rows])[:, None]
    columns: dict[str, pa.Array] = {
        "input_ids": pa.ListArray.from_arrays(offsets, pa.array(np.frombuffer(ids, dtype=np.int32))),
        "attention_mask": pa.ListArray.from_arrays(offsets, pa.array(mask.astype(np.int8).ravel())),
    }
    arrays = [
        columns[f.name] if f.name in columns else pa.array([r[f.name] for r in rows], f.type) for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def fsl_schema(debug_text: bool = False) -> pa.Schema:
    """:data:`FSL_SCHEMA`, plus ``text`` (string) with ``debug_text``."""
    return FSL_SCHEMA.append(pa.field("text", pa.string())) if debug_text else FSL_SCHEMA


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


class FslStage(Stage):
    """Recordings -> packed token sequences with frame references (:data:`FSL_SCHEMA`).

    The expanded tokenizer (:class:`~owa_fsl.tokenizer.FslTokens`) is built once per process, on
    first use (never pickled); a built dataset keeps it in its :data:`TOKENIZER_DIR` folder.
    """

    name = "fsl"
    config_class = FslConfig
    presets = FSL_PRESETS

    def __init__(self, config: FslConfig, *, tokens: FslTokens | None = None) -> None:
        super().__init__(config)
        self._tokens = tokens

    @property
    def tokens(self) -> FslTokens:
        """The expanded tokenizer and id table (built once per process)."""
        if self._tokens is None:
            self._tokens = self.config.build_tokens()  # type: ignore[attr-defined]
        return self._tokens

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for worker processes: with a single-token encoder and no ``debug_text`` the id table
        goes along (workers then never import the tokenizer library); otherwise it is rebuilt there."""
        tokens = self._tokens
        config: FslConfig = self.config  # type: ignore[assignment]
        if tokens is not None and tokens.encoder.single_tokens and not config.debug_text:
            tokens = FslTokens(
                tokens.encoder, tokens.image_tokens, None, tokens.table.without_tokenizer(), tokens.pad_id
            )
        else:
            tokens = None
        return {**self.__dict__, "_tokens": tokens}

    def schema(self) -> pa.Schema:
        return fsl_schema(self.config.debug_text)  # type: ignore[attr-defined]

    def seam_rule(self) -> SeamRule:
        """``"episodes"``: a sequence is filled up to ``max_sequence_length`` (or the encoder's time
        reach) from wherever the previous one ended, so sequence boundaries inside an episode depend on
        everything before them and never re-synchronise; :meth:`Packer.pack` (and the action shift)
        run once per episode, so nothing crosses into the next."""
        return "episodes"

    def describe(self) -> dict[str, Any]:
        c: FslConfig = self.config  # type: ignore[assignment]
        image = c.image_tokens()
        return {
            **super().describe(),
            "image_tokens": {"prefix": list(image.prefix), "token": image.token, "count": image.count,
                             "suffix": list(image.suffix)},
            "tokenizer_dir": TOKENIZER_DIR,
        }  # fmt: skip

    def fingerprint(self) -> str:
        """The contents of a local tokenizer folder: a changed tokenizer at the same path must not reuse
        sequences built with the old ids. (A Hub name is fingerprinted by the name, in the config.)"""
        name = self.config.tokenizer_name  # type: ignore[attr-defined]
        if not (isinstance(name, str) and os.path.isdir(name)):
            return ""
        digest = hashlib.sha256()
        for path in sorted(Path(name).iterdir()):
            if path.is_file():
                digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def save_artifacts(self, directory: str) -> None:
        """Save the expanded tokenizer into ``directory/tokenizer``."""
        self.tokens.save(os.path.join(directory, TOKENIZER_DIR))

    def batches(self, recording: RecordingRef, report: RecordingReport) -> Iterator[pa.RecordBatch]:
        config: FslConfig = self.config  # type: ignore[assignment]
        tokens = self.tokens
        schema = self.schema()
        stats = PackStats()
        packer = Packer(
            tokens.encoder,
            tokens.table,
            config.max_sequence_length,
            tokens.pad_id,
            drop_frameless=config.drop_frameless,
            on_oversize=config.on_oversize,
            account=report.account,
            stats=stats,
        )
        rows: list[dict[str, Any]] = []
        episodes = kept_episodes(recording, config, report, media_exists=self.media_exists)
        for interval_idx, events in episodes:
            episode = shift_actions(events, config.action_shift_ns)
            for seq in packer.pack(episode, where=f"{recording.path} (interval {interval_idx})"):
                row: dict[str, Any] = {
                    "input_ids": seq.ids,
                    "n_tokens": seq.n_tokens,
                    "images": [image_of(ref, e) for ref, e in zip(seq.images, seq.frame_events, strict=True)],
                    "episode_path": recording.episode_path,
                    "interval_idx": interval_idx,
                    "base_ns": seq.base_ns,
                    "n_events": seq.n_events,
                }
                if config.debug_text:
                    row["text"] = tokens.tokenizer.decode(
                        seq.ids[: seq.n_tokens].tolist(), skip_special_tokens=False
                    )
                rows.append(row)
                if len(rows) >= BATCH_ROWS:
                    yield rows_batch(rows, schema, config.max_sequence_length)
                    rows = []
        if rows:
            yield rows_batch(rows, schema, config.max_sequence_length)
        for name, n in stats.as_dict().items():
            report.count(name, n)
