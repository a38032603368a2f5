"""The Ray build into ``hf://datasets/<repo>`` through the real client (huggingface_hub's HfFileSystem)
against the local Hub-compatible server (tests/hubserver.py), on a real local Ray (2 CPUs): the
workers reach the server through the output's storage options (``endpoint``, ``token``); the session's
workers inherit ``HF_HUB_OFFLINE=1`` (conftest: no test reaches the real Hub), so this build's actors
get a runtime environment that lifts it and points ``HF_ENDPOINT`` at the local server (nothing can
reach the real Hub). The build loads back row for row equal to a local build, with one record and
never a temporary file in the repo."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from owa_builders.build import build
from owa_builders.distributed import ShardFailedError, build_on_ray
from owa_builders.output import RECORD_NAME, load_build, read_record

try:
    from hubserver import HubServer
except ImportError:  # tests/ imported as a package
    from tests.hubserver import HubServer

TOKEN = "hf_owa_test_token_never_written_4711"


def test_a_ray_build_into_the_hub_equals_the_local_build(
    ray_cluster: Any, hub_env: HubServer, repo_id: str, corpus: Path, tmp_path: Path
) -> None:
    HfApi().create_repo(repo_id, repo_type="dataset")
    url = f"hf://datasets/{repo_id}/builds/binned"
    options = {"endpoint": hub_env.url, "token": TOKEN}
    stream = io.StringIO()
    env = {k: v for k, v in hub_env.env().items() if k != "HF_TOKEN"}
    result = build_on_ray("binned", corpus, url, options={"fps": 4}, output_storage_options=options,
                          progress=stream, runtime_env={"env_vars": env})  # fmt: skip
    assert "4 converted, 0 already done" in result.summary()
    local = build(
        "binned", str(corpus), tmp_path / "local", options={"fps": 4}, cache_dir=str(tmp_path / "c")
    )
    remote = load_build(url, storage_options=options)
    assert {s: remote[s].to_list() for s in remote} == {s: local.dataset[s].to_list() for s in local.dataset}
    assert all(remote[s].num_rows > 0 for s in remote)
    assert read_record(url, options).to_dict() | {"engine": "local"} == read_record(
        tmp_path / "local"
    ).to_dict() | {"data_root": str(corpus), "engine": "local"}  # one record, whichever driver
    files = hub_env.files(repo_id)
    names = [n.removeprefix("builds/binned/") for n in files if n.startswith("builds/binned/")]
    assert RECORD_NAME in names and len([n for n in names if n.endswith(".parquet")]) == 4
    assert not [n for n in names if n.endswith(".tmp") or "/." in n or n.startswith(".")]
    assert not [n for n, data in files.items() if TOKEN.encode() in data]
    assert TOKEN not in stream.getvalue() and TOKEN not in result.summary()


def test_an_hf_output_without_its_repo_fails_naming_it(
    ray_cluster: Any, hub_env: HubServer, corpus: Path
) -> None:
    """An hf:// output whose repo does not exist: every recording fails naming the repo; none is created."""
    with pytest.raises(ShardFailedError, match=r"no-such-repo.*repository not found.*4 failed"):
        build_on_ray("event", corpus, "hf://datasets/org/no-such-repo/x",
                     output_storage_options={"endpoint": hub_env.url, "token": TOKEN}, progress=False,
                     runtime_env={"env_vars": hub_env.env()})  # fmt: skip
    assert not hub_env.repo_exists("org/no-such-repo")
