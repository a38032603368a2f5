"""Make ``load_dataset("owa_builders/<stage>", ...)`` work: the only module touching `datasets` internals.

`datasets` 5.x has no public plugin API for builders, so on ``import owa_builders`` we:

1. add each stage to ``datasets.packaged_modules._PACKAGED_DATASETS_MODULES`` (name -> (module
   path, code hash)); `datasets.load` looks names up in that very dict object;
2. wrap ``datasets.load.PackagedDatasetModuleFactory`` so that our names find their recordings
   with :func:`owa_builders.discovery.find_recordings` (one rule for splits, local folders and
   fsspec URLs such as ``hf://datasets/org/recs`` alike, clear errors for a missing folder or no
   data) instead of `datasets`' own file patterns; the resolved files keep `datasets`' origin
   metadata (mtime / ETag / commit), so the cache fingerprint changes when an input changes;
3. wrap ``datasets.load.dataset_module_factory`` so that a misspelled name of ours
   (``owa_builders/events``) is a clear error with a suggestion, not a Hub lookup;
4. skip, for our names only, the factory's download counter (``increase_load_count``: a HEAD request
   to the Hub's bucket for ``owa_builders/<stage>/<stage>.py``, which does not exist there): no network
   in a conversion's start-up (an HTTP client set up, then up to 3 s on a network that drops it).

The code hash (:func:`owa_builders.fingerprint.code_hash`) covers only the modules that shape the
rows, so the cache fingerprint changes when conversion changes and not when the CLI, publishing or
a tool does. ``tests/test_registry.py`` guards all of this: a
`datasets` upgrade that moves these internals fails loudly there and here (:func:`register`
raises :class:`RegistrationError`).
"""

from __future__ import annotations

import functools
from typing import Any

from .errors import (
    RegistrationError,
    UnknownBuilderError,
    did_you_mean,
)
from .fingerprint import code_hash, source_hash
from .stages import PREFIX, STAGES

#: Registered name -> module holding its builder (one per stage of :data:`owa_builders.stages.STAGES`).
BUILDERS: dict[str, str] = {PREFIX + name: module for name, module in STAGES.items()}

__all__ = ["BUILDERS", "PREFIX", "RegistrationError", "UnknownBuilderError", "check_name", "code_hash",
           "register", "source_hash"]  # fmt: skip


def register() -> None:
    """Register every stage with `datasets` (idempotent)."""
    try:
        import datasets.load as load
        from datasets import packaged_modules
    except ImportError as exc:  # pragma: no cover - datasets is a hard dependency
        raise RegistrationError(f"cannot import datasets internals: {exc}") from exc
    table = getattr(packaged_modules, "_PACKAGED_DATASETS_MODULES", None)
    factory = getattr(load, "PackagedDatasetModuleFactory", None)
    module_factory = getattr(load, "dataset_module_factory", None)
    if (
        not isinstance(table, dict)
        or factory is None
        or module_factory is None
        or getattr(load, "_PACKAGED_DATASETS_MODULES", None) is not table
    ):
        raise RegistrationError(
            "datasets internals changed: _PACKAGED_DATASETS_MODULES / PackagedDatasetModuleFactory / "
            "dataset_module_factory not found where owa_builders.registry expects them; pin datasets<6 or "
            "update the registry"
        )
    for name, module in BUILDERS.items():
        table[name] = (module, code_hash())
    if not getattr(factory, "_owa_guarded", False):
        load.PackagedDatasetModuleFactory = _guarded(factory)
    if not getattr(module_factory, "_owa_guarded", False):
        load.dataset_module_factory = _named(module_factory)


def check_name(name: str) -> None:
    """Raise :class:`UnknownBuilderError` for a name under ``owa_builders/`` that is not ours."""
    if isinstance(name, str) and name.startswith(PREFIX) and name not in BUILDERS:
        raise UnknownBuilderError(
            f"unknown builder {name!r}{did_you_mean(name, BUILDERS)}; owa-builders has {', '.join(BUILDERS)}"
        )


def _named(module_factory: Any) -> Any:
    @functools.wraps(module_factory)
    def dataset_module_factory(path: str, *args: Any, **kwargs: Any) -> Any:
        check_name(path)
        return module_factory(path, *args, **kwargs)

    dataset_module_factory._owa_guarded = True  # type: ignore[attr-defined]
    return dataset_module_factory


def _guarded(factory: type) -> type:
    class GuardedPackagedDatasetModuleFactory(factory):  # type: ignore[misc, valid-type]
        """Our names: recordings found by owa_builders.discovery (no scan of the current directory)."""

        _owa_guarded = True

        def __init__(self, name: str, data_dir: str | None = None, data_files: Any = None,
                     download_config: Any = None, download_mode: Any = None) -> None:  # fmt: skip
            if name not in BUILDERS:
                super().__init__(name, data_dir, data_files, download_config, download_mode)
                return
            # `datasets`' __init__ without its increase_load_count(name) (tests/test_registry.py
            # checks that the attributes are the ones it sets)
            self.name, self.data_dir, self.data_files = name, data_dir, data_files
            self.download_config, self.download_mode = download_config, download_mode

        def get_module(self) -> Any:
            if self.name not in BUILDERS:
                return super().get_module()
            from datasets.data_files import DataFilesDict, DataFilesList, _get_origin_metadata
            from datasets.load import DatasetModule
            from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

            from .discovery import find_recordings

            recordings = find_recordings(self.data_dir, self.data_files)
            data_files = DataFilesDict(
                {
                    split: DataFilesList(
                        paths, _get_origin_metadata(paths, download_config=self.download_config)
                    )
                    for split, paths in recordings.paths().items()
                }
            )
            module_path, code = _PACKAGED_DATASETS_MODULES[self.name]
            kwargs = {"data_files": data_files, "dataset_name": self.name, "data_dir": recordings.root}
            return DatasetModule(module_path, code, kwargs)

    GuardedPackagedDatasetModuleFactory.__name__ = factory.__name__
    GuardedPackagedDatasetModuleFactory.__qualname__ = factory.__qualname__
    return GuardedPackagedDatasetModuleFactory
