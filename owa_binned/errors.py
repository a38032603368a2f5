"""Every error of the binned stage, in one place (all derive from :class:`owa_event.errors.OwaError`;
each is also importable from the module that raises it)."""

from __future__ import annotations

from owa_event.errors import OwaError


class EmptyRunError(OwaError):
    """A stretch without any event longer than the bins may fill one by one (``max_empty_run``)."""
