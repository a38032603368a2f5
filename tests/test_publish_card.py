"""Dataset cards: templates from the top-level dataset_cards/ folder, Hub YAML that huggingface_hub's and
datasets' own card classes read back, measured facts in the body, merging configs into one card."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from owa_builders.publish import card as cards
from owa_builders.publish.card import CardError, render_template, templates_dir
from owa_builders.publish.source import open_built
from owa_builders.publish.stats import measure

REPO = "org/desktop"


def section_and_metadata(
    folder: Path, existing_text: str | None, name: str | None = None, **kw: object
) -> str:
    built = open_built(folder)
    stats = measure(built)
    name = name or built.config_name
    section = cards.render_section(
        built, stats, repo_id=REPO, config_name=name, shards={s: 2 for s in built.splits}, media=(4, 25_000),
        publisher_version="9.9.9",
    )  # fmt: skip
    metadata = cards.card_metadata(
        cards.existing_metadata(existing_text),
        built,
        stats,
        config_name=name,
        download_size=1234,
        **kw,  # type: ignore[arg-type]
    )
    return cards.compose_card(existing_text, metadata, section, name, cards.header_markdown(REPO))


def test_templates_ship_one_per_stage_and_placeholders_are_checked() -> None:
    folder = templates_dir()
    assert (
        folder == Path(__file__).resolve().parents[1] / "dataset_cards"
    )  # the source tree's top-level folder
    assert sorted(p.name for p in folder.glob("*.md")) == ["binned.md", "event.md", "fsl.md", "header.md"]
    assert render_template("a {{ x }} b {{y}}", {"x": 1, "y": "z"}) == "a 1 b z"
    with pytest.raises(CardError, match=r"no value for placeholder\(s\) \['y'\]"):
        render_template("{{ x }} {{ y }}", {"x": 1}, "t.md")


@pytest.mark.parametrize("stage", ["event", "binned", "fsl"])
def test_card_yaml_reads_back_with_the_hub_and_datasets_classes(
    built_folders: dict[str, Path], stage: str
) -> None:
    text = section_and_metadata(built_folders[stage], None, license="cc-by-4.0")
    card = DatasetCard(text)
    data = card.data
    assert isinstance(data, DatasetCardData)
    assert data.license == "cc-by-4.0" and data.pretty_name is None
    assert set(data.task_categories) >= {"robotics"} and f"owa-{stage}" in data.tags
    built = open_built(built_folders[stage])
    configs = MetadataConfigs.from_dataset_card_data(data)
    assert configs == {built.config_name: {"data_files": [
        {"split": "train", "path": f"{built.config_name}/train-*"}, {"split": "test", "path": f"{built.config_name}/test-*"}
    ]}}  # fmt: skip
    infos = DatasetInfosDict.from_dataset_card_data(data)
    info = infos[built.config_name]
    assert info.features == built.features
    assert {s: (i.num_examples, i.num_bytes) for s, i in info.splits.items()} == {
        s: (b.num_rows, b.num_bytes) for s, b in built.splits.items()
    }
    assert info.download_size == 1234
    assert "{{" not in card.text and card.text.count("<!-- owa-builders config:") == 1
    # measured facts, build config and loading instructions are in the body
    stats = measure(built)
    assert f"| `train` | {stats.splits['train'].rows:,} | 2 | 2 |" in card.text
    assert f'datasets.load_dataset("{REPO}", "{built.config_name}", split="train")' in card.text
    assert "streaming=True" in card.text
    assert "published with owa-builders 9.9.9" in card.text and '"on_bad_file": "error"' in card.text
    assert "4 screen video(s), 24.4 KiB" in card.text


def test_stage_sections_state_their_own_facts(built_folders: dict[str, Path]) -> None:
    fsl = DatasetCard(section_and_metadata(built_folders["fsl"], None)).text
    stats = measure(open_built(built_folders["fsl"]))
    assert stats.fsl is not None
    assert f"Padding: {stats.fsl.padding_share:.1%} of all token slots" in fsl
    assert f"| real tokens per sequence | {stats.fsl.real_tokens['min']:,.0f} |" in fsl
    assert (
        "![Sequence fill: real tokens per sequence / sequence length](fsl-smolvlm/plots/sequence_fill.png)"
        in fsl
    )
    assert "`<fake_token_around_image><global-img>` + 64 x `<image>` + `<fake_token_around_image>`" in fsl
    assert "snapshot_download" in fsl and "fsl-smolvlm/tokenizer" in fsl and "SmolVLMCollator" in fsl
    binned = DatasetCard(section_and_metadata(built_folders["binned"], None)).text
    assert "(10 steps per second" in binned and "binned/plots/events_per_second.png" in binned
    assert "`state_unused`" in binned  # drops per rule
    event = DatasetCard(section_and_metadata(built_folders["event"], None)).text
    assert "No message was dropped by a rule." in event
    assert "| `mouse/raw` | " in event


def test_a_second_config_keeps_the_first_and_text_outside_the_markers(built_folders: dict[str, Path]) -> None:
    first = section_and_metadata(built_folders["event"], None, license="mit")
    edited = first.replace("# desktop\n", "# desktop\n\nNotes written by a person.\n")
    both = section_and_metadata(built_folders["fsl"], edited)
    card = DatasetCard(both)
    assert list(MetadataConfigs.from_dataset_card_data(card.data)) == ["event", "fsl-smolvlm"]
    assert list(DatasetInfosDict.from_dataset_card_data(card.data)) == ["event", "fsl-smolvlm"]
    assert card.data.license == "mit"  # kept
    assert card.data.task_categories == ["robotics", "image-text-to-text"]
    assert "Notes written by a person." in card.text
    event_section = re.search(
        r"<!-- owa-builders config: event -->.*<!-- owa-builders end: event -->", first, re.S
    )
    assert event_section is not None and event_section.group(0) in both
    assert both.index("config: event -->") < both.index("config: fsl-smolvlm -->")
    # publishing event again replaces its section and entries, nothing is duplicated
    again = DatasetCard(section_and_metadata(built_folders["event"], both))
    assert again.text.count("<!-- owa-builders config: event -->") == 1
    assert again.text.count("<!-- owa-builders config: fsl-smolvlm -->") == 1
    assert [c["config_name"] for c in again.data.configs] == ["event", "fsl-smolvlm"]  # in place
    assert "Notes written by a person." in again.text
    # a renamed config is a new entry
    renamed = DatasetCard(section_and_metadata(built_folders["event"], both, name="event-copy"))
    assert sorted(MetadataConfigs.from_dataset_card_data(renamed.data)) == [
        "event",
        "event-copy",
        "fsl-smolvlm",
    ]


def test_a_card_with_broken_yaml_is_not_overwritten(built_folders: dict[str, Path]) -> None:
    with pytest.raises(CardError, match="metadata that cannot be read"):
        section_and_metadata(built_folders["event"], "---\nlicense: [mit\n---\n# hand written\n")


def test_card_validates_against_the_hub_api(built_folders: dict[str, Path], hub_env: object) -> None:
    DatasetCard(section_and_metadata(built_folders["fsl"], None)).validate(repo_type="dataset")


def test_an_installed_wheel_ships_the_templates(tmp_path: Path) -> None:
    """pip installs the package (setup.py maps dataset_cards/ into it); the installed copy finds its templates."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(root / name, source / name)
    for name in ("owa_builders", "owa_event", "owa_binned", "owa_fsl", "dataset_cards"):
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-compile",
         "--target", str(target), str(source)],
        check=True, capture_output=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert sorted(p.name for p in (target / "owa_builders" / "dataset_cards").glob("*.md")) == sorted(
        p.name for p in (root / "dataset_cards").glob("*.md")
    )
    assert not (
        target / "dataset_cards"
    ).exists()  # inside the package, not a top-level folder in site-packages
    found = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from owa_builders.publish.card import "
         "templates_dir; print(templates_dir())", str(target)],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert found.stdout.strip() == str(target / "owa_builders" / "dataset_cards")
