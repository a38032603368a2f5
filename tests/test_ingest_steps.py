"""transform_item results -> frames and messages with their times."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from PIL import Image

from owa_builders.ingest.config import DEFAULT_TIME_ORIGIN_NS as T0
from owa_builders.ingest.config import IngestionConfig
from owa_builders.ingest.messages import ValueProblem, json_message, json_message_class, to_json
from owa_builders.ingest.steps import FrameWrite, MessageWrite, as_image, item_writes

S = 1_000_000_000


def cfg(**fields: object) -> IngestionConfig:
    return IngestionConfig("out", **fields).validate()  # type: ignore[arg-type]


def payload(message: object) -> dict:
    buffer = io.BytesIO()
    message.serialize(buffer)  # type: ignore[attr-defined]
    return orjson.loads(buffer.getvalue())


def test_times_from_the_item_in_its_unit_or_from_the_rate() -> None:
    writes, n = item_writes({"timestamp": 1.5, "joints": [1.0]}, 0, cfg())
    assert n == 1 and writes[0].timestamp_ns == T0 + 3 * S // 2
    writes, _ = item_writes({"timestamp": 250, "joints": [1.0]}, 0, cfg(time_unit="ms"))
    assert writes[0].timestamp_ns == T0 + S // 4
    absolute = 1_750_000_000_123_456_789
    writes, _ = item_writes({"timestamp": absolute, "joints": 0}, 0, cfg(time_unit="ns", time_origin_ns=None))
    assert writes[0].timestamp_ns == absolute  # integers stay exact
    writes, n = item_writes([{"joints": 1}, {"joints": 2}], 4, cfg(rate_hz=20))
    assert n == 2 and [w.timestamp_ns for w in writes] == [T0 + 4 * S // 20, T0 + 5 * S // 20]
    writes, _ = item_writes({"timestamp": np.float64(2.0), "joints": 1}, 0, cfg())
    assert writes[0].timestamp_ns == T0 + 2 * S
    with pytest.raises(ValueProblem, match="no 'timestamp' and the config has no rate_hz"):
        item_writes({"joints": 1}, 0, cfg())
    with pytest.raises(ValueProblem, match="before 2000-01-01"):
        item_writes({"timestamp": 3.0, "joints": 1}, 0, cfg(time_origin_ns=None))
    with pytest.raises(ValueProblem, match="looks like a time since the epoch.*time_origin_ns=None"):
        item_writes({"timestamp": 1_750_000_000.5, "joints": 1}, 0, cfg())
    with pytest.raises(ValueProblem, match="must be a number"):
        item_writes({"timestamp": "noon", "joints": 1}, 0, cfg())
    with pytest.raises(ValueProblem, match="must return a mapping"):
        item_writes(42, 0, cfg())


def test_images_of_every_layout_become_frames() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    assert as_image(rgb)[1] == "rgb24"
    assert as_image(np.zeros((4, 6), np.uint8))[1] == "gray"
    assert as_image(np.zeros((4, 6, 1), np.uint8))[1] == "gray"
    assert as_image(np.zeros((4, 6, 4), np.uint8))[1] == "rgba"
    assert as_image(Image.new("RGB", (6, 4)))[0].shape == (4, 6, 3)
    assert as_image(Image.new("LA", (6, 4)))[1] == "rgba"
    assert as_image(np.zeros((4, 6, 3), np.float32)) is None and as_image([1, 2]) is None
    assert as_image(np.zeros((3, 4, 6), np.uint8)) is None  # channels first is not an image
    import torch

    assert as_image(torch.zeros((4, 6, 3), dtype=torch.uint8))[1] == "rgb24"
    writes, _ = item_writes({"timestamp": 0, "screen": rgb, "wrist": np.ones((4, 6), np.uint8)}, 0, cfg())
    assert [type(w) for w in writes] == [FrameWrite, FrameWrite] and writes[1].size == (6, 4)
    with pytest.raises(ValueProblem, match=r"float32 \(3, 4, 6\) \(channels first\? use HWC\)"):
        item_writes({"timestamp": 0, "screen": np.zeros((3, 4, 6), np.float32)}, 0, cfg())


def test_desktop_topics_take_their_standard_types() -> None:
    from owa.core import MESSAGES

    key = MESSAGES["desktop/KeyboardEvent"](event_type="press", vk=65)
    writes, _ = item_writes({"timestamp": 0, "keyboard": {"event_type": "release", "vk": 65}, "mouse/raw": None,
                             "window": {"title": "t", "rect": [0, 0, 1, 1], "hWnd": 1}}, 0, cfg())  # fmt: skip
    assert [(w.topic, type(w.message)._type) for w in writes] == [
        ("keyboard", "desktop/KeyboardEvent"), ("window", "desktop/WindowInfo")
    ]  # fmt: skip
    assert payload(writes[0].message) == {"event_type": "release", "vk": 65}
    writes, _ = item_writes({"timestamp": 0, "keyboard": key}, 0, cfg())
    assert writes[0].message is key
    with pytest.raises(ValueProblem, match="not a valid desktop/KeyboardEvent"):
        item_writes({"timestamp": 0, "keyboard": {"event_type": "hold"}}, 0, cfg())
    with pytest.raises(ValueProblem, match="takes desktop/MouseEvent messages or dicts"):
        item_writes({"timestamp": 0, "mouse": [1, 2]}, 0, cfg())


def test_other_topics_are_json_messages_of_the_users_type() -> None:
    config = cfg(message_types={"joints": "robot/JointState"})
    writes, _ = item_writes(
        {"timestamp": 0, "joints": np.array([0.5, -1.0]), "game": {"score": np.int64(3), "lives": (1, 2)}},
        0,
        config,
    )
    by_topic = {w.topic: w.message for w in writes}
    assert type(by_topic["joints"])._type == "robot/JointState" and payload(by_topic["joints"]) == {
        "data": [0.5, -1.0]
    }
    assert type(by_topic["game"])._type == "ingest/game" and payload(by_topic["game"]) == {
        "score": 3,
        "lives": [1, 2],
    }
    assert isinstance(writes[0], MessageWrite)
    # a declared JSON topic stays JSON even for an image-shaped array
    writes, _ = item_writes({"timestamp": 0, "joints": np.zeros((2, 2), np.uint8)}, 0, config)
    assert payload(writes[0].message) == {"data": [[0, 0], [0, 0]]}
    assert json_message_class("robot/JointState") is json_message_class("robot/JointState")
    assert payload(json_message("a/B", {"x": None})) == {"x": None}  # None kept (not dropped)


def test_values_without_a_json_form_are_named() -> None:
    with pytest.raises(ValueProblem, match=r"value\['a'\]\[1\] is nan"):
        to_json({"a": [1.0, float("nan")]})
    with pytest.raises(ValueProblem, match="key 3 that is not a string"):
        to_json({3: 1})
    with pytest.raises(ValueProblem, match="is bytes"):
        to_json(b"x")
    with pytest.raises(ValueProblem, match="has no JSON form"):
        to_json(object())
    with pytest.raises(ValueProblem, match="step 1, topic 'j'"):
        item_writes([{"timestamp": 0, "j": 1}, {"timestamp": 1, "j": float("inf")}], 0, cfg())
