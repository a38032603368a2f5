"""FSL rows -> events -> .mcap (owa_fsl.decode), checked against the stage's own input.

Everything is real: recordings from the package's example generator (real mcap-owa-support
writer), FSL datasets built through ``datasets.load_dataset`` / the CLI with a locally trained
tokenizer, decoded files written with ``OWAMcapWriter`` and read back with ``OWAMcapReader`` and
``owa_event.reader.Recording``.

The reference ("resampled input") is what the encoder was given: the event stage's kept events
per interval (read -> select -> resample), then ``shift_actions``. Decoding must give back those
events in order, in canonical fields, each at ``encoder.quantize(t, row base_ns)``.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import datasets
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import owa_builders  # noqa: F401  (registers the builders)
from owa_builders.cli import main
from owa_builders.decode import decode_command
from owa_builders.demo.tokenizer import write_example_tokenizer
from owa_builders.output import load_build, read_record
from owa_event.account import RecordingReport
from owa_event.events import INPUT_TOPICS, SCREEN, Event
from owa_event.pipeline import RecordingRef, kept_events
from owa_event.reader import Recording
from owa_fsl.config import FslConfig
from owa_fsl.decode import FslDecodeError, decode_row, decode_rows, write_mcap
from owa_fsl.encoders import canonical, make_event
from owa_fsl.stage import shift_actions
from owa_fsl.tokenizer import FSL_META, FslTokens

# (config name, image preset, max_sequence_length)
CONFIGS = [("fsl-internvl3", "internvl3", 2048), ("fsl-smolvlm", "smolvlm", 1024)]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_example_tokenizer(tmp_path_factory.mktemp("tok") / "base"))


def _build(corpus: Path, cache_dir: str, config_name: str, preset: str, tokenizer: str, **options: Any):
    """The FSL dataset via ``load_dataset``, the same fields as an FslConfig, and the saved tokens."""
    ds = datasets.load_dataset(
        "owa_builders/fsl",
        config_name,
        data_dir=str(corpus),
        cache_dir=cache_dir,
        tokenizer_name=tokenizer,
        **options,
    )
    config = FslConfig(tokenizer_name=tokenizer, image_preset=preset, **options)
    saved = glob.glob(os.path.join(cache_dir, "**", "tokenizer", FSL_META), recursive=True)
    assert len(saved) == 1, saved  # the builder saves the expanded tokenizer beside the prepared data
    tokens = FslTokens.load(os.path.dirname(saved[0]))
    assert tokens.encoder == config.encoder()
    return ds, config, tokens


def resampled_input(corpus: Path, episode_path: str, config: FslConfig) -> list[Event]:
    """What the stage gave the encoder for one recording: kept events, shifted per interval."""
    kept = kept_events(
        RecordingRef(str(corpus / episode_path), episode_path, str(corpus)),
        config,
        RecordingReport(episode_path),
    )
    out: list[Event] = []
    for _, group in itertools.groupby(kept, key=lambda item: item[0]):
        out.extend(shift_actions((event for _, event in group), config.action_shift_ns))
    return out


def _key(event: Event) -> tuple[Any, ...]:
    return (event.timestamp_ns, event.topic, event.message_type, orjson.dumps(canonical(event)))


def expected_per_row(
    rows: list[dict[str, Any]], reference: list[Event], config: FslConfig
) -> list[list[tuple]]:
    """``reference`` cut into the rows (by ``n_events``), each time quantized to its row's base."""
    encoder = config.encoder()
    out, pos = [], 0
    for row in rows:
        chunk = reference[pos : pos + row["n_events"]]
        pos += row["n_events"]
        out.append([_key(e.at(encoder.quantize(e.timestamp_ns, row["base_ns"]))) for e in chunk])
    assert pos == len(reference), f"rows hold {pos} events, the resampled input has {len(reference)}"
    return out


