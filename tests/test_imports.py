"""No import cycle between the modules of the four packages (checked in CI, as every test).

Every module of ``owa_event``, ``owa_binned``, ``owa_fsl`` and ``owa_builders`` is parsed with
``ast`` (never imported); every import in it, at module level or inside a function, is an edge to
the project modules it names (``from X import y`` names ``X`` and, when it is a module, ``X.y``: what
importing it runs), read by the same function the code fingerprint uses
(:func:`owa_builders.fingerprint.imported_modules`).
A cycle is reported as the chain of modules that closes it.
"""

from __future__ import annotations

from pathlib import Path

import owa_binned
import owa_builders
import owa_event
import owa_fsl
from owa_builders.fingerprint import imported_modules

PACKAGES = {m.__name__: Path(m.__file__).parent for m in (owa_event, owa_binned, owa_fsl, owa_builders)}


def _modules() -> dict[str, Path]:
    out = {}
    for name, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports (the fingerprint's own import reader, filtered)."""
    return {n for n in imported_modules(module, path) if n in modules and n != module}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_module_and_function_level_imports() -> None:
    graph = import_graph()
    assert "owa_event.pipeline" in graph["owa_event.stage"]  # module level, relative
    assert "owa_builders.survey" in graph["owa_builders.cli"]  # inside parser()
    assert "owa_builders.distributed.command" in graph["owa_builders.cli"]  # inside a function
    assert "owa_fsl.decode" in graph["owa_builders.fsl"]  # inside a method


def test_find_cycle_names_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
