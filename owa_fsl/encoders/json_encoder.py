"""The json encoder: a human-readable encoding for debugging (not single tokens).

One event is ``<EVENT_START>``, the compact JSON text
``{"topic": ..., "offset": <units>, "payload": {...}}``, for a screen event one ``<IMAGE>``,
then ``<EVENT_END>``. ``offset`` is ``floor((t - base_ns) / time_resolution_ns)`` (an integer
number of units, limited like the token encoders to ``10**time_digits - 1`` so the packer
behaves the same with every encoder); ``payload`` is the codec's canonical fields (empty for a
frame codec's event, a screen, whose frame reference comes from ``frames``). Only the three markers are vocab tokens, so
``single_tokens`` is False and a :class:`~owa_fsl.tokenizer.TokenTable` runs the tokenizer on
the JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from owa_event.events import Event
from owa_fsl.encoders.base import EventEncoder, Frames, register_encoder
from owa_fsl.encoders.codec import (
    FrameCodec,
    checked_fields,
    event_fields,
    find_codec,
    make_event,
    next_frame,
)
from owa_fsl.encoders.errors import DecodeError, EncodeError
from owa_fsl.encoders.stream import EVENT_END, EVENT_START, IMAGE_PLACEHOLDER, split_events

_KEYS = ("topic", "offset", "payload")


@register_encoder
class JsonEncoder(EventEncoder):
    """``<EVENT_START>{"topic":..,"offset":..,"payload":{..}}[<IMAGE>]<EVENT_END>``."""

    name = "json"
    single_tokens = False

    def vocab(self) -> list[str]:
        return [EVENT_START, EVENT_END, IMAGE_PLACEHOLDER]

    def encode(self, event: Event, base_ns: int) -> list[str]:
        codec = self.codec_of(event)
        fields = event_fields(codec, event)
        units = self.offset_units(event.timestamp_ns, base_ns, event)
        payload: dict[str, Any] = {} if codec.frame else fields
        text = orjson.dumps({"topic": event.topic, "offset": units, "payload": payload}).decode()
        if codec.frame:
            return [EVENT_START, text, IMAGE_PLACEHOLDER, EVENT_END]
        return [EVENT_START, text, EVENT_END]

    def decode(self, tokens: Sequence[str], base_ns: int, frames: Frames | None = None) -> list[Event]:
        frame_iter = iter(frames) if frames is not None else None
        events: list[Event] = []
        for start, chunk in split_events(tokens):
            body = chunk[1:-1]
            has_image = bool(body) and body[-1] == IMAGE_PLACEHOLDER
            if has_image:
                body = body[:-1]
            if IMAGE_PLACEHOLDER in body:
                raise DecodeError(f"token {start}: {IMAGE_PLACEHOLDER} must come right before {EVENT_END}")
            try:
                obj = orjson.loads("".join(body))
            except orjson.JSONDecodeError as exc:
                raise DecodeError(f"token {start}: event text is not JSON: {exc}") from None
            if not isinstance(obj, dict) or set(obj) != set(_KEYS):
                raise DecodeError(f"token {start}: expected an object with keys {list(_KEYS)}, got {obj!r}")
            topic, units, payload = obj["topic"], obj["offset"], obj["payload"]
            codec = find_codec(topic) if isinstance(topic, str) else None
            if codec is None:
                raise DecodeError(f"token {start}: unsupported topic {topic!r}")
            top = 10**self.time_digits - 1
            if isinstance(units, bool) or not (isinstance(units, int) and 0 <= units <= top):
                raise DecodeError(f"token {start}: offset {units!r} is not an integer in [0, {top}]")
            if not isinstance(payload, dict):
                raise DecodeError(f"token {start}: payload {payload!r} is not an object")
            is_frame = isinstance(codec, FrameCodec)
            if is_frame != has_image:
                where = "belongs in frame (screen) events, and only there"
                raise DecodeError(f"token {start}: {IMAGE_PLACEHOLDER} {where}")
            if isinstance(codec, FrameCodec):
                if payload:
                    raise DecodeError(f"token {start}: a {topic} payload must be empty, got {payload!r}")
                fields = codec.from_frame(*next_frame(frame_iter, start))
            else:
                try:
                    fields = checked_fields(codec, payload, f"token {start}: decoded {topic} event")
                except EncodeError as exc:
                    raise DecodeError(str(exc)) from None
            events.append(make_event(topic, base_ns + units * self.time_resolution_ns, fields))
        return events
