"""Packer invariants on synthetic event streams (real encoders, real expanded local tokenizer).

Every check decodes the packed ids back (``table.to_tokens`` + ``encoder.decode``) and compares
with the events that went in, so a sequence that loses, reorders or mis-times an event fails.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owa_builders.demo.recordings import SessionSpec, session_events
from owa_builders.demo.tokenizer import write_example_tokenizer
from owa_event.account import Account
from owa_event.events import SCREEN, Event
from owa_fsl.encoders import (
    ENCODED_TOPICS,
    EncodeError,
    EventEncoder,
    canonical,
    frame_ref,
    get_encoder,
    make_event,
)
from owa_fsl.encoders.desktop import MOUSE_BUTTONS
from owa_fsl.pack import OversizeEventError, PackedSequence, Packer, PackStats
from owa_fsl.tokenizer import ImageTokens, TokenTable, expand_tokenizer, load_base_tokenizer

MS = 1_000_000
NS = 1_000_000_000
T0 = 1_748_854_800 * NS + 123_456  # not a multiple of the resolution
#: A small image layout keeps sequences short; the layout itself is covered by the builder tests.
IMAGE = ImageTokens(("<img>",), "<IMG_CONTEXT>", 4, ("</img>",))
ENCODERS = ["factorized", "hierarchical", "json"]
FAST = settings(max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One expanded copy of the local base tokenizer per encoder."""
    base = write_example_tokenizer(tmp_path_factory.mktemp("pack-tok") / "base")
    return {
        name: expand_tokenizer(load_base_tokenizer(str(base)), get_encoder(name), IMAGE) for name in ENCODERS
    }


_TABLES: dict[tuple[int, EventEncoder], TokenTable] = {}


def table_for(tokenizers: dict[str, Any], encoder: EventEncoder) -> tuple[TokenTable, int]:
    """The id table of ``encoder`` (built once per encoder: construction validates the tokenizer)."""
    tok = tokenizers[encoder.name]
    key = (id(tok), encoder)
    if key not in _TABLES:
        _TABLES[key] = TokenTable(tok, encoder, IMAGE)
    return _TABLES[key], int(tok.pad_token_id)


# -- events -------------------------------------------------------------------------------------------
def kb(t: int, vk: int = 65, kind: str = "press", index: int = -1) -> Event:
    return make_event("keyboard", t, {"event_type": kind, "vk": vk}, index)


def scr(t: int, pts: int | None = 0, uri: str = "v.mkv", index: int = -1) -> Event:
    return make_event("screen", t, {"media_ref": {"uri": uri, "pts_ns": pts}}, index)


def scroll(t: int, index: int = -1) -> Event:
    return make_event(
        "mouse", t, {"event_type": "scroll", "x": -99_999, "y": 99_999, "dx": -120, "dy": 120}, index
    )


def indexed(events: list[Event]) -> list[Event]:
    return [Event(e.topic, e.timestamp_ns, e.message_type, e.data, e.fields, i) for i, e in enumerate(events)]


def session(duration_s: float = 3.0, seed: int = 3) -> list[Event]:
    """A realistic stream from the example generator (encodable topics only)."""
    raw, _ = session_events(SessionSpec(duration_s=duration_s, seed=seed))
    out = []
    for e in raw:
        if e.topic not in ENCODED_TOPICS:
            continue
        fields = e.fields
        if e.topic == SCREEN:
            fields = {**fields, "media_ref": {**fields["media_ref"], "uri": "episode.mkv"}}
        out.append(make_event(e.topic, e.timestamp_ns, fields))
    return indexed(out)


# -- packing + the checks shared by every test ---------------------------------------------------------
def pack(
    tokenizers: dict[str, Any], events: list[Event], encoder: EventEncoder, max_len: int, **kwargs: Any
) -> tuple[list[PackedSequence], Stats, TokenTable, int]:
    table, pad_id = table_for(tokenizers, encoder)
    stats = Stats(Account(), PackStats())
    for e in events:
        stats.account.take_in(e.topic)  # counting what goes in is the caller's
    packer = Packer(encoder, table, max_len, pad_id, account=stats.account, stats=stats.pack, **kwargs)
    return list(packer.pack(iter(events), where="episode.mcap")), stats, table, pad_id