def assert_decodes_to_input(
    ds: datasets.Dataset, tokens: FslTokens, corpus: Path, config: FslConfig
) -> dict[str, int]:
    """Every row of every episode decodes to the resampled input (times at the encoder's resolution)."""
    res = config.time_resolution_ns
    episodes = sorted(set(ds["episode_path"]))
    assert episodes == sorted(p.name for p in corpus.glob("*.mcap"))
    all_rows = list(ds)
    topics: dict[str, int] = {}
    for episode in episodes:
        rows = [r for r in all_rows if r["episode_path"] == episode]
        reference = resampled_input(corpus, episode, config)
        expected = expected_per_row(rows, reference, config)
        decoded_all: list[Event] = []
        for row, want in zip(rows, expected):
            decoded = decode_row(row, tokens)
            assert [_key(e) for e in decoded] == want
            base = row["base_ns"]
            assert all((e.timestamp_ns - base) % res == 0 and e.timestamp_ns >= base for e in decoded)
            refs = [{"uri": i["uri"], "pts_ns": i["pts_ns"]} for i in row["images"]]
            assert [e.fields["media_ref"] for e in decoded if e.topic == SCREEN] == refs
            decoded_all.extend(decoded)
        # times are exact at the resolution: never later than the input, less than one unit earlier
        assert len(decoded_all) == len(reference)
        for d, o in zip(decoded_all, reference):
            assert 0 <= o.timestamp_ns - d.timestamp_ns < res
        assert list(decode_rows(rows, tokens)) == decoded_all
        for e in decoded_all:
            topics[e.topic] = topics.get(e.topic, 0) + 1
    return topics


@pytest.mark.parametrize("encoder_type", ["factorized", "hierarchical"])
@pytest.mark.parametrize(("config_name", "preset", "max_len"), CONFIGS)
def test_rows_decode_to_the_resampled_input(
    current_corpus: Path,
    cache_dir: str,
    tokenizer_dir: str,
    config_name: str,
    preset: str,
    max_len: int,
    encoder_type: str,
) -> None:
    ds, config, tokens = _build(
        current_corpus,
        cache_dir,
        config_name,
        preset,
        tokenizer_dir,
        max_sequence_length=max_len,
        encoder_type=encoder_type,
    )
    train = ds["train"]
    assert train.num_rows > len(set(train["episode_path"]))  # episodes span several rows
    topics = assert_decodes_to_input(train, tokens, current_corpus, config)
    assert set(topics) == {"screen", "keyboard", "mouse/raw"}


@pytest.mark.parametrize("shift_ms", [50, -30])
def test_shifted_actions_decode_at_shifted_times(
    current_corpus: Path, cache_dir: str, tokenizer_dir: str, shift_ms: int
) -> None:
    shift = shift_ms * 1_000_000
    ds, config, tokens = _build(
        current_corpus,
        cache_dir,
        "fsl-smolvlm",
        "smolvlm",
        tokenizer_dir,
        max_sequence_length=1024,
        action_shift_ns=shift,
    )
    assert_decodes_to_input(ds["train"], tokens, current_corpus, config)
    # explicitly: the decoded input events are the unshifted ones moved by `shift` (quantized)
    episode = "episode_000.mcap"
    rows = [r for r in ds["train"] if r["episode_path"] == episode]
    decoded = list(decode_rows(rows, tokens))
    unshifted = resampled_input(
        current_corpus, episode, FslConfig(tokenizer_name=tokenizer_dir, image_preset="smolvlm")
    )
    res = config.time_resolution_ns
    got = sorted(
        (e.topic, orjson.dumps(canonical(e)), e.timestamp_ns) for e in decoded if e.topic in INPUT_TOPICS
    )
    want = sorted(
        (e.topic, orjson.dumps(canonical(e)), e.timestamp_ns + shift)
        for e in unshifted
        if e.topic in INPUT_TOPICS
    )
    assert len(got) == len(want) > 0
    for (gt, gf, gt_ns), (wt, wf, wt_ns) in zip(got, want):
        assert (gt, gf) == (wt, wf) and 0 <= wt_ns - gt_ns < res


# -- the command, end to end ------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(current_corpus: Path, tokenizer_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``owa-builders build fsl`` output (fsl-smolvlm, 1024 tokens)."""
    work = tmp_path_factory.mktemp("fsl-cli")
    out = work / "fsl"
    assert (
        main(
            [
                "build",
                "fsl",
                str(current_corpus),
                "-o",
                str(out),
                "--config",
                "fsl-smolvlm",
                "--option",
                f"tokenizer_name={tokenizer_dir}",
                "--option",
                "max_sequence_length=1024",
                "--cache-dir",
                str(work / "cache"),
            ]
        )
        == 0
    )
    assert (out / "tokenizer" / FSL_META).is_file()
    return out


