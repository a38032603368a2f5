"""Select parts of a recording as time intervals.

An :data:`Intervals` value is a tuple of half-open ``[start_ns, end_ns)`` pairs (ints, ns),
sorted, non-overlapping, not touching and non-empty; an event at ``t`` is inside iff
``start <= t < end``. :func:`normalize`, :func:`union`, :func:`intersection` and
:func:`difference` are pure helpers on such values.

A selection (:class:`IntervalSelection`) decides which intervals of a recording to keep
from the events of the topics it needs (:meth:`IntervalSelection.topics`). The recording
span is ``[start_ns, end_ns]`` with ``end_ns`` the time of the LAST message (inclusive), so
the whole recording is ``[(start_ns, end_ns + 1)]``. Selections are frozen dataclasses
(hashable, picklable, deterministic repr), combine with ``|`` (:class:`Union`), ``&``
(:class:`Intersection`) and ``-`` (:class:`Difference`), and round-trip through plain
dicts (:meth:`IntervalSelection.to_dict`, :func:`selection_from_dict`) for configs/CLI:

    {"type": "all"}
    {"type": "start_stop_key", "start_vk": 119, "stop_vk": 120}
    {"type": "inactivity", "screen_timeout_s": 5.0, "input_timeout_s": 30.0}
    {"type": "union" | "intersection" | "difference", "a": {...}, "b": {...}}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from owa_event.events import INPUT_TOPICS, KEYBOARD, SCREEN, Event, EventOrderError

__all__ = [
    "Intervals",
    "normalize",
    "union",
    "intersection",
    "difference",
    "IntervalSelection",
    "All",
    "StartStopKey",
    "Inactivity",
    "Union",
    "Intersection",
    "Difference",
    "selection_from_dict",
]

Intervals = tuple[tuple[int, int], ...]


# ---------------------------------------------------------------------------------------
# Interval arithmetic
# ---------------------------------------------------------------------------------------
def normalize(pairs: Iterable[tuple[int, int]]) -> Intervals:
    """Sort ``pairs`` and merge overlapping or touching ones; empty pairs are dropped.

    Raises :class:`ValueError` for a pair with ``end < start`` (a bug, not an empty pair).
    """
    items: list[tuple[int, int]] = []
    for start, end in pairs:
        if end < start:
            raise EventOrderError(f"interval end before start: ({start}, {end})")
        if end > start:
            items.append((start, end))
    items.sort()
    merged: list[tuple[int, int]] = []
    for start, end in items:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def union(a: Iterable[tuple[int, int]], b: Iterable[tuple[int, int]]) -> Intervals:
    """Points in ``a`` or ``b``."""
    return normalize([*a, *b])


def intersection(a: Iterable[tuple[int, int]], b: Iterable[tuple[int, int]]) -> Intervals:
    """Points in both ``a`` and ``b``."""
    xs, ys = normalize(a), normalize(b)
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        start = max(xs[i][0], ys[j][0])
        end = min(xs[i][1], ys[j][1])
        if start < end:
            out.append((start, end))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def difference(a: Iterable[tuple[int, int]], b: Iterable[tuple[int, int]]) -> Intervals:
    """Points in ``a`` but not in ``b``."""
    xs, ys = normalize(a), normalize(b)
    out: list[tuple[int, int]] = []
    j = 0
    for start, end in xs:
        while j < len(ys) and ys[j][1] <= start:
            j += 1
        k = j
        cur = start
        while k < len(ys) and ys[k][0] < end:
            if ys[k][0] > cur:
                out.append((cur, ys[k][0]))
            cur = max(cur, ys[k][1])
            k += 1
        if cur < end:
            out.append((cur, end))
    return tuple(out)


def _span(start_ns: int, end_ns: int) -> Intervals:
    """The whole recording ``[start_ns, end_ns + 1)`` (``end_ns`` = last message, inclusive)."""
    if end_ns < start_ns:
        raise EventOrderError(f"recording span ends before it starts: [{start_ns}, {end_ns}]")
    return ((start_ns, end_ns + 1),)


# ---------------------------------------------------------------------------------------
# Field validation, shared by __post_init__ and selection_from_dict
# ---------------------------------------------------------------------------------------
def _vk_problems(name: str, value: Any, optional: bool = False) -> list[str]:
    if value is None and optional:
        return []
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{name} must be an int virtual-key code 0..255, got {value!r}"]
    if not 0 <= value <= 255:
        return [f"{name} must be a virtual-key code 0..255, got {value}"]
    return []


def _timeout_problems(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{name} must be a number of seconds > 0 or null, got {value!r}"]
    if not value > 0:  # also rejects NaN
        return [f"{name} must be > 0 seconds, got {value!r}"]
    return []


def _raise_problems(owner: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(f"invalid {owner}: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------
# Selections
# ---------------------------------------------------------------------------------------
class IntervalSelection(ABC):
    """Base of all selections: a rule that turns a recording's events into kept intervals."""

    TYPE: ClassVar[str] = ""

    @classmethod
    def field_problems(cls, values: Mapping[str, Any]) -> list[str]:
        """Every problem of the field ``values`` given (missing fields are not checked here): the one
        validation used by the constructor and by :func:`selection_from_dict`."""
        return []

    def __post_init__(self) -> None:
        _raise_problems(
            type(self).__name__, self.field_problems({f.name: getattr(self, f.name) for f in fields(self)})
        )  # type: ignore[arg-type]

    def topics(self) -> frozenset[str]:
        """Topics whose events :meth:`select` needs (empty: it needs no events)."""
        return frozenset()

    def select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        """Kept intervals of a recording spanning ``[start_ns, end_ns]`` (``end_ns`` inclusive).

        ``events`` are the recording's events of (at least) :meth:`topics`, in time order;
        events of other topics are ignored. The result is clipped to
        ``[start_ns, end_ns + 1)``.
        """
        span = _span(start_ns, end_ns)
        return intersection(self._select(events, start_ns, end_ns), span)

    @abstractmethod
    def _select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        """Kept intervals, not necessarily clipped to the span."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict, inverse of :func:`selection_from_dict`."""
        out: dict[str, Any] = {"type": self.TYPE}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, IntervalSelection) else value
        return out

    def __or__(self, other: object) -> IntervalSelection:
        if not isinstance(other, IntervalSelection):
            return NotImplemented
        return Union(self, other)

    def __and__(self, other: object) -> IntervalSelection:
        if not isinstance(other, IntervalSelection):
            return NotImplemented
        return Intersection(self, other)

    def __sub__(self, other: object) -> IntervalSelection:
        if not isinstance(other, IntervalSelection):
            return NotImplemented
        return Difference(self, other)


