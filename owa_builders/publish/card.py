"""Dataset cards: the repo's ``README.md`` from the templates in the top-level ``dataset_cards/`` folder.

A card is Hub YAML metadata + a body. The metadata lists every config (``configs``: name and
``data_files`` per split, as :mod:`.layout` names them) and its ``dataset_info`` (features, split
sizes), with license, task categories, tags and size category. The body is the header template
(first publish only) and one section per config, rendered from the stage's template
(``dataset_cards/<stage>.md``) with the measured facts of :mod:`.stats`, between markers::

    <!-- owa-builders config: NAME --> ... <!-- owa-builders end: NAME -->

Publishing a config again replaces its section and metadata entries; every other config's
section, metadata and anything a person wrote outside the markers are kept as they are.

Templates use ``{{ name }}`` placeholders; rendering fails (:class:`CardError`) when a template
names a value that is not given, so a template and this module cannot drift apart silently.
The templates are found beside the package when installed from a wheel
(``owa_builders/dataset_cards/``, see ``setup.py``) and in the source tree's top-level
``dataset_cards/`` otherwise (editable install, ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CardError
from ..stages import spec
from . import layout
from .plots import histogram_png, lines_png
from .source import BuiltFolder
from .stats import FILL_BINS, Stats

CARD_FILE = "README.md"
SECTION_START = "<!-- owa-builders config: {name} -->"
SECTION_END = "<!-- owa-builders end: {name} -->"
#: The header template (first publish of a repo) besides one template per stage.
HEADER_TEMPLATE = "header.md"
DEFAULT_LICENSE = "unknown"
TAGS = ["owa-builders", "owamcap", "desktop", "computer-use"]
FILL_PLOT = "sequence_fill.png"
RATE_PLOT = "events_per_second.png"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]  # fmt: skip


def templates_dir() -> Path:
    """The folder of the card templates (installed package first, then the source tree)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "dataset_cards", package.parent / "dataset_cards"):
        if (candidate / HEADER_TEMPLATE).is_file():
            return candidate
    raise CardError(
        f"the dataset card templates are missing (looked in {package}/dataset_cards and beside it)"
    )


def render_template(text: str, values: Mapping[str, Any], name: str = "template") -> str:
    """``text`` with every ``{{ key }}`` replaced by ``values[key]``; :class:`CardError` for a missing key."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(values))
    if missing:
        raise CardError(f"{name}: no value for placeholder(s) {missing}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def load_template(name: str) -> str:
    path = templates_dir() / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(f"{path}: cannot read the card template ({exc})") from None


# ------------------------------------------------------------------------------------------
# Facts as Markdown
# ------------------------------------------------------------------------------------------
def number(value: float) -> str:
    """A count or rate as the card writes it (thousands separated; one decimal unless whole)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} bytes"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def facts_markdown(stats: Stats, shards: Mapping[str, int], media: tuple[int, int] | None) -> str:
    """The splits table and the headline numbers of a config."""
    rows = [
        [
            f"`{name}`",
            f"{s.rows:,}",
            f"{s.episodes:,}",
            f"{s.recordings:,}",
            f"{s.hours:.4f}",
            shards.get(name, 0),
        ]
        for name, s in stats.splits.items()
    ]
    rows.append(["**total**", f"{stats.rows:,}", f"{stats.episodes:,}", f"{stats.recordings:,}", f"{stats.hours:.4f}",
                 sum(shards.values())])  # fmt: skip
    if media is None:
        media_line = (
            "- Media: the screen videos are **not** in this repo; frames need the original recordings."
        )
    else:
        media_line = (
            f"- Media: {media[0]:,} screen video(s), {_bytes(media[1])}, in this repo at the paths the rows "
            "name (media root `hf://datasets/<this repo>`)."
        )
    problems = f"- Build warnings: {stats.warnings:,}; recordings skipped: {stats.skipped_recordings:,}."
    return "\n".join(
        [
            _table(["split", "rows", "episodes", "recordings", "hours", "Parquet shards"], rows),
            "",
            f"- {stats.episodes:,} episodes from {stats.recordings:,} recordings, {stats.hours:.4f} hours kept.",
            media_line,
            problems,
        ]
    )


def events_markdown(stats: Stats) -> str:
    topics = sorted(set(stats.events_per_topic) | set(stats.messages_in))
    if not topics:
        return "No per-topic account was recorded for this build."
    rows = [
        [f"`{t}`", f"{stats.messages_in.get(t, 0):,}", f"{stats.events_per_topic.get(t, 0):,}"]
        for t in topics
    ]
    return (
        "Messages read from the recordings and events kept (after topic, interval and rate selection), per topic:\n\n"
        + _table(["topic", "messages read", "events kept"], rows)
    )


