"""Publishing built datasets: Parquet shards, dataset cards, media and previews.

- :func:`push` (``owa-builders push``, :mod:`.hub`): a built folder -> a Hub dataset repo that loads
  with plain `datasets` (normal and streaming) and whose frames decode from ``hf://datasets/<repo>``;
- :mod:`.layout`: the Parquet layout (shard names, ``data_files`` globs), shared with distributed builds;
- :mod:`.source`: a built folder opened and checked complete; :mod:`.media`: the videos rows reference;
- :mod:`.card`: the ``README.md`` card from the templates in ``dataset_cards/``; :mod:`.stats`,
  :mod:`.plots`: its measured facts and images;
- :func:`write_preview` (``owa-builders preview``, :mod:`.preview`): one episode or FSL row as a
  self-contained HTML page.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PreviewResult", "PublishError", "PushResult", "push", "write_preview"]
_HOMES = {"PublishError": "..errors", "PushResult": ".hub", "push": ".hub", "PreviewResult": ".preview",
          "write_preview": ".preview"}  # fmt: skip


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (so ``publish.layout`` can be imported alone, cheaply)."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
