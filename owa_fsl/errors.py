"""Every error of the FSL (fixed sequence length) stage, in one place.

All derive from :class:`owa_event.errors.OwaError`. Each class is also importable from the module that
raises it (``owa_fsl.encoders``, ``owa_fsl.pack``, ``owa_fsl.tokenizer``, ``owa_fsl.decode``).
"""

from __future__ import annotations

from owa_event.errors import OwaError


class EncodeError(OwaError):
    """An event cannot be encoded (unsupported topic, missing field, value out of range, offset)."""


class DecodeError(OwaError):
    """A token stream is not a valid encoding."""


class OversizeEventError(OwaError):
    """An event needs more tokens than a whole sequence holds."""


class TokenizerError(OwaError):
    """A tokenizer that cannot be loaded, or whose vocabulary is not the one the ids were made with."""


class FslDecodeError(OwaError):
    """A row (or a request) that cannot be decoded; the message names the row and the problem."""
