"""The local Hub stand-in (tests/hubserver.py) driven by the real clients: huggingface_hub's HfApi,
hf_hub_download, snapshot_download and HfFileSystem, fsspec `hf://` URLs, `datasets` push_to_hub, and
`load_dataset` (normal and streaming) in a fresh process. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    HfFileSystem,
    get_session,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

try:
    from hubserver import HubServer, git_blob_oid
except ImportError:  # tests/ imported as a package
    from tests.hubserver import HubServer, git_blob_oid


pytestmark = pytest.mark.usefixtures("loopback_only")  # fixtures in conftest.py


def assert_clean(hub: HubServer) -> None:
    """The client asked nothing the server does not implement, and the server did not crash."""
    assert hub.unhandled == []
    assert hub.errors == []


def write_parquet(path: Path, n: int = 50) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"i": list(range(n)), "s": [f"row {i}" for i in range(n)]}), path)
    return path.read_bytes()


def upload_folder_fixture(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A folder with a regular README and an LFS parquet file in a sub-folder."""
    folder = tmp_path / "folder"
    folder.mkdir()
    readme = b"---\nlicense: mit\n---\n# A test dataset\n"
    (folder / "README.md").write_bytes(readme)
    parquet = write_parquet(folder / "data" / "train.parquet")
    return folder, {"README.md": readme, "data/train.parquet": parquet}


def test_create_repo_conflicts_unless_exist_ok(hub_env: HubServer, repo_id: str) -> None:
    api = HfApi()
    url = api.create_repo(repo_id, repo_type="dataset")
    assert url.repo_id == repo_id and url.repo_type == "dataset"
    assert url == f"{hub_env.url}/datasets/{repo_id}"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(repo_id, repo_type="dataset")
    assert err.value.response.status_code == 409
    assert err.value.response.json()["url"] == url
    assert api.create_repo(repo_id, repo_type="dataset", exist_ok=True) == url
    # a model repo with the same name is a different repo
    assert api.create_repo(repo_id).repo_type == "model"
    history = hub_env.history(repo_id)
    assert len(history) == 1 and history[0].parent is None
    assert list(hub_env.files(repo_id)) == [".gitattributes"]
    assert b"*.parquet filter=lfs" in hub_env.files(repo_id)[".gitattributes"]
    assert_clean(hub_env)


def test_upload_folder_one_commit_lfs_and_regular(hub_env: HubServer, repo_id: str, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    folder, expected = upload_folder_fixture(tmp_path)
    info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder, commit_message="add")

    history = hub_env.history(repo_id)
    assert history[0].id == info.oid == hub_env.head(repo_id)
    assert len(history) == 2 and history[0].title == "add"
    stored = hub_env.files(repo_id)
    assert {k: v for k, v in stored.items() if k != ".gitattributes"} == expected
    # the parquet went through the LFS batch API (one PUT, verified sha256), the README inline
    puts = [r for r in hub_env.requests if r.method == "PUT"]
    assert len(puts) == 1 and puts[0].status == 200
    parquet_sha = hashlib.sha256(expected["data/train.parquet"]).hexdigest()
    assert parquet_sha in hub_env.lfs_objects()
    assert hashlib.sha256(expected["README.md"]).hexdigest() not in hub_env.lfs_objects()

    assert api.list_repo_files(repo_id, repo_type="dataset") == [
        ".gitattributes",
        "README.md",
        "data/train.parquet",
    ]
    tree = {e.path: e for e in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, expand=True)}
    assert sorted(tree) == [".gitattributes", "README.md", "data", "data/train.parquet"]
    assert tree["data/train.parquet"].lfs.sha256 == parquet_sha
    assert tree["data/train.parquet"].size == len(expected["data/train.parquet"])
    assert tree["README.md"].lfs is None and tree["README.md"].blob_id == git_blob_oid(expected["README.md"])
    assert tree["data"].last_commit.oid == info.oid
    assert tree[".gitattributes"].last_commit.oid == history[1].id
    top = [e.path for e in api.list_repo_tree(repo_id, repo_type="dataset")]
    assert top == [".gitattributes", "README.md", "data"]

    paths = api.get_paths_info(repo_id, ["README.md", "data", "missing.txt"], repo_type="dataset")
    assert [(type(p).__name__, p.path) for p in paths] == [("RepoFile", "README.md"), ("RepoFolder", "data")]
    assert api.file_exists(repo_id, "data/train.parquet", repo_type="dataset")
    assert not api.file_exists(repo_id, "data/test.parquet", repo_type="dataset")

    cache = tmp_path / "cache"
    path = hf_hub_download(repo_id, "data/train.parquet", repo_type="dataset", cache_dir=cache)
    assert Path(path).read_bytes() == expected["data/train.parquet"]
    assert pq.read_table(path).num_rows == 50
    snapshot = Path(snapshot_download(repo_id, repo_type="dataset", cache_dir=cache))
    downloaded = {
        p.relative_to(snapshot).as_posix(): p.read_bytes() for p in snapshot.rglob("*") if p.is_file()
    }
    assert downloaded == stored
    assert_clean(hub_env)


