"""Fuzz: every malformed input a clear error, or rows with exact accounting (issue "Every malformed input
a clear error").

Cases come from :mod:`devtools.fuzz`: recordings written with the real writers
(``OWAMcapWriter`` for valid content, ``mcap``'s ``Writer`` for content it refuses) carrying each class
of bad input the issue lists, and byte mutations of generated recordings. Each case goes through
``owa_event.pipeline.convert`` with the event stage (lossless, and resampled with an interval
selection), the binned stage and the FSL stage (local example tokenizer), each with
``on_bad_file="error"`` and ``"skip"``, some also through ``datasets.load_dataset``; every run happens
in a forked child with a time limit. The oracle (``fuzz.judge``, see the tool's docstring) accepts
only: rows with exact accounting of the messages really in the file, an error of ours naming the
file, or (skip mode) the file skipped whole with a warning.

CI runs a fixed set of cases (hypothesis derandomized, explicit examples for the values the issue
names); ``OWA_FUZZ_EXAMPLES=200 pytest tests/test_fuzz.py`` explores at random. Long runs:
``python -m devtools.fuzz --minutes N``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import datasets
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import owa_builders  # noqa: F401 - registers the builders
from devtools import fuzz
from devtools.fuzz import Case, StageRun, Verdict
from owa_builders.builder import EmptyDatasetError
from owa_event.account import RecordingReport
from owa_event.errors import OwaError, SkippedFileWarning
from owa_event.pipeline import RecordingRef, convert
from owa_event.stage import EventStage

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in mp.get_all_start_methods(), reason="cases run in forked children"
)

#: One stage run on one case (a 1 s recording of ~120 messages) takes well under a second.
CASE_SECONDS = 20.0
#: Random cases per test beyond the explicit examples; OWA_FUZZ_EXAMPLES explores more (and randomly).
EXAMPLES = int(os.environ.get("OWA_FUZZ_EXAMPLES", "8"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="OWA_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
TIMEOUT = 240 + 3 * CASE_SECONDS * EXAMPLES


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from owa_builders.demo.tokenizer import write_example_tokenizer

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the children are forked
    return write_example_tokenizer(tmp_path_factory.mktemp("fuzz-tokenizer"))


@pytest.fixture(scope="module")
def runs(tokenizer_dir: Path) -> list[StageRun]:
    """Every stage, both modes (the FSL tokenizer is built once, here)."""
    return fuzz.make_runs(tokenizer_dir=tokenizer_dir)


def check(case: Case | None, runs: list[StageRun], seconds: float = CASE_SECONDS) -> dict[str, Verdict]:
    """Run ``case`` through every run; fail with every failure's reason; the verdicts by run label."""
    if case is None:
        return {}
    verdicts = fuzz.run_case(case, runs, seconds)
    bad = fuzz.failures(verdicts)
    assert not bad, f"{case.kind}: {case.what}\n" + "\n".join(
        f"  {v.label}: {v.outcome}: {v.problem}" for v in bad
    )
    assert len(verdicts) == len(runs)
    return {v.label: v for v in verdicts}


def outcomes(verdicts: dict[str, Verdict], *labels: str) -> set[str]:
    return {verdicts[label].outcome for label in labels}


ERROR_RUNS = ("event", "event-resample", "binned", "binned-sparse", "fsl")
SKIP_RUNS = tuple(label + "/skip" for label in ERROR_RUNS)


