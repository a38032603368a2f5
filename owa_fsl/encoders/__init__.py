"""Event encoders: :class:`~owa_event.events.Event` <-> token strings.

``get_encoder(name, **options)`` builds one by name: ``factorized`` (default),
``hierarchical`` or ``json``. See :mod:`owa_fsl.encoders.base` for the shared contract.
"""

from __future__ import annotations

from owa_fsl.encoders.base import (
    DEFAULT_TIME_DIGITS,
    DEFAULT_TIME_RESOLUTION_NS,
    TYPE_TOKENS,
    EventEncoder,
    FramedEncoder,
    available_encoders,
    get_encoder,
    register_encoder,
)
from owa_fsl.encoders.factorized import FactorizedEncoder
from owa_fsl.encoders.fields import DecodeError, EncodeError, canonical, frame_ref, make_event
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
    "EVENT_END",
    "EVENT_START",
    "IMAGE_PLACEHOLDER",
    "TYPE_TOKENS",
    "DecodeError",
    "EncodeError",
    "EventEncoder",
    "FactorizedEncoder",
    "FramedEncoder",
    "HierarchicalEncoder",
    "JsonEncoder",
    "available_encoders",
    "canonical",
    "collapse_images",
    "frame_ref",
    "get_encoder",
    "make_event",
    "register_encoder",
    "split_events",
    "split_text",
]