def drops_markdown(stats: Stats) -> str:
    if not stats.dropped:
        return "No message was dropped by a rule."
    listed = ", ".join(f"`{rule}`: {n:,}" for rule, n in stats.dropped.items())
    return f"Messages dropped, by rule: {listed}."


def token_markdown(stats: Stats) -> str:
    fsl = stats.fsl
    assert fsl is not None
    rows = [
        [label, *(number(values[k]) for k in ("min", "mean", "median", "max"))]
        for label, values in (
            ("real tokens per sequence", fsl.real_tokens),
            ("frames per sequence", fsl.frames),
            ("events per sequence", fsl.events),
        )
    ]
    return "\n".join(
        [
            _table(["per sequence", "min", "mean", "median", "max"], rows),
            "",
            f"- Tokens per sequence: {fsl.sequence_length:,} (padding included).",
            f"- Padding: {fsl.padding_share:.1%} of all token slots.",
            f"- Image tokens: {fsl.image_token_share:.1%} of the real tokens.",
        ]
    )


def build_markdown(built: BuiltFolder, publisher_version: str) -> str:
    record = built.record
    config = record.get("config") or {}
    used = {k: config[k] for k in ("keep_topics", "rate_settings", "interval") if k in config}
    used.update(
        {k: config[k] for k in ("fps", "max_sequence_length", "encoder_type", "drop_frameless", "action_shift_ns")
         if k in config}
    )  # fmt: skip
    filters = "; ".join(f"`{k}` = `{json.dumps(v, sort_keys=True)}`" for k, v in used.items())
    return "\n".join(
        [
            f"Built with owa-builders {record.get('version', '?')} (`{record.get('builder', '?')}`, config "
            f"`{record['config_name']}`), published with owa-builders {publisher_version}.",
            "",
            f"Rates and filters: {filters}.",
            "",
            "The exact build configuration (also in `" + layout.record_path(built.config_name) + "`):",
            "",
            "```json",
            json.dumps(config, indent=2, sort_keys=True),
            "```",
        ]
    )


def image_layout(built: BuiltFolder) -> str:
    image = (built.record.get("describe") or {}).get("image_tokens") or {}
    prefix = "".join(image.get("prefix") or [])
    suffix = "".join(image.get("suffix") or [])
    parts = [f"`{prefix}`"] if prefix else []
    parts.append(f"{image.get('count', '?')} x `{image.get('token', '?')}`")
    if suffix:
        parts.append(f"`{suffix}`")
    return " + ".join(parts)


# ------------------------------------------------------------------------------------------
# Plots, section, metadata, the whole card
# ------------------------------------------------------------------------------------------
def card_plots(stats: Stats) -> dict[str, bytes]:
    """The card's images of one config: ``{file name: PNG bytes}``."""
    plots = {}
    if stats.fsl is not None:
        plots[FILL_PLOT] = histogram_png(
            stats.fsl.fill_histogram, 0.0, 1.0, title=f"Sequence fill ({stats.config_name})",
            xlabel="real tokens / sequence length", ylabel="sequences",
        )  # fmt: skip
    if stats.series:
        plots[RATE_PLOT] = lines_png(
            stats.series, stats.series_bin_s, title=f"Events per second since the episode start ({stats.config_name})",
            xlabel="seconds since the episode start", ylabel="events/s, mean over episodes",
        )  # fmt: skip
    return plots


def render_section(
    built: BuiltFolder,
    stats: Stats,
    *,
    repo_id: str,
    config_name: str,
    shards: Mapping[str, int],
    media: tuple[int, int] | None,
    publisher_version: str,
) -> str:
    """The card section of one config, between its markers."""
    stage = spec(stats.stage)
    values: dict[str, Any] = {
        "repo_id": repo_id,
        "config_name": config_name,
        "first_split": next(iter(stats.splits)),
        "facts": facts_markdown(stats, shards, media),
        "events_table": events_markdown(stats),
        "drops": drops_markdown(stats),
        "build": build_markdown(built, publisher_version),
        "rate_plot": layout.plot_path(config_name, RATE_PLOT),
        "fill_plot": layout.plot_path(config_name, FILL_PLOT),
    }
    values.update(stage.card_values(built, stats, config_name))
    template = stage.card_template
    body = render_template(load_template(template), values, f"dataset_cards/{template}")
    return f"{SECTION_START.format(name=config_name)}\n{body.strip()}\n{SECTION_END.format(name=config_name)}"


def size_category(rows: int) -> str:
    return next((label for limit, label in _SIZES if rows < limit), "n>1B")