def _check_order(prev_t: int | None, ev: Event) -> int:
    if prev_t is not None and ev.timestamp_ns < prev_t:
        raise EventOrderError(
            f"events out of time order: event #{ev.index} on {ev.topic!r} at {ev.timestamp_ns} ns "
            f"comes after one at {prev_t} ns"
        )
    return ev.timestamp_ns


@dataclass(frozen=True)
class All(IntervalSelection):
    """The whole recording, ``[(start_ns, end_ns + 1)]``: first and last event included."""

    TYPE: ClassVar[str] = "all"

    def _select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        return _span(start_ns, end_ns)


@dataclass(frozen=True)
class StartStopKey(IntervalSelection):
    """Intervals from a press of ``start_vk`` to the next press of ``stop_vk``, both included.

    Each interval is ``[t_start_press, t_stop_press + 1)``. ``stop_vk`` None (or equal to
    ``start_vk``) means the start key toggles. Only presses count, and a press of a key that
    is already held (OS auto-repeat) is ignored. A start press while an interval runs, and a
    stop press while none runs, are ignored. An interval with no stop runs to the end of the
    recording (``end_ns + 1``). Keys are Windows virtual-key codes 0..255.
    """

    TYPE: ClassVar[str] = "start_stop_key"
    start_vk: int
    stop_vk: int | None = None

    @classmethod
    def field_problems(cls, values: Mapping[str, Any]) -> list[str]:
        problems = _vk_problems("start_vk", values["start_vk"]) if "start_vk" in values else []
        return problems + _vk_problems("stop_vk", values.get("stop_vk"), optional=True)

    def topics(self) -> frozenset[str]:
        return frozenset({KEYBOARD})

    def _select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        stop_vk = self.start_vk if self.stop_vk is None else self.stop_vk
        held: set[Any] = set()
        opened: int | None = None
        out: list[tuple[int, int]] = []
        prev_t: int | None = None
        for ev in events:
            if ev.topic != KEYBOARD:
                continue
            prev_t = _check_order(prev_t, ev)
            kind = ev.fields.get("event_type")
            vk = ev.fields.get("vk")
            if type(vk) is not int:  # not a key code: never a start or stop key, never held
                continue
            if kind == "release":
                held.discard(vk)
                continue
            if kind != "press" or vk in held:
                continue
            held.add(vk)
            t = ev.timestamp_ns
            if opened is None:
                if vk == self.start_vk:
                    opened = t
            elif vk == stop_vk:
                out.append((opened, t + 1))
                opened = None
        if opened is not None:
            out.append((opened, end_ns + 1))
        return normalize(out)


