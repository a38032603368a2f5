"""FSL (fixed sequence length) rows back to events and to an OWAMcap file: the inverse of the FSL stage, up to resampling.

A row of the FSL dataset holds token ids (``input_ids``, real tokens where ``attention_mask``
is 1, then padding), the sequence base time ``base_ns``, the frame references of its screen
events (``images``, in order) and its event count ``n_events``. Decoding a row:

    ids where mask == 1  --TokenTable.to_tokens-->  token strings  --encoder.decode-->  events

with ``base_ns`` giving absolute times (exact at the encoder's ``time_resolution_ns``: a decoded
time is ``encoder.quantize(t, base_ns)`` of the time that was encoded) and ``images`` giving each
screen event its ``media_ref`` ``{uri, pts_ns}``. What comes back is the stage's *input to the
encoder*: the kept, resampled and (with ``action_shift_ns``) shifted events, in the encoder's
canonical fields (:func:`owa_fsl.encoders.canonical`); a screen event also gets back its message's
``utc_ns``, ``source_shape`` and ``shape`` (kept in the row's ``images``), so screen messages round
trip exactly; fields the encoders do not keep (the optional ``timestamp``, a raw event's
``device_handle``) do not come back.

Screen media URIs in the rows are relative to the root of the dataset the FSL dataset was built
from (the ``data_dir``), and :func:`write_mcap` keeps them as they are: the written ``.mcap``
refers to frames relative to *that* root, not to its own folder. Put the file in the original
dataset root (or resolve the URIs against it) to load frames.

API: :func:`decode_row`, :func:`decode_rows`, :func:`write_mcap` (the ``owa-builders decode``
command on a built folder is ``owa_builders.decode``). Every error is a :class:`FslDecodeError`
that says which row and what is wrong.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from owa_event.events import SCREEN, Event

from .encoders import DecodeError, make_event
from .errors import FslDecodeError
from .tokenizer import FslTokens

#: The columns a row needs to be decoded.
ROW_KEYS = ("input_ids", "attention_mask", "images", "base_ns", "n_events")
#: Metadata record written into decoded files.
METADATA_NAME = "owa_fsl.decode"
URI_NOTE = "screen media URIs are relative to the root of the dataset the FSL dataset was built from"


def describe_row(row: Mapping[str, Any], where: str | None) -> str:
    if where:
        return where
    parts = []
    if "episode_path" in row:
        parts.append(f"episode {row['episode_path']!r}")
    if "interval_idx" in row:
        parts.append(f"interval {row['interval_idx']}")
    if "base_ns" in row:
        parts.append(f"base_ns {row['base_ns']}")
    return "row (" + ", ".join(parts) + ")" if parts else "row"


class _Frames:
    """The row's frame references, then endless placeholders: decoding never runs out of
    frames, so a mismatch between screen events and frames is reported by count."""

    def __init__(self, images: Sequence[tuple[str, int | None]]) -> None:
        self.images = images

    def __iter__(self) -> Iterator[tuple[str, int | None]]:
        yield from self.images
        while True:
            yield ("", None)


def _frame_refs(images: Any, name: str) -> list[tuple[str, int | None]]:
    refs: list[tuple[str, int | None]] = []
    for i, image in enumerate(images or ()):
        if isinstance(image, Mapping):
            uri, pts = image.get("uri"), image.get("pts_ns")
        elif isinstance(image, (tuple, list)) and len(image) == 2:
            uri, pts = image
        else:
            raise FslDecodeError(f"{name}: images[{i}] = {image!r} is not a {{uri, pts_ns}} frame reference")
        if not isinstance(uri, str):
            raise FslDecodeError(f"{name}: images[{i}] has no string uri ({image!r})")
        if pts is not None:
            pts = int(pts)
        refs.append((uri, pts))
    return refs


def decode_row(row: Mapping[str, Any], tokens: FslTokens, *, where: str | None = None) -> list[Event]:
    """The events of one FSL row, in order.

    Only ids where ``attention_mask`` is 1 are decoded (padding is ignored). Times are
    ``row["base_ns"]`` plus the encoded offsets; screen events take their ``media_ref`` from
    ``row["images"]`` in order. ``where`` names the row in errors (default: its episode,
    interval and base). Raises :class:`FslDecodeError` when the ids are not a valid encoding,
    when the number of screen events differs from ``len(row["images"])`` or the number of
    events from ``row["n_events"]``.
    """
    name = describe_row(row, where)
    missing = [key for key in ROW_KEYS if key not in row]
    if missing:
        raise FslDecodeError(f"{name}: missing column(s) {missing} (an FSL row has {list(ROW_KEYS)})")
    ids, mask = row["input_ids"], row["attention_mask"]
    if len(ids) != len(mask):
        raise FslDecodeError(f"{name}: {len(ids)} input_ids but {len(mask)} attention_mask entries")
    real = [int(tid) for tid, m in zip(ids, mask) if m]
    frames = _Frames(_frame_refs(row["images"], name))
    base_ns = int(row["base_ns"])
    try:
        events = tokens.encoder.decode(tokens.table.to_tokens(real), base_ns, frames)
    except DecodeError as exc:
        encoding = f"{tokens.encoder.name} encoding"
        raise FslDecodeError(f"{name}: the token ids are not a valid {encoding}: {exc}") from None
    n_screen = sum(1 for e in events if e.topic == SCREEN)
    if n_screen != len(frames.images):
        raise FslDecodeError(
            f"{name}: decoded {n_screen} screen event(s) but the row lists "
            f"{len(frames.images)} frame(s) in 'images'"
        )
    if len(events) != int(row["n_events"]):
        raise FslDecodeError(
            f"{name}: decoded {len(events)} event(s) but the row says n_events = {row['n_events']}"
        )
    return _with_frame_fields(events, row["images"] or ())


#: The screen message fields an ``images`` entry carries besides its frame reference.
FRAME_FIELDS = ("utc_ns", "source_shape", "shape")


def _with_frame_fields(events: list[Event], images: Sequence[Any]) -> list[Event]:
    """Screen events completed with their message's other fields from the row's ``images`` (in
    order; null fields were absent from the original message)."""
    extras = iter(images)
    out = []
    for event in events:
        if event.topic == SCREEN:
            image = next(extras)
            if isinstance(image, Mapping):
                more = {k: image[k] for k in FRAME_FIELDS if image.get(k) is not None}
                if more:
                    fields = {**more, **event.fields}
                    event = make_event(event.topic, event.timestamp_ns, fields, event.index)
        out.append(event)
    return out


def decode_rows(rows: Iterable[Mapping[str, Any]], tokens: FslTokens) -> Iterator[Event]:
    """The events of ``rows``, row after row (see :func:`decode_row`)."""
    for i, row in enumerate(rows):
        yield from decode_row(row, tokens, where=f"row #{i} of the rows given ({describe_row(row, None)})")


def write_mcap(
    events: Iterable[Event], path: str | os.PathLike[str], *, metadata: Mapping[str, str] | None = None
) -> Counter[str]:
    """Write ``events`` as an OWAMcap file with mcap-owa-support's ``OWAMcapWriter``.

    Each event becomes ``owa.core.MESSAGES[event.message_type](**event.fields)`` (the current
    message classes, which validate the fields) at ``event.timestamp_ns`` on ``event.topic``.
    Screen media URIs are written as they are (for decoded rows: relative to the original
    dataset root). ``metadata`` is written as one metadata record. Returns events per topic.
    """
    from mcap_owa.highlevel import OWAMcapWriter
    from owa.core import MESSAGES

    counts: Counter[str] = Counter()
    classes: dict[str, Any] = {}
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with OWAMcapWriter(path) as writer:
        for event in events:
            cls = classes.get(event.message_type)
            if cls is None:
                try:
                    cls = classes[event.message_type] = MESSAGES[event.message_type]
                except KeyError:
                    raise FslDecodeError(
                        f"{event!r}: message type {event.message_type!r} is not a registered owa message"
                    ) from None
            try:
                message = cls(**event.fields)
            except Exception as exc:
                raise FslDecodeError(f"{event!r} is not a valid {event.message_type}: {exc}") from exc
            writer.write_message(message, topic=event.topic, timestamp=event.timestamp_ns)
            counts[event.topic] += 1
        if metadata:
            writer.write_metadata(METADATA_NAME, {str(k): str(v) for k, v in metadata.items()})
    return counts
