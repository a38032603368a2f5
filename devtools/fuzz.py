"""Fuzzing the conversion stages with malformed recordings: case generators, the oracle, a runner.

``python -m devtools.fuzz --minutes N [--seed S] [--stages event,binned,fsl]`` runs random
cases until the time is up and prints how many stage runs ended in each outcome; every failing case
is saved (the files and ``case.json``) under ``--out`` and can be run again with ``--replay DIR``.
``tests/test_fuzz.py`` drives the same generators with hypothesis, a bounded number of cases.

**Cases** (:class:`Case`): one ``.mcap`` (plus, for some, a video beside it) and what is really in
it, known independently of the reader under test:

- *structural* cases are written with the real writers: ``mcap-owa-support``'s ``OWAMcapWriter``
  for valid content, ``mcap``'s ``Writer`` for content the OWA writer refuses (payloads nested
  deeper than JSON writers allow, legacy ``pts`` that are not integers, ``vk`` or ``last_x`` of
  the wrong type, log times at or past 2**63, time spans of days, corrupt ``ChunkIndex`` or
  ``Statistics`` records edited in place, zero messages, broken videos, ...). The messages
  written are the truth.
- *byte mutations* (flip, set, zero, insert, delete, truncate, append) of generated recordings. The
  truth comes from ``mcap``'s own stream reader on the intact file: the log times of every
  message, per chunk in file order. A correct read of a damaged file gets all of them, or (having
  said so in a warning) those of a file-order prefix of complete chunks, or is an error.

**Outcomes** of one stage run (:data:`GOOD` and :data:`BAD`): each case goes through
:func:`owa_event.pipeline.convert` with several stages (:func:`make_runs`: the event stage
lossless and with resampling plus an interval selection, the binned stage, the FSL stage), each
with ``on_bad_file="error"`` and ``"skip"``, and optionally through ``datasets.load_dataset``.

- ``ok``: rows were made, every topic is accounted for (``messages_in == out + dropped + merged``,
  every count >= 0), the messages counted in are the messages really in the file (see above),
  the lossless event rows are exactly those messages' times, in time order, and a claim of the
  file that contradicts its contents (``Statistics``) was warned about;
- ``error``: an error of ours (:class:`~owa_event.errors.OwaError`) whose message names the file;
- ``skipped``: with ``on_bad_file="skip"``, a file whose ``"error"`` run failed was skipped whole:
  no exception, no row, ``report.skipped`` set, a ``SkippedFileWarning``;
- failures: ``crash`` (an exception that is not ours, or the child process died), ``unnamed``
  (ours, not naming the file), ``hang`` (no result within the time limit), ``loss`` (an ``ok``
  that fails a check above), ``accepted`` (a file whose content the format forbids converted
  without an error), ``skip-broken`` (skip mode raised, skipped a good file, or its rows differ).

Every stage run happens in a forked child with a time limit (a hang cannot be interrupted from
Python otherwise); stages are built once in the parent, so the FSL tokenizer is not rebuilt.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import shutil
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from owa_builders.demo.recordings import MS, NS, RawEvent, SessionSpec, session_events, write_video
from owa_event.account import RecordingReport
from owa_event.events import TOPIC_TYPES
from owa_event.pipeline import RecordingRef, Stage, convert

DAY_NS = 86_400 * NS
#: Outcomes that are correct behaviour, and those that are failures (see the module docstring).
GOOD = ("ok", "error", "skipped")
BAD = ("crash", "unnamed", "hang", "loss", "accepted", "skip-broken")
#: Seconds one stage run may take on one case before it counts as a hang.
DEFAULT_SECONDS = 20.0
LIBRARY = "mcap-owa-support 0.6.6; mcap 1.3.0"
T0 = 1_748_854_800 * NS  # 2025-06-02 09:00:00 UTC

# ------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One recording to convert, and the truth about it.

    ``chunks``: the log times (ns) of every message really in the file, per file-order chunk (one
    group when the chunking does not matter). ``recoverable``: damage after which a read may keep a
    file-order prefix of complete chunks, saying so in a warning; otherwise a read must get every
    message. ``must_fail``: the content breaks the format (a log time outside [2000, 2100), a screen
    ``pts`` that is not an int64 ns, ...) in a message of ``bad_topic`` (None: any topic), so a stage
    that reads that topic must end in an error. ``claims_lie``: the file's Statistics record
    contradicts its contents, so an ``ok`` must come with a warning. ``media_missing``: the
    screen video is not there, so an ``ok`` must report it.
    """

    kind: str
    what: str
    data: bytes = field(repr=False)
    chunks: tuple[tuple[int, ...], ...]
    episode_path: str = "rec.mcap"
    recoverable: bool = False
    must_fail: bool = False
    bad_topic: str | None = None
    claims_lie: bool = False
    video: bytes | None = field(default=None, repr=False)
    video_is_folder: bool = False
    media_missing: bool | None = None

    @property
    def times(self) -> list[int]:
        """Every message's log time, sorted."""
        return sorted(t for chunk in self.chunks for t in chunk)

    @property
    def messages(self) -> int:
        return sum(len(c) for c in self.chunks)

    def video_path(self) -> str:
        """Where the video goes, relative to the dataset root (beside the .mcap, same stem)."""
        return self.episode_path[: -len(".mcap")] + ".mkv"

    def save(self, folder: str | os.PathLike[str], problems: Sequence[str] = ()) -> Path:
        """Write the case to ``folder`` (``case.json`` + ``data/<episode_path>`` [+ the video]) for a replay."""
        out = Path(folder)
        write_files(self, out / "data")
        meta = {k: v for k, v in asdict(self).items() if k not in ("data", "video")}
        meta["has_video"] = self.video is not None
        meta["problems"] = list(problems)
        (out / "case.json").write_text(json.dumps(meta, indent=1))
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Case:
        """The case saved by :meth:`save` in ``folder``."""
        root = Path(folder)
        meta = json.loads((root / "case.json").read_text())
        meta.pop("problems", None)
        has_video = meta.pop("has_video")
        meta["chunks"] = tuple(tuple(c) for c in meta["chunks"])
        data = (root / "data" / meta["episode_path"]).read_bytes()
        video = None
        if has_video and not meta["video_is_folder"]:
            video = (root / "data" / (meta["episode_path"][: -len(".mcap")] + ".mkv")).read_bytes()
        elif has_video:
            video = b""
        return cls(data=data, video=video, **meta)


def write_files(case: Case, root: str | os.PathLike[str]) -> RecordingRef:
    """Write the case's files under the dataset root ``root``; its :class:`RecordingRef`."""
    root = Path(root)
    path = root / case.episode_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.data)
    if case.video is not None:
        video = root / case.video_path()
        if case.video_is_folder:
            video.mkdir(exist_ok=True)
        else:
            video.write_bytes(case.video)
    return RecordingRef(str(path), case.episode_path, str(root))


@dataclass(frozen=True)
class Msg:
    """One message to write with ``mcap``'s Writer: any topic, schema name, encoding and payload bytes."""

    topic: str
    log_time: int
    data: bytes
    schema: str = ""
    encoding: str = "json"

    @classmethod
    def of(cls, topic: str, log_time: int, fields: Any, schema: str | None = None) -> Msg:
        data = fields if isinstance(fields, bytes) else orjson.dumps(fields)
        return cls(
            topic, log_time, data, schema if schema is not None else TOPIC_TYPES.get(topic, f"x/{topic}")
        )


def write_raw(
    messages: Iterable[Msg],
    *,
    profile: str = "owa",
    library: str = LIBRARY,
    chunked: bool = True,
    chunk_size: int = 4096,
    compression: str = "zstd",
    channels: Iterable[tuple[str, str]] = (),
) -> bytes:
    """An MCAP file written by ``mcap``'s Writer (file order = the order given). ``channels``: extra
    ``(topic, schema)`` channels registered without messages. A message of topic ``"#<id>"`` is written
    on channel id ``<id>`` without registering it."""
    from mcap.writer import CompressionType
    from mcap.writer import Writer as McapWriter

    buf = io.BytesIO()
    writer = McapWriter(
        buf,
        chunk_size=chunk_size,
        compression=CompressionType[compression.upper() or "NONE"],
        use_chunking=chunked,
    )
    writer.start(profile=profile, library=library)
    schema_ids: dict[str, int] = {}
    channel_ids: dict[tuple[str, str, str], int] = {}

    def channel(topic: str, schema: str, encoding: str) -> int:
        key = (topic, schema, encoding)
        if key not in channel_ids:
            if schema and schema not in schema_ids:
                schema_ids[schema] = writer.register_schema(name=schema, encoding="jsonschema", data=b"{}")
            channel_ids[key] = writer.register_channel(
                topic=topic, message_encoding=encoding, schema_id=schema_ids.get(schema, 0)
            )
        return channel_ids[key]

    for topic, schema in channels:
        channel(topic, schema, "json")
    for m in messages:
        cid = int(m.topic[1:]) if m.topic.startswith("#") else channel(m.topic, m.schema, m.encoding)
        writer.add_message(cid, log_time=m.log_time, data=m.data, publish_time=m.log_time)
    writer.finish()
    return buf.getvalue()


