"""Shared fixtures: recordings are generated with the package's own example generator
(real mcap-owa-support writer, real PyAV video); nothing here talks to the Hub."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from owa_builders.demo.recordings import generate_corpus

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


# ------------------------------------------------------------------------------------------
# Local Hugging Face Hub stand-in (tests/hubserver.py): no network, 127.0.0.1 only
# ------------------------------------------------------------------------------------------
try:
    from hubserver import HubServer
except ImportError:  # tests/ imported as a package
    from tests.hubserver import HubServer


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """A Hub-compatible server on 127.0.0.1 for the whole session (one per xdist worker).

    Shared by tests: give each test its own repo names. Use it through `hub_env` in this process.
    """
    server = HubServer(tmp_path_factory.mktemp("hub")).start()
    yield server
    server.stop()


@pytest.fixture()
def hub_env(hub: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """Point this process's huggingface_hub / datasets at `hub` for one test, then restore everything.

    Both libraries copy some env vars into module constants at import time (endpoint, offline mode,
    Xet, telemetry, download counts, the resolve URL template), so the env vars alone are not enough:
    the constants, the module-level `HfApi` / `HfFileSystem` instances (whose endpoint was fixed at
    import) and the cached `HfFileSystem` instances (whose listings outlive a test) are handled too.
    Downloads without an explicit cache_dir go to a per-test HF_HOME. Clears `hub`'s request log.
    """
    import datasets.config
    from huggingface_hub import HfFileSystem, constants, hf_api, hf_file_system

    env = {**hub.env(), "HF_HOME": str(tmp_path / "hf-home")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    url = hub.url
    for name, value in {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_CACHE": str(tmp_path / "hf-home" / "hub"),
    }.items():
        monkeypatch.setattr(constants, name, value)
    for name, value in {
        "HF_ENDPOINT": url,
        "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
        "HF_UPDATE_DOWNLOAD_COUNTS": False,
        "USE_PARQUET_EXPORT": False,
    }.items():
        monkeypatch.setattr(datasets.config, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", url)
    monkeypatch.setattr(hf_file_system.hffs, "endpoint", url)
    monkeypatch.setattr(hf_file_system.hffs._api, "endpoint", url)
    HfFileSystem.clear_instance_cache()
    hub.clear_log()
    yield hub
    HfFileSystem.clear_instance_cache()
    hf_file_system.hffs.dircache.clear()


# ------------------------------------------------------------------------------------------
# Built folders of every stage (publishing and preview tests)
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def built_folders(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`owa-builders build` output folders of `corpus`: {"event", "binned", "fsl"} -> folder
    (FSL: config fsl-smolvlm, the local example tokenizer, 1024-token sequences). Read-only."""
    from owa_builders.build import build
    from owa_builders.demo.tokenizer import write_example_tokenizer

    root = tmp_path_factory.mktemp("built")
    tokenizer = write_example_tokenizer(root / "tokenizer")
    options = {"fsl": {"tokenizer_name": str(tokenizer), "max_sequence_length": 1024}}
    configs = {"fsl": "fsl-smolvlm"}
    for stage in ("event", "binned", "fsl"):
        build(stage, str(corpus), root / stage, config=configs.get(stage), options=options.get(stage),
              cache_dir=str(root / "cache"))  # fmt: skip
    return {stage: root / stage for stage in ("event", "binned", "fsl")}


# ------------------------------------------------------------------------------------------
# Ray (the distributed build and the ingestion): one local Ray per test session
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """A real local Ray (2 CPUs, no dashboard) for the whole session; skipped when Ray is not installed.

    One per xdist worker that runs a test asking for it (``--dist loadgroup`` cannot keep them on one
    worker: xdist 3.8 does not group under pytest 9). Tests that do not ask for it never start Ray.
    """
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture()
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection of this process to a host other than 127.0.0.1 fails the test (Hub tests)."""
    import socket

    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"network access to {address} during a hub test")
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture()
def repo_id(request: pytest.FixtureRequest) -> str:
    """A Hub repo name unique to the test (the session's `hub` server is shared)."""
    import re

    return "org/" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:90]


# ------------------------------------------------------------------------------------------
# An S3 API on 127.0.0.1 (moto's standalone server), reached through the real client (s3fs)
# ------------------------------------------------------------------------------------------
#: Credentials of the S3 stand-in: tests check that they never appear in a written file or log line.
S3_KEY = "AKIAOWATESTKEY4711"
S3_SECRET = "owa-test-secret-never-written-0815"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """moto's S3 server on a free port of 127.0.0.1 for the session; yields fsspec ``storage_options``
    (``key``, ``secret``, ``client_kwargs.endpoint_url``). Skipped when moto[server] / s3fs are missing."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    yield {
        "key": S3_KEY,
        "secret": S3_SECRET,
        "client_kwargs": {"endpoint_url": url, "region_name": "us-east-1"},
    }
    server.stop()


@pytest.fixture()
def s3_bucket(s3_server: dict[str, Any], request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """A new empty bucket for the test: ``(s3://<bucket>, storage_options)``."""
    import re

    import s3fs

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") or "bucket"
    fs = s3fs.S3FileSystem(**s3_server)
    if fs.exists(name):
        fs.rm(name, recursive=True)
    fs.call_s3("create_bucket", Bucket=name)  # us-east-1: no location constraint
    fs.invalidate_cache()
    return f"s3://{name}", s3_server
