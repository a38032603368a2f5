"""``owa-builders decode``: rows of a built FSL (fixed sequence length) folder -> events -> an OWAMcap file.

A built folder is what ``owa-builders build fsl DATA -o DIR`` writes (THE layout of a build,
:mod:`owa_builders.output`: Parquet shards, the record, ``DIR/tokenizer``); the decoding itself is
:mod:`owa_fsl.decode`.
"""

from __future__ import annotations

import os
from typing import Any

from owa_fsl.decode import ROW_KEYS, URI_NOTE, FslDecodeError, decode_row, describe_row, write_mcap
from owa_fsl.tokenizer import FSL_META, TOKENIZER_DIR, FslTokens, TokenizerError

_SAVED = "a build written by `owa-builders build fsl DATA -o DIR`"


def _load_split(dataset_dir: str, split: str) -> Any:
    """One split of a build, as an in-memory ``datasets.Dataset`` (rows in the build's order)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .output import BuildFolderError, Destination

    if not os.path.isdir(dataset_dir):
        raise FslDecodeError(f"{dataset_dir!r} is not a folder (expected {_SAVED})")
    dest = Destination(dataset_dir)
    try:
        record = dest.read_record()
    except BuildFolderError as exc:
        raise FslDecodeError(f"{dataset_dir!r} is not a build ({exc}); expected {_SAVED}") from None
    if split not in record.shards:
        raise FslDecodeError(f"{dataset_dir!r} has no split {split!r}; its splits: {sorted(record.shards)}")
    try:
        tables = [pq.read_table(dest.path(rel)) for rel in record.shards[split]]
    except OSError as exc:
        raise FslDecodeError(f"{dataset_dir!r} [{split}]: a shard cannot be read ({exc})") from None
    ds = datasets.Dataset(pa.concat_tables(tables))
    absent = [key for key in (*ROW_KEYS, "episode_path") if key not in ds.column_names]
    if absent:
        raise FslDecodeError(f"{dataset_dir!r} [{split}] is not an FSL dataset: no column(s) {absent}")
    return ds


def _load_tokens(dataset_dir: str, tokenizer_dir: str | None) -> tuple[FslTokens, str]:
    directory = tokenizer_dir if tokenizer_dir is not None else os.path.join(dataset_dir, TOKENIZER_DIR)
    hint = "pass the expanded tokenizer directory saved with the dataset (--tokenizer DIR)"
    if not os.path.isdir(directory):
        raise FslDecodeError(f"tokenizer directory {directory!r} does not exist; {hint}")
    if not os.path.isfile(os.path.join(directory, FSL_META)):
        raise FslDecodeError(
            f"tokenizer directory {directory!r} has no {FSL_META} (not an expanded FSL tokenizer); {hint}"
        )
    try:
        return FslTokens.load(directory), directory
    except (OSError, TokenizerError) as exc:
        raise FslDecodeError(f"cannot load the FSL tokenizer from {directory!r}: {exc}") from exc


def _episode_rows(ds: Any, episode: str, name: str) -> tuple[list[int], str]:
    paths: list[str] = ds["episode_path"]
    indices = [i for i, p in enumerate(paths) if p == episode]
    if indices:
        return indices, episode
    # A unique episode_path ending in "/<episode>" is accepted too (e.g. "train/x.mcap" as "x.mcap").
    suffix = "/" + episode.lstrip("/")
    matches = sorted({p for p in paths if p.endswith(suffix)})
    if len(matches) == 1:
        return [i for i, p in enumerate(paths) if p == matches[0]], matches[0]
    known = sorted(set(paths))
    if matches:
        raise FslDecodeError(f"episode {episode!r} is ambiguous in {name}: it matches {matches}")
    shown = ", ".join(repr(p) for p in known[:10])
    if len(known) > 10:
        shown += f" ... ({len(known)} in all)"
    raise FslDecodeError(f"unknown episode {episode!r} in {name}; its episodes: {shown or '(none)'}")


def decode_command(
    dataset_dir: str,
    output: str,
    *,
    split: str = "train",
    row: int | None = None,
    episode: str | None = None,
    tokenizer_dir: str | None = None,
) -> str:
    """Decode one row, or every row of one episode (in dataset order), of a saved FSL dataset into
    the OWAMcap file ``output``; returns a one-line summary.

    ``dataset_dir`` is what ``owa-builders build fsl DATA -o DIR`` writes: THE layout of a build
    (:mod:`owa_builders.output`) with ``DIR/tokenizer`` (the expanded tokenizer and
    ``owa_fsl.json``); ``tokenizer_dir`` overrides the latter. Exactly one of ``row`` (an index
    into ``split``) and ``episode`` (an ``episode_path``, or a unique suffix of one after a
    ``/``) is given. Screen media URIs are kept relative to the original dataset root.
    """
    if (row is None) == (episode is None):
        raise FslDecodeError("give exactly one of row= (a row index) and episode= (an episode_path)")
    tokens, tok_dir = _load_tokens(dataset_dir, tokenizer_dir)
    ds = _load_split(dataset_dir, split)
    name = f"{dataset_dir} [{split}]"
    if row is not None:
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < ds.num_rows:
            n = ds.num_rows
            raise FslDecodeError(f"row {row!r} is out of range: {name} has {n} rows (0..{n - 1})")
        indices, what = [row], f"row {row}"
    else:
        assert episode is not None
        indices, episode_path = _episode_rows(ds, episode, name)
        what = f"episode {episode_path!r} ({len(indices)} rows)"
    rows = ds.select(indices) if len(indices) != ds.num_rows else ds
    events = (
        event
        for index, r in zip(indices, rows)
        for event in decode_row(r, tokens, where=f"row {index} of {name} ({describe_row(r, None)})")
    )
    metadata = {
        "dataset_dir": os.path.abspath(dataset_dir),
        "split": split,
        "rows": ",".join(map(str, indices)),
        "tokenizer_dir": os.path.abspath(tok_dir),
        "note": URI_NOTE,
    }
    partial = f"{output}.partial"
    try:  # written beside, renamed when complete: a failed decode leaves no half-written output
        counts = write_mcap(events, partial, metadata=metadata)
        os.replace(partial, output)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    per_topic = ", ".join(f"{topic}: {n}" for topic, n in sorted(counts.items())) or "none"
    return (
        f"decoded {sum(counts.values())} events ({per_topic}) from {what} of {name} to {output}; {URI_NOTE}"
    )