# ------------------------------------------------------------------------------------------
# Crash class 1: payloads orjson reads but cannot write back
# ------------------------------------------------------------------------------------------
@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(
    depth=st.sampled_from(fuzz.NESTING_DEPTHS) | st.integers(250, 1100),
    where=st.sampled_from(fuzz.NESTING_WHERE),
)
@example(depth=300, where="screen-rebased")
@example(depth=300, where="mouse-raw-move")
@example(depth=1100, where="keyboard")
def test_deep_nesting(runs: list[StageRun], depth: int, where: str) -> None:
    """orjson reads nesting up to 1024 levels but writes at most 254: a payload that must be written back
    (a rebased screen uri, summed raw deltas) cannot be; deeper than 1023 is not readable JSON."""
    verdicts = check(fuzz.deep_nesting_case(depth, where), runs)
    total = depth + (2 if where == "screen-media-ref" else 1)  # the payload object (and media_ref) add levels
    readable, writable = total <= 1024, total <= 254
    if not readable:  # an error wherever the topic is parsed (the FSL stage does not keep window)
        reading = [label for label in ERROR_RUNS if where != "window" or label != "fsl"]
        assert outcomes(verdicts, *reading) == {"error"}
        assert outcomes(verdicts, *(label + "/skip" for label in reading)) == {"skipped"}
    elif where.startswith("screen") and not writable:  # the rebased uri must be written back
        assert outcomes(verdicts, *ERROR_RUNS) == {"error"}
        assert "cannot be written back as JSON" in verdicts["event"].problem
        assert outcomes(verdicts, *SKIP_RUNS) == {"skipped"}
    elif where == "mouse-raw-move" and not writable:  # summed under a mouse/raw rate, else kept verbatim
        assert outcomes(verdicts, "binned-sparse", "fsl") == {
            "error"
        }  # (event-resample: outside its intervals)
        assert "cannot be written back as JSON" in verdicts["fsl"].problem
        assert outcomes(verdicts, "event", "binned") == {"ok"}
    else:
        assert outcomes(verdicts, *ERROR_RUNS) == {"ok"}, verdicts


# ------------------------------------------------------------------------------------------
# Crash classes 1, 2, 5: screen media references (legacy pts, current pts_ns and uri)
# ------------------------------------------------------------------------------------------
PTS = {text: (legacy_ok, current_ok) for text, legacy_ok, current_ok in fuzz.PTS_VALUES}


@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(pts=st.sampled_from(sorted(PTS)), layout=st.sampled_from(fuzz.LEGACY_LAYOUTS))
@example(pts=b"1e300", layout="0.4.2")
@example(pts=b"[1]", layout="0.3.2")
@example(pts=b'{"a":1}', layout="0.5.0")
@example(pts=b'"12"', layout="0.4.2")
@example(pts=b"0", layout="0.3.2")
def test_legacy_pts(runs: list[StageRun], pts: bytes, layout: str) -> None:
    valid = PTS[pts][0]
    verdicts = check(fuzz.legacy_pts_case(pts, layout, valid), runs)
    assert outcomes(verdicts, *ERROR_RUNS) == ({"ok"} if valid else {"error"})


@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(pts=st.sampled_from(sorted(PTS)) | st.none(), uri=st.sampled_from(fuzz.URI_VALUES))
@example(pts=b"9223372036854775808", uri=b'"rec.mkv"')
@example(pts=b"18446744073709551615", uri=b'"rec.mkv"')
@example(pts=b"5", uri=b'"../x.mkv"')
def test_media_ref(runs: list[StageRun], pts: bytes | None, uri: bytes) -> None:
    invalid_pts = pts is not None and not PTS.get(pts, (True, True))[1]
    verdicts = check(fuzz.media_ref_case(pts, uri, invalid_pts), runs)
    if invalid_pts:
        assert outcomes(verdicts, *ERROR_RUNS) == {"error"}


# ------------------------------------------------------------------------------------------
# Crash classes 3, 4: fields of the wrong type (vk, last_x/last_y, flags, coordinates, ...)
# ------------------------------------------------------------------------------------------
@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(
    field=st.sampled_from(fuzz.FIELD_TEMPLATES),
    value=st.sampled_from(fuzz.ODD_VALUES),
    repeats=st.integers(1, 4),
)
@example(field=fuzz.FIELD_TEMPLATES[0], value=b"[1]", repeats=3)  # vk list
@example(field=fuzz.FIELD_TEMPLATES[1], value=b'{"a":1}', repeats=3)  # vk dict
@example(field=fuzz.FIELD_TEMPLATES[3], value=b'"3"', repeats=3)  # last_x string, under mouse/raw rates
@example(field=fuzz.FIELD_TEMPLATES[4], value=b"[1]", repeats=3)  # last_y list
def test_fields_of_the_wrong_type(
    runs: list[StageRun], field: tuple[str, str], value: bytes, repeats: int
) -> None:
    topic, template = field
    verdicts = check(fuzz.odd_field_case(topic, template, value, repeats), runs)
    assert verdicts["event"].outcome == "ok"  # lossless: every payload is kept verbatim