def card_metadata(
    existing: Any,
    built: BuiltFolder,
    stats: Stats,
    *,
    config_name: str,
    download_size: int,
    license: str | None = None,
    pretty_name: str | None = None,
) -> Any:
    """The card's YAML (a ``DatasetCardData``): ``existing``'s with this config's entries set.

    Other configs' ``configs`` and ``dataset_info`` entries and unrelated fields are kept;
    ``task_categories`` and ``tags`` are unions; ``license`` and ``pretty_name`` are set when given
    (else kept; the license defaults to :data:`DEFAULT_LICENSE`).
    """
    import datasets
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    data = DatasetCardData(**existing.to_dict()) if existing is not None else DatasetCardData()
    if license is not None:
        data.license = license
    elif not data.license:
        data.license = DEFAULT_LICENSE
    if pretty_name:
        data.pretty_name = pretty_name
    data.task_categories = _union(data.task_categories, list(spec(stats.stage).task_categories))
    data.tags = _union(data.get("tags"), [*TAGS, f"owa-{stats.stage}"])
    entry = {"config_name": config_name, "data_files": layout.data_files(config_name, list(stats.splits))}
    configs = list(data.get("configs") or [])
    names = [c.get("config_name") if isinstance(c, dict) else None for c in configs]
    if config_name in names:  # keep its place
        configs[names.index(config_name)] = entry
    else:
        configs.append(entry)
    data["configs"] = configs
    info = datasets.DatasetInfo(
        config_name=config_name,
        features=built.features,
        splits=datasets.SplitDict(),
        download_size=download_size,
        dataset_size=sum(s.num_bytes for s in built.splits.values()),
    )
    for name, split in built.splits.items():
        info.splits.add(datasets.SplitInfo(name=name, num_bytes=split.num_bytes, num_examples=split.num_rows))
    DatasetInfosDict({config_name: info}).to_dataset_card_data(data)
    infos = data["dataset_info"] if isinstance(data["dataset_info"], list) else [data["dataset_info"]]
    largest = max(sum(s.get("num_examples", 0) for s in i.get("splits") or []) for i in infos)
    data.size_categories = [size_category(largest)]
    return data


def _union(current: Any, extra: list[str]) -> list[str]:
    items = [current] if isinstance(current, str) else list(current or [])
    return items + [x for x in extra if x not in items]


def compose_card(
    existing_text: str | None, metadata: Any, section: str, config_name: str, header: str
) -> str:
    """The whole ``README.md``: ``metadata`` as YAML, then the existing body (or ``header``) with this
    config's section replaced, or appended when it is new."""
    if existing_text is not None:
        body = existing_body(existing_text)
    else:
        body = header.strip() + "\n"
    start, end = SECTION_START.format(name=config_name), SECTION_END.format(name=config_name)
    i = body.find(start)
    j = body.find(end, i + 1) if i >= 0 else -1
    if i >= 0 and j >= 0:
        body = body[:i] + section + body[j + len(end) :]
    else:
        body = body.rstrip() + "\n\n" + section + "\n"
    return f"---\n{metadata.to_yaml()}\n---\n\n{body.lstrip()}"


def existing_body(text: str) -> str:
    """The body (after the YAML block) of an existing card; :class:`CardError` when its YAML is broken."""
    from huggingface_hub import DatasetCard

    try:
        return DatasetCard(text).text
    except Exception as exc:
        raise CardError(
            f"the repo's {CARD_FILE} has metadata that cannot be read ({exc}); fix or remove it first"
        ) from None


def existing_metadata(text: str | None) -> Any:
    """The ``DatasetCardData`` of an existing card (None without one); :class:`CardError` when broken."""
    if text is None:
        return None
    from huggingface_hub import DatasetCard

    try:
        return DatasetCard(text).data
    except Exception as exc:
        raise CardError(
            f"the repo's {CARD_FILE} has metadata that cannot be read ({exc}); fix or remove it first"
        ) from None


def config_names(metadata: Any) -> list[str]:
    """The config names listed in a card's metadata."""
    if metadata is None:
        return []
    return [str(c.get("config_name")) for c in (metadata.get("configs") or []) if isinstance(c, dict)]


def header_markdown(repo_id: str, title: str | None = None) -> str:
    return render_template(
        load_template(HEADER_TEMPLATE),
        {"repo_id": repo_id, "title": title or repo_id.split("/")[-1]},
        f"dataset_cards/{HEADER_TEMPLATE}",
    )


__all__ = [
    "CARD_FILE",
    "FILL_BINS",
    "CardError",
    "card_metadata",
    "card_plots",
    "compose_card",
    "config_names",
    "existing_metadata",
    "header_markdown",
    "render_section",
    "render_template",
    "templates_dir",
]
