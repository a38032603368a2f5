"""The ingestion's output at an fsspec destination: an S3 API through the real client (s3fs against
moto's server on 127.0.0.1) and memory://. Same files and recordings as a local ingestion, never a
half-visible recording, the manifest last, resume from what is at the destination, credentials never
written nor shown; on a real local Ray (2 CPUs) too."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from owa_builders.demo.recordings import frame_image
from owa_builders.errors import EpisodeExistsError, ItemError
from owa_builders.ingest import IngestedRecordings, create_recordings_from_source
from owa_builders.ingest.recordings import MANIFEST
from owa_builders.output import Destination
from owa_event.reader import Recording

try:
    from conftest import S3_KEY, S3_SECRET
except ImportError:  # tests/ imported as a package
    from tests.conftest import S3_KEY, S3_SECRET


def sample(i: int) -> dict[str, Any]:
    return {"t": i / 20, "image": frame_image(i, 32, 24), "joints": [float(i), 0.5 * i]}


def to_step(s: dict[str, Any]) -> dict[str, Any]:
    if s.get("bad"):
        raise ValueError("a broken sample")
    return {"timestamp": s["t"], "screen": s["image"], "robot/joints": s["joints"]}


def ingest(source: Any, out: Any, **kwargs: Any) -> IngestedRecordings:
    kwargs.setdefault("num_workers", 0)
    kwargs.setdefault("progress", False)
    return create_recordings_from_source(source, out, transform_fn=to_step, items_per_episode=3, **kwargs)


def files(dest: Destination) -> dict[str, bytes]:
    """Every file under ``dest`` (relative POSIX path -> bytes)."""
    base = dest.path()
    return {str(p)[len(base) :].lstrip("/"): bytes(dest.fs.cat_file(p)) for p in dest.fs.find(base)}


def events(dest: Destination, rel: str) -> list[tuple[str, int, dict[str, Any]]]:
    with dest.open(rel) as f, Recording(rel, episode_path=rel, stream=f) as rec:
        return [(e.topic, e.timestamp_ns, e.fields) for e in rec.events()]


def same_as_local(remote: Destination, local: Path) -> dict[str, bytes]:
    """The remote ingestion holds the local one's files, with the same recordings and manifest."""
    here = files(Destination(str(local)))
    there = files(remote)
    assert sorted(there) == sorted(here) and MANIFEST in there
    assert not [n for n in there if os.path.basename(n).startswith(".")]  # no temporary file
    for name in here:
        if name.endswith(".mcap"):
            assert events(remote, name) == events(Destination(str(local)), name) and events(remote, name)
    mine, theirs = json.loads(here[MANIFEST]), json.loads(there[MANIFEST])
    assert theirs["config"].pop("output_dir") == remote.shown and mine["config"].pop("output_dir") == str(
        local
    )
    for how in ("resume", "num_workers"):  # how it ran, not what it wrote
        theirs["config"].pop(how), mine["config"].pop(how)
    assert theirs == mine
    return there


def test_to_s3_equals_local_and_never_writes_or_shows_the_credentials(
    s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, options = s3_bucket
    source = [sample(i) for i in range(7)]
    local = ingest(source, tmp_path / "local")
    remote = ingest(source, f"{url}/recs", storage_options=options, progress=True)
    assert remote.root == f"{url}/recs" and [e.to_dict() for e in remote.episodes] == [
        e.to_dict() for e in local.episodes
    ]
    there = same_as_local(Destination(f"{url}/recs", options), tmp_path / "local")
    out = capsys.readouterr()
    assert f"{url}/recs" in out.err  # the run's summary names the destination
    for secret in (S3_KEY, S3_SECRET):
        assert secret not in out.out + out.err + repr(remote)
        assert not [n for n, data in there.items() if secret.encode() in data]
    opened = IngestedRecordings.open(f"{url}/recs", storage_options=options)
    assert opened == remote and opened.paths() == [f"{url}/recs/{e.recording}" for e in remote.episodes]


def test_resume_on_s3_keeps_the_episodes_there_and_writes_the_rest(
    s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, options = s3_bucket
    dest = Destination(f"{url}/recs", options)
    source = [sample(i) for i in range(8)]
    broken = [*source[:6], {**source[6], "bad": True}, source[7]]
    with pytest.raises(ItemError, match="item 6"):
        ingest(broken, dest.url, storage_options=options)
    before = {n: dest.fs.info(dest.path(n))["ETag"] for n in files(dest)}
    assert sorted(before) == [
        "episode_000000.mcap",
        "episode_000000.mkv",
        "episode_000001.mcap",
        "episode_000001.mkv",
    ]
    assert not dest.exists(MANIFEST)  # an unfinished ingestion has no manifest
    resumed = ingest(source, dest.url, storage_options=options, resume=True)
    assert {n: dest.fs.info(dest.path(n))["ETag"] for n in before} == before  # kept, not written again
    assert [e.name for e in resumed.episodes] == ["episode_000000", "episode_000001", "episode_000002"]
    local = ingest(source, tmp_path / "local")
    assert [e.to_dict() for e in resumed.episodes] == [e.to_dict() for e in local.episodes]
    same_as_local(dest, tmp_path / "local")


def test_to_memory_and_back_into_a_dataset(tmp_path: Path) -> None:
    url = f"memory://ingest-{uuid.uuid4().hex}"
    source = [sample(i) for i in range(5)]
    remote = ingest(source, url)
    local = ingest(source, tmp_path / "local")
    same_as_local(Destination(url), tmp_path / "local")
    again = ingest(source, url, resume=True)  # everything already there
    assert again == remote
    rows = IngestedRecordings.open(url).to_dataset("event", cache_dir=str(tmp_path / "c1"))["train"]
    expected = local.to_dataset("event", cache_dir=str(tmp_path / "c2"))["train"]
    drop = ("episode_path", "mcap_message")
    assert rows.num_rows == expected.num_rows > 0
    assert (
        rows.remove_columns([c for c in drop if c in rows.column_names]).to_list()
        == expected.remove_columns([c for c in drop if c in expected.column_names]).to_list()
    )


def test_on_ray_to_s3(ray_cluster: Any, s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    url, options = s3_bucket
    source = [sample(i) for i in range(9)]
    ingest(source, tmp_path / "local")
    remote = ingest(source, f"{url}/recs", storage_options=options, num_workers=2)
    assert len(remote.episodes) == 3
    same_as_local(Destination(f"{url}/recs", options), tmp_path / "local")


def test_resume_refuses_a_file_it_did_not_write() -> None:
    url = f"memory://ingest-{uuid.uuid4().hex}"
    dest = Destination(url)
    dest.write_bytes("episode_000000.mcap", b"someone else's file")
    with pytest.raises(EpisodeExistsError, match=r"episode_000000\.mcap.*did not write.*owa_ingest"):
        ingest([sample(0)], url, resume=True)
    assert dest.read_bytes("episode_000000.mcap") == b"someone else's file" and not dest.exists(MANIFEST)