@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(payload=st.sampled_from(fuzz.PAYLOADS), topic=st.sampled_from(fuzz.PAYLOAD_TOPICS))
@example(payload=b'{"a":NaN}', topic="keyboard")
@example(payload=b"\xef\xbb\xbf{}", topic="screen")
@example(payload=b'{"a":"\xff"}', topic="window")
def test_payloads(runs: list[StageRun], payload: bytes, topic: str) -> None:
    check(fuzz.payload_case(payload, topic), runs)


# ------------------------------------------------------------------------------------------
# Crash class 5: log times (>= 2**63, near uint64 max, 0, outside [2000, 2100), jumps)
# ------------------------------------------------------------------------------------------
HANGING_SHIFTS = {"last 6 days later"}  # valid: the binned stage must not take days to bin it


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("shift", sorted(set(fuzz.TIME_SHIFTS) - HANGING_SHIFTS))
def test_log_times(runs: list[StageRun], shift: str, shuffled: bool) -> None:
    forbidden = fuzz.TIME_SHIFTS[shift][1]
    verdicts = check(fuzz.log_time_case(shift, file_order_shuffled=shuffled), runs)
    assert outcomes(verdicts, *ERROR_RUNS) == ({"error"} if forbidden else {"ok"})


# ------------------------------------------------------------------------------------------
# The hang: bins over a span of days
# ------------------------------------------------------------------------------------------
HANG_SECONDS = 3.0


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(lambda: fuzz.span_case(22, 7 * fuzz.DAY_NS), id="22-messages-over-7-days"),
        pytest.param(
            lambda: fuzz.log_time_case("last 6 days later"), id="a-session-then-one-message-6-days-later"
        ),
    ],
)
def test_binning_costs_what_the_messages_cost(runs: list[StageRun], case: object) -> None:
    """Allowed spans (no gap over 7 days) with few messages: every stage finishes within seconds, with
    exact accounting or an error that says so."""
    made = case()  # type: ignore[operator]
    check(made, [r for r in runs if not r.skip], seconds=HANG_SECONDS)


# ------------------------------------------------------------------------------------------
# Crash class 7 and the silent losses: corrupt ChunkIndex and Statistics records
# ------------------------------------------------------------------------------------------
@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(
    record=st.sampled_from(fuzz.SUMMARY_RECORDS),
    index=st.integers(0, 7),
    name=st.sampled_from(sorted(set(fuzz.CHUNK_INDEX_FIELDS) | set(fuzz.STATISTICS_FIELDS))),
    edit=st.sampled_from(sorted(fuzz.EDITS)),
    fix_crc=st.booleans(),
)
@example(record="statistics", index=0, name="message_count", edit="zero", fix_crc=True)
@example(record="statistics", index=0, name="first_channel_message_count", edit="+1000", fix_crc=True)
@example(record="statistics", index=0, name="message_start_time", edit="-1s", fix_crc=True)
@example(record="chunk_index", index=2, name="message_start_time", edit="2**63", fix_crc=True)
@example(record="chunk_index", index=1, name="message_end_time", edit="+1s", fix_crc=True)
@example(record="chunk_index", index=3, name="chunk_start_offset", edit="+1", fix_crc=True)
@example(record="chunk_and_index", index=2, name="message_start_time", edit="+1s", fix_crc=True)
@example(record="chunk_and_index", index=1, name="message_end_time", edit="-1s", fix_crc=False)
def test_summary_lies(
    runs: list[StageRun], record: str, index: int, name: str, edit: str, fix_crc: bool
) -> None:
    names = fuzz.STATISTICS_FIELDS if record == "statistics" else fuzz.CHUNK_INDEX_FIELDS
    if name not in names:
        return
    check(fuzz.summary_lie_case(record, index, name, edit, fix_crc), runs)


