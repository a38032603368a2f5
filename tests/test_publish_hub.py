"""Publishing to the Hub (the local stand-in, tests/hubserver.py) and loading as a consumer would: a fresh
process with nothing but `datasets` loads every pushed config, normal and streaming, with the rows of the
local build; frames decode from the Hub copy; configs accumulate; bad folders and failed uploads leave
nothing a consumer would load half-published."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
from huggingface_hub import CommitOperationAdd, DatasetCard, HfApi

from owa_builders.build import BUILD_RECORD, BuildFolderError
from owa_builders.cli import main
from owa_builders.output import load_build
from owa_builders.publish import PublishError, push
from owa_builders.publish.source import IncompleteBuildError, open_built
from owa_builders.training.frames import FrameLoader

try:
    from hubserver import HubServer
except ImportError:  # tests/ imported as a package
    from tests.hubserver import HubServer


pytestmark = pytest.mark.usefixtures("loopback_only")  # fixtures in conftest.py


def assert_clean(server: HubServer) -> None:
    assert server.unhandled == [] and server.errors == []


def digest(rows: Any) -> str:
    """One hash over rows in order (bytes as base64), the same in this process and the consumer's."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, default=lambda b: base64.b64encode(b).decode()).encode())
    return h.hexdigest()


CONSUMER = r"""
import sys

class NoOwa:  # the consumer has only `datasets`: importing anything of owa-builders fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("owa_builders", "owa_event", "owa_binned", "owa_fsl"):
            raise ImportError(f"the consumer imported {name}")

sys.meta_path.insert(0, NoOwa())
import base64, hashlib, json
import datasets

datasets.config.USE_PARQUET_EXPORT = False

def digest(rows):
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, default=lambda b: base64.b64encode(b).decode()).encode())
    return h.hexdigest()

repo, cache, configs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
out = {}
for config in configs:
    loaded = datasets.load_dataset(repo, config, cache_dir=cache)
    streamed = datasets.load_dataset(repo, config, streaming=True)
    out[config] = {
        split: {"rows": ds.num_rows, "features": ds.features.to_dict(), "normal": digest(ds),
                "streaming": digest(streamed[split])}
        for split, ds in loaded.items()
    }
assert not [m for m in sys.modules if m.split(".")[0].startswith("owa_")]
print(json.dumps(out))
"""


