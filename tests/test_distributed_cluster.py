"""Ray is optional: nothing imports it until a Ray build or an ingestion with workers runs, and a
missing Ray is a clear error of ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from owa_builders.distributed.cluster import RayMissingError, connected, require_ray
from owa_event.errors import OwaError


def test_a_missing_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(RayMissingError, match=r"pip install 'owa-builders\[ray\]'") as err:
        require_ray()
    assert isinstance(err.value, OwaError)
    with pytest.raises(RayMissingError), connected():
        pass


def test_the_command_line_and_the_packages_do_not_import_ray() -> None:
    code = (
        "import sys; import owa_builders.cli as c; c.parser(); import owa_builders.distributed, owa_builders.ingest; "
        "from owa_builders.distributed import ray_build; from owa_builders.ingest import run; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(root)})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
