"""Long recordings split into time-slice tasks: rows and accounts equal the one-task conversion.

Recordings are generated with the package's example generator and written with the real writer;
slices are converted by the real stages (locally, and on a real local Ray with 2 CPUs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from owa_binned.config import BinnedConfig
from owa_binned.stage import BinnedStage
from owa_builders.demo.recordings import (
    DEFAULT_START_NS,
    MS,
    NS,
    RawEvent,
    SessionSpec,
    generate_recording,
    session_events,
    write_recording,
)
from owa_builders.demo.tokenizer import write_example_tokenizer
from owa_builders.distributed.slices import (
    episode_cuts,
    merge_reports,
    plan_windows,
    slice_ref,
    task_ns,
)
from owa_event.account import RecordingReport
from owa_event.config import EventConfig
from owa_event.intervals import Inactivity
from owa_event.pipeline import RecordingRef, Stage, rows
from owa_event.stage import EventStage
from owa_fsl.config import FslConfig
from owa_fsl.stage import FslStage

RATES = {"mouse/raw": 20.0, "mouse": 20.0, "screen": 10.0, "keyboard": 1.0}
EPISODES = Inactivity(screen_timeout_s=1.0)
VK_A = 65


def ref_of(path: Path) -> RecordingRef:
    return RecordingRef(str(path), path.name, str(path.parent))


def whole(stage: Stage, ref: RecordingRef) -> tuple[list[dict[str, Any]], RecordingReport]:
    report = RecordingReport(ref.episode_path)
    with pytest.warns(Warning):  # the video is missing (not generated): warned once, kept in the report
        out = list(rows(stage, ref, report))
    return out, report


def sliced(
    stage: Stage, ref: RecordingRef, windows: list[Any]
) -> tuple[list[dict[str, Any]], RecordingReport]:
    """Each window converted on its own (a fresh report each, as on separate workers), then merged."""
    out: list[dict[str, Any]] = []
    parts = []
    for window in windows:
        part = RecordingReport(ref.episode_path)
        out += rows(stage, slice_ref(ref, window), part)
        parts.append(part)
    return out, merge_reports(parts, stage, ref.path)


def windows_at(cuts: list[int]) -> list[Any]:
    bounds = [None, *sorted(set(cuts)), None]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One episode of 6 s (no video: the missing-media warning must come out once, merged)."""
    root = tmp_path_factory.mktemp("slices-long")
    return generate_recording(root / "long.mcap", SessionSpec(duration_s=6.0, seed=3), video=False)


@pytest.fixture(scope="module")
def episodes_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """Three 2.5 s sessions 2 s apart (three episodes under ``EPISODES``); at the first frame of the
    second and third (an episode start, a seam) a key press and a raw move at the very same ns, the
    key released 10 ms later, and a press and raw move 1 ns before the frame (between episodes)."""
    events: list[RawEvent] = []
    seams: list[int] = []
    for i in range(3):
        spec = SessionSpec(duration_s=2.5, seed=10 + i, start_ns=DEFAULT_START_NS + i * int(4.5 * NS))
        session, _ = session_events(spec)
        first_frame = min(e.timestamp_ns for e in session if e.topic == "screen")
        if i:
            seams.append(first_frame)
            raw = {"us_flags": 0, "last_x": 3, "last_y": -2, "button_flags": 0, "button_data": 0}
            session += [
                RawEvent("keyboard", first_frame - 1, {"event_type": "press", "vk": VK_A}),
                RawEvent("mouse/raw", first_frame - 1, raw),
                RawEvent("keyboard", first_frame, {"event_type": "press", "vk": VK_A}),
                RawEvent("mouse/raw", first_frame, raw),
                RawEvent("keyboard", first_frame + 10 * MS, {"event_type": "release", "vk": VK_A}),
            ]
        events += session
    events.sort(key=lambda e: e.timestamp_ns)
    root = tmp_path_factory.mktemp("slices-episodes")
    return write_recording(root / "episodes.mcap", events), seams


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_tokenizer(tmp_path_factory.mktemp("slices-tok") / "base")


def fsl_stage(tokenizer_dir: Path, **kwargs: Any) -> FslStage:
    config = FslConfig(tokenizer_name=str(tokenizer_dir), image_preset="smolvlm", image_token_count=4,
                       max_sequence_length=256, **kwargs)  # fmt: skip
    config.validate()
    return FslStage(config)