def consume(server: HubServer, repo: str, configs: list[str], tmp_path: Path) -> dict[str, Any]:
    """Load ``configs`` of ``repo`` in a fresh process that cannot import owa-builders nor reach other hosts."""
    dead = "http://127.0.0.1:9"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({**server.env(), "HF_HOME": str(tmp_path / "consumer-home")})
    env.update({"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead})
    done = subprocess.run(
        [sys.executable, "-c", CONSUMER, repo, str(tmp_path / "consumer-cache"), ",".join(configs)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def local(folder: Path) -> dict[str, Any]:
    saved = load_build(str(folder))
    return {
        split: {
            "rows": ds.num_rows,
            "features": ds.features.to_dict(),
            "normal": digest(ds),
            "streaming": digest(ds),
        }
        for split, ds in saved.items()
    }


def test_pushed_configs_load_without_the_plugin(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path], corpus: Path, tmp_path: Path
) -> None:
    first = push(built_folders["event"], repo_id, num_shards=2)
    videos = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.mkv"))
    assert first.media_uploaded == videos and first.media_present == []
    assert first.shards == {
        s: [f"event/{s}-0000{i}-of-00002.parquet" for i in range(2)] for s in ("train", "test")
    }
    assert len(first.commits) == 1  # media, data and card in one commit (fewer than max_commit_files)
    second = push(built_folders["fsl"], repo_id)
    assert second.media_uploaded == [] and second.media_present == videos  # uploaded once
    assert second.commits == [second.commit]
    push(built_folders["binned"], repo_id, num_shards={"train": 3})
    fourth = push(
        built_folders["event"], repo_id, config_name="event-parquet"
    )  # as built: a shard per recording
    assert fourth.shards["train"] == [f"event-parquet/train-0000{i}-of-00002.parquet" for i in range(2)]

    files = hub_env.files(repo_id)
    assert [p for p in files if p.endswith(".mkv")] == videos
    assert all(files[v] == (corpus / v).read_bytes() for v in videos)
    assert sorted(p for p in files if p.startswith("binned/") and p.endswith(".parquet")) == [
        "binned/test-00000-of-00001.parquet", *(f"binned/train-0000{i}-of-00003.parquet" for i in range(3))
    ]  # fmt: skip
    tokenizer = built_folders["fsl"] / "tokenizer"
    assert {p: files[f"fsl-smolvlm/tokenizer/{p.name}"] for p in tokenizer.iterdir()} == {
        p: p.read_bytes() for p in tokenizer.iterdir()
    }
    record = json.loads(files["fsl-smolvlm/owa_build.json"])
    assert "data_root" not in record and record["media_root"] == f"hf://datasets/{repo_id}"
    assert files["event/plots/events_per_second.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert files["fsl-smolvlm/plots/sequence_fill.png"][:8] == b"\x89PNG\r\n\x1a\n"
    card = DatasetCard(files["README.md"].decode())
    assert [c["config_name"] for c in card.data.configs] == [
        "event",
        "fsl-smolvlm",
        "binned",
        "event-parquet",
    ]
    assert card.text.count("<!-- owa-builders config:") == 4

    loaded = consume(hub_env, repo_id, ["event", "fsl-smolvlm", "binned", "event-parquet"], tmp_path)
    assert loaded["event"] == local(built_folders["event"])
    assert loaded["fsl-smolvlm"] == local(built_folders["fsl"])
    assert loaded["binned"] == local(built_folders["binned"])
    assert loaded["event-parquet"] == local(built_folders["event"])

    # the card's own loading and training code runs as written, section by section
    for config in ("event", "fsl-smolvlm", "binned"):
        section = re.search(
            rf"<!-- owa-builders config: {config} -->(.*?)<!-- owa-builders end", card.text, re.S
        )
        assert section is not None
        blocks = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
        assert len(blocks) == 2
        namespace: dict[str, Any] = {}
        for i, block in enumerate(blocks):
            exec(compile(block, f"{config} card block {i}", "exec"), namespace)
        assert len(namespace["frames"]) >= 1 and namespace["frames"][0].mode == "RGB"
    assert_clean(hub_env)


def test_frames_decode_from_the_hub_copy(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path], corpus: Path
) -> None:
    push(built_folders["fsl"], repo_id)
    rows = datasets.load_dataset(repo_id, "fsl-smolvlm", split="test", streaming=True)
    row = next(iter(rows))
    assert row == load_build(str(built_folders["fsl"]))["test"][0]
    refs = row["images"]
    remote = FrameLoader(f"hf://datasets/{repo_id}", output="numpy").load(refs)
    here = FrameLoader(str(corpus), output="numpy").load(refs)
    assert len(remote) == len(refs) >= 2
    assert all(np.array_equal(a, b) for a, b in zip(remote, here))
    assert not np.array_equal(remote[0], remote[-1])  # different frames, not one frame repeated
    assert_clean(hub_env)


def test_pushing_again_replaces_the_config_and_keeps_the_others(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path]
) -> None:
    push(built_folders["fsl"], repo_id)
    push(built_folders["event"], repo_id, num_shards=3)
    kept = {p: b for p, b in hub_env.files(repo_id).items() if p.startswith("fsl-smolvlm/")}
    again = push(built_folders["event"], repo_id, num_shards=1)
    assert again.media_uploaded == [] and len(again.commits) == 1
    assert again.deleted == [
        f"event/{s}-0000{i}-of-00003.parquet" for s in ("test", "train") for i in range(3)
    ]
    files = hub_env.files(repo_id)
    assert sorted(p for p in files if p.startswith("event/") and p.endswith(".parquet")) == [
        "event/test-00000-of-00001.parquet", "event/train-00000-of-00001.parquet"
    ]  # fmt: skip
    assert {p: b for p, b in files.items() if p.startswith("fsl-smolvlm/")} == kept
    card = DatasetCard(files["README.md"].decode())
    assert [c["config_name"] for c in card.data.configs] == ["fsl-smolvlm", "event"]
    assert card.text.count("<!-- owa-builders config: event -->") == 1
    ds = datasets.load_dataset(repo_id, "event", split="train")
    assert digest(ds) == digest(load_build(str(built_folders["event"]))["train"])
    assert_clean(hub_env)


def test_empty_and_half_built_folders_are_refused(
    hub_env: HubServer,
    repo_id: str,
    built_folders: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    half = tmp_path / "half"
    shutil.copytree(built_folders["event"], half)
    next((half / "event").glob("train-*.parquet")).unlink()
    with pytest.raises(IncompleteBuildError, match="the build did not finish"):
        push(half, repo_id)
    record = json.loads((half / BUILD_RECORD).read_text())
    (half / BUILD_RECORD).write_text(json.dumps({**record, "splits": {}}))
    with pytest.raises(IncompleteBuildError, match="lists no splits: nothing was built"):
        push(half, repo_id)
    (half / BUILD_RECORD).unlink()
    with pytest.raises(BuildFolderError, match="no owa_build.json"):
        push(half, repo_id)
    assert not hub_env.repo_exists(repo_id)  # refused before anything was created
    assert main(["push", str(half), repo_id]) == 2
    assert re.search(r"^error: .*no owa_build.json", capsys.readouterr().err, re.M)
    assert_clean(hub_env)


def test_a_failed_push_leaves_the_previous_state(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path], corpus: Path, tmp_path: Path
) -> None:
    # a staged push (3 files per commit) whose third commit fails: main is untouched, the PR is closed
    HfApi().create_repo(repo_id, repo_type="dataset")
    empty = hub_env.head(repo_id)
    hub_env.fail_next("commit", status=500, repo_id=repo_id, after=2)
    with pytest.raises(PublishError, match=r"commit 3 of \d+ to PR #1 failed .* main still shows its previous "
                                           r"state .*PR #1, closed"):  # fmt: skip
        push(built_folders["event"], repo_id, max_commit_files=3)
    assert sorted(hub_env.files(repo_id)) == [".gitattributes"] and hub_env.head(repo_id) == empty
    assert hub_env.pull_requests(repo_id)[1]["status"] == "closed"
    with pytest.raises(Exception):  # noqa: B017 - a consumer finds no data at all
        datasets.load_dataset(repo_id, "event", split="train", cache_dir=str(tmp_path / "c1"))
    stored = hub_env.lfs_objects()
    videos = {hashlib.sha256(p.read_bytes()).hexdigest() for p in corpus.rglob("*.mkv")}
    assert videos <= stored  # the first commits' content (the videos go first) reached LFS storage
    hub_env.requests.clear()
    done = push(built_folders["event"], repo_id)
    assert len(done.media_uploaded) == 4 and len(done.commits) == 1 and done.staged_pr is None
    again = {
        r.path.split("/")[2] for r in hub_env.requests if r.method == "PUT" and r.path.startswith("/_lfs/")
    }
    assert again.isdisjoint(stored)  # stored content is not uploaded again

    # a second config whose upload fails: the repo (card, files) is exactly as before
    before, head = hub_env.files(repo_id), hub_env.head(repo_id)
    hub_env.fail_next("lfs-upload", status=403)
    with pytest.raises(PublishError, match="the commit .* failed .* main still shows its previous state"):
        push(built_folders["fsl"], repo_id, num_shards=5)  # shards no other test uploads
    hub_env.fail_next("commit", status=500, repo_id=repo_id)
    with pytest.raises(PublishError, match="the commit .* failed .* previous state"):
        push(built_folders["fsl"], repo_id, num_shards=5)
    hub_env.fail_next("commit", status=412, repo_id=repo_id)
    with pytest.raises(PublishError, match="the repo changed while publishing .* push again"):
        push(built_folders["fsl"], repo_id, num_shards=5)
    # interrupted midway with no chance to clean up (closing the PR fails too): main is still as before
    hub_env.fail_next("commit", status=403, repo_id=repo_id, after=1)
    hub_env.fail_next("discussion-status", status=403, repo_id=repo_id)
    with pytest.raises(PublishError, match=r"commit 2 of \d+ to PR #2 failed .*PR #2, left open"):
        push(built_folders["fsl"], repo_id, num_shards=5, max_commit_files=4)
    assert hub_env.pull_requests(repo_id)[2]["status"] == "open"
    assert hub_env.files(repo_id) == before and hub_env.head(repo_id) == head
    assert hub_env.pending_failures() == 0
    ds = datasets.load_dataset(repo_id, "event", split="test", cache_dir=str(tmp_path / "c2"))
    assert digest(ds) == digest(load_build(str(built_folders["event"]))["test"])
    assert_clean(hub_env)


def test_a_large_push_is_staged_in_a_pull_request_and_merged_at_once(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path], tmp_path: Path
) -> None:
    """A few hundred tiny shards with 40 files per commit: main goes from its previous state to the new
    one in one commit (the PR's merge); interrupted midway, main keeps its previous state."""
    first = push(built_folders["fsl"], repo_id)
    before, head = hub_env.files(repo_id), hub_env.head(repo_id)
    shards = {"train": 200, "test": 100}
    hub_env.fail_next("commit", status=500, repo_id=repo_id, after=4)  # the fifth of 8 commits
    with pytest.raises(PublishError, match=r"commit 5 of 8 to PR #1 failed .*main still shows its previous"):
        push(built_folders["event"], repo_id, num_shards=shards, max_commit_files=40)
    assert hub_env.files(repo_id) == before and hub_env.head(repo_id) == head
    assert hub_env.pull_requests(repo_id)[1]["status"] == "closed"

    done = push(built_folders["event"], repo_id, num_shards=shards, max_commit_files=40)
    assert done.staged_pr == 2 and len(done.commits) == 8 + 1  # 8 PR commits, then the merge
    assert hub_env.pull_requests(repo_id)[2]["status"] == "merged"
    history = hub_env.history(repo_id)
    assert history[0].id == done.commit == hub_env.head(repo_id) and history[1].id == head  # one step
    files = hub_env.files(repo_id)
    assert len([p for p in files if p.startswith("event/") and p.endswith(".parquet")]) == 300
    assert {p: b for p, b in files.items() if p.startswith("fsl-smolvlm/")} == {
        p: b for p, b in before.items() if p.startswith("fsl-smolvlm/")
    }
    assert first.commit in {c.id for c in history}
    ds = datasets.load_dataset(repo_id, "event", split="train", cache_dir=str(tmp_path / "c"))
    assert digest(ds) == digest(load_build(built_folders["event"])["train"])
    assert_clean(hub_env)


def test_push_to_a_branch_and_as_a_pull_request(
    hub_env: HubServer,
    repo_id: str,
    built_folders: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    push(built_folders["event"], repo_id, media=False)
    main_files, main_head = hub_env.files(repo_id), hub_env.head(repo_id)
    dev = push(built_folders["binned"], repo_id, revision="dev", media=False)  # a new branch, from main
    assert dev.revision == "dev" and dev.commit == hub_env.head(repo_id, branch="dev")
    assert hub_env.files(repo_id) == main_files and hub_env.head(repo_id) == main_head
    on_dev = hub_env.files(repo_id, revision="dev")
    assert any(p.startswith("binned/train-") for p in on_dev) and any(
        p.startswith("event/train-") for p in on_dev
    )
    card = DatasetCard(on_dev["README.md"].decode())
    assert [c["config_name"] for c in card.data.configs] == ["event", "binned"]
    ds = datasets.load_dataset(
        repo_id, "binned", split="train", revision="dev", cache_dir=str(tmp_path / "c")
    )
    assert digest(ds) == digest(load_build(built_folders["binned"])["train"])

    # a pull request against dev, from the command line: dev is unchanged until it is merged
    dev_files = hub_env.files(repo_id, revision="dev")
    assert (
        main(["push", str(built_folders["fsl"]), repo_id, "--revision", "dev", "--create-pr", "--no-media"])
        == 0
    )
    out = capsys.readouterr().out
    assert f"opened a pull request against dev: {hub_env.url}/datasets/{repo_id}/discussions/1" in out
    assert hub_env.files(repo_id, revision="dev") == dev_files
    assert "fsl-smolvlm/owa_build.json" in hub_env.files(repo_id, revision="refs/pr/1")
    HfApi().merge_pull_request(repo_id, 1, repo_type="dataset")
    merged = hub_env.files(repo_id, revision="dev")
    assert "fsl-smolvlm/owa_build.json" in merged and hub_env.files(repo_id) == main_files
    assert [c["config_name"] for c in DatasetCard(merged["README.md"].decode()).data.configs] == [
        "event", "binned", "fsl-smolvlm"
    ]  # fmt: skip
    assert_clean(hub_env)


def test_media_and_folders_of_others_are_not_overwritten(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path]
) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    api.create_commit(
        repo_id,
        [
            CommitOperationAdd("train/episode_000.mkv", b"another video"),
            CommitOperationAdd("event/notes.txt", b"mine"),
        ],
        commit_message="someone else's files",
        repo_type="dataset",
    )
    with pytest.raises(
        PublishError, match=r"folder event/ holds files owa-builders did not write \(event/notes.txt\)"
    ):
        push(built_folders["event"], repo_id)
    with pytest.raises(PublishError, match=r"1 video\(s\) are already in the repo with different content"):
        push(built_folders["event"], repo_id, config_name="events")
    head = hub_env.head(repo_id)
    assert len(hub_env.history(repo_id)) == 2
    done = push(built_folders["event"], repo_id, config_name="events", replace_media=True)
    assert "train/episode_000.mkv" in done.media_uploaded and hub_env.head(repo_id) != head
    assert hub_env.files(repo_id)["event/notes.txt"] == b"mine"
    assert_clean(hub_env)


def test_push_and_no_media_from_the_command_line(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", str(built_folders["binned"]), repo_id, "--no-media", "--license", "cc-by-4.0",
                 "--num-shards", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"as config 'binned' of {repo_id}" in out and "shards train: 2, test: 2" in out
    files = hub_env.files(repo_id)
    assert not [p for p in files if p.endswith(".mkv")]
    card = DatasetCard(files["README.md"].decode())
    assert card.data.license == "cc-by-4.0" and "the screen videos are **not** in this repo" in card.text
    assert open_built(built_folders["binned"]).num_rows == sum(
        datasets.load_dataset(repo_id, "binned", split=s).num_rows for s in ("train", "test")
    )
    assert_clean(hub_env)


def readme_block(marker: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README block {marker!r} not found"
    return match.group(1)


def test_readme_publishing_blocks_run(
    hub_env: HubServer, built_folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for stage in ("event", "fsl"):
        shutil.copytree(built_folders[stage], tmp_path / "owa-demo" / stage)
    monkeypatch.chdir(tmp_path)
    published: dict[str, Any] = {}
    exec(compile(readme_block("publishing"), "README.md:publishing", "exec"), published)
    assert (tmp_path / "owa-demo" / "preview-fsl.html").is_file()
    assert published["result"].config_name == "fsl-smolvlm"
    files = hub_env.files("your-name/desktop-demo")
    assert len([p for p in files if p.startswith("event/train-")]) == 4
    consumer: dict[str, Any] = {}
    exec(compile(readme_block("consumer"), "README.md:consumer", "exec"), consumer)
    expected = load_build(str(built_folders["fsl"]))["train"]
    assert digest(consumer["ds"]) == digest(expected)
    assert consumer["first"] == load_build(str(built_folders["event"]))["train"][0]
    assert len(consumer["frames"]) == len(expected[0]["images"]) > 0
    assert_clean(hub_env)
