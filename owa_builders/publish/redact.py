"""Local paths out of everything published: the build record, the card, the plots, the preview pages.

Nothing uploaded names the publisher's machine: no absolute path, no home directory, no user name.
:func:`public_record` is the build record as it goes up (called once, by :func:`.hub.push`, whose card
and plots are rendered from it); :class:`Redactor` rewrites text (a record's strings, a preview page):

- a path under the recordings' root (``data_root``) becomes relative to it, which is the dataset
  root on the Hub (media keep their relative paths there), e.g. ``/tmp/x/recs/0.3.2.mcap: has no
  'mouse/raw' topic`` -> ``0.3.2.mcap: has no 'mouse/raw' topic``; the root itself becomes ``.``;
- a path under the built folder becomes relative to the config's folder;
- a local tokenizer is recorded as the dataset's own ``tokenizer`` folder (relative to the record)
  with its vocabulary hash; a Hub tokenizer by its name (and the hash);
- any other absolute path keeps only its last part (``<local>/name``); the home directory
  becomes ``~`` first, so nothing of it survives.

:func:`leaks` is the check run on every text file before it is uploaded (a leak is an error, never
uploaded): the built folder, the recordings' root, the home directory and the user name as a path
component.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: An absolute POSIX path not inside a URL (``hf://...``, ``http://...``): a ``/`` preceded by no word
#: character, ``:`` or ``/``, then at least one component.
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+%=-]+/)*[\w.@+%=-]+/?")
#: What an absolute path outside the known roots becomes (its last component is kept).
LOCAL = "<local>"


def _home() -> str:
    return os.path.expanduser("~").rstrip("/")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return os.environ.get("USER", "")


def _spellings(path: str) -> list[str]:
    """A local folder as it was written and as it resolves (symlinks, ``..``), without a trailing ``/``."""
    out = {os.path.normpath(path).rstrip("/"), os.path.realpath(path).rstrip("/")}
    return sorted((p for p in out if p and p != "/"), key=len, reverse=True)


@dataclass(frozen=True)
class Redactor:
    """Rewrites local paths in text: each ``root`` (absolute, longest first) to its replacement, then
    the home directory to ``~``, then any other absolute path to ``<local>/<last part>``."""

    roots: tuple[tuple[str, str], ...]  # (absolute folder, what it becomes: "" = relative to it)
    home: str

    def text(self, text: str) -> str:
        for root, replacement in self.roots:
            under = replacement + "/" if replacement else ""  # root/x -> x (or replacement/x)
            itself = replacement or "."  # root -> .
            pattern = re.compile(re.escape(root) + r"(/|(?![\w.@+%=-]))")
            text = pattern.sub(lambda m, u=under, i=itself: u if m.group(1) else i, text)  # type: ignore[misc]
        if self.home:
            text = re.sub(re.escape(self.home) + r"(?=/|(?![\w.@+%=-]))", "~", text)
        return _ABSOLUTE.sub(lambda m: f"{LOCAL}/{m.group(0).rstrip('/').rsplit('/', 1)[-1]}", text)

    def value(self, value: Any) -> Any:
        """A JSON value with every string (keys included) rewritten by :meth:`text`."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


def redactor(built_path: str | None, data_root: str | None) -> Redactor:
    """The :class:`Redactor` of one build: ``data_root`` paths relative to it, ``built_path`` paths
    relative to the config folder (local folders only; URLs are left alone)."""
    roots: list[tuple[str, str]] = []
    if data_root and "://" not in data_root:
        roots += [(p, "") for p in _spellings(data_root)]
    if built_path and "://" not in built_path:
        roots += [(p, "") for p in _spellings(built_path)]
    roots.sort(key=lambda r: len(r[0]), reverse=True)  # a build inside the recordings' root: the longer first
    return Redactor(tuple(roots), _home())


def is_local_tokenizer(name: Any) -> bool:
    """Whether a config's ``tokenizer_name`` is a local folder (else a Hub repo id)."""
    return isinstance(name, str) and (
        os.path.isabs(name) or name.startswith(("./", "../", "~")) or os.path.isdir(name)
    )


def public_record(
    record: dict[str, Any], built_path: str, tokenizer_meta: dict[str, Any] | None
) -> dict[str, Any]:
    """The build record as it is published: no ``data_root``; the tokenizer as the dataset's own folder
    (``tokenizer_meta``: the expanded tokenizer's ``owa_fsl.json``, for its vocabulary hash) or its Hub
    name; every other string through :func:`redactor`."""
    out = dict(record)
    data_root = out.pop("data_root", None)
    tokenizer_dir = (out.get("describe") or {}).get("tokenizer_dir")
    name = (out.get("config") or {}).get("tokenizer_name")
    if name is not None and tokenizer_dir:
        local = is_local_tokenizer(name)
        out["tokenizer"] = {
            "source": "local" if local else "hub",
            "name": tokenizer_dir if local else name,
            "folder": tokenizer_dir,
            "vocab_hash": (tokenizer_meta or {}).get("vocab_hash"),
        }
        if local:
            out["config"] = dict(out["config"])
            out["describe"] = dict(out["describe"])
            if isinstance(out["describe"].get("config"), dict):
                out["describe"]["config"] = dict(out["describe"]["config"])
            for config in (out["config"], out["describe"].get("config")):
                if isinstance(config, dict) and "tokenizer_name" in config:
                    config["tokenizer_name"] = tokenizer_dir
    return redactor(built_path, data_root).value(out)


def leaks(data: bytes, markers: Iterable[str]) -> list[str]:
    """The ``markers`` that occur in ``data``."""
    return [m for m in markers if m and m.encode() in data]


def private_markers(built_path: str | None, data_root: str | None) -> list[str]:
    """What must never be uploaded: the built folder and the recordings' root (as written and
    resolved), the home directory (as a path prefix) and the user name as a path component."""
    markers: list[str] = []
    for path in (built_path, data_root):
        if path and "://" not in path:
            markers += _spellings(path)
    home = _home()
    if home and home != "/":
        markers.append(home + "/")
    user = _user()
    if user:
        markers += [f"/{user}/", f"\\{user}\\"]
    return sorted(set(markers))


def tokenizer_meta(folder: str | None) -> dict[str, Any] | None:
    """The expanded tokenizer's ``owa_fsl.json`` (None when absent or unreadable)."""
    if not folder:
        return None
    try:
        with open(os.path.join(folder, "owa_fsl.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None
