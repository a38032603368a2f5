"""Nothing published names the publisher's machine: the rewriting rules, and a scan of every file pushed to
the local Hub (every branch and PR) and of the preview pages for the build's root, the recordings' root, the
home directory and the user name."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from owa_builders.build import BUILD_RECORD
from owa_builders.cli import main
from owa_builders.publish import PublishError, push, write_preview
from owa_builders.publish.redact import (
    is_local_tokenizer,
    leaks,
    private_markers,
    public_record,
    redactor,
)

try:
    from hubserver import HubServer
except ImportError:  # tests/ imported as a package
    from tests.hubserver import HubServer


HOME = os.path.expanduser("~")


def test_paths_become_relative_to_their_roots() -> None:
    r = redactor("/data/builds/fsl", "/data/recs")
    assert r.text("/data/recs/train/0.3.2.mcap: has no 'mouse/raw' topic") == (
        "train/0.3.2.mcap: has no 'mouse/raw' topic"
    )
    assert r.text("root /data/recs, build /data/builds/fsl/tokenizer") == "root ., build tokenizer"
    assert (
        r.text("/data/recs2/x.mcap and /opt/y/z.mkv") == "<local>/x.mcap and <local>/z.mkv"
    )  # not a prefix match
    assert r.text(f"{HOME}/secret/a.mcap") == "~/secret/a.mcap"
    kept = "hf://datasets/org/name/train/a.mkv, https://huggingface.co/x/y, s3://bucket/recs/a.mcap, a/b.mkv"
    assert r.text(kept) == kept  # URLs and relative paths are left alone
    assert r.value({"/data/recs/a": ["/data/recs/b", 3, None]}) == {"a": ["b", 3, None]}


def test_the_public_record_names_its_own_tokenizer(tmp_path: Path) -> None:
    local = tmp_path / "my-tokenizer"
    local.mkdir()
    record = {
        "stage": "fsl",
        "data_root": "/data/recs",
        "config": {"tokenizer_name": str(local), "max_sequence_length": 8},
        "describe": {"tokenizer_dir": "tokenizer", "config": {"tokenizer_name": str(local)}},
        "reports": [{"warnings": ["/data/recs/a.mcap: has no 'mouse/raw' topic"]}],
    }
    out = public_record(record, str(tmp_path / "build"), {"vocab_hash": "abc"})
    assert "data_root" not in out and out["reports"][0]["warnings"] == ["a.mcap: has no 'mouse/raw' topic"]
    assert out["config"]["tokenizer_name"] == out["describe"]["config"]["tokenizer_name"] == "tokenizer"
    assert out["tokenizer"] == {
        "source": "local",
        "name": "tokenizer",
        "folder": "tokenizer",
        "vocab_hash": "abc",
    }
    assert record["config"]["tokenizer_name"] == str(local)  # the local record is not changed
    hub = public_record({**record, "config": {"tokenizer_name": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"}},
                        "/b", {"vocab_hash": "abc"})  # fmt: skip
    assert hub["config"]["tokenizer_name"] == "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
    assert hub["tokenizer"]["source"] == "hub" and hub["tokenizer"]["vocab_hash"] == "abc"
    assert is_local_tokenizer(str(local)) and is_local_tokenizer("./t") and not is_local_tokenizer("org/name")


def scan(data: bytes, markers: list[str], user: str) -> list[str]:
    """What of the machine ``data`` names: a marker, or the user name as a path component (``/user``,
    ``user/``; as a plain word it may be English, e.g. ``root``)."""
    found = leaks(data, markers)
    name = re.escape(user.encode())
    if re.search(rb"[/\\]" + name + rb"(?![\w.-])|(?<![\w.-])" + name + rb"[/\\]", data):
        found.append(f"user name {user!r}")
    return found


def test_nothing_uploaded_names_the_machine(
    hub_env: HubServer,
    repo_id: str,
    built_folders: dict[str, Path],
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = getpass.getuser()
    roots = [str(corpus), str(built_folders["fsl"].parent)]  # the recordings, the builds and the tokenizer
    markers = sorted({*roots, *map(os.path.realpath, roots), HOME + "/", f"/{user}/"})
    local = (built_folders["fsl"] / BUILD_RECORD).read_bytes()
    assert leaks(local, markers)  # the local record does name them (a local tokenizer, the data root)
    # a build whose recordings warned with their absolute path (as legacy recordings without mouse/raw do)
    warned = tmp_path / "warned"
    shutil.copytree(built_folders["event"], warned)
    record = json.loads((warned / BUILD_RECORD).read_text())
    record["reports"][0]["warnings"].append(f"{corpus}/test/episode_001.mcap: has no 'mouse/raw' topic")
    (warned / BUILD_RECORD).write_text(json.dumps(record))

    push(built_folders["fsl"], repo_id)
    push(warned, repo_id)
    assert main(["push", str(built_folders["binned"]), repo_id, "--revision", "dev", "--create-pr"]) == 0
    capsys.readouterr()
    revisions = ["main", "dev", "refs/pr/1"]
    files = {
        (rev, path): data for rev in revisions for path, data in hub_env.files(repo_id, revision=rev).items()
    }
    assert len(files) > 30 and any(p.endswith(".parquet") for _, p in files)
    found = {key: hits for key, data in files.items() if (hits := scan(data, markers, user))}
    for (rev, path), data in files.items():  # Parquet pages are compressed: scan the rows themselves too
        if path.endswith(".parquet"):
            rows = json.dumps(pq.read_table(pa.BufferReader(data)).to_pylist(), default=repr).encode()
            if hits := scan(rows, markers, user):
                found[(rev, path + " rows")] = hits
    assert found == {}
    uploaded = json.loads(files[("main", "event/owa_build.json")])
    assert any(w == "test/episode_001.mcap: has no 'mouse/raw' topic" for r in uploaded["reports"]
               for w in r["warnings"])  # fmt: skip
    fsl = json.loads(files[("main", "fsl-smolvlm/owa_build.json")])
    meta = json.loads((built_folders["fsl"] / "tokenizer" / "owa_fsl.json").read_text())
    assert fsl["config"]["tokenizer_name"] == "tokenizer" and "fsl-smolvlm/tokenizer/owa_fsl.json" in {
        p for _, p in files
    }
    assert fsl["tokenizer"] == {"source": "local", "name": "tokenizer", "folder": "tokenizer",
                                "vocab_hash": meta["vocab_hash"]}  # fmt: skip

    # preview pages, with frames found and with a media root elsewhere on the machine (a note names it)
    (tmp_path / "elsewhere").mkdir()
    pages = [write_preview(built_folders["fsl"], tmp_path / "p1.html"),
             write_preview(built_folders["event"], tmp_path / "p2.html", media_root=str(tmp_path / "elsewhere"))]  # fmt: skip
    assert pages[1].notes and str(tmp_path / "elsewhere") in pages[1].notes[0]  # the console keeps the path
    for page in pages:
        assert scan(Path(page.path).read_bytes(), [*markers, str(tmp_path)], user) == []
    assert "could not be decoded from &lt;local&gt;/elsewhere" in Path(pages[1].path).read_text()
    assert hub_env.unhandled == [] and hub_env.errors == []


def test_a_leak_is_refused_before_anything_is_uploaded(
    hub_env: HubServer, repo_id: str, built_folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "build"
    shutil.copytree(built_folders["fsl"], folder)
    (folder / "tokenizer" / "notes.txt").write_text(f"trained in {folder}/tokenizer-src")  # not rewritten
    with pytest.raises(
        PublishError, match=r"refusing to upload local paths .*fsl-smolvlm/tokenizer/notes.txt"
    ):
        push(folder, repo_id)
    assert sorted(hub_env.files(repo_id)) == [".gitattributes"] and len(hub_env.history(repo_id)) == 1
    assert str(folder) in private_markers(str(folder), None)
