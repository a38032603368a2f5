"""Preview pages: one episode or FSL row as self-contained HTML (timeline, thumbnails of the right frames,
token text), rendered by a real headless Chromium (skipped when none is installed)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from owa_builders.cli import main
from owa_builders.demo.recordings import frame_index_of
from owa_builders.output import load_build
from owa_builders.publish import write_preview
from owa_builders.publish.preview import PreviewError, token_text
from owa_builders.training.frames import FrameLoader
from owa_fsl.tokenizer import FslTokens

DATA_URI = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"')


def thumbnails(page: str) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(m))).convert("RGB")) for m in DATA_URI.findall(page)
    ]


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:") for s in sources)  # nothing fetched from anywhere
    assert "<link" not in page and "@import" not in page


def test_fsl_row_preview_shows_its_frames_tokens_and_events(
    built_folders: dict[str, Path], corpus: Path, tmp_path: Path
) -> None:
    folder = built_folders["fsl"]
    result = write_preview(folder, tmp_path / "row.html", split="test", row=2)
    page = (tmp_path / "row.html").read_text()
    assert_self_contained(page)
    row = load_build(str(folder))["test"][2]
    tokens = FslTokens.load(folder / "tokenizer")
    real = [t for t, m in zip(row["input_ids"], row["attention_mask"]) if m]
    assert result.token_text == token_text(real, tokens)
    assert result.token_text.count("<image> x 64") == len(row["images"]) > 0
    assert "<image><image>" not in result.token_text and "<EVENT_START>" in result.token_text
    assert result.events == row["n_events"] and result.missing_frames == 0
    assert f"row 2 ({row['episode_path']}, interval 0)" in result.title
    expected = FrameLoader(str(corpus), output="numpy").load(row["images"])
    shown = thumbnails(page)
    assert len(shown) == result.thumbnails == len(row["images"])
    assert [frame_index_of(t) for t in shown] == [frame_index_of(f) for f in expected]
    assert len({frame_index_of(t) for t in shown}) == len(shown)  # every thumbnail a different frame
    assert f"real tokens: {len(real)}" in page and "Token text" in page


def test_event_episode_preview(built_folders: dict[str, Path], corpus: Path, tmp_path: Path) -> None:
    folder = built_folders["event"]
    result = write_preview(folder, tmp_path / "ep.html", episode="train/episode_002.mcap", max_thumbnails=10)
    page = (tmp_path / "ep.html").read_text()
    assert_self_contained(page)
    ds = load_build(str(folder))["train"].filter(lambda r: r["episode_path"] == "train/episode_002.mcap")
    topics = Counter(ds["topic"])
    assert result.events == ds.num_rows and result.token_text is None
    for topic, n in topics.items():
        assert f">{topic} ({n})</text>" in page  # one timeline lane per topic, with its count
    assert result.thumbnails == 10 and result.missing_frames == 0
    indices = [frame_index_of(t) for t in thumbnails(page)]
    assert indices == sorted(indices) and indices[0] == 0  # spread over the episode, first screen first
    assert indices[-1] == topics["screen"] - 1  # ...and the last one last
    assert f"Events ({min(400, ds.num_rows)} of {ds.num_rows})" in page


def test_binned_episode_preview_and_determinism(built_folders: dict[str, Path], tmp_path: Path) -> None:
    folder = built_folders["binned"]
    first = write_preview(folder, tmp_path / "a.html")
    write_preview(folder, tmp_path / "b.html")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    ds = load_build(str(folder))["train"]
    episode = ds.filter(lambda r: r["episode_path"] == ds[0]["episode_path"])
    actions = sum(len(a) for a in episode["actions"])
    screens = {s for state in episode["state"] for s in state}
    assert first.events == actions + len(screens) and first.thumbnails == 24 and first.missing_frames == 0


def test_missing_media_is_shown_not_hidden(built_folders: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = write_preview(built_folders["fsl"], tmp_path / "p.html", media_root=str(tmp_path / "empty"))
    page = (tmp_path / "p.html").read_text()
    assert result.missing_frames == result.thumbnails > 0
    assert result.notes == [
        f"{result.thumbnails} of {result.thumbnails} frames could not be decoded from {tmp_path / 'empty'} (drawn black)"
    ]
    assert '<div class="note">' in page and page.count('<figure class="missing">') == result.thumbnails
    assert all(t.max() == 0 for t in thumbnails(page))


def test_bad_selections_are_errors(
    built_folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.html"
    with pytest.raises(PreviewError, match="no split 'validation'"):
        write_preview(built_folders["event"], out, split="validation")
    with pytest.raises(PreviewError, match="no rows of episode 'nope.mcap'"):
        write_preview(built_folders["event"], out, episode="nope.mcap")
    with pytest.raises(PreviewError, match="row 99 out of range"):
        write_preview(built_folders["fsl"], out, row=99)
    with pytest.raises(PreviewError, match="--row selects an FSL sequence"):
        write_preview(built_folders["event"], out, row=0)
    assert main(["preview", str(built_folders["fsl"]), "-o", str(out), "--episode", "x.mcap"]) == 2
    assert re.search(r"^error: .*no row of episode 'x.mcap'", capsys.readouterr().err, re.M)
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# A real browser
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium (setup.sh installs it where apt is available); the tests skip without it."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            try:
                subprocess.run([path, "--version"], capture_output=True, timeout=60, check=True)
            except (OSError, subprocess.SubprocessError) as exc:
                pytest.skip(f"{path} is installed but does not run ({exc})")
            return path
    pytest.skip(
        "no Chromium found (install Debian's `chromium` package; setup.sh does where apt is available)"
    )


def headless(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1280,900", *args],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip


@pytest.mark.parametrize("stage", ["fsl", "event"])
def test_the_page_renders_in_chromium(
    chromium: str, built_folders: dict[str, Path], stage: str, tmp_path: Path
) -> None:
    page = tmp_path / f"{stage}.html"
    assert main(["preview", str(built_folders[stage]), "-o", str(page), "--max-thumbnails", "8"]) == 0
    shot = tmp_path / "shot.png"
    headless(chromium, tmp_path, f"--screenshot={shot}", page.as_uri())
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (900, 1280, 3)
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 50 and image.std() > 10  # text, lanes and thumbnails, not a blank page
    dom = headless(chromium, tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    assert "Timeline by topic" in dom and "train/episode_000.mcap" in dom
    assert dom.count('<img src="data:image/jpeg;base64,') == 8
    if stage == "fsl":
        assert "Token text" in dom and "&lt;image&gt; x 64" in dom
    else:
        assert ">mouse/raw (" in dom
