"""Values of a transformed item -> OWAMcap messages: the desktop types, and JSON types of the user's naming.

- A message object (anything with ``_type`` and ``serialize``: ``owa.core`` messages such as
  ``KeyboardEvent``, or the user's own ``OWAMessage`` subclasses) is written as it is.
- A dict on a desktop topic (``keyboard``, ``mouse``, ``mouse/raw``, ``window``, ``keyboard/state``,
  ``mouse/state``) becomes that topic's standard message (``owa.core.MESSAGES``), validated.
- Anything else becomes a JSON message of a type the user names (:func:`json_message_class`):
  a dict is the message's fields, any other value is ``{"data": value}``. NumPy arrays and scalars
  and tensors (anything with ``tolist()``) become lists and numbers. JSON has no NaN or infinity:
  such a value is an error naming where it is, never silently ``null``.
"""

from __future__ import annotations

import io
import math
from functools import cache
from typing import Any, ClassVar

import orjson

from owa_event.events import TOPIC_TYPES

from ..errors import ValueProblem


@cache
def json_message_class(type_name: str) -> type:
    """An ``OWAMessage`` subclass named ``type_name`` (``domain/Type``) whose payload is free JSON.

    The class is made once per process; its messages are built with :func:`json_message`. The event
    stage keeps such messages verbatim (an unknown type), so they reach the event dataset unchanged.
    """
    from owa.core import OWAMessage
    from pydantic import PrivateAttr

    class JsonMessage(OWAMessage):
        model_config = {"extra": "allow"}
        _type: ClassVar[str] = type_name
        _payload: dict[str, Any] = PrivateAttr(default_factory=dict)

        def serialize(self, buffer: io.BytesIO) -> None:
            buffer.write(orjson.dumps(self._payload))

        @classmethod
        def deserialize(cls, buffer: io.BytesIO) -> Any:
            return json_message(type_name, orjson.loads(buffer.read()))

    JsonMessage.__name__ = JsonMessage.__qualname__ = type_name.rsplit("/", 1)[-1] or "JsonMessage"
    return JsonMessage


def json_message(type_name: str, value: Any, where: str = "value") -> Any:
    """A :func:`json_message_class` message holding ``value`` (a dict: its fields; else ``{"data": value}``)."""
    payload = to_json(value, where)
    if not isinstance(payload, dict):
        payload = {"data": payload}
    message = json_message_class(type_name)()
    message._payload = payload
    return message


def to_json(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON data (dicts with string keys, lists, str, int, float, bool, None)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueProblem(
                f"{where} is {value}: JSON has no NaN or infinity (replace it, e.g. with None)"
            )
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueProblem(f"{where} has a key {key!r} that is not a string")
            out[key] = to_json(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars, torch tensors
        return to_json(value.tolist(), where)
    if isinstance(value, bytes):
        raise ValueProblem(
            f"{where} is bytes: JSON messages hold text and numbers (decode or encode it first)"
        )
    raise ValueProblem(f"{where} is a {type(value).__name__}, which has no JSON form")


def is_message(value: Any) -> bool:
    """Whether ``value`` is already a message object (has a ``_type`` and ``serialize``)."""
    return isinstance(getattr(type(value), "_type", None), str) and callable(
        getattr(value, "serialize", None)
    )


def message_type_of(message: Any) -> str:
    return type(message)._type


def desktop_message(topic: str, value: Any) -> Any:
    """The standard message of a desktop topic from a dict of its fields (validated)."""
    from owa.core import MESSAGES

    type_name = TOPIC_TYPES[topic]
    if not isinstance(value, dict):
        raise ValueProblem(
            f"topic {topic!r} takes {type_name} messages or dicts of their fields, got {type(value).__name__}"
        )
    try:
        return MESSAGES[type_name](**value)
    except Exception as exc:  # pydantic's ValidationError, with every field at fault
        raise ValueProblem(f"topic {topic!r}: not a valid {type_name}: {exc}") from None