@dataclass
class Stats:
    """A packing run's Account (events) and PackStats (sequences), read as the tests name them."""

    account: Account
    pack: PackStats

    def __getattr__(self, name: str) -> Any:
        if name in ("account", "pack"):
            raise AttributeError(name)
        if name == "events_in":
            return self.account.messages_in
        if name == "events_packed":
            return self.account.out
        if name == "dropped":
            return self.account.dropped
        return getattr(self.pack, name)

    def unaccounted(self) -> dict[str, int]:
        return self.account.unaccounted()


def size(table: TokenTable, encoder: EventEncoder, event: Event, base_ns: int) -> int:
    return len(table.ids(encoder.encode(event, base_ns)))


def check(
    events: list[Event],
    seqs: list[PackedSequence],
    stats: Stats,
    encoder: EventEncoder,
    table: TokenTable,
    max_len: int,
    pad_id: int,
    dropped: frozenset[int] = frozenset(),
) -> list[list[Event]]:
    """Every invariant of the packer's docstring; returns the decoded events per sequence.

    ``dropped``: indices of events expected to be dropped (oversize). No frameless dropping here.
    """
    kept = [e for e in events if e.index not in dropped]
    decoded_per_seq: list[list[Event]] = []
    pos = 0
    for seq in seqs:
        n = seq.n_tokens
        assert len(seq.input_ids) == len(seq.attention_mask) == max_len
        assert 0 < n <= max_len
        assert seq.attention_mask == [1] * n + [0] * (max_len - n)
        assert seq.input_ids[n:] == [pad_id] * (max_len - n)
        decoded = encoder.decode(table.to_tokens(seq.input_ids[:n]), seq.base_ns, seq.images)
        assert len(decoded) == seq.n_events > 0
        originals = kept[pos : pos + len(decoded)]
        pos += len(decoded)
        assert len(originals) == len(decoded), "more events decoded than went in"
        assert seq.base_ns == originals[0].timestamp_ns
        assert seq.images == [frame_ref(e) for e in originals if e.topic == SCREEN]
        for got, want in zip(decoded, originals):
            assert got.topic == want.topic
            assert canonical(got) == canonical(want)
            assert got.timestamp_ns == encoder.quantize(want.timestamp_ns, seq.base_ns)
            assert want.timestamp_ns - seq.base_ns <= encoder.max_offset_ns()
        decoded_per_seq.append(decoded)
    assert pos == len(kept), "events lost"
    # Greedy: a sequence ends only when the next event does not fit (tokens or time offset).
    for a, b_first in zip(seqs, _firsts(seqs, kept)[1:]):
        too_late = b_first.timestamp_ns - a.base_ns > encoder.max_offset_ns()
        assert too_late or a.n_tokens + size(table, encoder, b_first, a.base_ns) > max_len
    # The account.
    assert stats.unaccounted() == {}
    assert stats.events_in == Counter(e.topic for e in events)
    assert stats.events_packed == Counter(e.topic for e in kept)
    assert stats.sequences == len(seqs)
    assert stats.frames == sum(len(s.images) for s in seqs)
    assert stats.tokens == sum(s.n_tokens for s in seqs)
    assert stats.padding == sum(max_len - s.n_tokens for s in seqs)
    return decoded_per_seq


def _firsts(seqs: list[PackedSequence], kept: list[Event]) -> list[Event]:
    out, pos = [], 0
    for seq in seqs:
        out.append(kept[pos])
        pos += seq.n_events
    return out


