"""Upgrade messages written by older OWAMcap writers to the current format, in-process.

Pure functions over (schema name, parsed fields). The layouts handled (as written by the
mcap-owa-support releases named):

- writer 0.3.x: schema names are Python paths, ``owa.env.desktop.msg.KeyboardEvent`` etc., and
  the screen type is ``owa.env.gst.msg.ScreenEmitted`` with ``{"path", "pts", "utc_ns"}``;
- writer 0.4.x: ``desktop/ScreenCaptured`` with ``{"utc_ns", "original_shape", "shape", "path", "pts"}``;
- writer 0.5.0: ``media_ref = {"type": "external_video", "path", "pts_ns"}``;
- writer 0.5.1 and later: ``source_shape`` and ``media_ref = {"uri", "pts_ns"}`` (current).

Detection looks at the schema name and the payload's keys, never at the writer version string,
so a file whose header lies is still read right.
"""

from __future__ import annotations

import math
from typing import Any

SCREEN_TYPE = "desktop/ScreenCaptured"

# 0.3.x python-path schema names -> current names.
_LEGACY_PREFIXES = ("owa.env.desktop.msg.", "owa_env_desktop.msg.", "owa.msgs.desktop.")
_LEGACY_SCREEN_NAMES = frozenset(
    {"owa.env.gst.msg.ScreenEmitted", "owa_env_gst.msg.ScreenEmitted", "owa.env.gst.msg.ScreenCaptured"}
)


#: Presentation times are int64 nanoseconds.
_PTS_LIMIT = 2**63


def _pts(value: Any) -> int:
    """A legacy ``pts`` (an int, or a float with an integral value, in ns) as an int in [0, 2**63).

    Raises ``ValueError`` naming the value for anything else (a list, a string, NaN, 1e300, -1).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"screen pts {value!r} is not a number of ns")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"screen pts {value!r} is not an integral number of ns")
    pts = int(value)
    if not 0 <= pts < _PTS_LIMIT:
        raise ValueError(f"screen pts {value!r} is outside [0, 2**63) ns")
    return pts


def upgrade_type(schema_name: str) -> str:
    """The current message type for a (possibly legacy) schema name; unknown names pass unchanged."""
    if schema_name in _LEGACY_SCREEN_NAMES:
        return SCREEN_TYPE
    for prefix in _LEGACY_PREFIXES:
        if schema_name.startswith(prefix):
            return "desktop/" + schema_name[len(prefix) :]
    return schema_name


def is_legacy_screen(fields: dict[str, Any]) -> bool:
    """True when a screen payload is not in the current layout and needs :func:`upgrade_screen`."""
    ref = fields.get("media_ref")
    if ref is None:
        return "path" in fields or "pts" in fields or "original_shape" in fields
    return not isinstance(ref, dict) or "uri" not in ref


def upgrade_screen(fields: dict[str, Any]) -> dict[str, Any]:
    """A screen payload of any known layout in the current layout (a new dict).

    Raises ``ValueError`` naming the missing field when a legacy payload lacks its media path.
    """
    out: dict[str, Any] = {}
    if "utc_ns" in fields:
        out["utc_ns"] = fields["utc_ns"]
    source_shape = fields.get("source_shape", fields.get("original_shape"))
    if source_shape is not None:
        out["source_shape"] = source_shape
    if fields.get("shape") is not None:
        out["shape"] = fields["shape"]
    ref = fields.get("media_ref")
    if isinstance(ref, dict):
        uri = ref.get("uri", ref.get("path"))
        pts_ns = ref.get("pts_ns", ref.get("pts"))
    else:
        uri = fields.get("path")
        pts_ns = fields.get("pts", fields.get("pts_ns"))
    if uri is None:
        raise ValueError("screen message has no media path (expected media_ref.uri, media_ref.path or path)")
    if not isinstance(uri, str):
        raise ValueError(f"screen media path {uri!r} is not a string")
    media_ref: dict[str, Any] = {"uri": uri}
    if pts_ns is not None:
        media_ref["pts_ns"] = _pts(pts_ns)
    out["media_ref"] = media_ref
    for key in ("timestamp",):
        if key in fields:
            out[key] = fields[key]
    return out