def write_owa(events: Sequence[RawEvent], *, chunk_size: int = 4096, compression: str = "zstd") -> bytes:
    """Current-layout ``events`` written by mcap-owa-support's ``OWAMcapWriter`` (file order = the order given)."""
    from mcap.writer import CompressionType
    from mcap_owa.highlevel import OWAMcapWriter
    from owa.core import MESSAGES

    with tempfile.TemporaryDirectory(prefix="owa-fuzz-w-") as folder:
        path = os.path.join(folder, "w.mcap")
        with OWAMcapWriter(
            path, chunk_size=chunk_size, compression=CompressionType[compression.upper() or "NONE"]
        ) as writer:
            for e in events:
                writer.write_message(
                    MESSAGES[TOPIC_TYPES[e.topic]](**e.fields), topic=e.topic, timestamp=e.timestamp_ns
                )
        return Path(path).read_bytes()


def chunk_times(data: bytes) -> tuple[tuple[int, ...], ...]:
    """The log times of an intact MCAP file's messages per chunk in file order (a loose message is a
    group of its own), read with ``mcap``'s stream reader: the truth for byte mutations."""
    from mcap.records import Chunk, Message
    from mcap.stream_reader import StreamReader, breakup_chunk

    groups: list[tuple[int, ...]] = []
    for record in StreamReader(io.BytesIO(data), emit_chunks=True, validate_crcs=True).records:
        if isinstance(record, Chunk):
            groups.append(
                tuple(r.log_time for r in breakup_chunk(record, validate_crc=True) if isinstance(r, Message))
            )
        elif isinstance(record, Message):
            groups.append((record.log_time,))
    return tuple(groups)


@functools.lru_cache(maxsize=64)
def backbone(seed: int = 0, duration_s: float = 1.0, video_name: str = "rec.mkv") -> tuple[RawEvent, ...]:
    """A short realistic session (every OWAMcap topic) whose screen messages point at ``video_name``."""
    spec = SessionSpec(
        duration_s=duration_s, seed=seed, start_ns=T0, fps=10, raw_mouse_hz=60, mouse_hz=20, state_hz=2
    )
    events, _ = session_events(spec)
    out = []
    for e in events:
        if e.topic == "screen":
            e = RawEvent(
                e.topic,
                e.timestamp_ns,
                {**e.fields, "media_ref": {**e.fields["media_ref"], "uri": video_name}},
            )
        out.append(e)
    return tuple(out)


def backbone_msgs(seed: int = 0, duration_s: float = 1.0) -> list[Msg]:
    return [Msg.of(e.topic, e.timestamp_ns, e.fields) for e in backbone(seed, duration_s)]


def injected(
    kind: str,
    what: str,
    bad: Sequence[Msg],
    *,
    seed: int = 0,
    episode_path: str = "rec.mcap",
    must_fail: bool = False,
    bad_topic: str | None = None,
) -> Case:
    """A generated session (raw-written) with ``bad`` messages added, all in time order in the file."""
    msgs = sorted(backbone_msgs(seed) + list(bad), key=lambda m: m.log_time)
    data = write_raw(msgs)
    return Case(
        kind, what, data, (tuple(m.log_time for m in msgs),), episode_path=episode_path,
        must_fail=must_fail, bad_topic=bad_topic,
    )  # fmt: skip


def _at(fraction: float) -> int:
    """A log time ``fraction`` (in [0, 1]) into the backbone session (1 s long), off the ms grid."""
    return T0 + int(fraction * 1_000 * MS) + 7


# -- payloads that orjson reads but cannot write back (crash class 1) ----------------------------
NESTING_DEPTHS = (252, 253, 254, 300, 1022, 1023, 1100)
NESTING_WHERE = ("screen-rebased", "screen-media-ref", "mouse-raw-move", "keyboard", "window")


def nested(depth: int) -> bytes:
    """A JSON value nested ``depth`` arrays deep."""
    return b"[" * depth + b"]" * depth


def deep_nesting_case(depth: int, where: str, seed: int = 0) -> Case:
    """A message with a field nested ``depth`` levels deep. ``screen-*``: a screen message whose relative uri
    is rebased (the file is in a subfolder), so the payload must be written back; ``mouse-raw-move``: a
    pure raw move after the session's last one, so it ends a sum under a mouse/raw rate (the sum is written
    back into it)."""
    t = _at(1.0) + 2 * MS if where == "mouse-raw-move" else _at(0.37)
    deep = nested(depth)
    episode_path = "sub/dir/rec.mcap" if where.startswith("screen") else "rec.mcap"
    if where == "screen-rebased":
        data = (
            b'{"utc_ns":%d,"source_shape":[4,4],"shape":[4,4],"media_ref":{"uri":"rec.mkv","pts_ns":5},"deep":%s}'
            % (t, deep)
        )
        msg = Msg("screen", t, data, TOPIC_TYPES["screen"])
    elif where == "screen-media-ref":
        data = b'{"utc_ns":%d,"media_ref":{"uri":"rec.mkv","pts_ns":5,"deep":%s}}' % (t, deep)
        msg = Msg("screen", t, data, TOPIC_TYPES["screen"])
    elif where == "mouse-raw-move":
        data = b'{"us_flags":0,"last_x":1,"last_y":2,"button_flags":0,"button_data":0,"deep":%s}' % deep
        msg = Msg("mouse/raw", t, data, TOPIC_TYPES["mouse/raw"])
    elif where == "keyboard":
        msg = Msg("keyboard", t, b'{"event_type":"press","vk":65,"deep":%s}' % deep, TOPIC_TYPES["keyboard"])
    else:
        msg = Msg(
            "window", t, b'{"title":"w","rect":[0,0,1,1],"hWnd":1,"deep":%s}' % deep, TOPIC_TYPES["window"]
        )
    twin = Msg(msg.topic, t + 1000, msg.data, msg.schema)  # a second one right after: sums happen
    return injected(
        "deep_nesting", f"depth {depth} in {where}", [msg, twin], seed=seed, episode_path=episode_path
    )


# -- legacy and current screen media references (crash classes 1, 2, 5) --------------------------
#: JSON texts for a ``pts``: (text, valid as a legacy pts, valid as a current ``pts_ns``).
PTS_VALUES: tuple[tuple[bytes, bool, bool], ...] = (
    (b"1e300", False, False),
    (b"[1]", False, False),
    (b'{"a":1}', False, False),
    (b'"12"', False, False),
    (b"-1", False, False),
    (b"1.5", False, False),
    (b"true", False, False),
    (b"1e-300", False, False),
    (b"9223372036854775807", True, True),
    (b"9223372036854775808", False, False),
    (b"18446744073709551615", False, False),
    (b"18446744073709551616", False, False),  # orjson reads it as a float
    (b"null", True, True),
    (b"0", True, True),
    (b"1000", True, True),
)
LEGACY_LAYOUTS = ("0.3.2", "0.4.2", "0.5.0")


def legacy_pts_case(pts: bytes, layout: str, valid: bool, seed: int = 0) -> Case:
    """A legacy screen message (``layout``'s schema name and payload) whose ``pts`` is the JSON text ``pts``."""
    t = _at(0.61)
    if layout == "0.3.2":
        schema, data = "owa.env.gst.msg.ScreenEmitted", b'{"path":"rec.mkv","pts":%s,"utc_ns":%d}' % (pts, t)
    elif layout == "0.4.2":
        schema = TOPIC_TYPES["screen"]
        data = b'{"utc_ns":%d,"original_shape":[4,4],"shape":[4,4],"path":"rec.mkv","pts":%s}' % (t, pts)
    else:
        schema = TOPIC_TYPES["screen"]
        data = b'{"utc_ns":%d,"media_ref":{"type":"external_video","path":"rec.mkv","pts_ns":%s}}' % (t, pts)
    return injected(
        "legacy_pts", f"{layout} screen pts {pts.decode()}", [Msg("screen", t, data, schema)], seed=seed,
        episode_path="sub/rec.mcap", must_fail=not valid, bad_topic="screen",
    )  # fmt: skip