# ------------------------------------------------------------------------------------------
# Seams anywhere: the event stage without rate limits
# ------------------------------------------------------------------------------------------
def test_event_stage_any_seam_on_events(long_recording: Path) -> None:
    """Seams exactly at a key press, a key release, a raw move and a frame: rows and report equal."""
    stage, ref = EventStage(), ref_of(long_recording)
    assert stage.seam_rule() == "any"
    expected, report = whole(stage, ref)
    first_of = {}
    for row in expected[len(expected) // 4 :]:
        kind = row["topic"]
        if kind == "keyboard":
            kind += "-release" if b"release" in row["mcap_message"] else "-press"
        first_of.setdefault(kind, row["timestamp_ns"])
    assert {"keyboard-press", "keyboard-release", "mouse/raw", "screen"} <= first_of.keys()
    cuts = [first_of[k] for k in ("keyboard-press", "keyboard-release", "mouse/raw", "screen")]
    got, merged = sliced(stage, ref, windows_at(cuts))
    assert got == expected
    assert merged.to_dict() == report.to_dict()
    assert merged.unaccounted() == {}
    assert len(merged.warnings) == 1 and "missing video" in merged.warnings[0]


def test_event_stage_any_seam_inside_intervals(episodes_recording: tuple[Path, list[int]]) -> None:
    """With an interval selection the event stage still cuts anywhere: an interval split in two keeps
    its ``interval_idx`` in both slices and is counted once; the messages between episodes are counted
    as outside the intervals by the slice they fall in."""
    path, seams = episodes_recording
    stage, ref = EventStage(EventConfig(interval=EPISODES)), ref_of(path)
    expected, report = whole(stage, ref)
    windows = plan_windows(stage, ref, 1 * NS)
    assert windows is not None and len(windows) > 5
    assert not set(seams) & {w[0] for w in windows}  # the planned seams fall inside episodes
    for cuts in ([w[0] for w in windows[1:]], [seams[0] - 1, seams[0] + 5 * MS, seams[1]]):
        got, merged = sliced(stage, ref, windows_at(cuts))
        assert got == expected
        assert merged.to_dict() == report.to_dict()
    assert report.intervals == 3 and report.account.dropped_by("outside_intervals") >= 4


def test_event_stage_any_seam_kept_topics_and_empty_ends(long_recording: Path) -> None:
    """Topics filtered (the span then comes from a scan), and slices without any message at both ends."""
    ref = ref_of(long_recording)
    for stage in (EventStage(EventConfig(keep_topics=["keyboard", "screen"])), EventStage()):
        expected, report = whole(stage, ref)
        first, last = expected[0]["timestamp_ns"], expected[-1]["timestamp_ns"]
        cuts = [first - 5, first, (first + last) // 2, last + 1, last + 9]
        got, merged = sliced(stage, ref, windows_at(cuts))
        assert got == expected and merged.to_dict() == report.to_dict()
        assert merged.account.dropped_by("topic_not_kept") == report.account.dropped_by("topic_not_kept")


def test_plan_any_windows(long_recording: Path) -> None:
    stage, ref = EventStage(), ref_of(long_recording)
    windows = plan_windows(stage, ref, 2 * NS)
    assert windows is not None and len(windows) == 3
    assert windows[0][0] is None and windows[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
    expected, report = whole(stage, ref)
    got, merged = sliced(stage, ref, windows)
    assert got == expected and merged.to_dict() == report.to_dict()
    assert plan_windows(stage, ref, 10 * NS) is None  # not longer than a task
    assert plan_windows(stage, ref, None) is None


# ------------------------------------------------------------------------------------------
# Seams at episode starts: every stateful stage
# ------------------------------------------------------------------------------------------
def stateful_stages(tokenizer_dir: Path) -> dict[str, Stage]:
    return {
        "event-resampled": EventStage(EventConfig(rate_settings=RATES, interval=EPISODES)),
        "binned": BinnedStage(BinnedConfig(interval=EPISODES)),
        "binned-resampled": BinnedStage(BinnedConfig(interval=EPISODES, rate_settings={"screen": 5.0})),
        "fsl": fsl_stage(tokenizer_dir, interval=EPISODES),
    }


def test_episode_seams_every_stage(episodes_recording: tuple[Path, list[int]], tokenizer_dir: Path) -> None:
    path, seams = episodes_recording
    ref = ref_of(path)
    for name, stage in stateful_stages(tokenizer_dir).items():
        assert stage.seam_rule() == "episodes", name
        windows = plan_windows(stage, ref, 1 * NS)
        assert windows == windows_at(seams), name  # the seams are the episode starts, nothing else
        expected, report = whole(stage, ref)
        got, merged = sliced(stage, ref, windows)
        assert expected and got == expected, name
        assert merged.to_dict() == report.to_dict(), name
        assert merged.unaccounted() == {}, name
        assert report.intervals == 3 and report.account.dropped_by("outside_intervals") >= 4, name


def test_seam_events_are_in_the_later_episode(episodes_recording: tuple[Path, list[int]]) -> None:
    """The press and raw move at the seam's very ns open the second slice; those 1 ns before are outside."""
    path, seams = episodes_recording
    stage = EventStage(EventConfig(interval=EPISODES))
    second = list(rows(stage, slice_ref(ref_of(path), (seams[0], seams[1]))))
    head = [(r["topic"], r["timestamp_ns"]) for r in second if r["timestamp_ns"] == seams[0]]
    assert {("keyboard", seams[0]), ("mouse/raw", seams[0]), ("screen", seams[0])} <= set(head)
    assert min(r["timestamp_ns"] for r in second) == seams[0]
    assert {r["interval_idx"] for r in second} == {1}


def test_mid_episode_seam_is_not_planned_and_would_differ(long_recording: Path, tokenizer_dir: Path) -> None:
    """One long episode of a stateful stage is not split; a seam inside it would change the rows
    (why the rule exists: the bin grid, the latest state and the open sequence cross it)."""
    ref = ref_of(long_recording)
    for stage in (BinnedStage(), fsl_stage(tokenizer_dir), EventStage(EventConfig(rate_settings=RATES))):
        assert plan_windows(stage, ref, 1 * NS) is None
    stage = BinnedStage()
    expected, _ = whole(stage, ref)
    got, _ = sliced(stage, ref, windows_at([DEFAULT_START_NS + 3 * NS + 7 * MS]))
    assert got != expected


def test_never_split_when_skipping(long_recording: Path) -> None:
    ref = ref_of(long_recording)
    assert plan_windows(EventStage(EventConfig(on_bad_file="skip")), ref, 1 * NS) is None
    assert plan_windows(EventStage(EventConfig(on_missing_media="skip")), ref, 1 * NS) is None


def test_episode_cuts_and_task_ns() -> None:
    assert episode_cuts([0, 10, 20, 35, 40, 80], 30) == [35, 80]
    assert episode_cuts([0, 10], 30) == [] and episode_cuts([], 1) == []
    assert task_ns(None) is None and task_ns(0) is None
    assert task_ns(0.5) == 30 * NS
    for bad in (-1, "5", True, float("nan")):
        with pytest.raises(ValueError, match="task_minutes"):
            task_ns(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# On a real local Ray
# ------------------------------------------------------------------------------------------
def test_ray_split_equals_unsplit(
    ray_cluster: Any, long_recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build with the long recording split (command line) == one task per recording (Python), rows
    in shard order and accounts in owa_build.json; a rerun with the same slices converts nothing."""
    from owa_builders.cli import main
    from owa_builders.distributed import build_on_ray
    from owa_builders.output import read_record

    root = tmp_path / "data"
    (root / "train").mkdir(parents=True)
    for name in ("long.mcap",):
        (root / "train" / name).write_bytes(long_recording.read_bytes())
    generate_recording(root / "train" / "short.mcap", SessionSpec(duration_s=1.0, seed=4), video=False)
    common = dict(progress=False, num_workers=2)
    one = build_on_ray("event", root, tmp_path / "one", task_minutes=None, **common)
    argv = ["build", "event", str(root), "-o", str(tmp_path / "split"), "--engine", "ray", "--num-proc", "2",
            "--task-minutes", str(2 / 60)]  # fmt: skip
    assert main(argv) == 0
    assert "2 recording(s) converted, 0 already done" in capsys.readouterr().out
    record = read_record(str(tmp_path / "split"))
    shards = [str(tmp_path / "split" / name) for name in record.shards["train"]]
    assert len(one.shards["train"]) == 2 and len(shards) == 4  # long: 3 slices

    def table(paths: list[str]) -> list[dict[str, Any]]:
        return [row for p in paths for row in pq.read_table(p).to_pylist()]

    assert table(shards) == table(one.shards["train"])
    assert record.reports == [r.to_dict() for r in one.reports]
    again = build_on_ray("event", root, tmp_path / "split", task_minutes=2 / 60, **common)
    assert again.converted == [] and again.reused == ["train/long.mcap", "train/short.mcap"]
    assert [r.to_dict() for r in again.reports] == [r.to_dict() for r in one.reports]


def test_a_stage_of_ones_own_is_never_split_unless_it_says_where(long_recording: Path) -> None:
    class OwnStage(EventStage):
        def seam_rule(self) -> Any:
            return Stage.seam_rule(self)  # the base class's default

    ref = ref_of(long_recording)
    assert OwnStage().seam_rule() == "none"
    assert plan_windows(OwnStage(), ref, 1 * NS) is None
    assert plan_windows(EventStage(), ref, 1 * NS) is not None
