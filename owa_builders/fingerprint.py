"""The code part of the cache fingerprint: only the modules that shape the rows.

A prepared dataset (the `datasets` cache) and a Ray build's shards are reused while their
fingerprint is unchanged. Besides the inputs (each file's size and modification time, or a
remote file's identity), the stage's config fields and its extra inputs
(:meth:`owa_event.pipeline.Stage.fingerprint`, e.g. a local tokenizer's contents), the fingerprint
covers the code that decides the rows, and nothing else:

- the **stage logic**: every module of the stage packages (``owa_event``, ``owa_binned``,
  ``owa_fsl``) that a stage's home module (:data:`owa_builders.stages.STAGES`) imports at module
  level (the stage and its config), and everything those import in turn (module-level and
  function-level imports alike, parent packages' ``__init__`` included), found by parsing the
  source, never by importing it (the walk is cached on disk under a hash of the bytes of every file it
  reads: :func:`cached_row_modules`);
- the **row writer**: :data:`ROW_WRITERS` (the generic builder that hands the stage's batches to
  `datasets`, and the discovery that decides which recordings make a split and in what order),
  with what they import from the stage packages.

Editing or adding anything else -- the CLI, publishing, previews, training, ingestion, the Ray
driver, ``devtools/``, or a stage-package module no stage imports (``owa_fsl/decode.py``) --
leaves every cache valid.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .stages import STAGES

#: The packages whose modules can shape rows (the stages' logic).
STAGE_PACKAGES = ("owa_event", "owa_binned", "owa_fsl")
#: The modules of owa_builders that write the rows (and decide which recordings, in what order).
ROW_WRITERS = ("owa_builders.builder", "owa_builders.discovery")
#: Every package the fingerprint may read.
PROJECT_PACKAGES = ("owa_builders", *STAGE_PACKAGES)


def module_file(module: str, package_dirs: Mapping[str, Path]) -> Path | None:
    """The source file of ``module`` (``a.b.c`` -> ``<a>/b/c.py`` or ``<a>/b/c/__init__.py``), None when
    it is not a module of ``package_dirs``."""
    top, *rest = module.split(".")
    root = package_dirs.get(top)
    if root is None:
        return None
    base = root.joinpath(*rest)
    for candidate in (base.with_suffix(".py") if rest else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def imported_modules(module: str, path: Path, *, top_level: bool = False) -> set[str]:
    """Every module ``path`` (the source of ``module``) imports, anywhere in it (only at module level
    with ``top_level``); absolute names, and for ``from X import y`` both ``X`` and ``X.y`` (one of
    which may not be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in tree.body if top_level else _statements(tree.body):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return out


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in ``body``, nested ones (in functions, classes, ``if``, ``try``, ...) included;
    imports are statements, so expressions need not be visited (cheaper than ``ast.walk``)."""
    for node in body:
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, name, None)
            if isinstance(inner, list):
                yield from _statements(inner)


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def row_modules(package_dirs: Mapping[str, Path]) -> list[str]:
    """The modules that shape rows (see the module docstring), sorted."""
    homes = [*STAGES.values(), *ROW_WRITERS]
    found: set[str] = set(ROW_WRITERS)
    todo: list[str] = []
    for home in homes:
        path = module_file(home, package_dirs)
        if path is None:
            continue
        # what the home module's code needs at import (its hooks' lazy imports serve consumers, not rows)
        todo += [m for m in imported_modules(home, path, top_level=True) if m.split(".")[0] in STAGE_PACKAGES]
    while todo:
        for module in _with_parents(todo.pop()):
            if module in found:
                continue
            path = module_file(module, package_dirs)
            if path is None:
                continue
            found.add(module)
            todo += [m for m in imported_modules(module, path) if m.split(".")[0] in STAGE_PACKAGES]
    return sorted(m for m in found if module_file(m, package_dirs) is not None)


def files_hash(files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 over ``(name, file)`` pairs: names and contents, in the given order."""
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


#: Bump when :func:`row_modules` changes how it walks: cached walks of the old rule are then unused.
_WALK_VERSION = "1"


def _cache_dir() -> Path:
    """Where walks are cached (``$XDG_CACHE_HOME/owa-builders/row-modules``, ``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "owa-builders" / "row-modules"


def _walk_key(package_dirs: Mapping[str, Path]) -> str:
    """SHA-256 over everything :func:`row_modules` reads: the stage homes and row writers, and every
    ``.py`` file of the stage packages (names and bytes), plus the walk's version."""
    digest = hashlib.sha256(f"{_WALK_VERSION}\0{sorted(STAGES.items())}\0{ROW_WRITERS}\0".encode())
    files: list[tuple[str, Path]] = []
    for module in sorted({*STAGES.values(), *ROW_WRITERS}):
        path = module_file(module, package_dirs)
        if path is not None:
            files.append((module, path))
    for package in STAGE_PACKAGES:
        root = package_dirs.get(package)
        if root is not None:
            files += [(p.relative_to(root.parent).as_posix(), p) for p in sorted(root.rglob("*.py"))]
    digest.update(files_hash(files).encode())
    return digest.hexdigest()


def cached_row_modules(package_dirs: Mapping[str, Path]) -> list[str]:
    """:func:`row_modules`, remembered on disk under a key over every file the walk reads
    (:func:`_walk_key`): parsing ~35 modules costs a noticeable part of a build's start-up, hashing
    their bytes does not. A cache entry that is unreadable or names a module that is not there is
    ignored (walked again); a cache that cannot be written is no error."""
    path = _cache_dir() / f"{_walk_key(package_dirs)}.txt"
    try:
        modules = path.read_text(encoding="utf-8").split()
        if modules and all(module_file(m, package_dirs) is not None for m in modules):
            return modules
    except OSError:
        pass
    modules = row_modules(package_dirs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as f:
            f.write("\n".join(modules) + "\n")
        os.replace(f.name, path)
    except OSError:
        pass
    return modules


def rows_code_hash(package_dirs: Mapping[str, Path]) -> str:
    """The hash of the row-shaping modules (:func:`row_modules`, walked once per change of the sources:
    :func:`cached_row_modules`) under ``package_dirs`` (package -> folder)."""
    files = []
    for module in cached_row_modules(package_dirs):
        path = module_file(module, package_dirs)
        assert path is not None
        files.append((module, path))
    return files_hash(files)


def installed_package_dirs() -> dict[str, Path]:
    """Package name -> folder of the project's installed packages."""
    dirs = {}
    for package in PROJECT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            dirs[package] = Path(next(iter(spec.submodule_search_locations)))
    return dirs


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """:func:`rows_code_hash` of the installed packages (computed once per process)."""
    return rows_code_hash(installed_package_dirs())


def source_hash(package_dirs: list[Path]) -> str:
    """SHA-256 over every ``.py`` file under ``package_dirs`` (names and contents, stable order)."""
    files = []
    for root in package_dirs:
        files += [(p.relative_to(root.parent).as_posix(), p) for p in sorted(root.rglob("*.py"))]
    return files_hash(files)