#: JSON texts for a current ``media_ref.uri``.
URI_VALUES: tuple[bytes, ...] = (
    b'"../x.mkv"', b'"/abs/x.mkv"', b'"file:///etc/passwd"', b'"data:video/mp4;base64,AAAA"', b'"C:\\\\x.mkv"',
    b'"a\\\\b.mkv"', b"5", b"[1]", b"null", b'""', b'"."', b'".."', b'"sub/../../x.mkv"', b'"\\u0000x.mkv"',
)  # fmt: skip


def media_ref_case(pts: bytes | None, uri: bytes, must_fail: bool, seed: int = 0) -> Case:
    """A current-layout screen message with the JSON texts ``pts`` (None: absent) and ``uri``."""
    t = _at(0.42)
    ref = b'{"uri":%s%s}' % (uri, b"" if pts is None else b',"pts_ns":' + pts)
    data = b'{"utc_ns":%d,"source_shape":[4,4],"shape":[4,4],"media_ref":%s}' % (t, ref)
    return injected(
        "media_ref", f"media_ref {ref.decode(errors='replace')}", [Msg("screen", t, data, TOPIC_TYPES["screen"])],
        seed=seed, episode_path="sub/rec.mcap", must_fail=must_fail, bad_topic="screen",
    )  # fmt: skip


# -- fields of the wrong type (crash classes 3, 4) ---------------------------------------------
#: JSON texts of wrong-typed values for ints (vk, deltas, flags, coordinates).
ODD_VALUES: tuple[bytes, ...] = (
    b"[1]", b'{"a":1}', b'"65"', b'"3"', b"65.0", b"1.5", b"true", b"null", b"-1", b"256", b"1099511627776",
    b"9223372036854775807", b"-9223372036854775808", b"18446744073709551615", b"1e300", b"[]", b'{"vk":65}',
)  # fmt: skip
#: (topic, template with {} for the odd value): every field that a stage interprets.
FIELD_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("keyboard", '{"event_type":"press","vk":%s}'),
    ("keyboard", '{"event_type":"release","vk":%s}'),
    ("keyboard", '{"event_type":%s,"vk":65}'),
    ("mouse/raw", '{"us_flags":0,"last_x":%s,"last_y":1,"button_flags":0,"button_data":0}'),
    ("mouse/raw", '{"us_flags":0,"last_x":1,"last_y":%s,"button_flags":0,"button_data":0}'),
    ("mouse/raw", '{"us_flags":0,"last_x":1,"last_y":1,"button_flags":%s,"button_data":0}'),
    ("mouse/raw", '{"us_flags":%s,"last_x":1,"last_y":1,"button_flags":0,"button_data":0}'),
    ("mouse/raw", '{"us_flags":0,"last_x":0,"last_y":0,"button_flags":1024,"button_data":%s}'),
    ("mouse", '{"event_type":"move","x":%s,"y":1}'),
    ("mouse", '{"event_type":%s,"x":1,"y":1}'),
    ("mouse", '{"event_type":"click","x":1,"y":1,"button":%s,"pressed":true}'),
    ("mouse", '{"event_type":"click","x":1,"y":1,"button":"left","pressed":%s}'),
    ("mouse", '{"event_type":"scroll","x":1,"y":1,"dx":%s,"dy":1}'),
    ("screen", '{"utc_ns":%s,"source_shape":[4,4],"shape":[4,4],"media_ref":{"uri":"rec.mkv","pts_ns":1}}'),
    ("screen", '{"utc_ns":1,"source_shape":%s,"shape":%s,"media_ref":{"uri":"rec.mkv","pts_ns":1}}'),
    ("window", '{"title":%s,"rect":[0,0,1,1],"hWnd":1}'),
    ("window", '{"title":"w","rect":%s,"hWnd":%s}'),
    ("keyboard/state", '{"buttons":%s}'),
    ("mouse/state", '{"x":%s,"y":1,"buttons":%s}'),
)


def odd_field_case(topic: str, template: str, value: bytes, repeats: int = 3, seed: int = 0) -> Case:
    """``repeats`` messages of ``topic`` (a few ms apart, so rate rules, sums and auto-repeat all apply)
    with ``value`` (JSON text) in the template's field(s)."""
    data = template.replace("%s", value.decode()).encode()
    t = _at(0.5)
    bad = [Msg(topic, t + i * 3 * MS, data, TOPIC_TYPES[topic]) for i in range(repeats)]
    return injected("odd_field", f"{topic} {data.decode()} x{repeats}", bad, seed=seed)


# -- payloads that are not what JSON-for-rows holds ------------------------------------------------
PAYLOADS: tuple[bytes, ...] = (
    b"", b"{", b"[]", b"1", b'"s"', b"null", b"\xef\xbb\xbf{}", b'{"a":NaN}', b'{"a":1}{"b":2}', b"\xff\xfe",
    b'{"a":"\xff"}', b'{"a":1,"a":2}', b'{"a":"\\ud800"}', b'{"a":1e400}', b" {} ", b'{"a":"' + b"x" * 2_000_000 + b'"}',
    b'{"\\u0000":0}', b'{"event_type":"press","vk":65}\x00',
)  # fmt: skip
PAYLOAD_TOPICS = ("keyboard", "mouse", "mouse/raw", "screen", "window", "keyboard/state", "custom/thing")


def payload_case(payload: bytes, topic: str, seed: int = 0) -> Case:
    """One message of ``topic`` with the raw bytes ``payload``."""
    t = _at(0.55)
    show = payload[:40].decode(errors="replace") + ("..." if len(payload) > 40 else "")
    return injected(
        "payload", f"{topic} payload {show!r}", [Msg.of(topic, t, payload)], seed=seed, bad_topic=topic
    )


