"""owa_builders.training.frames.source: a dataset's uris are confined to the media root (absolute paths,
URLs, ``..``, backslashes, symlinks escaping it), with an explicit opt-in for trusted data; checked on
real videos through the FrameLoader."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from owa_builders.demo.recordings import frame_index_of, write_video
from owa_builders.training.frames import FrameLoader, FrameLoadError
from owa_builders.training.frames.source import UriError, inside_path

MS = 1_000_000
W, H = 64, 48


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``base/root`` (the media root: ``a.mkv``, ``sub/b.mkv``, symlinks) and ``base/outside/secret.mkv``.

    Frames of ``a.mkv`` show their index; ``secret.mkv``'s show index + 100 (to tell them apart).
    """
    base = tmp_path_factory.mktemp("confine")
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    write_video(root / "a.mkv", [i * 50 for i in range(10)], W, H, gop=5)
    write_video(root / "sub" / "b.mkv", [i * 50 for i in range(10)], W, H, gop=5)
    _write_offset_video(outside / "secret.mkv")
    if hasattr(os, "symlink"):
        os.symlink(outside / "secret.mkv", root / "escape.mkv")  # a file link leaving the root
        os.symlink(outside, root / "outdir")  # a directory link leaving the root
        os.symlink(root / "sub" / "b.mkv", root / "inner.mkv")  # a link that stays inside
    return base