# -- tests ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENCODERS)
def test_realistic_stream_packs_into_full_padded_sequences_that_decode_exactly(
    tokenizers: dict[str, Any], name: str
) -> None:
    events = session(3.0 if name != "json" else 1.0)  # json runs the tokenizer on text: keep it short
    encoder = get_encoder(name)
    seqs, stats, table, pad_id = pack(tokenizers, events, encoder, 256)
    assert len(seqs) > 2
    check(events, seqs, stats, encoder, table, 256, pad_id)
    assert any(s.n_tokens < 256 for s in seqs[:-1]) or len(seqs) == 1  # real padding happens mid-episode
    assert stats.frames == sum(e.topic == SCREEN for e in events)


def test_exact_layout_of_a_small_stream(tokenizers: dict[str, Any]) -> None:
    encoder = get_encoder("factorized")
    table, _ = table_for(tokenizers, encoder)
    s, k = size(table, encoder, scr(T0), T0), size(table, encoder, kb(T0), T0)
    # <EVENT_START> <TYPE> 7 digits payload <EVENT_END>; a frame's payload is its image run
    assert (s, k) == (10 + len(IMAGE.tokens()), 12)
    events = indexed([scr(T0, 0), kb(T0 + MS), kb(T0 + 2 * MS), scr(T0 + 50 * MS, 50 * MS), kb(T0 + 51 * MS)])
    max_len = s + k  # a frame and a key fill a sequence exactly
    seqs, stats, table, pad_id = pack(tokenizers, events, encoder, max_len)
    assert [s.n_events for s in seqs] == [2, 2, 1]
    assert [s.n_tokens for s in seqs] == [max_len, max_len, k]
    assert [s.base_ns for s in seqs] == [T0, T0 + 2 * MS, T0 + 51 * MS]
    assert [s.images for s in seqs] == [[("v.mkv", 0)], [("v.mkv", 50 * MS)], []]
    assert seqs[2].attention_mask.count(0) == max_len - k
    check(events, seqs, stats, encoder, table, max_len, pad_id)


def test_gap_longer_than_max_offset_starts_a_new_sequence_and_decodes_exactly(
    tokenizers: dict[str, Any],
) -> None:
    encoder = get_encoder("factorized", time_digits=3)  # offsets up to 999 ms
    assert encoder.max_offset_ns() == 999 * MS
    hours = 5 * 3600 * NS
    events = indexed([
        kb(T0),
        scr(T0 + 999 * MS, 7),  # offset == max_offset: still the first sequence
        kb(T0 + 999 * MS + 1),  # one ns further: new sequence
        kb(T0 + 1500 * MS + 999_999),
        kb(T0 + hours + 7),  # hours later
        scr(T0 + hours + 7 + 998 * MS + 5, 8),
    ])  # fmt: skip
    seqs, stats, table, pad_id = pack(tokenizers, events, encoder, 4096)
    assert [s.base_ns for s in seqs] == [T0, T0 + 999 * MS + 1, T0 + hours + 7]
    assert [s.n_events for s in seqs] == [2, 2, 2]
    decoded = check(events, seqs, stats, encoder, table, 4096, pad_id)
    # exact at the resolution: floor of the offset from each sequence's own base
    assert [e.timestamp_ns for e in decoded[1]] == [T0 + 999 * MS + 1, T0 + 1500 * MS + 1]
    assert [e.timestamp_ns for e in decoded[2]] == [T0 + hours + 7, T0 + hours + 7 + 998 * MS]

    # With the default 7 digits (2 h 46 min) the first four events share one sequence.
    default = get_encoder("factorized")
    seqs, stats, table, pad_id = pack(tokenizers, events, default, 4096)
    assert [s.n_events for s in seqs] == [4, 2]
    check(events, seqs, stats, default, table, 4096, pad_id)