def test_a_statistics_record_with_zero_messages_is_warned_about(runs: list[StageRun]) -> None:
    """message_count=0 beside right per-channel counts: all rows, and a warning naming the record."""
    case = fuzz.summary_lie_case("statistics", 0, "message_count", "zero", True)
    assert case is not None and case.claims_lie
    verdicts = check(case, runs)
    assert outcomes(verdicts, *ERROR_RUNS) == {"ok"}
    assert verdicts["event"].rows == case.messages


# ------------------------------------------------------------------------------------------
# Valid content in unusual layouts, empty files, channels, videos
# ------------------------------------------------------------------------------------------
@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("how", fuzz.FILE_ORDER_HOW)
def test_file_order(runs: list[StageRun], how: str) -> None:
    """Valid messages in any file order or chunking: every message a row, rows in time order."""
    case = fuzz.file_order_case(how)
    verdicts = check(case, runs)
    assert outcomes(verdicts, *ERROR_RUNS) == {"ok"}
    assert verdicts["event"].rows == case.messages


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("how", fuzz.EMPTY_HOW)
def test_recordings_without_messages(tokenizer_dir: Path, how: str) -> None:
    """Zero rows, exactly accounted; through load_dataset our EmptyDatasetError, not `datasets`' "corresponds
    to no data"."""
    runs = fuzz.make_runs(tokenizer_dir=tokenizer_dir, datasets_too=True)
    verdicts = check(fuzz.empty_case(how), runs)
    assert all(verdicts[label].rows == 0 for label in verdicts)
    if verdicts["event"].outcome == "ok":
        assert verdicts["event/datasets"].problem == "no rows: EmptyDatasetError"


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("how", fuzz.CHANNEL_HOW)
def test_channels(runs: list[StageRun], how: str) -> None:
    check(fuzz.channel_case(how), runs)


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("how", fuzz.VIDEO_HOW)
def test_videos_beside_the_recording(runs: list[StageRun], how: str) -> None:
    """The stages never decode video: rows are complete whatever the video; a missing one is reported."""
    case = fuzz.video_case(how)
    verdicts = check(case, runs)
    assert outcomes(verdicts, *ERROR_RUNS) == {"ok"}
    assert verdicts["event"].rows == case.messages


# ------------------------------------------------------------------------------------------
# Byte mutations of generated recordings
# ------------------------------------------------------------------------------------------
mutation = st.tuples(
    st.sampled_from(fuzz.MUTATIONS),
    st.floats(0.0, 1.0, exclude_max=True),
    st.integers(0, 2**16),
    st.binary(min_size=1, max_size=64),
)


@pytest.mark.timeout(TIMEOUT * 3)
@settings(SETTINGS, max_examples=5 * EXAMPLES)
@given(
    base=st.sampled_from(fuzz.BASES),
    region=st.sampled_from(fuzz.REGIONS),
    ops=st.lists(mutation, min_size=1, max_size=3),
)
@example(base="current-zstd", region="file", ops=[("truncate", 0.6, 0, b"x")])
@example(base="current-uncompressed", region="record-heads", ops=[("flip", 0.3, 5, b"x")])
@example(base="legacy-0.4.2", region="summary", ops=[("zero", 0.2, 40, b"x")])
@example(base="current-lz4-subfolder", region="file", ops=[("append", 0.0, 0, b"\x00" * 17)])
def test_byte_mutations(runs: list[StageRun], base: str, region: str, ops: list[fuzz.Mutation]) -> None:
    check(fuzz.mutation_case(base, ops, region), runs)


def test_a_damaged_chunk_is_named_with_an_interval_selection(runs: list[StageRun]) -> None:
    """A chunk failing its CRC, met first by the census of an interval selection: an error of ours naming
    the file (it was mcap_chunks' own McapScanError)."""
    case = a_chunk_damaged("current-uncompressed", 2)
    verdicts = check(case, runs)
    assert verdicts["event-resample"].outcome == "error", verdicts["event-resample"]
    assert "CRC mismatch" in verdicts["event-resample"].problem