# -- log times (crash class 5, the span check) ----------------------------------------------------
MIN_NS = 946_684_800 * NS  # 2000-01-01
MAX_NS = 4_102_444_800 * NS  # 2100-01-01
U64 = 2**64 - 1
#: name -> (function of the backbone's log time -> new log time, whether the format forbids the result).
TIME_SHIFTS: dict[str, tuple[Callable[[int, int, int], int], bool]] = {
    "all at or past 2**63": (lambda t, i, n: 2**63 + (t - T0), True),
    "all near uint64 max": (lambda t, i, n: U64 - (n - i) * MS, True),
    "one at 0": (lambda t, i, n: 0 if i == n // 2 else t, True),
    "first at 0": (lambda t, i, n: 0 if i == 0 else t, True),
    "one at 2**63": (lambda t, i, n: 2**63 if i == n // 3 else t, True),
    "last at uint64 max": (lambda t, i, n: U64 if i == n - 1 else t, True),
    "all before 2000": (lambda t, i, n: t - T0 + MIN_NS - DAY_NS, True),
    "all from 2100": (lambda t, i, n: t - T0 + MAX_NS, True),
    "one 8 days later": (lambda t, i, n: t + 8 * DAY_NS if i == n // 2 else t, True),
    "last 7 days + 1 ns later": (lambda t, i, n: t + 7 * DAY_NS + 1 if i == n - 1 else t, True),
    "all just before 2100": (lambda t, i, n: t - T0 + MAX_NS - 2 * NS, False),
    "all just from 2000": (lambda t, i, n: t - T0 + MIN_NS, False),
    "last 6 days later": (lambda t, i, n: t + 6 * DAY_NS if i == n - 1 else t, False),
}


def log_time_case(shift: str, seed: int = 0, file_order_shuffled: bool = False) -> Case:
    """The backbone with its log times changed by :data:`TIME_SHIFTS` ``[shift]``."""
    fn, forbidden = TIME_SHIFTS[shift]
    msgs = backbone_msgs(seed)
    n = len(msgs)
    msgs = [replace(m, log_time=fn(m.log_time, i, n)) for i, m in enumerate(msgs)]
    if file_order_shuffled:
        random.Random(seed).shuffle(msgs)
    data = write_raw(msgs)
    what = f"log times: {shift}" + (" (file order shuffled)" if file_order_shuffled else "")
    return Case("log_times", what, data, (tuple(m.log_time for m in msgs),), must_fail=forbidden)


def span_case(messages: int = 22, span_ns: int = 7 * DAY_NS, seed: int = 0) -> Case:
    """``messages`` valid input and screen messages spread evenly over ``span_ns`` (allowed: no gap > 7 days):
    the binned stage's cost must follow the messages, not the span."""
    rng = random.Random(seed)
    msgs = []
    for i in range(messages):
        t = T0 + i * span_ns // max(1, messages - 1)
        if i % 3 == 0:
            fields: dict[str, Any] = {
                "utc_ns": t,
                "source_shape": [4, 4],
                "shape": [4, 4],
                "media_ref": {"uri": "rec.mkv", "pts_ns": i * MS},
            }
            msgs.append(Msg.of("screen", t, fields))
        else:
            msgs.append(
                Msg.of("keyboard", t, {"event_type": rng.choice(["press", "release"]), "vk": 65 + i % 3})
            )
    return Case(
        "span",
        f"{messages} messages over {span_ns / DAY_NS:g} days",
        write_raw(msgs),
        (tuple(m.log_time for m in msgs),),
    )


# -- summaries that lie (crash class 7, silent losses) --------------------------------------------
_FOOTER = struct.Struct("<BQQQI")
OP_CHUNK_INDEX, OP_STATISTICS = 0x08, 0x0B


def summary_records(data: bytes) -> list[tuple[int, int, int]]:
    """``(opcode, file offset, body length)`` of every record in the summary section of an intact file."""
    footer = len(data) - 8 - _FOOTER.size
    _, _, start, _, _ = _FOOTER.unpack_from(data, footer)
    out, pos = [], start
    while pos < footer:
        op, length = struct.unpack_from("<BQ", data, pos)
        out.append((op, pos, length))
        pos += 9 + length
    return out


def fix_summary_crc(data: bytearray) -> None:
    """Recompute the footer's summary CRC (summary start .. the footer's summary_offset_start field)."""
    footer = len(data) - 8 - _FOOTER.size
    _, _, start, _, _ = _FOOTER.unpack_from(data, footer)
    struct.pack_into("<I", data, footer + 25, zlib.crc32(bytes(data[start : footer + 25])))


#: Fields that can be edited: record opcode -> field -> (offset in the body, struct format).
CHUNK_INDEX_FIELDS = {
    "message_start_time": (0, "<Q"), "message_end_time": (8, "<Q"), "chunk_start_offset": (16, "<Q"),
    "chunk_length": (24, "<Q"), "first_message_index_channel": (36, "<H"), "first_message_index_offset": (38, "<Q"),
}  # fmt: skip
STATISTICS_FIELDS = {
    "message_count": (0, "<Q"), "channel_count": (10, "<I"), "chunk_count": (22, "<I"), "message_start_time": (26, "<Q"),
    "message_end_time": (34, "<Q"), "first_channel_message_count": (48, "<Q"),
}  # fmt: skip
#: How to change a value: name -> function of (old value, struct format) -> new value.
EDITS: dict[str, Callable[[int, str], int]] = {
    "+1": lambda v, f: v + 1, "-1": lambda v, f: v - 1, "zero": lambda v, f: 0, "max": lambda v, f: 2 ** (8 * struct.calcsize(f)) - 1,
    "+1s": lambda v, f: v + NS, "-1s": lambda v, f: v - NS, "+1000": lambda v, f: v + 1000, "half": lambda v, f: v // 2,
    "2**63": lambda v, f: 2**63,
}  # fmt: skip


@functools.lru_cache(maxsize=16)
def _session_file(seed: int, chunk_size: int, compression: str, shuffled: bool = False) -> bytes:
    events = list(backbone(seed))
    if shuffled:
        random.Random(seed).shuffle(events)
    return write_owa(events, chunk_size=chunk_size, compression=compression)


SUMMARY_RECORDS = ("chunk_index", "statistics", "chunk_and_index")


def summary_lie_case(
    record: str, index: int, name: str, edit: str, fix_crc: bool, seed: int = 0
) -> Case | None:
    """A valid recording (several chunks) whose ``record`` (``chunk_index`` or ``statistics``; the
    ``index``-th such record, modulo their number) has field ``name`` changed by ``edit``, with the summary
    CRC fixed or not. ``chunk_and_index``: a time field (``message_start_time`` / ``message_end_time``)
    changed alike in a chunk index and in the chunk record it points at (the chunk's CRC covers its data
    only), a lie only the messages themselves can expose. None when the edit changes nothing."""
    data = bytearray(_session_file(seed, 2048, "zstd"))
    times = chunk_times(bytes(data))
    op = OP_STATISTICS if record == "statistics" else OP_CHUNK_INDEX
    found = [(pos, length) for o, pos, length in summary_records(bytes(data)) if o == op]
    pos, length = found[index % len(found)]
    offset, fmt = (STATISTICS_FIELDS if op == OP_STATISTICS else CHUNK_INDEX_FIELDS)[name]
    if offset + struct.calcsize(fmt) > length or (record == "chunk_and_index" and offset > 8):
        return None
    at = pos + 9 + offset
    (old,) = struct.unpack_from(fmt, data, at)
    new = EDITS[edit](old, fmt) % 2 ** (8 * struct.calcsize(fmt))
    if new == old:
        return None
    struct.pack_into(fmt, data, at, new)
    if record == "chunk_and_index":
        (chunk_at,) = struct.unpack_from("<Q", data, pos + 9 + 16)
        struct.pack_into(fmt, data, chunk_at + 9 + offset, new)  # the chunk record: start, end at 9, 17
    if fix_crc:
        fix_summary_crc(data)
    lie = op == OP_STATISTICS and name in (
        "message_count",
        "message_start_time",
        "message_end_time",
        "first_channel_message_count",
    )
    what = f"{record} {index % len(found)} {name} {old} -> {new} ({edit}), summary CRC {'fixed' if fix_crc else 'stale'}"
    return Case("summary_lie", what, bytes(data), times, claims_lie=lie)


# -- file order, chunking, empty files, channels -------------------------------------------------
FILE_ORDER_HOW = (
    "shuffled",
    "reversed-unchunked",
    "duplicate-times",
    "one-chunk-each",
    "lz4",
    "uncompressed",
)


def file_order_case(how: str, seed: int = 0) -> Case:
    """Valid content in an unusual file layout: ``shuffled`` (OWA writer, small chunks, file order random),
    ``reversed-unchunked`` (mcap Writer without chunks), ``duplicate-times`` (many messages at one time),
    ``one-chunk-each`` (a chunk per message), ``lz4`` / ``uncompressed`` chunks."""
    if how == "shuffled":
        data = _session_file(seed, 1024, "zstd", shuffled=True)
    elif how == "reversed-unchunked":
        data = write_raw(list(reversed(backbone_msgs(seed))), chunked=False)
    elif how == "duplicate-times":
        msgs = [replace(m, log_time=T0 + (i // 40) * MS) for i, m in enumerate(backbone_msgs(seed))]
        random.Random(seed).shuffle(msgs)
        data = write_raw(msgs, chunk_size=700)
    elif how == "one-chunk-each":
        data = write_raw(backbone_msgs(seed), chunk_size=1)
    elif how == "lz4":
        data = write_owa(list(backbone(seed)), chunk_size=1500, compression="lz4")
    else:
        data = write_owa(list(backbone(seed)), chunk_size=1500, compression="none")
    return Case("file_order", how, data, chunk_times(data))


EMPTY_HOW = ("owa-writer", "channels-no-messages", "no-channels", "unchunked-no-messages", "no-summary")


def empty_case(how: str) -> Case:
    """A recording without messages."""
    if how == "owa-writer":
        data = write_owa([])
    elif how == "channels-no-messages":
        data = write_raw(
            [], channels=[("keyboard", TOPIC_TYPES["keyboard"]), ("screen", TOPIC_TYPES["screen"])]
        )
    elif how == "no-channels":
        data = write_raw([])
    elif how == "unchunked-no-messages":
        data = write_raw([], chunked=False, channels=[("keyboard", TOPIC_TYPES["keyboard"])])
    else:
        from mcap.writer import IndexType
        from mcap.writer import Writer as McapWriter

        buf = io.BytesIO()
        writer = McapWriter(buf, use_summary_offsets=False, use_statistics=False, repeat_channels=False, repeat_schemas=False, index_types=IndexType.NONE)  # fmt: skip
        writer.start(profile="owa", library=LIBRARY)
        writer.finish()
        data = buf.getvalue()
    return Case("empty", how, data, ())


CHANNEL_HOW = (
    "unknown-type", "no-schema", "cbor-encoding", "ros1-profile", "unregistered-channel", "screen-with-keyboard-schema",
    "keyboard-with-screen-schema", "two-schemas-one-topic", "empty-topic", "legacy-0.3-names",
)  # fmt: skip


def channel_case(how: str, seed: int = 0) -> Case:
    """The backbone plus messages on unusual channels."""
    t = _at(0.45)
    key = b'{"event_type":"press","vk":65}'
    screen = b'{"utc_ns":1,"source_shape":[4,4],"shape":[4,4],"media_ref":{"uri":"rec.mkv","pts_ns":1}}'
    profile, must_fail, topic = "owa", False, None
    if how == "unknown-type":
        bad = [Msg("custom/thing", t, b'{"value":1}', "custom/Thing")]
    elif how == "no-schema":
        bad = [Msg("noschema", t, b'{"value":1}', "")]
    elif how == "cbor-encoding":
        bad, must_fail, topic = (
            [Msg("keyboard", t, key, TOPIC_TYPES["keyboard"], encoding="cbor")],
            True,
            "keyboard",
        )
    elif how == "ros1-profile":
        bad, profile, must_fail = [], "ros1", True
    elif how == "unregistered-channel":
        bad, must_fail = [Msg("#999", t, key)], True
    elif how == "screen-with-keyboard-schema":
        bad = [Msg("screen", t, key, TOPIC_TYPES["keyboard"])]
    elif how == "keyboard-with-screen-schema":
        bad = [Msg("keyboard", t, screen, TOPIC_TYPES["screen"])]
    elif how == "two-schemas-one-topic":
        bad = [
            Msg("keyboard", t, screen, TOPIC_TYPES["screen"]),
            Msg("keyboard", t + 1, key, "desktop/KeyboardEventV2"),
        ]
    elif how == "empty-topic":
        bad = [Msg("", t, key, TOPIC_TYPES["keyboard"])]
    else:
        bad = [
            Msg("keyboard", t, key, "owa.env.desktop.msg.KeyboardEvent"),
            Msg("screen", t + 1, screen, "owa.env.gst.msg.ScreenEmitted"),
        ]
    msgs = sorted(backbone_msgs(seed) + bad, key=lambda m: m.log_time)
    data = write_raw(msgs, profile=profile)
    return Case(
        "channels", how, data, (tuple(m.log_time for m in msgs),), must_fail=must_fail, bad_topic=topic
    )


# -- videos beside the recording -----------------------------------------------------------------
VIDEO_HOW = ("real", "missing", "garbage", "truncated", "empty", "folder")


@functools.lru_cache(maxsize=4)
def _real_video(seed: int) -> bytes:
    pts = sorted({(e.timestamp_ns - T0) // MS for e in backbone(seed) if e.topic == "screen"})
    with tempfile.TemporaryDirectory(prefix="owa-fuzz-v-") as folder:
        path = Path(folder) / "v.mkv"
        write_video(path, pts, 32, 24)
        return path.read_bytes()


def video_case(how: str, seed: int = 0) -> Case:
    """A valid recording (OWA writer) with a real, missing or broken video beside it. The stages never
    decode video: the rows are complete either way, and a missing video is reported."""
    data = _session_file(seed, 4096, "zstd")
    video: bytes | None = None
    if how == "real":
        video = _real_video(seed)
    elif how == "garbage":
        video = random.Random(seed).randbytes(3000)
    elif how == "truncated":
        video = _real_video(seed)[: len(_real_video(seed)) // 2]
    elif how in ("empty", "folder"):
        video = b""
    return Case(
        "videos", how, data, chunk_times(data), episode_path="ep/rec.mcap", video=video,
        video_is_folder=how == "folder", media_missing=how == "missing",
    )  # fmt: skip


# -- byte mutations ------------------------------------------------------------------------------
BASES = ("current-zstd", "current-uncompressed", "legacy-0.4.2", "current-lz4-subfolder")
MUTATIONS = ("flip", "set", "zero", "insert", "delete", "truncate", "append")


@functools.lru_cache(maxsize=8)
def base_file(name: str) -> tuple[bytes, str, tuple[tuple[int, ...], ...]]:
    """``(bytes, episode_path, chunk times)`` of a generated recording to mutate."""
    if name == "current-zstd":
        data, episode = _session_file(1, 2048, "zstd"), "rec.mcap"
    elif name == "current-uncompressed":
        data, episode = _session_file(2, 2048, "none"), "rec.mcap"
    elif name == "current-lz4-subfolder":
        data, episode = _session_file(3, 3000, "lz4"), "a/b/rec.mcap"
    else:  # a legacy layout written by the same real writer, one chunk
        from owa_builders.demo.recordings import write_recording

        with tempfile.TemporaryDirectory(prefix="owa-fuzz-b-") as folder:
            path = write_recording(Path(folder) / "rec.mcap", list(backbone(4)), version="0.4.2")
            data, episode = path.read_bytes(), "rec.mcap"
    return data, episode, chunk_times(data)


Mutation = tuple[str, float, int, bytes]
"""``(kind, where in [0, 1), an int parameter, bytes)``: see :func:`mutate`."""
#: Where mutations land: anywhere, in the summary section (after the data section), or in the first 64
#: bytes of a record of the data section (opcodes, lengths, chunk headers: the structure, not payloads).
REGIONS = ("file", "summary", "record-heads")


def regions(data: bytes, region: str) -> list[tuple[int, int]]:
    """The byte ranges ``[start, end)`` of ``region`` in an intact file ``data``."""
    if region == "file":
        return [(0, len(data))]
    footer = len(data) - 8 - _FOOTER.size
    _, _, summary_start, _, _ = _FOOTER.unpack_from(data, footer)
    if region == "summary":
        return [(summary_start, len(data))]
    return [(pos, min(pos + 64, pos + 9 + length)) for _, pos, length in data_records(data)]


def data_records(data: bytes) -> list[tuple[int, int, int]]:
    """``(opcode, file offset, body length)`` of every record in the data section of an intact file."""
    footer = len(data) - 8 - _FOOTER.size
    _, _, summary_start, _, _ = _FOOTER.unpack_from(data, footer)
    out, pos = [], 8
    while pos < summary_start:
        op, length = struct.unpack_from("<BQ", data, pos)
        out.append((op, pos, length))
        pos += 9 + length
    return out


def _position(spans: list[tuple[int, int]], where: float) -> int:
    """The byte at fraction ``where`` of the concatenated ``spans``."""
    total = sum(end - start for start, end in spans)
    k = int(where * total)
    for start, end in spans:
        if k < end - start:
            return start + k
        k -= end - start
    return spans[-1][1]


def mutate(data: bytes, ops: Sequence[Mutation], region: str = "file") -> bytes:
    """Apply ``ops`` in order, each at fraction ``where`` of ``region`` (:data:`REGIONS`) of the intact
    file (clipped to the file as changed so far). ``flip``: bit ``n % 8`` of the byte there; ``set``: that
    byte to ``n % 256``; ``zero``: ``1 + n % 512`` bytes from there; ``insert``: the bytes there;
    ``delete``: ``1 + n % 64`` bytes from there; ``truncate``: the file there; ``append``: the bytes at
    the end."""
    spans = regions(data, region)
    out = bytearray(data)
    for kind, where, n, blob in ops:
        p = min(len(out), _position(spans, where))
        if kind in ("flip", "set") and p < len(out):
            out[p] = out[p] ^ (1 << (n % 8)) if kind == "flip" else n % 256
        elif kind == "zero":
            end = min(len(out), p + 1 + n % 512)
            out[p:end] = bytes(end - p)
        elif kind == "insert":
            out[p:p] = blob
        elif kind == "delete":
            del out[p : p + 1 + n % 64]
        elif kind == "truncate":
            del out[p:]
        elif kind == "append":
            out += blob
    return bytes(out)


def mutation_case(base: str, ops: Sequence[Mutation], region: str = "file") -> Case:
    """The generated recording ``base`` (:data:`BASES`) changed by ``ops`` in ``region``."""
    data, episode, times = base_file(base)
    what = f"{base}, {region}: " + ", ".join(
        f"{k}@{w:.4f}/{n}" + (f"+{blob.hex()}" if blob else "") for k, w, n, blob in ops
    )
    return Case("mutation", what, mutate(data, ops, region), times, episode_path=episode, recoverable=True)


def random_mutations(rng: random.Random) -> list[Mutation]:
    ops = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(MUTATIONS)
        blob = rng.randbytes(rng.randint(1, 64)) if kind in ("insert", "append") else b""
        ops.append((kind, rng.random(), rng.randrange(2**16), blob))
    return ops


# -- random cases of every kind (the long-run tool) -------------------------------------------------
def _random_deep(rng: random.Random) -> Case:
    return deep_nesting_case(rng.choice(NESTING_DEPTHS), rng.choice(NESTING_WHERE), rng.randrange(4))


def _random_legacy(rng: random.Random) -> Case:
    pts, valid, _ = rng.choice(PTS_VALUES)
    return legacy_pts_case(pts, rng.choice(LEGACY_LAYOUTS), valid, rng.randrange(4))


def _random_media_ref(rng: random.Random) -> Case:
    if rng.random() < 0.5:
        pts, _, valid = rng.choice(PTS_VALUES)
        return media_ref_case(pts, b'"rec.mkv"', not valid, rng.randrange(4))
    return media_ref_case(b"5", rng.choice(URI_VALUES), False, rng.randrange(4))


def _random_field(rng: random.Random) -> Case:
    topic, template = rng.choice(FIELD_TEMPLATES)
    return odd_field_case(topic, template, rng.choice(ODD_VALUES), rng.randint(1, 4), rng.randrange(4))


def _random_summary(rng: random.Random) -> Case:
    while True:
        record = rng.choice(SUMMARY_RECORDS)
        names = STATISTICS_FIELDS if record == "statistics" else CHUNK_INDEX_FIELDS
        name, edit = rng.choice(list(names)), rng.choice(list(EDITS))
        case = summary_lie_case(record, rng.randrange(8), name, edit, rng.random() < 0.7, rng.randrange(3))
        if case is not None:
            return case


def _random_span(rng: random.Random) -> Case:
    return span_case(
        rng.randint(2, 40), rng.choice((DAY_NS, 3 * DAY_NS, 7 * DAY_NS, 40 * DAY_NS)), rng.randrange(4)
    )


#: kind -> (weight, random case of that kind).
RANDOM_KINDS: dict[str, tuple[int, Callable[[random.Random], Case]]] = {
    "deep_nesting": (3, _random_deep),
    "legacy_pts": (3, _random_legacy),
    "media_ref": (3, _random_media_ref),
    "odd_field": (6, _random_field),
    "payload": (3, lambda r: payload_case(r.choice(PAYLOADS), r.choice(PAYLOAD_TOPICS), r.randrange(4))),
    "log_times": (3, lambda r: log_time_case(r.choice(list(TIME_SHIFTS)), r.randrange(4), r.random() < 0.3)),
    "span": (1, _random_span),
    "summary_lie": (6, _random_summary),
    "file_order": (2, lambda r: file_order_case(r.choice(FILE_ORDER_HOW), r.randrange(3))),
    "empty": (1, lambda r: empty_case(r.choice(EMPTY_HOW))),
    "channels": (2, lambda r: channel_case(r.choice(CHANNEL_HOW), r.randrange(4))),
    "videos": (1, lambda r: video_case(r.choice(VIDEO_HOW), r.randrange(2))),
    "mutation": (16, lambda r: mutation_case(r.choice(BASES), random_mutations(r), r.choice(REGIONS))),
}


def random_case(rng: random.Random, kinds: Sequence[str] | None = None) -> Case:
    """A random case of one of ``kinds`` (default: every kind of :data:`RANDOM_KINDS`, by weight)."""
    names = list(kinds or RANDOM_KINDS)
    kind = rng.choices(names, weights=[RANDOM_KINDS[k][0] for k in names])[0]
    return RANDOM_KINDS[kind][1](rng)


# ------------------------------------------------------------------------------------------
# Stage runs
# ------------------------------------------------------------------------------------------
#: The event stage with resampling and an interval selection (every rule gets to drop something).
RESAMPLE_OPTIONS: dict[str, Any] = {
    "rate_settings": {"screen": 5.0, "mouse/raw": 30.0, "mouse": 10.0, "keyboard": 10.0, "window": 0.5},
    "keyboard_repeat": True,
    "interval": {
        "type": "union",
        "a": {"type": "start_stop_key", "start_vk": 65, "stop_vk": 66},
        "b": {"type": "inactivity", "screen_timeout_s": 0.25, "input_timeout_s": 0.2},
    },
}
#: The binned stage at 30 fps without empty bins, more state topics and a raw mouse rate.
SPARSE_BINNED_OPTIONS: dict[str, Any] = {
    "fps": 30.0,
    "drop_empty_bins": True,
    "state_topics": ["screen", "window", "mouse/state"],
    "rate_settings": {"mouse/raw": 50.0},
}
STAGE_NAMES = ("event", "binned", "fsl")


@dataclass
class StageRun:
    """One way to convert a case: a stage (its config says ``on_bad_file``), or ``datasets.load_dataset``
    of the stage's builder (``builder`` set, with ``options`` as keyword arguments)."""

    label: str
    stage: Stage
    builder: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def skip(self) -> bool:
        return self.stage.config.on_bad_file == "skip"

    @property
    def base(self) -> str:
        """The label without the mode suffix (runs with the same base are compared)."""
        return self.label.split("/")[0]

    def reads(self, topic: str | None) -> bool:
        """Whether this run parses messages of ``topic`` (None: any)."""
        keep = self.stage.config.keep_topics
        return topic is None or keep is None or topic in keep


def make_runs(
    stages: Iterable[str] = STAGE_NAMES,
    *,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    skip: bool = True,
    datasets_too: bool = False,
) -> list[StageRun]:
    """The runs of every case: per stage in ``stages`` its config(s) with ``on_bad_file="error"``, and
    (``skip``) the same with ``"skip"`` (label suffix ``/skip``); ``datasets_too`` adds ``load_dataset``
    of the lossless event builder in both modes. ``fsl`` needs ``tokenizer_dir`` (a base tokenizer,
    e.g. :func:`owa_builders.demo.tokenizer.write_example_tokenizer`); its tokens are built
    here, once."""
    from owa_binned.stage import BinnedStage
    from owa_event.stage import EventStage
    from owa_fsl.stage import FslStage

    stages = list(stages)
    base: list[tuple[str, Stage]] = []
    if "event" in stages:
        base.append(("event", EventStage()))
        base.append(("event-resample", EventStage(EventStage.make_config(**RESAMPLE_OPTIONS))))
    if "binned" in stages:
        base.append(("binned", BinnedStage()))
        base.append(("binned-sparse", BinnedStage(BinnedStage.make_config(**SPARSE_BINNED_OPTIONS))))
    if "fsl" in stages:
        if tokenizer_dir is None:
            raise ValueError("the fsl stage needs tokenizer_dir")
        config = FslStage.make_config(
            "fsl-smolvlm", tokenizer_name=str(tokenizer_dir), max_sequence_length=512
        )
        fsl = FslStage(config)
        fsl.tokens  # noqa: B018 - built once here, inherited by every forked child
        base.append(("fsl", fsl))
    runs = []
    for label, stage in base:
        runs.append(StageRun(label, stage))
        if skip:
            runs.append(StageRun(label + "/skip", _with(stage, on_bad_file="skip")))
    if datasets_too and "event" in stages:
        event = EventStage()
        runs.append(StageRun("event/datasets", event, builder="owa_builders/event"))
        runs.append(StageRun("event/datasets/skip", _with(event, on_bad_file="skip"), builder="owa_builders/event", options={"on_bad_file": "skip"}))  # fmt: skip
    return runs


def _with(stage: Stage, **changes: Any) -> Stage:
    """A copy of ``stage`` with config fields changed (same tokens for an FSL stage)."""
    twin = type(stage).__new__(type(stage))
    twin.__dict__.update(stage.__dict__)
    twin.config = replace(stage.config, **changes)
    return twin


# ------------------------------------------------------------------------------------------
# Running one case (in forked children)
# ------------------------------------------------------------------------------------------
@dataclass
class Result:
    """What one stage run did (made in the child, judged in the parent)."""

    label: str
    rows: int = 0
    digest: str = ""
    report: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)  # warning class names
    error: dict[str, Any] | None = None  # type, ours, message, traceback
    order: str | None = None  # why the rows are not in order, if they are not
    timestamps: list[int] | None = None  # event stages: every row's timestamp_ns
    episode_paths: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _check_order(columns: dict[str, list[Any]], state: dict[str, Any]) -> str | None:
    """Rows must be in order: event rows by time (and interval), bins by (interval, bin), FSL sequences by
    (interval, base time)."""
    if "timestamp_ns" in columns and "bin_idx" not in columns:
        keys = list(zip(columns["interval_idx"], columns["timestamp_ns"]))
    elif "bin_idx" in columns:
        keys = list(zip(columns["interval_idx"], columns["bin_idx"]))
    else:
        keys = list(zip(columns["interval_idx"], columns["base_ns"]))
    prev = state.get("prev")
    for key in keys:
        if prev is not None and key < prev:
            return f"row {key} after {prev}"
        prev = key
    state["prev"] = prev
    return None


def _run_one(run: StageRun, ref: RecordingRef) -> Result:  # pragma: no cover - runs in a child
    import pyarrow as pa

    result = Result(run.label)
    started = time.perf_counter()
    report = RecordingReport(ref.episode_path)
    digest = hashlib.sha256()
    order: dict[str, Any] = {}
    is_event = run.stage.name == "event"
    if is_event:
        result.timestamps = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if run.builder is not None:
                batches = _datasets_batches(run, ref)
            else:
                batches = (pa.Table.from_batches([b]) for b in convert(run.stage, ref, report))
            for table in batches:
                columns = table.to_pydict()
                result.rows += table.num_rows
                digest.update(repr(sorted(columns.items())).encode())
                if result.order is None:
                    result.order = _check_order(columns, order)
                if is_event:
                    result.timestamps += columns["timestamp_ns"]
                result.episode_paths = sorted(
                    set(result.episode_paths) | set(columns.get("episode_path", ()))
                )
        except Exception as exc:
            result.error = {
                "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "ours": _is_ours(exc),
                "empty": type(exc).__name__ == "EmptyDatasetError",
                "message": str(exc)[:4000],
                "traceback": traceback.format_exc()[-6000:],
            }
    result.digest = digest.hexdigest()
    result.report = report.to_dict() if run.builder is None else None
    result.warnings = [w.category.__name__ for w in caught]
    result.seconds = time.perf_counter() - started
    return result


#: What :func:`owa_event.pipeline.convert` says of an exception that is not ours (it names the file).
BUG_MARKER = "this is a bug of owa-builders"


def _is_ours(exc: BaseException) -> bool:
    """An error of ours about the input: an OwaError that is not a bug of ours named with the file by
    ``convert`` (its cause, or its message, says so)."""
    from owa_event.errors import OwaError

    cause = exc.__cause__
    return (
        isinstance(exc, OwaError)
        and BUG_MARKER not in str(exc)
        and (cause is None or isinstance(cause, OwaError))
    )


def _datasets_batches(run: StageRun, ref: RecordingRef) -> Iterable[Any]:  # pragma: no cover - child
    import datasets

    import owa_builders  # noqa: F401 - registers the builders

    cache = tempfile.mkdtemp(prefix="owa-fuzz-cache-")
    try:
        datasets.disable_progress_bars()
        ds = datasets.load_dataset(run.builder, data_dir=ref.root, cache_dir=cache, **run.options)
        for split in ds:
            yield ds[split].data.table
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _child(runs: list[StageRun], ref: RecordingRef, conn: Any) -> None:  # pragma: no cover - child
    try:
        for run in runs:
            conn.send(_run_one(run, ref))
    finally:
        conn.close()


def run_forked(
    runs: Sequence[StageRun], ref: RecordingRef, seconds: float = DEFAULT_SECONDS
) -> list[Result | None]:
    """Each run's :class:`Result`, made in forked children (None: no result within ``seconds``; the
    child is killed and the remaining runs go on in a new one). A child that dies is a crash."""
    ctx = mp.get_context("fork")
    results: list[Result | None] = []
    while len(results) < len(runs):
        todo = list(runs[len(results) :])
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(todo, ref, child), daemon=True)
        proc.start()
        child.close()
        try:
            for run in todo:
                if not parent.poll(seconds):
                    results.append(None)
                    break
                try:
                    results.append(parent.recv())
                except EOFError:
                    proc.join(5)
                    message = f"the child process died (exit code {proc.exitcode})"
                    results.append(Result(run.label, error={"type": "ChildDied", "ours": False, "empty": False, "message": message, "traceback": ""}))  # fmt: skip
                    break
        finally:
            parent.close()
            if proc.is_alive():
                proc.kill()
            proc.join()
    return results


# ------------------------------------------------------------------------------------------
# The oracle
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """The outcome of one stage run on one case (``problem`` says why, for a failure)."""

    label: str
    outcome: str
    problem: str = ""
    rows: int = 0


def _expected_times(case: Case, n_in: int) -> list[int] | None:
    """The sorted log times a read of ``n_in`` messages must have got (None: no valid read has that count)."""
    if n_in == case.messages:
        return case.times
    if case.recoverable:
        total = 0
        for k, chunk in enumerate(case.chunks):
            total += len(chunk)
            if total == n_in:
                return sorted(t for c in case.chunks[: k + 1] for t in c)
        if n_in == 0:
            return []
    return None


def _ok_problems(case: Case, run: StageRun, r: Result) -> list[str]:
    """Why an error-free run is not a correct ``ok`` (empty: it is)."""
    problems = []
    if r.order:
        problems.append(f"rows out of order: {r.order}")
    if any(p != case.episode_path for p in r.episode_paths):
        problems.append(f"rows name episode_path {r.episode_paths}, not {case.episode_path!r}")
    if r.report is None:  # through datasets: compared with the direct run by the caller
        return problems
    report = RecordingReport.from_dict(r.report)
    acc = report.account
    if report.skipped:
        problems.append(
            f"report.skipped is set ({report.skipped}) but nothing was raised and it was not skipped"
        )
    unaccounted = report.unaccounted()
    if unaccounted:
        problems.append(f"unaccounted messages per topic: {unaccounted} (account {acc.to_dict()})")
    counts = [*acc.messages_in.values(), *acc.out.values(), *acc.merged.values()]
    counts += [n for c in acc.dropped.values() for n in c.values()]
    if any(n < 0 for n in counts):
        problems.append(f"negative counts in the account {acc.to_dict()}")
    n_in = sum(acc.messages_in.values())
    expected = _expected_times(case, n_in)
    if expected is None:
        problems.append(f"{n_in} messages counted in, but the file holds {case.messages}")
    elif n_in < case.messages and not report.warnings:
        problems.append(f"{n_in} of {case.messages} messages read, without a warning")
    if run.stage.name == "event":
        if r.rows != sum(acc.out.values()):
            problems.append(f"{r.rows} rows but {sum(acc.out.values())} events counted out")
        if (
            run.stage.config.rate_settings is None
            and run.stage.config.interval is None
            and r.timestamps is not None
        ):
            if r.rows != n_in:
                problems.append(f"lossless config: {r.rows} rows from {n_in} messages read")
            elif expected is not None and sorted(r.timestamps) != expected:
                lost = sorted((Counter(expected) - Counter(r.timestamps)).elements())[:5]
                extra = sorted((Counter(r.timestamps) - Counter(expected)).elements())[:5]
                problems.append(
                    f"rows' log times are not the file's: missing {lost}, not in the file {extra}"
                )
    elif run.stage.name == "binned" and r.rows != report.stats.get("bins", 0):
        problems.append(f"{r.rows} rows but {report.stats.get('bins', 0)} bins counted")
    elif run.stage.name == "fsl" and r.rows != report.stats.get("sequences", 0):
        problems.append(f"{r.rows} rows but {report.stats.get('sequences', 0)} sequences counted")
    if case.claims_lie and not any("Statistics" in w for w in report.warnings):
        problems.append("the Statistics record contradicts the file, but no warning says so")
    if case.media_missing and run.reads("screen") and not report.missing_media:
        problems.append("the video is missing, but the report does not say so")
    return problems


def _error_verdict(case: Case, run: StageRun, ref: RecordingRef, r: Result) -> Verdict:
    err = r.error or {}
    what = f"{err.get('type')}: {err.get('message', '')[:600]}"
    if not err.get("ours"):
        return Verdict(run.label, "crash", f"{what}\n{err.get('traceback', '')}")
    if ref.path not in err.get("message", "") and not err.get("empty"):
        return Verdict(run.label, "unnamed", f"error of ours without the file's path: {what}")
    return Verdict(run.label, "error", what)


def judge(
    case: Case, runs: Sequence[StageRun], ref: RecordingRef, results: Sequence[Result | None]
) -> list[Verdict]:
    """The outcome of every run (see the module docstring); skip-mode runs are judged against their
    ``"error"``-mode twin (same base label), ``load_dataset`` runs against the direct run."""
    verdicts: list[Verdict] = []
    by_label = {run.label: res for run, res in zip(runs, results)}
    first = {v.label: v for v in verdicts}
    for run, r in zip(runs, results):
        if r is None:
            verdicts.append(Verdict(run.label, "hang", "no result within the time limit"))
            continue
        if run.builder is not None:
            verdicts.append(_judge_datasets(case, run, ref, r, by_label.get(run.base)))
            continue
        if not run.skip:
            if r.error is not None:
                v = _error_verdict(case, run, ref, r)
            else:
                problems = _ok_problems(case, run, r)
                if problems:
                    v = Verdict(run.label, "loss", "; ".join(problems))
                elif case.must_fail and run.reads(case.bad_topic):
                    v = Verdict(
                        run.label, "accepted", f"{case.what}: converted without an error ({r.rows} rows)"
                    )
                else:
                    v = Verdict(run.label, "ok")
            verdicts.append(v)
            first[run.label] = v
            continue
        twin = first.get(run.base)
        twin_result = by_label.get(run.base)
        verdicts.append(_judge_skip(case, run, ref, r, twin, twin_result))
    return [replace(v, rows=r.rows) if r is not None else v for v, r in zip(verdicts, results)]


def _judge_skip(
    case: Case, run: StageRun, ref: RecordingRef, r: Result, twin: Verdict | None, twin_result: Result | None
) -> Verdict:
    if r.error is not None:
        return Verdict(run.label, "skip-broken", f"raised with on_bad_file='skip': {r.error['type']}: {r.error['message'][:600]}\n{r.error['traceback']}")  # fmt: skip
    report = RecordingReport.from_dict(r.report or {"episode_path": ref.episode_path})
    if report.skipped:
        problems = []
        if r.rows:
            problems.append(f"skipped, yet {r.rows} rows were yielded")
        if "SkippedFileWarning" not in r.warnings:
            problems.append("skipped without a SkippedFileWarning")
        if ref.path not in report.skipped:
            problems.append(f"the reason does not name the file: {report.skipped}")
        if twin is not None and twin.outcome in ("ok", "loss", "accepted"):
            problems.append(f"skipped a file the error-mode run converted: {report.skipped[:300]}")
        return Verdict(run.label, "skip-broken", "; ".join(problems)) if problems else Verdict(run.label, "skipped", report.skipped[:300])  # fmt: skip
    if twin is not None and twin.outcome in ("error", "crash", "unnamed"):
        return Verdict(
            run.label, "skip-broken", f"the error-mode run failed ({twin.outcome}) but skip mode converted it"
        )
    if twin_result is not None and (r.rows, r.digest) != (twin_result.rows, twin_result.digest):
        return Verdict(
            run.label,
            "skip-broken",
            f"skip mode made other rows ({r.rows}) than error mode ({twin_result.rows})",
        )
    problems = _ok_problems(case, run, r)
    if problems:
        return Verdict(run.label, "loss", "; ".join(problems))
    return Verdict(run.label, "ok")


def _judge_datasets(
    case: Case, run: StageRun, ref: RecordingRef, r: Result, direct: Result | None
) -> Verdict:
    """``load_dataset`` must agree with the direct run: the same rows, the error unwrapped, and no rows
    at all as our EmptyDatasetError."""
    if direct is None:
        return Verdict(run.label, "crash", "no direct run to compare with")
    err = r.error
    if direct.error is not None:
        if run.skip:
            if err is not None and err.get("empty"):
                return Verdict(run.label, "skipped", "all files skipped: EmptyDatasetError")
            return Verdict(run.label, "skip-broken", f"the only file is bad, expected EmptyDatasetError, got {err and err['type']}")  # fmt: skip
        if err is None:
            return Verdict(
                run.label, "accepted", f"load_dataset converted a file the direct run refused ({r.rows} rows)"
            )
        return _error_verdict(case, run, ref, r)
    if direct.rows == 0:
        if err is not None and err.get("empty"):
            return Verdict(run.label, "error", "no rows: EmptyDatasetError")
        return Verdict(run.label, "crash", f"no rows: expected EmptyDatasetError, got {err and err['type']}: {err and err['message'][:300]}")  # fmt: skip
    if err is not None:
        v = _error_verdict(case, run, ref, r)
        return (
            v
            if v.outcome != "error"
            else Verdict(run.label, "crash", f"the direct run converted the file: {v.problem}")
        )
    if r.rows != direct.rows or sorted(r.timestamps or []) != sorted(direct.timestamps or []):
        return Verdict(run.label, "loss", f"load_dataset made {r.rows} rows, the direct run {direct.rows}")
    problems = _ok_problems(case, run, r)
    return Verdict(run.label, "loss", "; ".join(problems)) if problems else Verdict(run.label, "ok")


def run_case(case: Case, runs: Sequence[StageRun], seconds: float = DEFAULT_SECONDS) -> list[Verdict]:
    """Write the case into a fresh dataset root, run every stage run on it (forked), judge the results."""
    root = tempfile.mkdtemp(prefix="owa-fuzz-")
    try:
        ref = write_files(case, root)
        return judge(case, runs, ref, run_forked(runs, ref, seconds))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def failures(verdicts: Iterable[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.outcome not in GOOD]


# ------------------------------------------------------------------------------------------
# The long-run tool
# ------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m devtools.fuzz",
        description="Fuzz the conversion stages with malformed recordings; print outcome counts.",
    )
    p.add_argument("--minutes", type=float, default=1.0, help="how long to run (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same cases)")
    p.add_argument("--stages", default=",".join(STAGE_NAMES), help="comma-separated: event,binned,fsl")
    p.add_argument(
        "--kinds", default="", help=f"comma-separated case kinds (default all: {','.join(RANDOM_KINDS)})"
    )
    p.add_argument(
        "--seconds", type=float, default=10.0, help="time limit of one stage run on one case (default 10)"
    )
    p.add_argument(
        "--datasets-every", type=int, default=10, help="every Nth case also through load_dataset (0: never)"
    )
    p.add_argument(
        "--out", default="fuzz-failures", help="folder for failing cases (default ./fuzz-failures)"
    )
    p.add_argument("--replay", default=None, help="run one saved case folder again and print its verdicts")
    return p


def _table(counts: dict[str, Counter[str]]) -> str:
    outcomes = [o for o in (*GOOD, *BAD) if any(c[o] for c in counts.values())]
    width = max([len(k) for k in counts] + [10])
    lines = [f"{'':{width}}  " + "  ".join(f"{o:>11}" for o in outcomes)]
    for key in sorted(counts):
        lines.append(f"{key:{width}}  " + "  ".join(f"{counts[key][o]:>11}" for o in outcomes))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns 1 when any case failed, else 0."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.simplefilter("ignore")
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGE_NAMES)
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown or set(kinds) - set(RANDOM_KINDS):
        print(
            f"unknown stages {sorted(unknown)} or kinds {sorted(set(kinds) - set(RANDOM_KINDS))}",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="owa-fuzz-tok-") as tok:
        tokenizer_dir = None
        if "fsl" in stages:
            from owa_builders.demo.tokenizer import write_example_tokenizer

            tokenizer_dir = write_example_tokenizer(tok)
        runs = make_runs(stages, tokenizer_dir=tokenizer_dir)
        with_datasets = (
            make_runs(stages, tokenizer_dir=tokenizer_dir, datasets_too=True) if "event" in stages else runs
        )
        if args.replay:
            case = Case.load(args.replay)
            print(f"{case.kind}: {case.what}")
            for v in run_case(case, with_datasets, args.seconds):
                print(f"  {v.label}: {v.outcome} {v.problem[:2000]}")
            return 0
        return _long_run(args, runs, with_datasets, kinds)


def _long_run(
    args: argparse.Namespace, runs: list[StageRun], with_datasets: list[StageRun], kinds: list[str]
) -> int:
    rng = random.Random(args.seed)
    by_stage: dict[str, Counter[str]] = {}
    by_kind: dict[str, Counter[str]] = {}
    failed = 0
    n = 0
    deadline = time.monotonic() + 60 * args.minutes
    started = time.monotonic()
    while time.monotonic() < deadline:
        case = random_case(rng, kinds)
        n += 1
        use = with_datasets if args.datasets_every and n % args.datasets_every == 0 else runs
        verdicts = run_case(case, use, args.seconds)
        for v in verdicts:
            by_stage.setdefault(v.label, Counter())[v.outcome] += 1
            by_kind.setdefault(case.kind, Counter())[v.outcome] += 1
        bad = failures(verdicts)
        if bad:
            failed += 1
            folder = Path(args.out) / f"{failed:04d}-{case.kind}"
            shutil.rmtree(folder, ignore_errors=True)
            case.save(folder, [f"{v.label}: {v.outcome}: {v.problem}" for v in bad])
            print(f"FAIL case {n} ({case.kind}: {case.what[:160]}) -> {folder}", flush=True)
            for v in bad:
                print(
                    f"    {v.label}: {v.outcome}: {v.problem.splitlines()[0][:300] if v.problem else ''}",
                    flush=True,
                )
    elapsed = time.monotonic() - started
    runs_total = sum(sum(c.values()) for c in by_stage.values())
    print(
        f"\n{n} cases, {runs_total} stage runs in {elapsed:.0f} s (seed {args.seed}); {failed} failing case(s)"
    )
    print("\nOutcomes per stage run:\n" + _table(by_stage))
    print("\nOutcomes per case kind:\n" + _table(by_kind))
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