def test_oversize_event_is_an_error_naming_the_event(tokenizers: dict[str, Any]) -> None:
    encoder = get_encoder("factorized")
    table, _ = table_for(tokenizers, encoder)
    events = indexed([kb(T0), scroll(T0 + MS), kb(T0 + 2 * MS)])
    need = size(table, encoder, events[1], T0)
    max_len = need - 1
    with pytest.raises(OversizeEventError) as info:
        pack(tokenizers, events, encoder, max_len)
    message = str(info.value)
    assert message.startswith("episode.mcap: ")
    assert re.search(rf"event #1 \(mouse at {T0 + MS} ns\) needs {need} tokens", message)
    assert f"max_sequence_length={max_len}" in message
    # exactly fitting is not oversize
    seqs, stats, table, pad_id = pack(tokenizers, events, encoder, need)
    check(events, seqs, stats, encoder, table, need, pad_id)
    assert [s.n_events for s in seqs] == [1, 1, 1]


def test_oversize_event_dropped_and_counted(tokenizers: dict[str, Any]) -> None:
    encoder = get_encoder("factorized")
    events = indexed([kb(T0), scroll(T0 + MS), scr(T0 + 2 * MS), scroll(T0 + 3 * MS), kb(T0 + 4 * MS)])
    seqs, stats, table, pad_id = pack(tokenizers, events, encoder, 30, on_oversize="drop")
    assert stats.dropped == {"oversize": Counter({"mouse": 2})}
    check(events, seqs, stats, encoder, table, 30, pad_id, dropped=frozenset({1, 3}))


def test_drop_frameless_counts_dropped_sequences_and_their_events(tokenizers: dict[str, Any]) -> None:
    encoder = get_encoder("factorized", time_digits=3)
    events = indexed([
        scr(T0, 0), kb(T0 + MS),
        kb(T0 + 2 * NS), kb(T0 + 2 * NS + MS, kind="release"), make_event("mouse/raw", T0 + 2 * NS + 2 * MS, {"last_x": 1, "last_y": -1}),
        scr(T0 + 4 * NS, 4 * NS), kb(T0 + 4 * NS + 1),
        kb(T0 + 9 * NS),
    ])  # fmt: skip
    kept_all, stats_all, table, pad_id = pack(tokenizers, events, encoder, 4096)
    check(events, kept_all, stats_all, encoder, table, 4096, pad_id)
    assert [len(s.images) for s in kept_all] == [1, 0, 1, 0]

    seqs, stats, _, _ = pack(tokenizers, events, encoder, 4096, drop_frameless=True)
    assert seqs == [s for s in kept_all if s.images]  # the other sequences are untouched
    assert stats.sequences == 2 and stats.sequences_dropped_frameless == 2
    assert stats.dropped == {"frameless_sequence": Counter({"keyboard": 3, "mouse/raw": 1})}
    assert stats.events_packed == Counter({"screen": 2, "keyboard": 2})
    assert stats.unaccounted() == {}
    assert stats.tokens == sum(s.n_tokens for s in seqs)


def test_same_input_same_output_and_episodes_do_not_share_state(tokenizers: dict[str, Any]) -> None:
    encoder = get_encoder("factorized")
    events = session(1.0, seed=5)
    a, stats_a, table, pad_id = pack(tokenizers, events, encoder, 200)
    b, stats_b, _, _ = pack(tokenizers, list(events), get_encoder("factorized"), 200)
    assert a == b and stats_a == stats_b
    # One packer, two episodes (the second one earlier in time): each starts afresh.
    packer = Packer(encoder, table, 200, pad_id)
    later = [e.at(e.timestamp_ns + 3600 * NS) for e in events]
    first = list(packer.pack(later, where="late"))
    second = list(packer.pack(events, where="early"))
    assert second == a
    assert [s.input_ids for s in first] == [s.input_ids for s in a]  # translation invariant
    assert [s.base_ns - 3600 * NS for s in first] == [s.base_ns for s in a]
    assert packer.stats.sequences == 2 * len(a)
    assert packer.account.out == Counter({t: 2 * n for t, n in stats_a.events_packed.items()})
    assert packer.account.dropped == {}


def test_events_out_of_time_order_fail_naming_the_episode(tokenizers: dict[str, Any]) -> None:
    encoder = get_encoder("factorized")
    with pytest.raises(EncodeError, match=r"^episode\.mcap: .*before the sequence base"):
        pack(tokenizers, indexed([kb(T0 + MS), kb(T0)]), encoder, 4096)