# ------------------------------------------------------------------------------------------
# Through datasets.load_dataset: a folder mixing good and bad recordings
# ------------------------------------------------------------------------------------------
def a_chunk_damaged(base: str, k: int) -> Case:
    """``base`` with a bit flipped in the data of its ``k``-th chunk (it fails its CRC or decompression)."""
    data, _, _ = fuzz.base_file(base)
    chunks = [(pos, length) for op, pos, length in fuzz.data_records(data) if op == 0x06]
    pos, length = chunks[k % len(chunks)]
    return fuzz.mutation_case(base, [("flip", (pos + length - 20) / len(data), 3, b"")])


def bad_cases() -> list[Case]:
    """One file per class that every stage must refuse."""
    return [
        fuzz.deep_nesting_case(300, "screen-rebased"),
        fuzz.legacy_pts_case(b"1e300", "0.4.2", valid=False),
        fuzz.log_time_case("all at or past 2**63"),
        a_chunk_damaged("current-zstd", 3),
        fuzz.media_ref_case(b"9223372036854775808", b'"rec.mkv"', must_fail=True),
    ]


def write_folder(root: Path, cases: list[Case]) -> list[RecordingRef]:
    return [
        fuzz.write_files(replace(c, episode_path=f"train/{i:02d}_{c.kind}.mcap"), root)
        for i, c in enumerate(cases)
    ]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("stage", ["event", "binned", "fsl"])
def test_load_dataset_skips_every_bad_file_and_keeps_the_good_one(
    tmp_path: Path, tokenizer_dir: Path, stage: str
) -> None:
    good = fuzz.file_order_case("lz4")
    refs = write_folder(tmp_path / "data", [good, *bad_cases()])
    options = {"name": "fsl-smolvlm", "tokenizer_name": str(tokenizer_dir), "max_sequence_length": 512} if stage == "fsl" else {}  # fmt: skip
    name = f"owa_builders/{stage}"
    # error mode: the first bad file (in discovery order) stops the build, named, as an error of ours
    with pytest.raises(OwaError) as exc:
        datasets.load_dataset(
            name, data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "c1"), **options
        )
    assert refs[1].path in str(exc.value)
    # skip mode: every bad file skipped whole and counted, the good file's rows exactly
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = datasets.load_dataset(
            name,
            data_dir=str(tmp_path / "data"),
            cache_dir=str(tmp_path / "c2"),
            on_bad_file="skip",
            **options,
        )
        builder = datasets.load_dataset_builder(
            name,
            data_dir=str(tmp_path / "data"),
            cache_dir=str(tmp_path / "c2"),
            on_bad_file="skip",
            **options,
        )
        builder.download_and_prepare()
    assert sum(issubclass(w.category, SkippedFileWarning) for w in caught) == len(refs) - 1
    reports: list[RecordingReport] = builder.reports
    assert [r.episode_path for r in reports] == [ref.episode_path for ref in refs]
    assert reports[0].skipped is None and all(
        r.skipped and ref.path in r.skipped for r, ref in zip(reports[1:], refs[1:])
    )
    assert all(not r.account.out for r in reports[1:])
    assert set(ds["train"]["episode_path"]) == {refs[0].episode_path}
    direct = list(convert(builder.stage, refs[0], RecordingReport(refs[0].episode_path)))
    assert len(ds["train"]) == sum(b.num_rows for b in direct) > 0
    assert reports[0].unaccounted() == {} and sum(reports[0].account.messages_in.values()) == good.messages


@pytest.mark.timeout(300)
def test_a_build_whose_files_are_all_skipped_is_our_empty_dataset_error(tmp_path: Path) -> None:
    write_folder(tmp_path / "data", bad_cases())
    with pytest.warns(SkippedFileWarning), pytest.raises(EmptyDatasetError) as exc:
        datasets.load_dataset(
            "owa_builders/event",
            data_dir=str(tmp_path / "data"),
            cache_dir=str(tmp_path / "c"),
            on_bad_file="skip",
        )
    assert "corresponds to no data" not in str(exc.value) and "SKIPPED" in str(exc.value)


# ------------------------------------------------------------------------------------------
# The oracle itself: it must catch what it is there to catch
# ------------------------------------------------------------------------------------------
class _LosesARow(EventStage):
    """Drops the last event of each recording without counting it: a silent loss."""

    def batches(self, recording: RecordingRef, report: RecordingReport):  # type: ignore[no-untyped-def]
        batches = list(super().batches(recording, report))
        report.account.out[batches[-1].column("topic")[-1].as_py()] -= 1
        yield from batches[:-1]
        yield batches[-1].slice(0, batches[-1].num_rows - 1)