@dataclass(frozen=True)
class Inactivity(IntervalSelection):
    """The recording minus inactive stretches.

    A stretch is inactive where consecutive ``screen`` events are more than
    ``screen_timeout_s`` apart (video is never decoded: "no screen change" means "no screen
    message"), or consecutive input events (``keyboard``, ``mouse``, ``mouse/raw``) are more
    than ``input_timeout_s`` apart. For such a gap between events at ``t1 < t2`` the open
    stretch ``(t1, t2)`` is removed, i.e. ``[t1 + 1, t2)``: both events stay. Likewise
    ``[start_ns, t_first)`` and ``[t_last + 1, end_ns + 1)`` are removed when longer than the
    timeout, and the whole recording when it has no event of that kind and is longer than the
    timeout. At least one timeout must be set; timeouts are seconds > 0.
    """

    TYPE: ClassVar[str] = "inactivity"
    screen_timeout_s: float | None = None
    input_timeout_s: float | None = None

    @classmethod
    def field_problems(cls, values: Mapping[str, Any]) -> list[str]:
        screen, inputs = values.get("screen_timeout_s"), values.get("input_timeout_s")
        problems = _timeout_problems("screen_timeout_s", screen) + _timeout_problems(
            "input_timeout_s", inputs
        )
        if screen is None and inputs is None:
            problems.append("at least one of screen_timeout_s and input_timeout_s must be set")
        return problems

    def topics(self) -> frozenset[str]:
        out: set[str] = set()
        if self.screen_timeout_s is not None:
            out.add(SCREEN)
        if self.input_timeout_s is not None:
            out |= INPUT_TOPICS
        return frozenset(out)

    def _select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        groups: list[tuple[frozenset[str], float]] = []
        if self.screen_timeout_s is not None:
            groups.append((frozenset({SCREEN}), self.screen_timeout_s * 1e9))
        if self.input_timeout_s is not None:
            groups.append((INPUT_TOPICS, self.input_timeout_s * 1e9))
        last: list[int | None] = [None] * len(groups)
        removed: list[tuple[int, int]] = []
        prev_t: int | None = None
        for ev in events:
            in_groups = [i for i, (topics, _) in enumerate(groups) if ev.topic in topics]
            if not in_groups:
                continue
            prev_t = _check_order(prev_t, ev)
            t = ev.timestamp_ns
            for i in in_groups:
                t_prev = last[i]
                timeout = groups[i][1]
                if t_prev is None:
                    if t - start_ns > timeout:
                        removed.append((start_ns, t))
                elif t - t_prev > timeout:
                    removed.append((t_prev + 1, t))
                last[i] = t
        for i, (_, timeout) in enumerate(groups):
            t_prev = last[i]
            if t_prev is None:
                if end_ns - start_ns > timeout:
                    removed.append((start_ns, end_ns + 1))
            elif end_ns - t_prev > timeout:
                removed.append((t_prev + 1, end_ns + 1))
        return difference(_span(start_ns, end_ns), removed)


