"""Shared fixtures: recordings are generated with the package's own example generator
(real mcap-owa-support writer, real PyAV video); nothing here talks to the Hub."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path

import pytest

from owa_builders.tools.example import generate_corpus

SHARED_RECORDING = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "owamcap-0.5.1" / "0.5.1.mcap"
)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 recordings of 6 s (current, 0.5.0, 0.4.2, 0.3.2 layouts) in train/ and test/, with videos.

    Session-scoped and read-only: tests that modify recordings must copy them first.
    """
    root = tmp_path_factory.mktemp("corpus")
    generate_corpus(root, episodes=4, duration_s=6.0, splits=("train", "test"))
    return root


@pytest.fixture(scope="session")
def current_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 current-format recordings of 4 s directly in the root (one split), with videos."""
    root = tmp_path_factory.mktemp("current")
    generate_corpus(root, episodes=3, duration_s=4.0, splits=(".",), legacy=False, seed=10)
    return root


@pytest.fixture()
def cache_dir(tmp_path: Path) -> str:
    """A fresh `datasets` cache per test."""
    path = tmp_path / "hf-cache"
    path.mkdir()
    return str(path)


@pytest.fixture(scope="session")
def shared_recording() -> Path:
    """The real 0.5.1 recording in ../shared (skipped when absent)."""
    if not SHARED_RECORDING.exists():
        pytest.skip("../shared/data/owamcap-0.5.1 not present")
    return SHARED_RECORDING