# -- property ------------------------------------------------------------------------------------------
coord = st.integers(-99_999, 99_999)
PAYLOADS = st.one_of(
    st.builds(lambda vk, kind: ("keyboard", {"event_type": kind, "vk": vk}),
              st.integers(0, 255), st.sampled_from(["press", "release"])),
    st.builds(lambda x, y: ("mouse", {"event_type": "move", "x": x, "y": y}), coord, coord),
    st.builds(lambda x, y, b, p: ("mouse", {"event_type": "click", "x": x, "y": y, "button": b, "pressed": p}),
              coord, coord, st.sampled_from(MOUSE_BUTTONS), st.booleans()),
    st.builds(lambda x, y, dx, dy: ("mouse", {"event_type": "scroll", "x": x, "y": y, "dx": dx, "dy": dy}),
              coord, coord, coord, coord),
    st.builds(lambda x, y, us, bf, bd: ("mouse/raw", {"last_x": x, "last_y": y, "us_flags": us,
                                                      "button_flags": bf, "button_data": bd}),
              coord, coord, st.integers(0, 0xF), st.integers(0, 0xFFF), st.integers(-32_768, 65_535)),
    st.builds(lambda pts, uri: ("screen", {"media_ref": {"uri": uri, "pts_ns": pts}}),
              st.one_of(st.none(), st.integers(0, 10**13)), st.sampled_from(["a.mkv", "b/c.mkv"])),
)  # fmt: skip
GAPS = st.one_of(
    st.just(0),
    st.integers(0, 5 * MS),
    st.integers(999 * MS - 2, 999 * MS + 2),  # around the 3-digit max offset
    st.integers(0, 3 * NS),
    st.integers(0, 4 * 3600 * NS),  # beyond the 7-digit max offset
)
STREAMS = st.lists(st.tuples(GAPS, PAYLOADS), max_size=50).map(
    lambda items: indexed([make_event(topic, T0 + sum(g for g, _ in items[: i + 1]), fields)
                           for i, (_, (topic, fields)) in enumerate(items)])
)  # fmt: skip


@FAST
@given(
    events=STREAMS,
    name=st.sampled_from(["factorized", "hierarchical"]),
    digits=st.sampled_from([3, 7]),
    res=st.sampled_from([MS, 1000, 1]),
    max_len=st.integers(10, 160),
    drop_frameless=st.booleans(),
)
def test_property_random_streams(
    tokenizers: dict[str, Any],
    events: list[Event],
    name: str,
    digits: int,
    res: int,
    max_len: int,
    drop_frameless: bool,
) -> None:
    encoder = get_encoder(name, time_resolution_ns=res, time_digits=digits)
    table, _ = table_for(tokenizers, encoder)
    oversize = frozenset(e.index for e in events if size(table, encoder, e, e.timestamp_ns) > max_len)
    seqs, stats, table, pad_id = pack(tokenizers, events, encoder, max_len, on_oversize="drop")
    check(events, seqs, stats, encoder, table, max_len, pad_id, dropped=oversize)
    assert sum(stats.dropped.get("oversize", Counter()).values()) == len(oversize)
    again, _, _, _ = pack(tokenizers, events, encoder, max_len, on_oversize="drop")
    assert again == seqs  # deterministic
    if drop_frameless:
        kept, fstats, _, _ = pack(
            tokenizers, events, encoder, max_len, on_oversize="drop", drop_frameless=True
        )
        assert kept == [s for s in seqs if s.images]
        frameless = [s for s in seqs if not s.images]
        assert fstats.sequences_dropped_frameless == len(frameless)
        assert sum(fstats.dropped.get("frameless_sequence", Counter()).values()) == sum(
            s.n_events for s in frameless
        )
        assert fstats.unaccounted() == {}
    elif oversize:
        with pytest.raises(OversizeEventError, match=rf"event #{min(oversize)} "):
            pack(tokenizers, events, encoder, max_len)
