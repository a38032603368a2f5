"""Conversion on a Ray cluster (:mod:`.ray_build`): one task per recording, Parquet shards in the
publish layout (:mod:`.layout`), resumable; Ray itself (:mod:`.cluster`) and progress lines
(:mod:`.progress`). Ray is an optional dependency: ``pip install 'owa-builders[ray]'``.

``from owa_builders.distributed import build_on_ray, load_build`` (imported on first use, so the
command line does not pay for them).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RayBuildResult", "ShardFailedError", "build_on_ray", "load_build"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import ray_build

        return getattr(ray_build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