def _recording_keys(path: Path) -> list[tuple]:
    with Recording(path) as rec:
        return sorted(_key(e) for e in rec.events())


def test_decode_command_episode_end_to_end(
    built: Path, current_corpus: Path, tokenizer_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcap_owa.highlevel import OWAMcapReader
    from owa.core import MESSAGES

    out = tmp_path / "x.mcap"
    capsys.readouterr()
    assert main(["decode", str(built), "-o", str(out), "--episode", "episode_000.mcap"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and str(out) in line and "episode_000.mcap" in line and "screen: " in line

    config = FslConfig(tokenizer_name=tokenizer_dir, image_preset="smolvlm", max_sequence_length=1024)
    rows = [r for r in load_build(str(built))["train"] if r["episode_path"] == "episode_000.mcap"]
    reference = resampled_input(current_corpus, "episode_000.mcap", config)
    expected = sorted(k for ks in expected_per_row(rows, reference, config) for k in ks)

    # read back with the owa reader: the current message classes, validated
    with OWAMcapReader(out) as reader:
        messages = list(reader.iter_messages())
        assert reader.message_count == len(reference)
        assert sorted(reader.topics) == ["keyboard", "mouse/raw", "screen"]
    for msg in messages:
        assert isinstance(msg.decoded, MESSAGES[msg.message_type])
    screens = [m.decoded for m in messages if m.topic == "screen"]
    assert screens and all(
        s.media_ref.uri == "episode_000.mkv" for s in screens
    )  # relative to the dataset root
    assert [s.media_ref.pts_ns for s in screens] == [img["pts_ns"] for r in rows for img in r["images"]]
    # the summary counts match the file
    for topic in ("screen", "keyboard", "mouse/raw"):
        assert f"{topic}: {sum(m.topic == topic for m in messages)}" in line

    # read back with the event stage's reader: the resampled input at the encoder's resolution
    assert _recording_keys(out) == expected


def test_decode_command_one_row(built: Path, tmp_path: Path) -> None:
    ds = load_build(str(built))["train"]
    out = tmp_path / "row.mcap"
    assert main(["decode", str(built), "-o", str(out), "--row", "0"]) == 0
    tokens = FslTokens.load(str(built / "tokenizer"))
    assert _recording_keys(out) == sorted(_key(e) for e in decode_row(ds[0], tokens))
    last = ds.num_rows - 1
    summary = decode_command(str(built), str(tmp_path / "last.mcap"), row=last)
    assert f"decoded {ds[last]['n_events']} events" in summary and f"row {last}" in summary


def test_decode_command_errors(built: Path, tmp_path: Path) -> None:
    ds = load_build(str(built))["train"]
    out = tmp_path / "e.mcap"
    with pytest.raises(
        FslDecodeError, match=rf"row {ds.num_rows} is out of range: .* has {ds.num_rows} rows"
    ):
        decode_command(str(built), str(out), row=ds.num_rows)
    with pytest.raises(FslDecodeError, match="row -1 is out of range"):
        decode_command(str(built), str(out), row=-1)
    with pytest.raises(FslDecodeError, match=r"unknown episode 'nope\.mcap' .*'episode_000\.mcap'"):
        decode_command(str(built), str(out), episode="nope.mcap")
    with pytest.raises(FslDecodeError, match=r"has no split 'test'; its splits: \['train'\]"):
        decode_command(str(built), str(out), split="test", row=0)
    with pytest.raises(FslDecodeError, match="exactly one of"):
        decode_command(str(built), str(out))
    with pytest.raises(FslDecodeError, match="tokenizer directory .*nowhere.* does not exist"):
        decode_command(str(built), str(out), row=0, tokenizer_dir=str(tmp_path / "nowhere"))
    # a dataset copied without its tokenizer folder
    bare = tmp_path / "bare"
    shutil.copytree(built, bare, ignore=shutil.ignore_patterns("tokenizer"))
    with pytest.raises(
        FslDecodeError, match=r"tokenizer directory .*bare/tokenizer' does not exist.*--tokenizer"
    ):
        decode_command(str(bare), str(out), row=0)
    assert "decoded" in decode_command(str(bare), str(out), row=0, tokenizer_dir=str(built / "tokenizer"))
    os.remove(out)
    # a folder that is not an expanded FSL tokenizer
    with pytest.raises(FslDecodeError, match=f"has no {FSL_META}"):
        decode_command(str(built), str(out), row=0, tokenizer_dir=str(tmp_path))
    with pytest.raises(FslDecodeError, match="is not a folder"):
        decode_command(str(tmp_path / "missing"), str(out), row=0, tokenizer_dir=str(built / "tokenizer"))

    # a tampered row on disk: the error names the row, and no half-written file is left
    tampered = tmp_path / "tampered"
    shutil.copytree(built, tampered)
    shard = tampered / read_record(tampered).shards["train"][0]
    table = pq.read_table(shard)
    assert table.num_rows > 1
    n_events = table.column("n_events").to_pylist()
    n_events[1] += 1
    column = table.schema.get_field_index("n_events")
    pq.write_table(
        table.set_column(
            column, table.schema.field(column), pa.array(n_events, table.schema.field(column).type)
        ),
        shard,
    )
    with pytest.raises(
        FslDecodeError, match=r"row 1 of .*decoded \d+ event\(s\) but the row says n_events = \d+"
    ):
        decode_command(str(tampered), str(out), row=1, tokenizer_dir=str(built / "tokenizer"))
    episode = ds[1]["episode_path"]
    with pytest.raises(FslDecodeError, match="n_events"):
        decode_command(str(tampered), str(out), episode=episode, tokenizer_dir=str(built / "tokenizer"))
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_decode_row_checks(built: Path) -> None:
    ds = load_build(str(built))["train"]
    tokens = FslTokens.load(str(built / "tokenizer"))
    row = ds[0]
    assert row["images"] and 0 in row["attention_mask"]  # has frames and padding
    assert len(decode_row(row, tokens)) == row["n_events"]

    with pytest.raises(FslDecodeError, match=r"decoded \d+ event\(s\) but the row says n_events = "):
        decode_row({**row, "n_events": row["n_events"] + 1}, tokens)
    n = len(row["images"])
    with pytest.raises(
        FslDecodeError, match=rf"decoded {n} screen event\(s\) but the row lists {n - 1} frame"
    ):
        decode_row({**row, "images": row["images"][:-1]}, tokens)
    with pytest.raises(
        FslDecodeError, match=rf"decoded {n} screen event\(s\) but the row lists {n + 1} frame"
    ):
        decode_row({**row, "images": row["images"] + [row["images"][0]]}, tokens)
    # padding counted as real tokens is not a valid encoding
    with pytest.raises(FslDecodeError, match="not a valid factorized encoding"):
        decode_row({**row, "attention_mask": [1] * len(row["attention_mask"])}, tokens)
    with pytest.raises(FslDecodeError, match=r"missing column\(s\) \['base_ns'\]"):
        decode_row({k: v for k, v in row.items() if k != "base_ns"}, tokens)
    with pytest.raises(FslDecodeError, match=r"row #1 of the rows given .*n_events"):
        list(decode_rows([ds[0], {**ds[1], "n_events": 0}], tokens))


def test_write_mcap_validates_with_the_current_messages(tmp_path: Path) -> None:
    t = 1_748_854_800 * 10**9
    events = [
        make_event("screen", t, {"media_ref": {"uri": "train/a.mkv", "pts_ns": 0}}),
        make_event("screen", t + 5, {"media_ref": {"uri": "train/a.mkv", "pts_ns": None}}),
        make_event("keyboard", t + 10, {"event_type": "press", "vk": 65}),
        make_event(
            "mouse", t + 20, {"event_type": "click", "x": -5, "y": 3, "button": "left", "pressed": True}
        ),
        make_event(
            "mouse/raw",
            t + 30,
            {"last_x": 1, "last_y": -2, "us_flags": 0, "button_flags": 0x400, "button_data": 65416},
        ),
    ]
    out = tmp_path / "w.mcap"
    assert write_mcap(events, out) == {"screen": 2, "keyboard": 1, "mouse": 1, "mouse/raw": 1}
    with Recording(out) as rec:
        back = list(rec.events())
    assert [_key(e) for e in back] == [_key(e) for e in events]
    assert back[0].fields["media_ref"]["uri"] == "train/a.mkv"  # kept as given, not rebased
    bad = make_event("keyboard", t, {"event_type": "press", "vk": "A"})
    with pytest.raises(FslDecodeError, match="not a valid desktop/KeyboardEvent"):
        write_mcap([bad], tmp_path / "bad.mcap")
