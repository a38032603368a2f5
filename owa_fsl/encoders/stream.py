"""Token streams: split text into token strings, collapse image runs, split a stream into events.

These helpers are encoder-independent and know only the frame markers. A stream handed to
``EventEncoder.decode`` must be a plain concatenation of events; anything between events
(padding, BOS/EOS, a model's prompt) is the caller's to remove first, and a model's image
token run must be collapsed back to :data:`IMAGE_PLACEHOLDER` with :func:`collapse_images`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from owa_fsl.encoders.errors import DecodeError

EVENT_START = "<EVENT_START>"
EVENT_END = "<EVENT_END>"
#: One per screen event; the FSL stage expands it to the model's image tokens.
IMAGE_PLACEHOLDER = "<IMAGE>"


def split_text(text: str, known: Iterable[str]) -> list[str]:
    """Split ``text`` into the ``known`` token strings and the (non-empty) text between them.

    Longer tokens win over shorter ones at the same position, as in a tokenizer's added vocab.
    ``"".join(split_text(t, k)) == t`` always holds.
    """
    pattern = _token_pattern(frozenset(known))
    if pattern is None:
        return [text] if text else []
    return [part for part in pattern.split(text) if part]


@lru_cache(maxsize=32)
def _token_pattern(known: frozenset[str]) -> re.Pattern[str] | None:
    tokens = sorted((t for t in known if t), key=lambda t: (-len(t), t))
    if not tokens:
        return None
    return re.compile("(" + "|".join(re.escape(t) for t in tokens) + ")")


def collapse_images(tokens: Sequence[str], expansion: Sequence[str]) -> list[str]:
    """Replace every exact occurrence of one frame's image ``expansion`` with ``<IMAGE>``.

    Partial or malformed runs are left as they are (decoding then reports them).
    """
    expansion = list(expansion)
    if not expansion:
        return list(tokens)
    n, first, out = len(expansion), expansion[0], []
    i, end = 0, len(tokens)
    while i < end:
        if tokens[i] == first and list(tokens[i : i + n]) == expansion:
            out.append(IMAGE_PLACEHOLDER)
            i += n
        else:
            out.append(tokens[i])
            i += 1
    return out


def split_events(tokens: Sequence[str]) -> list[tuple[int, list[str]]]:
    """Split a stream into events: ``(position of <EVENT_START>, tokens from START to END inclusive)``.

    Strict: a token outside an event, a nested ``<EVENT_START>`` or an unterminated event
    raises :class:`DecodeError` naming the position.
    """
    events: list[tuple[int, list[str]]] = []
    start = -1
    for pos, token in enumerate(tokens):
        if token == EVENT_START:
            if start >= 0:
                raise DecodeError(f"token {pos}: {EVENT_START} inside the event started at token {start}")
            start = pos
        elif token == EVENT_END:
            if start < 0:
                raise DecodeError(f"token {pos}: {EVENT_END} without a matching {EVENT_START}")
            events.append((start, list(tokens[start : pos + 1])))
            start = -1
        elif start < 0:
            raise DecodeError(
                f"token {pos}: {token!r} is outside an event (strip padding/prompt tokens and "
                f"collapse image runs before decoding)"
            )
    if start >= 0:
        raise DecodeError(f"token {start}: event is not terminated by {EVENT_END}")
    return events
