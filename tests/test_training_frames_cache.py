"""owa_builders.training.frames.cache: the bounded LRU of open videos, fork safety, tune_allocator."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from frames_fixtures import MS, write_test_videos
except ImportError:  # pragma: no cover
    from tests.frames_fixtures import MS, write_test_videos

from owa_builders.demo.recordings import frame_index_of
from owa_builders.training.frames import FrameLoader, VideoCache


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_videos(tmp_path_factory.mktemp("frames"))


def test_lru_bound_and_evictions(videos: Path) -> None:
    loader = FrameLoader(videos, output="numpy", max_open_videos=1)
    for rnd in range(3):
        for k, name in enumerate("abc"):
            i = 5 + rnd
            assert frame_index_of(loader.load_one(f"{name}.mkv", (i * 50 + k) * MS)) == i
            assert len(loader.cache) == 1 and loader.cache.open_keys() == [f"{name}.mkv"]
    assert loader.stats.evictions == 8 and loader.stats.cache_misses == 9
    assert loader.stats.indexes_built == 3  # indexes outlive their containers
    # one batch over 3 videos with one slot: still right, still bounded
    got = loader.load([(f"{n}.mkv", (7 * 50 + "abc".index(n)) * MS) for n in "cab"])
    assert [frame_index_of(g) for g in got] == [7, 7, 7] and len(loader.cache) == 1
    loader.close()
    assert len(loader.cache) == 0


def test_video_cache_closes_evicted() -> None:
    closed = []

    class Fake:
        def __init__(self, key):
            self.key, self.index = key, object()

        def close(self):
            closed.append(self.key)

    cache = VideoCache(2)
    for key in "abc":
        cache.put(key, Fake(key))  # type: ignore[arg-type]
    assert closed == ["a"] and cache.open_keys() == ["b", "c"] and cache.evictions == 1
    cache.get("b")
    cache.put("d", Fake("d"))  # type: ignore[arg-type]
    assert closed == ["a", "c"] and cache.open_keys() == ["b", "d"]
    with pytest.raises(ValueError):
        VideoCache(0)
    small = VideoCache(1, max_indexes=3)
    for k in range(10):
        small.put_index(f"v{k}", object())  # type: ignore[arg-type]
    assert [k for k in ("v6", "v7", "v8", "v9") if small.index(k) is not None] == ["v7", "v8", "v9"]


def test_tune_allocator_in_a_subprocess() -> None:
    code = (
        "import pickle, sys\n"
        "from owa_builders.training.frames import FrameLoader, tune_allocator\n"
        "ok = tune_allocator()\n"
        "import platform\n"
        "assert ok == (platform.libc_ver()[0] == 'glibc'), ok\n"
        "loader = pickle.loads(pickle.dumps(FrameLoader('.', tune_allocator=True)))\n"
        "assert loader.tune_allocator is True\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _child_load(loader: FrameLoader, queue) -> None:  # pragma: no cover - runs in a child process
    got = loader.load([("a.mkv", i * 50 * MS) for i in range(20, 30)] + [("b.mkv", (3 * 50 + 1) * MS)])
    queue.put(([frame_index_of(g) for g in got], len(loader.cache)))


@pytest.mark.skipif(sys.platform == "win32" or "fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_forked_child_gets_its_own_containers(videos: Path) -> None:
    loader = FrameLoader(videos, output="numpy")
    assert [frame_index_of(g) for g in loader.load([("a.mkv", i * 50 * MS) for i in range(5)])] == list(
        range(5)
    )
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_load, args=(loader, queue))
    proc.start()
    indices, open_in_child = queue.get(timeout=60)
    proc.join(60)
    assert indices == list(range(20, 30)) + [3] and open_in_child == 2
    # the parent closed its videos before forking (a threaded decoder cannot cross a fork) and reopens them
    assert [frame_index_of(g) for g in loader.load([("a.mkv", i * 50 * MS) for i in range(5, 10)])] == list(
        range(5, 10)
    )
    assert loader.stats.seeks == 2 and loader.stats.indexes_built == 1


def test_cache_in_forked_child_forgets_parent_videos_without_closing() -> None:
    closed = []

    class Fake:
        index = object()

        def close(self):
            closed.append(self)

    cache = VideoCache(2)
    cache.put("a", Fake())  # type: ignore[arg-type]
    cache._pid = -1  # as seen from a child forked while the parent was loading
    assert cache.get("a") is None and len(cache) == 0 and closed == []
