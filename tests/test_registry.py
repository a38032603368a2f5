"""Guards on the one place that touches `datasets` internals: if an upgrade moves them, fail here."""

from __future__ import annotations

from pathlib import Path

import datasets
import datasets.load
import pytest
from datasets import packaged_modules

import owa_builders
from owa_builders.event import EventBuilder
from owa_builders.registry import BUILDERS, code_hash, register, source_hash


def test_builders_are_in_the_packaged_module_table_with_the_code_hash() -> None:
    for name, module in BUILDERS.items():
        assert packaged_modules._PACKAGED_DATASETS_MODULES[name] == (module, code_hash())


def test_datasets_load_looks_names_up_in_that_same_table() -> None:
    assert datasets.load._PACKAGED_DATASETS_MODULES is packaged_modules._PACKAGED_DATASETS_MODULES


def test_builder_module_main_class_is_the_event_builder() -> None:
    assert datasets.load.import_main_class("owa_builders.event") is EventBuilder


def test_register_is_idempotent() -> None:
    factory = datasets.load.PackagedDatasetModuleFactory
    register()
    register()
    assert datasets.load.PackagedDatasetModuleFactory is factory
    assert getattr(factory, "_owa_guarded", False)


def test_our_names_skip_the_download_counter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`datasets` counts a load of a packaged builder with an HTTP HEAD to the Hub's bucket; ours make no
    request, and their factory holds what `datasets`' own __init__ would have set."""
    counted: list[str] = []
    monkeypatch.setattr(datasets.load, "increase_load_count", counted.append)
    guarded = datasets.load.PackagedDatasetModuleFactory
    args = ("owa_builders/event", str(tmp_path), None, datasets.DownloadConfig(), None)
    ours = guarded(*args)
    assert counted == []
    plain = guarded.__mro__[1](*args)  # datasets' own factory
    assert counted == ["owa_builders/event"]
    assert vars(ours) == vars(plain)
    guarded("csv", str(tmp_path))
    assert counted == ["owa_builders/event", "csv"]


def test_guard_leaves_other_packaged_builders_alone(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    ds = datasets.load_dataset(
        "csv", data_files=str(tmp_path / "a.csv"), cache_dir=str(tmp_path / "c"), split="train"
    )
    assert ds[0] == {"x": 1, "y": 2}


def test_source_hash_changes_with_any_source_change(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    first = source_hash([pkg])
    assert source_hash([pkg]) == first
    (pkg / "a.py").write_text("x = 2\n")
    second = source_hash([pkg])
    assert second != first
    (pkg / "b.py").write_text("")
    assert source_hash([pkg]) != second


def test_code_hash_covers_the_row_shaping_modules_not_every_file() -> None:
    """Issue 17: the code hash is that of the modules that shape rows (tests/test_fingerprint.py), no longer
    every file of every project package."""
    import owa_binned
    import owa_event
    import owa_fsl
    from owa_builders.fingerprint import installed_package_dirs, rows_code_hash

    roots = [Path(m.__file__).parent for m in (owa_builders, owa_event, owa_binned, owa_fsl)]
    assert code_hash() == rows_code_hash(installed_package_dirs())
    assert code_hash() != source_hash(roots)


def test_unregistered_name_is_not_ours() -> None:
    with pytest.raises(Exception):  # noqa: B017 - replaced by a named error in issue 9
        datasets.load_dataset("owa_builders/no_such_stage", data_dir=".")
