"""Make ``load_dataset("owa_builders/<stage>", ...)`` work: the only module touching `datasets` internals.

`datasets` 5.x has no public plugin API for builders, so on ``import owa_builders`` we:

1. add each stage to ``datasets.packaged_modules._PACKAGED_DATASETS_MODULES`` (name -> (module
   path, code hash)); `datasets.load` looks names up in that very dict object;
2. wrap ``datasets.load.PackagedDatasetModuleFactory`` so that our names called with neither
   ``data_dir`` nor ``data_files`` fail with a clear error instead of silently scanning the
   current directory (the factory's default for packaged modules).

The code hash covers every source file of the project's packages, so the cache fingerprint
changes whenever the package's code changes. ``tests/test_registry.py`` guards all of this: a
`datasets` upgrade that moves these internals fails loudly there and here (:func:`register`
raises :class:`RegistrationError`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

#: Registered name -> module holding its builder.
BUILDERS: dict[str, str] = {
    "owa_builders/event": "owa_builders.event",
    "owa_builders/fsl": "owa_builders.fsl",
    "owa_builders/binned": "owa_builders.binned",
}
_PROJECT_PACKAGES = ("owa_builders", "owa_event", "owa_binned", "owa_fsl")


class RegistrationError(RuntimeError):
    """The installed `datasets` no longer has the internals this module relies on."""


def source_hash(package_dirs: list[Path]) -> str:
    """SHA-256 over every ``.py`` file under ``package_dirs`` (names and contents, stable order)."""
    digest = hashlib.sha256()
    for root in package_dirs:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """:func:`source_hash` of the project's installed packages (computed once per process)."""
    dirs = []
    for package in _PROJECT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            dirs.append(Path(next(iter(spec.submodule_search_locations))))
    return source_hash(dirs)


def register() -> None:
    """Register every stage with `datasets` (idempotent)."""
    try:
        import datasets.load as load
        from datasets import packaged_modules
    except ImportError as exc:  # pragma: no cover - datasets is a hard dependency
        raise RegistrationError(f"cannot import datasets internals: {exc}") from exc
    table = getattr(packaged_modules, "_PACKAGED_DATASETS_MODULES", None)
    factory = getattr(load, "PackagedDatasetModuleFactory", None)
    if (
        not isinstance(table, dict)
        or factory is None
        or getattr(load, "_PACKAGED_DATASETS_MODULES", None) is not table
    ):
        raise RegistrationError(
            "datasets internals changed: _PACKAGED_DATASETS_MODULES / PackagedDatasetModuleFactory "
            "not found where owa_builders.registry expects them; pin datasets<6 or update the registry"
        )
    for name, module in BUILDERS.items():
        table[name] = (module, code_hash())
    if not getattr(factory, "_owa_guarded", False):
        load.PackagedDatasetModuleFactory = _guarded(factory)


def _guarded(factory: type) -> type:
    class GuardedPackagedDatasetModuleFactory(factory):  # type: ignore[misc, valid-type]
        """Refuse to scan the current directory for our builders when no data was named."""

        _owa_guarded = True

        def get_module(self) -> Any:
            if self.name in BUILDERS and self.data_dir is None and self.data_files is None:
                raise ValueError(
                    f"load_dataset({self.name!r}) needs data_dir= (a folder of .mcap recordings, "
                    f"with optional train/ test/ ... subfolders) or data_files=; it will not scan "
                    f"the current directory"
                )
            return super().get_module()

    GuardedPackagedDatasetModuleFactory.__name__ = factory.__name__
    GuardedPackagedDatasetModuleFactory.__qualname__ = factory.__qualname__
    return GuardedPackagedDatasetModuleFactory