@dataclass(frozen=True)
class _Binary(IntervalSelection):
    """A combination of two selections; needs the topics of both."""

    a: IntervalSelection
    b: IntervalSelection

    @classmethod
    def field_problems(cls, values: Mapping[str, Any]) -> list[str]:
        return [
            f"{name} must be an IntervalSelection, got {value!r}"
            for name, value in values.items()
            if name in ("a", "b") and not isinstance(value, IntervalSelection)
        ]

    def topics(self) -> frozenset[str]:
        return self.a.topics() | self.b.topics()

    def _children(self, events: Iterable[Event], start_ns: int, end_ns: int) -> tuple[Intervals, Intervals]:
        evs = events if isinstance(events, (list, tuple)) else list(events)
        return self.a.select(evs, start_ns, end_ns), self.b.select(evs, start_ns, end_ns)


@dataclass(frozen=True)
class Union(_Binary):
    """Intervals kept by ``a`` or ``b``."""

    TYPE: ClassVar[str] = "union"

    def _select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        return union(*self._children(events, start_ns, end_ns))


@dataclass(frozen=True)
class Intersection(_Binary):
    """Intervals kept by both ``a`` and ``b``."""

    TYPE: ClassVar[str] = "intersection"

    def _select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        return intersection(*self._children(events, start_ns, end_ns))


@dataclass(frozen=True)
class Difference(_Binary):
    """Intervals kept by ``a`` but not by ``b``."""

    TYPE: ClassVar[str] = "difference"

    def _select(self, events: Iterable[Event], start_ns: int, end_ns: int) -> Intervals:
        return difference(*self._children(events, start_ns, end_ns))


# ---------------------------------------------------------------------------------------
# From dicts
# ---------------------------------------------------------------------------------------
_TYPES: dict[str, type[IntervalSelection]] = {
    cls.TYPE: cls for cls in (All, StartStopKey, Inactivity, Union, Intersection, Difference)
}


def _parse(d: Any, path: str, problems: list[str]) -> IntervalSelection | None:
    """Parse ``d`` at ``path``; append every problem found to ``problems``."""
    where = path or "<root>"
    if not isinstance(d, Mapping):
        problems.append(f"{where}: expected a mapping with a 'type' key, got {d!r}")
        return None
    kind = d.get("type")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(sorted(_TYPES))
        if "type" not in d:
            problems.append(f"{where}: missing 'type' (one of: {known})")
        else:
            problems.append(f"{where}: unknown type {kind!r} (one of: {known})")
        return None
    field_defs = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    start = len(problems)
    for key in d:
        if key != "type" and key not in field_defs:
            problems.append(
                f"{where}: unknown field {key!r} for type {kind!r} "
                f"(allowed: {', '.join(field_defs) or 'none'})"
            )
    for name, f in field_defs.items():
        if name not in d and f.default is MISSING:
            problems.append(f"{where}: missing field {name!r} for type {kind!r}")
    prefix = f"{path}." if path else ""
    values = {name: d[name] for name in field_defs if name in d}
    if issubclass(cls, _Binary):  # children are selections themselves: parse them (their problems, nested)
        values = {name: _parse(value, prefix + name, problems) for name, value in values.items()}
    else:
        problems += [f"{where}: {p}" for p in cls.field_problems(values)]
    if len(problems) > start:
        return None
    return cls(**values)


def selection_from_dict(d: Mapping[str, Any]) -> IntervalSelection:
    """Build a selection from its :meth:`~IntervalSelection.to_dict` form.

    Raises :class:`ValueError` listing every problem found (unknown types or fields,
    missing fields, bad values), each prefixed with where it is (e.g. ``a.b: start_vk must be ...``).
    """
    problems: list[str] = []
    sel = _parse(d, "", problems)
    if problems or sel is None:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(f"invalid interval selection ({len(problems)} problem(s)):\n{lines}")
    return sel
