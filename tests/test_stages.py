"""The one mapping name -> stage, and the specs beside the stages: every consumer asks them, none
branches on a stage's name."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pytest

import owa_builders
from owa_builders.publish.card import templates_dir
from owa_builders.registry import BUILDERS
from owa_builders.stages import STAGES, StageSpec, UnknownStageError, names, spec, specs, stage_class
from owa_builders.training import batching, transforms
from owa_event.errors import OwaError
from owa_event.stage import EventStage
from owa_fsl.stage import FslStage


def test_every_stage_has_a_spec_its_builder_and_its_card_template() -> None:
    assert names() == list(STAGES) == ["event", "binned", "fsl"]
    assert set(BUILDERS) == {f"owa_builders/{n}" for n in names()}
    for s in specs():
        assert isinstance(s, StageSpec) and s is spec(s.name)
        assert s.builder.STAGE is s.stage and s.builder.DATASET_NAME == s.builder_name
        assert BUILDERS[s.builder_name] == STAGES[s.name]
        assert (templates_dir() / s.card_template).is_file()
        assert s.description
    assert stage_class("event") is EventStage and stage_class("fsl") is FslStage


def test_unknown_stage_is_an_error_of_ours_with_a_suggestion() -> None:
    with pytest.raises(UnknownStageError, match=r"unknown stage 'fls'.*'fsl'.*stages: event, binned, fsl"):
        spec("fls")
    assert issubclass(UnknownStageError, OwaError)


def test_time_and_media_columns_are_columns_of_the_rows() -> None:
    from owa_binned.stage import BINNED_SCHEMA
    from owa_event.stage import EVENT_SCHEMA
    from owa_fsl.stage import FSL_SCHEMA

    for name, schema in {"event": EVENT_SCHEMA, "binned": BINNED_SCHEMA, "fsl": FSL_SCHEMA}.items():
        assert spec(name).time_column in schema.names
        assert set(spec(name).media_columns) <= set(schema.names)
        assert spec(name).topic_column is None or spec(name).topic_column in schema.names


def test_media_uris_of_each_stage() -> None:
    from owa_event.events import mcap_message_json

    screen = mcap_message_json(
        "screen", 5, b'{"media_ref": {"uri": "a/v.mkv", "pts_ns": 5}}', "desktop/ScreenCaptured"
    )
    key = mcap_message_json("keyboard", 6, b'{"event_type": "press", "vk": 65}', "desktop/KeyboardEvent")
    events = pa.RecordBatch.from_pydict({"topic": ["screen", "keyboard"], "mcap_message": [screen, key]})
    assert list(spec("event").media_uris(events)) == ["a/v.mkv"]
    binned = pa.RecordBatch.from_pydict({"state": [[screen], [key]]})
    assert list(spec("binned").media_uris(binned)) == ["a/v.mkv"]
    image = {"uri": "b.mkv", "pts_ns": 1}
    fsl = pa.RecordBatch.from_pydict({"images": [[image, image], []]})
    assert list(spec("fsl").media_uris(fsl)) == ["b.mkv", "b.mkv"]


def test_each_preset_names_its_collator_and_the_card_follows_the_image_layout() -> None:
    fsl = spec("fsl")
    for name, preset in fsl.presets.items():
        assert batching.collator_class(preset.collator).__name__ == preset.collator
        assert fsl.collator(name, dict(preset.fields)) == preset.collator
    # the layout decides, whatever the config's name
    assert fsl.collator("fsl-internvl3", {"image_preset": "smolvlm"}) == "SmolVLMCollator"
    assert fsl.collator("fsl-smolvlm", {"image_preset": "internvl3"}) == "InternVL3Collator"
    # explicit tokens, no layout: the config's own preset
    assert fsl.collator("fsl-smolvlm", {"image_preset": None}) == "SmolVLMCollator"
    assert spec("event").collator("event", {}) is None
    with pytest.raises(ValueError, match="no collator 'make_dataloader'"):
        batching.collator_class("make_dataloader")


def test_each_stage_names_its_training_transform() -> None:
    assert spec("event").transform() is transforms.EventTransform
    assert spec("binned").transform() is transforms.BinnedTransform
    assert spec("fsl").transform() is transforms.FslTransform


def _stage_words() -> set[str]:
    words = set(STAGES)
    for s in specs():
        words |= set(s.presets)
    return words


def _name_branches(path: Path, words: set[str]) -> list[str]:
    """Comparisons with a stage or preset name, and dict/tuple/list displays of them (per-stage tables)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            hits = [o.value for o in operands if isinstance(o, ast.Constant) and o.value in words]
            hits += [
                e.value
                for o in operands
                if isinstance(o, (ast.Tuple, ast.List, ast.Set))
                for e in o.elts
                if isinstance(e, ast.Constant) and e.value in words
            ]
            if hits:
                found.append(f"{path.name}:{node.lineno} compares with {hits}")
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in words]
            if len(keys) > 1:
                found.append(f"{path.name}:{node.lineno} has a table keyed by {keys}")
        elif isinstance(node, (ast.Tuple, ast.List)):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in STAGES]
            if len(items) > 1:
                found.append(f"{path.name}:{node.lineno} lists the stages {items}")
    return found


def test_no_consumer_branches_on_a_stage_name() -> None:
    root = Path(owa_builders.__file__).parent
    homes = {root / f"{name}.py" for name in STAGES} | {root / "stages.py"}
    problems = []
    for path in sorted(root.rglob("*.py")):
        if path not in homes:
            problems += _name_branches(path, _stage_words())
    assert problems == []


def test_the_guard_finds_a_branch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        'def f(stage):\n    if stage == "fsl":\n        return {"event": 1, "binned": 2}\n    return ("event", "fsl")\n'
    )
    found = _name_branches(bad, _stage_words())
    assert len(found) == 3, found
