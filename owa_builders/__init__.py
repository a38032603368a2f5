"""owa-builders: Hugging Face `datasets` builders for OWAMcap desktop recordings.

``import owa_builders`` registers the builders, after which
``datasets.load_dataset("owa_builders/event", data_dir=...)`` works (also with ``streaming=True``).
"""

from __future__ import annotations

from .registry import BUILDERS, register

__version__ = "0.1.0"

register()

__all__ = ["BUILDERS", "register", "__version__"]