def test_hffs_open_seek_and_ranged_reads(hub_env: HubServer, repo_id: str) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    blob = os.urandom(300_000)
    api.upload_file(path_or_fileobj=blob, path_in_repo="blobs/x.bin", repo_id=repo_id, repo_type="dataset")

    fs = HfFileSystem()
    assert fs.info(f"datasets/{repo_id}/blobs/x.bin")["size"] == len(blob)
    with fs.open(f"datasets/{repo_id}/blobs/x.bin", "rb", block_size=4096) as f:
        f.seek(123_456)
        assert f.read(1000) == blob[123_456:124_456]
        f.seek(-10, os.SEEK_END)
        assert f.read() == blob[-10:]
    ranged = [r for r in hub_env.requests if r.method == "GET" and "/resolve/" in r.path]
    assert ranged and all(r.status == 206 for r in ranged)

    url = f"{hub_env.url}/datasets/{repo_id}/resolve/main/blobs/x.bin"
    head = get_session().head(url)
    sha = hashlib.sha256(blob).hexdigest()
    assert head.status_code == 200 and head.headers["X-Repo-Commit"] == hub_env.head(repo_id)
    assert head.headers["ETag"] == head.headers["X-Linked-Etag"] == f'"{sha}"'
    assert head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(blob))
    suffix = get_session().get(url, headers={"Range": "bytes=-5"})
    assert suffix.status_code == 206 and suffix.content == blob[-5:]
    assert suffix.headers["Content-Range"] == f"bytes {len(blob) - 5}-{len(blob) - 1}/{len(blob)}"
    beyond = get_session().get(url, headers={"Range": f"bytes={len(blob)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(blob)}"
    assert_clean(hub_env)


def test_second_commit_keeps_files_and_old_revisions(
    hub_env: HubServer, repo_id: str, tmp_path: Path
) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    folder, expected = upload_folder_fixture(tmp_path)
    first = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder).oid
    second = api.create_commit(
        repo_id,
        [
            CommitOperationAdd("README.md", b"# rewritten\n"),
            CommitOperationAdd("notes/extra.txt", b"more\n"),
        ],
        commit_message="second",
        repo_type="dataset",
    ).oid
    assert second != first and re.fullmatch(r"[0-9a-f]{40}", second)
    files = hub_env.files(repo_id)
    assert files["data/train.parquet"] == expected["data/train.parquet"]
    assert files["README.md"] == b"# rewritten\n" and files["notes/extra.txt"] == b"more\n"
    assert hub_env.files(repo_id, revision=first)["README.md"] == expected["README.md"]
    old = hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=first, cache_dir=tmp_path / "c")
    assert Path(old).read_bytes() == expected["README.md"]
    assert api.dataset_info(repo_id, revision=first).sha == first
    assert [c.commit_id for c in api.list_repo_commits(repo_id, repo_type="dataset")][:2] == [second, first]
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(
            repo_id, "notes/extra.txt", repo_type="dataset", revision=first, cache_dir=tmp_path / "c"
        )

    api.create_commit(
        repo_id,
        [CommitOperationDelete("notes/"), CommitOperationDelete("README.md")],
        commit_message="delete",
        repo_type="dataset",
    )
    assert sorted(hub_env.files(repo_id)) == [".gitattributes", "data/train.parquet"]
    with pytest.raises(EntryNotFoundError):
        api.create_commit(
            repo_id, [CommitOperationDelete("README.md")], commit_message="x", repo_type="dataset"
        )
    assert_clean(hub_env)


