"""What ``transform_item`` returns -> frames and messages to write, with their times (ns).

``transform_item(item)`` returns one *step* or a list of steps. A step is a mapping topic -> value
at one time:

- ``"timestamp"`` (optional): the step's time in the config's ``time_unit``, plus ``time_origin_ns``;
  without it the step is at ``time_origin_ns + k / rate_hz`` (``k``: the step's position in its episode);
- an *image* -- a ``uint8`` array ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA, ``(H, W)`` or ``(H, W, 1)``
  grey, or a PIL image -- becomes a frame of that topic's video and a ``desktop/ScreenCaptured``
  message pointing into it (topic ``screen`` is the episode's screen video);
- anything else becomes a message (:mod:`owa_builders.ingest.messages`): desktop topics their
  standard types, other topics JSON types (``message_types``);
- a value ``None`` writes nothing for that topic at that step.

Every problem is a :class:`~owa_builders.ingest.messages.ValueProblem` naming the step and topic;
nothing is written for an item until all of its steps are known to be writable.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from owa_event.events import SCREEN, TOPIC_TYPES
from owa_event.reader import MIN_LOG_TIME_NS

from .config import TIME_UNITS, IngestionConfig
from .messages import ValueProblem, desktop_message, is_message, json_message

#: The key of a step's time.
TIMESTAMP_KEY = "timestamp"


@dataclass(frozen=True)
class FrameWrite:
    """One video frame of ``topic`` at ``timestamp_ns``: ``image`` is ``(H, W, C)`` uint8 in ``pixel_format``."""

    topic: str
    timestamp_ns: int
    image: np.ndarray
    pixel_format: str  # PyAV name: rgb24, rgba, gray

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class MessageWrite:
    """One message of ``topic`` at ``timestamp_ns`` (a message object with ``_type``)."""

    topic: str
    timestamp_ns: int
    message: Any


Write = FrameWrite | MessageWrite


def as_steps(output: Any) -> list[Mapping[str, Any]]:
    """The steps of one ``transform_item`` result (a mapping, or a sequence of mappings)."""
    if isinstance(output, Mapping):
        return [output]
    if isinstance(output, Sequence) and not isinstance(output, (str, bytes)):
        for i, step in enumerate(output):
            if not isinstance(step, Mapping):
                raise ValueProblem(f"step {i} is a {type(step).__name__}, not a mapping topic -> value")
        return list(output)
    raise ValueProblem(
        f"transform_item returned a {type(output).__name__}: it must return a mapping topic -> value "
        "(one step) or a list of them"
    )


def step_time_ns(step: Mapping[str, Any], k: int, config: IngestionConfig, where: str) -> int:
    """The time (ns since the epoch) of step ``k`` of an episode."""
    value = step.get(TIMESTAMP_KEY)
    origin = config.time_origin_ns or 0
    if value is None:
        if config.rate_hz is None:
            raise ValueProblem(f"{where} has no {TIMESTAMP_KEY!r} and the config has no rate_hz to place it")
        t = origin + round(k * 1e9 / config.rate_hz)
    else:
        if hasattr(value, "item") and not isinstance(value, (list, tuple)):
            value = value.item()  # NumPy / torch scalar
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueProblem(f"{where}: {TIMESTAMP_KEY} must be a number, got {value!r}")
        unit = TIME_UNITS[config.time_unit]
        offset = value * unit if isinstance(value, int) else round(value * unit)
        if config.time_origin_ns is not None and offset >= MIN_LOG_TIME_NS:
            raise ValueProblem(
                f"{where}: {TIMESTAMP_KEY} {value!r} {config.time_unit} looks like a time since the epoch, but "
                f"timestamps are offsets from time_origin_ns={config.time_origin_ns}: pass time_origin_ns=None"
            )
        t = origin + offset
    if t < MIN_LOG_TIME_NS:
        raise ValueProblem(
            f"{where}: time {t} ns is before 2000-01-01, which OWAMcap does not take as a recording time "
            f"(timestamps are offsets from time_origin_ns={config.time_origin_ns}; check time_unit={config.time_unit!r})"
        )
    return int(t)


def as_image(value: Any) -> tuple[np.ndarray, str] | None:
    """``(array (H, W, C) uint8, pixel format)`` when ``value`` is an image, else ``None``."""
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(value, pil.Image):
        value = value.convert(
            "RGBA" if value.mode in ("RGBA", "LA", "P") and "A" in value.getbands() else "RGB"
        )
        value = np.asarray(value)
    elif not isinstance(value, np.ndarray):
        if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "numpy"):
            value = value.detach().cpu().numpy()
        else:
            return None
    if value.dtype != np.uint8:
        return None
    if value.ndim == 2:
        return np.ascontiguousarray(value[:, :, None]), "gray"
    if value.ndim == 3 and value.shape[2] in (1, 3, 4) and min(value.shape[:2]) > 0:
        fmt = {1: "gray", 3: "rgb24", 4: "rgba"}[value.shape[2]]
        return np.ascontiguousarray(value), fmt
    return None


def step_writes(step: Mapping[str, Any], t: int, config: IngestionConfig, where: str) -> list[Write]:
    """The frames and messages of one step at time ``t``."""
    out: list[Write] = []
    for topic, value in step.items():
        if topic == TIMESTAMP_KEY or value is None:
            continue
        here = f"{where}, topic {topic!r}"
        if not isinstance(topic, str) or not topic:
            raise ValueProblem(f"{where}: topic {topic!r} must be a non-empty string")
        if is_message(value):
            out.append(MessageWrite(topic, t, value))
            continue
        if topic in config.message_types:
            out.append(MessageWrite(topic, t, json_message(config.message_types[topic], value, here)))
            continue
        image = as_image(value)
        if image is not None:
            out.append(FrameWrite(topic, t, image[0], image[1]))
        elif topic == SCREEN:
            if isinstance(value, dict):
                out.append(MessageWrite(topic, t, _screen_message(value, here)))
            else:
                shape = getattr(value, "shape", None)
                dtype = getattr(value, "dtype", None)
                raise ValueProblem(
                    f"{here}: screen values are images: uint8 arrays (H, W, 3) RGB, (H, W, 4), (H, W) or PIL "
                    f"images; got {type(value).__name__}" + (f" {dtype} {tuple(shape)}" if shape is not None else "")
                    + (" (channels first? use HWC)" if shape is not None and len(shape) == 3 and shape[0] in (1, 3, 4) else "")
                )  # fmt: skip
        elif topic in TOPIC_TYPES:
            try:
                out.append(MessageWrite(topic, t, desktop_message(topic, value)))
            except ValueProblem as exc:
                raise ValueProblem(f"{where}: {exc}") from None
        else:
            out.append(MessageWrite(topic, t, json_message(config.message_type(topic), value, here)))
    return out


def _screen_message(fields: dict[str, Any], where: str) -> Any:
    from owa.core import MESSAGES

    try:
        return MESSAGES[TOPIC_TYPES[SCREEN]](**fields)
    except Exception as exc:
        raise ValueProblem(f"{where}: not a valid desktop/ScreenCaptured: {exc}") from None


def item_writes(output: Any, first_step: int, config: IngestionConfig) -> tuple[list[Write], int]:
    """``(writes, number of steps)`` of one item's ``transform_item`` result; its steps are numbered
    from ``first_step`` within the episode (for ``rate_hz`` placement)."""
    steps = as_steps(output)
    writes: list[Write] = []
    for i, step in enumerate(steps):
        where = f"step {i}" if len(steps) > 1 else "the step"
        t = step_time_ns(step, first_step + i, config, where)
        writes.extend(step_writes(step, t, config, where))
    return writes, len(steps)