class _CountsTheLostRow(EventStage):
    """Drops the last event and counts it under a rule: accounted, but the lossless rows miss a message."""

    def batches(self, recording: RecordingRef, report: RecordingReport):  # type: ignore[no-untyped-def]
        batches = list(super().batches(recording, report))
        topic = batches[-1].column("topic")[-1].as_py()
        report.account.out[topic] -= 1
        report.account.drop("test_rule", topic)
        yield from batches[:-1]
        yield batches[-1].slice(0, batches[-1].num_rows - 1)


class _Crashes(EventStage):
    def batches(self, recording: RecordingRef, report: RecordingReport):  # type: ignore[no-untyped-def]
        yield from super().batches(recording, report)
        raise TypeError("unhashable type: 'list'")


class _Reorders(EventStage):
    def batches(self, recording: RecordingRef, report: RecordingReport):  # type: ignore[no-untyped-def]
        for batch in super().batches(recording, report):
            yield batch.take(list(reversed(range(batch.num_rows))))


def _events(kind: type[EventStage]) -> list[StageRun]:
    stage = kind()
    return [StageRun("event", stage), StageRun("event/skip", fuzz._with(stage, on_bad_file="skip"))]


def test_the_oracle_catches_losses_crashes_and_disorder() -> None:
    case = fuzz.file_order_case("lz4")
    lost = {v.label: v for v in fuzz.run_case(case, _events(_LosesARow))}
    assert lost["event"].outcome == "loss" and "unaccounted" in lost["event"].problem
    counted = {v.label: v for v in fuzz.run_case(case, _events(_CountsTheLostRow))}
    assert counted["event"].outcome == "loss" and "rows from" in counted["event"].problem
    crashed = {v.label: v for v in fuzz.run_case(case, _events(_Crashes))}
    assert crashed["event"].outcome == "crash" and "TypeError" in crashed["event"].problem
    assert crashed["event/skip"].outcome == "skipped"  # skip mode skips a bug too; the error run reports it
    disordered = {v.label: v for v in fuzz.run_case(case, _events(_Reorders))}
    assert disordered["event"].outcome == "loss" and "out of order" in disordered["event"].problem
    # a file that must fail but converts, and a wrong count of messages in the file
    assert fuzz.run_case(replace(case, must_fail=True), _events(EventStage))[0].outcome == "accepted"
    wrong = replace(case, chunks=(*case.chunks, (fuzz.T0,)))
    assert fuzz.run_case(wrong, _events(EventStage))[0].outcome == "loss"


def test_a_hang_is_a_verdict_not_a_stuck_test() -> None:
    class _Sleeps(EventStage):
        def batches(self, recording: RecordingRef, report: RecordingReport):  # type: ignore[no-untyped-def]
            import time

            time.sleep(60)
            yield from ()

    verdicts = fuzz.run_case(fuzz.empty_case("owa-writer"), _events(_Sleeps), seconds=0.5)
    assert [v.outcome for v in verdicts] == ["hang", "hang"]


# ------------------------------------------------------------------------------------------
# The long-run tool
# ------------------------------------------------------------------------------------------
def test_the_tool_prints_counts_per_outcome_and_saves_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = fuzz.main(
        [
            "--minutes",
            "0.03",
            "--seed",
            "5",
            "--stages",
            "event",
            "--kinds",
            "odd_field,mutation",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "0 failing case(s)" in out, out
    assert (
        "Outcomes per stage run:" in out and "event-resample/skip" in out and "Outcomes per case kind:" in out
    )
    assert list(tmp_path.iterdir()) == []


def test_a_saved_case_replays(tmp_path: Path, runs: list[StageRun]) -> None:
    case = fuzz.video_case("garbage")
    loaded = Case.load(case.save(tmp_path / "case", ["a problem"]))
    assert loaded == case
    assert fuzz.run_case(loaded, runs) == fuzz.run_case(case, runs)
