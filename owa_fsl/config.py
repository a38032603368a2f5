"""The FSL (fixed sequence length) stage's configuration: the recording selection
(:class:`owa_event.config.SelectionConfig`) plus tokenization and packing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from owa_event.config import SelectionConfig
from owa_event.errors import ConfigError
from owa_event.pipeline import Preset

from .encoders import ENCODED_TOPICS, available_encoders, get_encoder
from .encoders.base import EventEncoder
from .tokenizer import IMAGE_PRESETS, FslTokens, ImageTokens

OnOversize = Literal["error", "drop"]

#: The named configs of the FSL stage (the builder's configs, the CLI's ``--config``), one per
#: model image layout (:data:`owa_fsl.tokenizer.IMAGE_PRESETS`), each naming its training collator.
FSL_PRESETS: dict[str, Preset] = {
    "fsl-internvl3": Preset(
        "Sequences for InternVL3: each frame is <img> + 256 x <IMG_CONTEXT> + </img>.",
        {"tokenizer_name": "OpenGVLab/InternVL3-1B-hf", "image_preset": "internvl3"},
        collator="InternVL3Collator",
    ),
    "fsl-smolvlm": Preset(
        "Sequences for SmolVLM2: each frame is <fake_token_around_image><global-img> + 64 x <image> + "
        "<fake_token_around_image>.",
        {"tokenizer_name": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "image_preset": "smolvlm"},
        collator="SmolVLMCollator",
    ),
}

#: What the FSL stage keeps by default: the screen and the input events a policy acts with.
DEFAULT_KEEP_TOPICS = ["screen", "keyboard", "mouse/raw"]
#: Default rates (Hz): frames and raw mouse motion at 20 Hz keep sequences useful (about 1 s of
#: activity per 4096 tokens with InternVL3's 258-token frames); keyboard is kept whole.
DEFAULT_RATES = {"screen": 20.0, "mouse/raw": 20.0}
#: Recordings without raw mouse input (writers up to 0.5.1 record ``mouse`` only) use ``mouse``.
DEFAULT_FALLBACKS = {"mouse/raw": "mouse"}


@dataclass
class FslConfig(SelectionConfig):
    """Event selection (inherited) + encoder, tokenizer and packing. Defaults keep screen,
    keyboard and raw mouse at :data:`DEFAULT_RATES`."""

    keep_topics: list[str] | None = field(default_factory=lambda: list(DEFAULT_KEEP_TOPICS))
    """Topics to encode; every one must be encodable (screen, keyboard, mouse, mouse/raw)."""

    rate_settings: dict[str, float] | None = field(default_factory=lambda: dict(DEFAULT_RATES))
    """Topic -> Hz, as in the event stage (see :mod:`owa_event.resample`)."""

    topic_fallbacks: dict[str, str] | None = field(default_factory=lambda: dict(DEFAULT_FALLBACKS))
    """As in the event stage; by default a recording without ``mouse/raw`` (writers up to 0.5.1) has
    its ``mouse`` events encoded instead, so its mouse input is not lost."""

    tokenizer_name: str | None = None
    """Hub name or local path of the base tokenizer (the model's own); the vocabulary of the
    encoder and the image tokens are added to it deterministically."""

    encoder_type: str = "factorized"
    """Event encoder: ``factorized`` (default), ``hierarchical`` or ``json`` (debugging)."""

    time_resolution_ns: int = 1_000_000
    """Resolution of encoded timestamps (ns); decoded times are exact at this resolution."""

    max_sequence_length: int = 4096
    """Tokens per sequence (every row is padded to exactly this length)."""

    image_preset: str | None = None
    """``internvl3`` or ``smolvlm``: the model's image token layout (set by the named configs)."""

    image_prefix: list[str] | None = None
    """Tokens before each frame's image tokens (overrides the preset)."""

    image_token: str | None = None
    """The repeated image token (overrides the preset)."""

    image_token_count: int | None = None
    """How many image tokens per frame (overrides the preset)."""

    image_suffix: list[str] | None = None
    """Tokens after each frame's image tokens (overrides the preset)."""

    drop_frameless: bool = False
    """Drop sequences that reference no frame (counted)."""

    action_shift_ns: int = 0
    """Shift input events (keyboard, mouse, mouse/raw) by this many ns before encoding (their
    timestamps are re-encoded, so text and ids agree); e.g. to pair frames with later actions."""

    on_oversize: OnOversize = "error"
    """An event longer than ``max_sequence_length`` tokens: ``error`` or ``drop`` (counted)."""

    debug_text: bool = False
    """Also store each sequence's text (``text`` column), for debugging."""

    def image_tokens(self) -> ImageTokens:
        """The image token layout: the preset with any explicit fields applied."""
        base = IMAGE_PRESETS.get(self.image_preset or "", None)
        prefix = self.image_prefix if self.image_prefix is not None else (base.prefix if base else None)
        token = self.image_token if self.image_token is not None else (base.token if base else None)
        count = (
            self.image_token_count if self.image_token_count is not None else (base.count if base else None)
        )
        suffix = self.image_suffix if self.image_suffix is not None else (base.suffix if base else ())
        if prefix is None or token is None or count is None:
            raise ConfigError(
                ["no image token layout: set image_preset or image_prefix/image_token/image_token_count"]
            )
        return ImageTokens(tuple(prefix), token, count, tuple(suffix))

    def encoder(self) -> EventEncoder:
        return get_encoder(self.encoder_type, time_resolution_ns=self.time_resolution_ns)

    def build_tokens(self, tokenizer: Any = None) -> FslTokens:
        """The expanded tokenizer and id table of this config (``tokenizer`` overrides ``tokenizer_name``:
        a name, a folder or a tokenizer object)."""
        return FslTokens.build(tokenizer if tokenizer is not None else self.tokenizer_name or "", self.encoder(),
                               self.image_tokens())  # fmt: skip

    def problems(self, input_topics: Iterable[str] | None = ()) -> list[str]:
        problems = super().problems(input_topics)
        encoder: EventEncoder | None = None
        if self.encoder_type not in available_encoders():
            problems.append(
                f"encoder_type {self.encoder_type!r} is not one of {sorted(available_encoders())}"
            )
        else:
            try:
                encoder = self.encoder()
            except ValueError as exc:
                problems.append(f"time_resolution_ns: {exc}")
        if self.keep_topics is None:
            problems.append(
                "keep_topics must list the topics to encode (None would include unencodable topics)"
            )
        elif isinstance(self.keep_topics, (list, tuple)):
            # without a valid encoder, still report topics no encoder supports
            supports = encoder.supports if encoder is not None else ENCODED_TOPICS.__contains__
            by = (
                f"the {self.encoder_type} encoder"
                if encoder is not None
                else f"any encoder (encodable: {list(ENCODED_TOPICS)})"
            )
            for topic in self.keep_topics:
                if isinstance(topic, str) and not supports(topic):
                    problems.append(f"keep_topics: topic {topic!r} cannot be encoded by {by}")
        if not _is_int(self.max_sequence_length) or self.max_sequence_length < 16:
            problems.append(f"max_sequence_length must be an integer >= 16, got {self.max_sequence_length!r}")
        if not _is_int(self.action_shift_ns):
            problems.append(f"action_shift_ns must be an integer (ns), got {self.action_shift_ns!r}")
        if self.on_oversize not in ("error", "drop"):
            problems.append(f"on_oversize must be 'error' or 'drop', got {self.on_oversize!r}")
        if self.image_preset is not None and self.image_preset not in IMAGE_PRESETS:
            problems.append(f"image_preset {self.image_preset!r} is not one of {sorted(IMAGE_PRESETS)}")
        else:
            try:
                image = self.image_tokens()
                if _is_int(self.max_sequence_length) and len(image.tokens()) + 16 > self.max_sequence_length:
                    problems.append(
                        f"max_sequence_length {self.max_sequence_length} cannot hold one frame "
                        f"({len(image.tokens())} image tokens) and its event"
                    )
            except ConfigError as exc:
                problems.extend(exc.problems)
            except (ValueError, TypeError) as exc:
                problems.append(str(exc))
        if not self.tokenizer_name or not isinstance(self.tokenizer_name, str):
            problems.append("tokenizer_name must name a tokenizer (hub name or local path)")
        return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