def _write_offset_video(path: Path) -> None:
    import av

    from owa_builders.demo.recordings import frame_image

    with av.open(str(path), mode="w", format="matroska") as c:
        s = c.add_stream("libx264", rate=20)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"preset": "ultrafast", "bframes": "0"}
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(frame_image(100 + i, W, H), format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _refused(loader: FrameLoader, uri: str, reason: str) -> FrameLoadError:
    with pytest.raises(FrameLoadError) as e:
        loader.load([("a.mkv", 0), (uri, 0)])
    assert e.value.uri == uri and repr(uri) in str(e.value) and reason in e.value.reason
    assert e.value.ref_index == 1  # the reference's position in the call
    return e.value


def test_inside_path_normalises_and_refuses() -> None:
    assert inside_path("a.mkv") == "a.mkv"
    assert inside_path("./sub//b.mkv") == "sub/b.mkv"
    assert inside_path("sub/x/../b.mkv") == "sub/b.mkv"
    assert inside_path("sub\\b.mkv") == "sub/b.mkv"  # made on Windows
    for uri, reason in [
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share\\x.mkv", "absolute path"),
        ("C:\\videos\\x.mkv", "absolute path"),
        ("c:x.mkv", "absolute path"),
        ("file:///etc/passwd", "URL"),
        ("file:/etc/passwd", "URL"),
        ("s3://bucket/x.mkv", "URL"),
        ("hf://datasets/org/name/x.mkv", "URL"),
        ("http://127.0.0.1:1/x.mkv", "URL"),
        ("data:video/x-matroska;base64,AAAA", "URL"),
        ("../outside/secret.mkv", "'..'"),
        ("sub/../../outside/secret.mkv", "'..'"),
        ("..\\outside\\secret.mkv", "'..'"),
        ("sub/./../..", "'..'"),
        ("a.mkv\x00.png", "NUL"),
        (".", "names no file"),
        ("sub/..", "names no file"),
    ]:
        with pytest.raises(UriError, match=reason):
            inside_path(uri)


def test_absolute_paths_and_file_urls_are_refused_unless_opted_in(tree: Path) -> None:
    root, secret = tree / "root", tree / "outside" / "secret.mkv"
    loader = FrameLoader(root, output="numpy")
    for uri, reason in [
        (str(secret), "absolute path"),
        (secret.as_uri(), "URL"),  # file:///...
        ("file:" + str(secret), "URL"),
        (str(root / "a.mkv"), "absolute path"),  # even one that points inside the root
    ]:
        _refused(loader, uri, reason)
        with pytest.raises(FrameLoadError, match="allow_outside_root"):
            loader.index(uri)
    assert loader.stats.indexes_built == 1 and loader.cache.open_keys() == ["a.mkv"]  # nothing else opened
    trusted = FrameLoader(root, output="numpy", allow_outside_root=True)
    for uri in (str(secret), secret.as_uri()):
        assert frame_index_of(trusted.load_one(uri, 3 * 50 * MS)) == 103
    assert "allow_outside_root=True" in repr(trusted) and "allow_outside_root" not in repr(loader)


def test_dotdot_and_backslashes_cannot_leave_the_root(tree: Path) -> None:
    root = tree / "root"
    loader = FrameLoader(root, output="numpy")
    for uri in ("../outside/secret.mkv", "sub/../../outside/secret.mkv", "..\\outside\\secret.mkv"):
        _refused(loader, uri, "'..'")
    # normalised paths that stay inside are served, backslashes included
    for uri in ("sub/../a.mkv", "./a.mkv", "sub\\b.mkv", "sub//b.mkv"):
        assert frame_index_of(loader.load_one(uri, 2 * 50 * MS)) == 2, uri
    trusted = FrameLoader(root, output="numpy", allow_outside_root=True)
    assert frame_index_of(trusted.load_one("../outside/secret.mkv", 0)) == 100


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_leaving_the_root_are_refused(tree: Path) -> None:
    root = tree / "root"
    loader = FrameLoader(root, output="numpy")
    _refused(loader, "escape.mkv", "symlink")
    _refused(loader, "outdir/secret.mkv", "symlink")
    assert frame_index_of(loader.load_one("inner.mkv", 4 * 50 * MS)) == 4  # a link within the root is fine
    trusted = FrameLoader(root, output="numpy", allow_outside_root=True)
    assert frame_index_of(trusted.load_one("escape.mkv", 0)) == 100
    # a root reached through a symlink is resolved first: its own files are inside
    link_root = tree / "root-link"
    if not link_root.exists():
        os.symlink(root, link_root)
    assert frame_index_of(FrameLoader(link_root, output="numpy").load_one("a.mkv", 50 * MS)) == 1
    _refused(FrameLoader(link_root, output="numpy"), "escape.mkv", "symlink")


def test_url_uris_are_refused_without_touching_the_network(tree: Path) -> None:
    loader = FrameLoader(tree / "root", output="numpy", storage_options={"anon": True})
    t0 = time.perf_counter()
    for uri in (
        "s3://bucket/x.mkv",
        "hf://datasets/org/name/x.mkv",
        "http://127.0.0.1:9/x.mkv",
        "gs://b/x.mkv",
    ):
        _refused(loader, uri, "URL")
    assert time.perf_counter() - t0 < 5  # refused before any connection attempt


def test_url_uri_opt_in_through_fsspec(tree: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    base = f"/confine-{uuid.uuid4().hex}"
    fs.pipe(f"{base}/secret.mkv", (tree / "outside" / "secret.mkv").read_bytes())
    try:
        uri = f"memory://{base}/secret.mkv"
        _refused(FrameLoader(tree / "root", output="numpy"), uri, "URL")
        trusted = FrameLoader(tree / "root", output="numpy", allow_outside_root=True)
        assert frame_index_of(trusted.load_one(uri, 50 * MS)) == 101
    finally:
        fs.rm(base, recursive=True)


def test_remote_root_confines_too(tree: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    base = f"/confine-{uuid.uuid4().hex}"
    fs.pipe(f"{base}/root/a.mkv", (tree / "root" / "a.mkv").read_bytes())
    fs.pipe(f"{base}/other/secret.mkv", (tree / "outside" / "secret.mkv").read_bytes())
    try:
        loader = FrameLoader(f"memory://{base}/root", output="numpy")
        assert frame_index_of(loader.load_one("a.mkv", 50 * MS)) == 1
        _refused(loader, "../other/secret.mkv", "'..'")
        _refused(loader, f"{base}/other/secret.mkv", "absolute path")  # was read relative to the root
        trusted = FrameLoader(f"memory://{base}/root", output="numpy", allow_outside_root=True)
        assert frame_index_of(trusted.load_one("../other/secret.mkv", 0)) == 100
    finally:
        fs.rm(base, recursive=True)


def test_refused_uri_with_placeholders_is_counted_not_read(tree: Path) -> None:
    loader = FrameLoader(tree / "root", output="numpy", on_missing="placeholder", placeholder_size=(W, H))
    got = loader.load([("a.mkv", 0), (str(tree / "outside" / "secret.mkv"), 0), ("../outside/secret.mkv", 0)])
    assert frame_index_of(got[0]) == 0
    assert all(g.shape == (H, W, 3) and not g.any() for g in got[1:])
    assert loader.stats.placeholders == 2 and loader.stats.indexes_built == 1


# ------------------------------------------------------------------------------------------
# What counts as a video
# ------------------------------------------------------------------------------------------
def _write(path: Path, fmt: str, codec: str = "libx264", n: int = 6, pix_fmt: str = "yuv420p") -> Path:
    import av

    from owa_builders.demo.recordings import frame_image

    with av.open(str(path), mode="w", format=fmt) as c:
        s = c.add_stream(codec, rate=20)
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frame_image(i, W, H), format="rgb24")
            if pix_fmt != "yuv420p":
                frame = frame.reformat(format=pix_fmt)
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def not_videos(tmp_path_factory: pytest.TempPathFactory, tree: Path) -> Path:
    import io

    import av
    import numpy as np
    from PIL import Image

    from owa_builders.demo.recordings import frame_image

    root = tmp_path_factory.mktemp("not-videos")
    image = Image.fromarray(frame_image(0, W, H))
    image.save(root / "png.mkv", format="PNG")  # images renamed as videos
    image.save(root / "jpeg.mkv", format="JPEG")
    image.save(root / "still.png", format="PNG")
    image.save(root / "bmp.mkv", format="BMP")
    _write(root / "anim.gif", "gif", codec="gif", n=3, pix_fmt="rgb8")
    _write(root / "raw.h264", "h264")  # an elementary stream: no container, no timestamps
    # a playlist naming a file outside the root (FFmpeg's hls demuxer would open it)
    (root / "list.m3u8").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:{tree / 'outside' / 'secret.mkv'}\n#EXT-X-ENDLIST\n"
    )
    # audio with cover art: the only "video" stream is an attached picture
    buf = io.BytesIO()
    image.save(buf, format="JPEG")
    with av.open(str(root / "cover.mp4"), "w", format="mp4") as c:
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
        v = c.add_stream("mjpeg")
        v.width, v.height, v.pix_fmt = W, H, "yuvj420p"
        v.disposition = av.stream.Disposition.attached_pic
        packet = av.Packet(buf.getvalue())
        packet.stream, packet.pts, packet.dts, packet.is_keyframe = v, 0, 0, True
        c.mux(packet)
        for k in range(4):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, k * 1024
            for q in a.encode(af):
                c.mux(q)
        for q in a.encode():
            c.mux(q)
    for name, fmt in [("v.mp4", "mp4"), ("v.avi", "avi"), ("v.flv", "flv"), ("v.mov", "mov")]:
        _write(root / name, fmt)
    return root


def test_images_playlists_and_raw_streams_are_not_videos(not_videos: Path) -> None:
    loader = FrameLoader(not_videos, output="numpy")
    for uri, what in [
        ("png.mkv", "an image file (PNG)"),
        ("jpeg.mkv", "an image file (JPEG)"),
        ("bmp.mkv", "an image file (BMP)"),
        ("still.png", "an image file (PNG)"),
        ("anim.gif", "an image file (GIF)"),
        ("list.m3u8", "an HLS playlist"),
        ("raw.h264", "not a video container"),
        ("cover.mp4", "no video stream (only an attached picture)"),
    ]:
        with pytest.raises(FrameLoadError) as e:
            loader.load_one(uri, 0)
        assert what in e.value.reason and e.value.uri == uri and repr(uri) in str(e.value), (uri, e.value)
        if "image" in what:
            assert "video containers only" in e.value.reason
    assert loader.stats.indexes_built == 0 and len(loader.cache) == 0
    lenient = FrameLoader(not_videos, output="numpy", on_missing="placeholder", resize=(W, H))
    got = lenient.load([("png.mkv", 0), ("jpeg.mkv", 0)])
    assert all(g.shape == (H, W, 3) and not g.any() for g in got) and lenient.stats.placeholders == 2


def test_video_containers_are_read(not_videos: Path) -> None:
    import av

    loader = FrameLoader(not_videos, output="numpy", resume_within=0)
    for name in ("v.mp4", "v.avi", "v.flv", "v.mov"):
        with av.open(str(not_videos / name)) as c:
            stream = c.streams.video[0]
            times = [int(f.pts * stream.time_base * 1_000_000_000) for f in c.decode(stream)]
        assert len(times) == 6
        for i in (5, 0, 3):
            assert frame_index_of(loader.load_one(name, times[i])) == i, name