def test_stale_parent_commit_gets_412(hub_env: HubServer, repo_id: str) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    base = hub_env.head(repo_id)
    api.upload_file(path_or_fileobj=b"a\n", path_in_repo="a.txt", repo_id=repo_id, repo_type="dataset")
    head = hub_env.head(repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo_id,
            [CommitOperationAdd("b.txt", b"b\n")],
            commit_message="late",
            repo_type="dataset",
            parent_commit=base,
        )
    assert err.value.response.status_code == 412
    assert hub_env.head(repo_id) == head and "b.txt" not in hub_env.files(repo_id)
    ok = api.create_commit(
        repo_id,
        [CommitOperationAdd("b.txt", b"b\n")],
        commit_message="ok",
        repo_type="dataset",
        parent_commit=head,
    )
    assert hub_env.head(repo_id) == ok.oid and hub_env.history(repo_id)[1].id == head
    assert_clean(hub_env)


def test_failed_uploads_leave_main_unchanged(hub_env: HubServer, repo_id: str, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"v1\n", path_in_repo="keep.txt", repo_id=repo_id, repo_type="dataset")
    head, before = hub_env.head(repo_id), hub_env.files(repo_id)
    folder, expected = upload_folder_fixture(tmp_path)

    hub_env.fail_next("commit", status=500)
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder)
    assert err.value.response.status_code == 500
    assert hub_env.pending_failures() == 0
    assert hub_env.head(repo_id) == head and hub_env.files(repo_id) == before

    other = write_parquet(tmp_path / "other.parquet", n=7)
    hub_env.fail_next("lfs-upload", status=403, repo_id=None)
    with pytest.raises(RuntimeError, match="other.parquet"):
        api.upload_file(
            path_or_fileobj=other, path_in_repo="other.parquet", repo_id=repo_id, repo_type="dataset"
        )
    assert hub_env.pending_failures() == 0
    assert hashlib.sha256(other).hexdigest() not in hub_env.lfs_objects()
    assert hub_env.head(repo_id) == head and hub_env.files(repo_id) == before

    # bytes that do not hash to the announced sha256 are refused and not stored
    fake = hashlib.sha256(b"announced").hexdigest()
    put = get_session().put(f"{hub_env.url}/_lfs/{fake}/5", content=b"other")
    assert put.status_code == 400 and fake not in hub_env.lfs_objects()
    # a commit naming an LFS object that was never uploaded is refused
    lines = [
        {"key": "header", "value": {"summary": "x"}},
        {"key": "lfsFile", "value": {"path": "a.bin", "algo": "sha256", "oid": fake, "size": 5}},
    ]
    response = get_session().post(
        f"{hub_env.url}/api/datasets/{repo_id}/commit/main",
        content="".join(json.dumps(line) + "\n" for line in lines).encode(),
        headers={"Authorization": "Bearer hf_fake", "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 422 and fake in response.json()["error"]
    assert hub_env.head(repo_id) == head

    # and the same upload succeeds once the server behaves
    api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder)
    assert hub_env.files(repo_id) == {**before, **expected}
    assert_clean(hub_env)


def test_client_errors_map_to_hub_exceptions(hub_env: HubServer, repo_id: str, tmp_path: Path) -> None:
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(repo_id)
    api.create_repo(repo_id, repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(repo_id, revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt", repo_type="dataset", cache_dir=tmp_path)
    assert not HfFileSystem().exists(f"datasets/{repo_id}/missing.txt")
    assert_clean(hub_env)


def test_unknown_endpoints_are_recorded(hub_env: HubServer) -> None:
    response = get_session().get(f"{hub_env.url}/api/datasets/org/x/parquet")
    assert response.status_code == 404 and "not implemented" in response.json()["error"]
    assert hub_env.unhandled == ["GET /api/datasets/org/x/parquet"]
    hub_env.clear_log()
    assert_clean(hub_env)


def test_tree_pagination_and_restart(
    hub_env: HubServer, repo_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    operations = [CommitOperationAdd(f"d{i % 3}/f{i:02d}.txt", f"{i}\n".encode()) for i in range(20)]
    api.create_commit(repo_id, operations, commit_message="many", repo_type="dataset")
    monkeypatch.setattr(hub_env, "tree_page_size", 4)
    files = api.list_repo_files(repo_id, repo_type="dataset")
    assert files == sorted([".gitattributes"] + [op.path_in_repo for op in operations])
    pages = [r.path for r in hub_env.requests if "/tree/" in r.path]
    assert len(pages) == 6 and sum("cursor=" in p for p in pages) == 5  # 24 entries, 4 per page
    # a new server on the same folder serves the same repos and history
    with HubServer(hub_env.storage) as again:
        assert again.files(repo_id) == hub_env.files(repo_id)
        assert [c.id for c in again.history(repo_id)] == [c.id for c in hub_env.history(repo_id)]
    assert_clean(hub_env)


def test_mkv_round_trip_through_fsspec(hub_env: HubServer, repo_id: str, tmp_path: Path) -> None:
    import av

    from owa_builders.demo.recordings import frame_index_of, write_video

    video = tmp_path / "x.mkv"
    write_video(video, pts_ms=list(range(0, 1500, 50)), width=64, height=48)
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=video, path_in_repo="x.mkv", repo_id=repo_id, repo_type="dataset")
    assert hashlib.sha256(video.read_bytes()).hexdigest() in hub_env.lfs_objects()

    with fsspec.open(f"hf://datasets/{repo_id}/x.mkv", "rb") as f:
        assert f.read() == video.read_bytes()
    with fsspec.open(f"hf://datasets/{repo_id}/x.mkv", "rb", block_size=2048) as f, av.open(f) as container:
        indices = [frame_index_of(frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    assert indices == list(range(30))
    assert_clean(hub_env)


LOAD_SCRIPT = """
import json, sys
import datasets
datasets.config.USE_PARQUET_EXPORT = False
repo, cache = sys.argv[1], sys.argv[2]
out = {}
for name in ("events", "meta"):
    normal = datasets.load_dataset(repo, name, split="train", cache_dir=cache)
    streamed = datasets.load_dataset(repo, name, split="train", streaming=True)
    out[name] = {"normal": normal.to_list(), "streaming": list(streamed)}
print(json.dumps(out))
"""


def test_push_to_hub_two_configs_then_load_in_fresh_process(
    hub_env: HubServer, repo_id: str, tmp_path: Path
) -> None:
    import datasets

    rows = {
        "events": {"t_ns": [3, 1, 2], "topic": ["keyboard", "mouse", "screen"]},
        "meta": {"name": ["a.mcap"], "duration_s": [6.5]},
    }
    for name, columns in rows.items():
        datasets.Dataset.from_dict(columns).push_to_hub(repo_id, config_name=name)
    files = hub_env.files(repo_id)
    assert sorted(files) == [
        ".gitattributes",
        "README.md",
        "events/train-00000-of-00001.parquet",
        "meta/train-00000-of-00001.parquet",
    ]
    readme = files["README.md"].decode()
    assert "config_name: events" in readme and "config_name: meta" in readme
    assert len(hub_env.history(repo_id)) == 3  # initial + one commit per push

    # any request to another host goes to a dead proxy (NO_PROXY exempts 127.0.0.1), so it cannot leave
    dead = "http://127.0.0.1:9"
    env = {**os.environ, **hub_env.env(), "HF_HOME": str(tmp_path / "child-home")}
    env.update({"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead})
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, repo_id, str(tmp_path / "child-cache")],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    for name, columns in rows.items():
        expected = [dict(zip(columns, values)) for values in zip(*columns.values())]
        assert loaded[name] == {"normal": expected, "streaming": expected}
    assert_clean(hub_env)


def test_branches_whoami_yaml_and_delete(hub_env: HubServer, repo_id: str) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    main = hub_env.head(repo_id)
    api.create_branch(repo_id, branch="dev", repo_type="dataset")
    api.create_branch(repo_id, branch="dev", repo_type="dataset", exist_ok=True)
    api.upload_file(
        path_or_fileobj=b"dev\n", path_in_repo="d.txt", repo_id=repo_id, repo_type="dataset", revision="dev"
    )
    assert hub_env.head(repo_id) == main and "d.txt" not in hub_env.files(repo_id)
    assert hub_env.files(repo_id, revision="dev")["d.txt"] == b"dev\n"
    refs = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo_id, repo_type="dataset").branches}
    assert refs == {"main": main, "dev": hub_env.head(repo_id, branch="dev")}

    assert api.whoami()["name"] == "hub-user"
    with pytest.raises(ValueError, match="Invalid metadata"):
        api._validate_yaml("---\nlicense: mit\n# never closed\n", repo_type="dataset")

    # JSON paths-info and a chunked (streamed) LFS upload, as other clients send them
    response = get_session().post(
        f"{hub_env.url}/api/datasets/{repo_id}/paths-info/dev",
        json={"paths": ["d.txt", "nope"], "expand": True},
    )
    assert [(e["path"], e["lastCommit"]["id"]) for e in response.json()] == [("d.txt", refs["dev"])]
    data = os.urandom(70_000)
    sha = hashlib.sha256(data).hexdigest()
    put = get_session().put(f"{hub_env.url}/_lfs/{sha}/{len(data)}", content=iter([data[:1000], data[1000:]]))
    assert put.status_code == 200 and put.request.headers.get("Transfer-Encoding") == "chunked"
    assert sha in hub_env.lfs_objects()

    api.delete_repo(repo_id, repo_type="dataset")
    assert not hub_env.repo_exists(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(repo_id)
    assert_clean(hub_env)


def test_concurrent_commits_are_serialized(hub_env: HubServer, repo_id: str) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    base = hub_env.head(repo_id)

    def commit(i: int, parent: str | None) -> str | int:
        try:
            return api.create_commit(
                repo_id,
                [CommitOperationAdd(f"f{i}.txt", f"{i}\n".encode())],
                commit_message=f"c{i}",
                repo_type="dataset",
                parent_commit=parent,
            ).oid
        except HfHubHTTPError as err:
            return err.response.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        racing = list(pool.map(lambda i: commit(i, base), range(6)))
    winners = [r for r in racing if isinstance(r, str)]
    assert len(winners) == 1 and sorted(r for r in racing if isinstance(r, int)) == [412] * 5
    assert hub_env.head(repo_id) == winners[0] and len(hub_env.history(repo_id)) == 2

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: commit(i, None), range(10, 16)))
    assert all(isinstance(r, str) for r in results)  # no parent given: every commit lands, none is lost
    files = hub_env.files(repo_id)
    assert all(files[f"f{i}.txt"] == f"{i}\n".encode() for i in range(10, 16))
    assert len(hub_env.history(repo_id)) == 8
    assert_clean(hub_env)


def test_pull_requests_commit_merge_conflict_and_close(hub_env: HubServer, repo_id: str) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    base = api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a1"), CommitOperationAdd("b.txt", b"b1")],
                             commit_message="base", repo_type="dataset").oid  # fmt: skip
    first = api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a2")], commit_message="pr", repo_type="dataset",
                              create_pr=True, parent_commit=base)  # fmt: skip
    assert first.pr_num == 1 and first.pr_revision == "refs/pr/1"
    assert first.pr_url == f"{hub_env.url}/datasets/{repo_id}/discussions/1"
    second = api.create_commit(repo_id, [CommitOperationAdd("c.txt", b"c"), CommitOperationDelete("b.txt")],
                               commit_message="more", repo_type="dataset", revision="refs/pr/1",
                               parent_commit=first.oid)  # fmt: skip
    with pytest.raises(HfHubHTTPError) as stale:  # commits to a PR name their parent too
        api.create_commit(repo_id, [CommitOperationAdd("d.txt", b"d")], commit_message="stale", repo_type="dataset",
                          revision="refs/pr/1", parent_commit=first.oid)  # fmt: skip
    assert stale.value.response.status_code == 412
    assert hub_env.files(repo_id, revision="refs/pr/1") == {
        ".gitattributes": hub_env.files(repo_id)[".gitattributes"], "a.txt": b"a2", "c.txt": b"c"
    }  # fmt: skip
    assert hub_env.files(repo_id)["a.txt"] == b"a1" and hub_env.head(repo_id) == base  # main untouched
    refs = api.list_repo_refs(repo_id, repo_type="dataset", include_pull_requests=True)
    assert [b.name for b in refs.branches] == ["main"] and [p.ref for p in refs.pull_requests] == [
        "refs/pr/1"
    ]
    # main changes another path meanwhile: the PR still merges, on top of it
    other = api.create_commit(
        repo_id, [CommitOperationAdd("e.txt", b"e")], commit_message="meanwhile", repo_type="dataset"
    ).oid
    api.merge_pull_request(repo_id, 1, repo_type="dataset")
    merged = hub_env.history(repo_id)[0]
    assert merged.parent == other and hub_env.pull_requests(repo_id)[1]["merge"] == merged.id
    assert {p: b for p, b in hub_env.files(repo_id).items() if p != ".gitattributes"} == {
        "a.txt": b"a2", "c.txt": b"c", "e.txt": b"e"
    }  # fmt: skip
    details = api.get_discussion_details(repo_id, 1, repo_type="dataset")
    assert details.status == "merged" and details.merge_commit_oid == merged.id and second.oid
    with pytest.raises(HfHubHTTPError):  # a merged PR takes no more commits
        api.create_commit(repo_id, [CommitOperationAdd("f.txt", b"f")], commit_message="late", repo_type="dataset",
                          revision="refs/pr/1")  # fmt: skip

    # a PR changing a path main changed too does not merge; closed, it takes no commits and main keeps its state
    api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a3")], commit_message="pr 2", repo_type="dataset",
                      create_pr=True)  # fmt: skip
    api.create_commit(
        repo_id, [CommitOperationAdd("a.txt", b"a4")], commit_message="main", repo_type="dataset"
    )
    head = hub_env.head(repo_id)
    with pytest.raises(HfHubHTTPError) as conflict:
        api.merge_pull_request(repo_id, 2, repo_type="dataset")
    assert conflict.value.response.status_code == 409 and hub_env.head(repo_id) == head
    api.change_discussion_status(repo_id, 2, "closed", repo_type="dataset")
    assert hub_env.pull_requests(repo_id)[2]["status"] == "closed"
    with pytest.raises(HfHubHTTPError):
        api.create_commit(repo_id, [CommitOperationAdd("g.txt", b"g")], commit_message="closed", repo_type="dataset",
                          revision="refs/pr/2")  # fmt: skip
    assert hub_env.files(repo_id)["a.txt"] == b"a4" and hub_env.head(repo_id) == head
    assert_clean(hub_env)


def test_fail_next_after_lets_requests_through_first(hub_env: HubServer, repo_id: str) -> None:
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    hub_env.fail_next("commit", status=403, repo_id=repo_id, after=2)
    for i in range(2):
        api.create_commit(
            repo_id, [CommitOperationAdd(f"{i}.txt", b"x")], commit_message=f"{i}", repo_type="dataset"
        )
    with pytest.raises(HfHubHTTPError) as failed:
        api.create_commit(
            repo_id, [CommitOperationAdd("2.txt", b"x")], commit_message="2", repo_type="dataset"
        )
    assert failed.value.response.status_code == 403 and hub_env.pending_failures() == 0
    assert len(hub_env.history(repo_id)) == 3  # the initial commit and the two let through
    assert_clean(hub_env)
