"""Event encoders: :class:`~owa_event.events.Event` <-> token strings.

``get_encoder(name, **options)`` builds one by name: ``factorized`` (default),
``hierarchical`` or ``json``.

Modules:

- :mod:`~owa_fsl.encoders.codec`: the payload-codec interface and the table topic -> codec
  (``register_codec``), ``canonical``; **how to add a message type** is in its docstring;
- :mod:`~owa_fsl.encoders.desktop`: the desktop message format, the keyboard, mouse,
  mouse/raw and screen codecs (fields, ranges, tokens);
- :mod:`~owa_fsl.encoders.base`: the encoder contract, relative time, the encoder registry;
- :mod:`~owa_fsl.encoders.framed`: the ``<EVENT_START> <TYPE> digits payload <EVENT_END>``
  frame and vocabulary of the token encoders;
- :mod:`~owa_fsl.encoders.factorized`, :mod:`~owa_fsl.encoders.hierarchical`: the token
  encoders, each a number spelling; :mod:`~owa_fsl.encoders.json_encoder`: JSON text;
- :mod:`~owa_fsl.encoders.stream`: splitting token streams; :mod:`~owa_fsl.encoders.errors`.
"""

from __future__ import annotations

from typing import Any

from owa_fsl.encoders.base import (
    DEFAULT_TIME_DIGITS,
    DEFAULT_TIME_RESOLUTION_NS,
    EventEncoder,
    register_encoder,
    registered_encoders,
)
from owa_fsl.encoders.codec import (
    ENCODED_TOPICS,
    TYPE_TOKENS,
    Categorical,
    Cursor,
    FlagSet,
    FrameCodec,
    NumberSpelling,
    PayloadCodec,
    canonical,
    canonical_fields,
    codec_groups,
    frame_ref,
    get_codec,
    make_event,
    register_codec,
    unregister_codec,
)
from owa_fsl.encoders.desktop import KeyboardCodec, MouseCodec, RawMouseCodec, ScreenCodec
from owa_fsl.encoders.errors import DecodeError, EncodeError
from owa_fsl.encoders.factorized import FactorizedEncoder
from owa_fsl.encoders.framed import FramedEncoder
from owa_fsl.encoders.hierarchical import HierarchicalEncoder
from owa_fsl.encoders.json_encoder import JsonEncoder
from owa_fsl.encoders.stream import (
    EVENT_END,
    EVENT_START,
    IMAGE_PLACEHOLDER,
    collapse_images,
    split_events,
    split_text,
)

__all__ = [
    "DEFAULT_TIME_DIGITS",
    "DEFAULT_TIME_RESOLUTION_NS",
    "ENCODED_TOPICS",
    "EVENT_END",
    "EVENT_START",
    "IMAGE_PLACEHOLDER",
    "TYPE_TOKENS",
    "Categorical",
    "Cursor",
    "DecodeError",
    "EncodeError",
    "EventEncoder",
    "FactorizedEncoder",
    "FlagSet",
    "FrameCodec",
    "FramedEncoder",
    "HierarchicalEncoder",
    "JsonEncoder",
    "KeyboardCodec",
    "MouseCodec",
    "NumberSpelling",
    "PayloadCodec",
    "RawMouseCodec",
    "ScreenCodec",
    "available_encoders",
    "canonical",
    "canonical_fields",
    "codec_groups",
    "collapse_images",
    "frame_ref",
    "get_codec",
    "get_encoder",
    "make_event",
    "register_codec",
    "register_encoder",
    "split_events",
    "split_text",
    "unregister_codec",
]


def available_encoders() -> list[str]:
    """Registered encoder names, sorted (the built-in ones are registered by importing this package)."""
    return sorted(registered_encoders())


def get_encoder(name: str = "factorized", **options: Any) -> EventEncoder:
    """A new encoder by registry name (``factorized`` (default), ``hierarchical``, ``json``)."""
    encoders = registered_encoders()
    try:
        cls = encoders[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; available: {sorted(encoders)}") from None
    return cls(**options)
