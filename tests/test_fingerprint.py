"""The code part of the cache fingerprint covers the modules that shape rows, and only those.

Each test works on a copy of the four packages in a temporary folder and edits the copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from owa_builders.fingerprint import (
    ROW_WRITERS,
    installed_package_dirs,
    row_modules,
    rows_code_hash,
)
from owa_builders.stages import specs


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Walks of the edited copies are cached under the test's folder, not the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def packages(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, folder in installed_package_dirs().items():
        out[name] = tmp_path / name
        shutil.copytree(folder, out[name], ignore=shutil.ignore_patterns("__pycache__"))
    return out


def test_the_copy_hashes_like_the_installed_packages(packages: dict[str, Path]) -> None:
    assert rows_code_hash(packages) == rows_code_hash(installed_package_dirs())
    assert rows_code_hash(packages) == rows_code_hash(packages)


def test_row_modules_are_the_stages_their_imports_and_the_row_writers() -> None:
    modules = row_modules(installed_package_dirs())
    for spec in specs():
        assert spec.stage.__module__ in modules
        assert spec.stage.config_class.__module__ in modules
    assert set(ROW_WRITERS) <= set(modules)
    # what the stages use (found through their imports, not listed)
    for module in (
        "owa_event.reader",
        "owa_event.resample",
        "owa_binned.bins",
        "owa_fsl.pack",
        "owa_fsl.encoders.desktop",
    ):
        assert module in modules
    # never the consumers, nor a stage-package module no stage imports
    for module in (
        "owa_builders.cli",
        "owa_builders.publish.preview",
        "owa_builders.event",
        "owa_fsl.decode",
    ):
        assert module not in modules


@pytest.mark.parametrize(
    "path",
    [
        "owa_builders/publish/preview.py",
        "owa_builders/cli.py",
        "owa_builders/fsl.py",  # the stage's home: its builder and spec hooks (media, card, preview)
        "owa_builders/distributed/ray_build.py",
        "owa_fsl/decode.py",
    ],
)
def test_editing_a_file_outside_the_set_keeps_the_hash(packages: dict[str, Path], path: str) -> None:
    before = rows_code_hash(packages)
    file = packages[path.split("/")[0]].parent / path
    file.write_text(file.read_text() + "\n# an edit\n")
    assert rows_code_hash(packages) == before


def test_adding_a_file_outside_the_set_keeps_the_hash(packages: dict[str, Path]) -> None:
    before = rows_code_hash(packages)
    (packages["owa_builders"] / "publish" / "new_step.py").write_text("import owa_fsl.pack\n")
    (packages["owa_fsl"] / "helper.py").write_text("x = 1\n")
    assert rows_code_hash(packages) == before


@pytest.mark.parametrize(
    "path",
    [
        "owa_event/resample.py",
        "owa_event/pipeline.py",
        "owa_binned/bins.py",
        "owa_fsl/encoders/desktop.py",
        "owa_fsl/encoders/__init__.py",
        "owa_builders/builder.py",
        "owa_builders/discovery.py",
    ],
)
def test_editing_a_file_inside_the_set_changes_the_hash(packages: dict[str, Path], path: str) -> None:
    before = rows_code_hash(packages)
    file = packages[path.split("/")[0]].parent / path
    file.write_text(file.read_text() + "\n# an edit\n")
    assert rows_code_hash(packages) != before


def test_a_module_a_stage_starts_importing_enters_the_hash(packages: dict[str, Path]) -> None:
    helper = packages["owa_fsl"] / "helper.py"
    helper.write_text("x = 1\n")
    before = rows_code_hash(packages)
    stage = packages["owa_fsl"] / "stage.py"
    stage.write_text(
        stage.read_text() + "\n\ndef _uses_helper() -> int:\n    from .helper import x\n\n    return x\n"
    )
    with_import = rows_code_hash(packages)
    assert with_import != before
    assert "owa_fsl.helper" in row_modules(packages)
    helper.write_text("x = 2\n")
    assert rows_code_hash(packages) != with_import


def test_the_walk_is_cached_on_disk_and_a_bad_entry_is_walked_again(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    from owa_builders import fingerprint

    walked = row_modules(packages)
    assert fingerprint.cached_row_modules(packages) == walked
    (entry,) = (tmp_path / "cache" / "owa-builders" / "row-modules").iterdir()
    assert entry.read_text().split() == walked
    before = rows_code_hash(packages)
    entry.write_text("owa_event.no_such_module\n")  # damaged: ignored, walked again
    assert rows_code_hash(packages) == before
    # an edit inside the stage packages is a new key: a new walk (the import it adds is found)
    stage = packages["owa_fsl"] / "stage.py"
    stage.write_text(stage.read_text() + "\n\ndef _x() -> None:\n    from . import decode  # noqa: F401\n")
    assert "owa_fsl.decode" in fingerprint.cached_row_modules(packages)
    assert len(list(entry.parent.iterdir())) == 2
