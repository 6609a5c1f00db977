"""Turn validated batches into features, one immutable-by-content Parquet file per batch.

Features are row-wise only: each output row depends on its own input row and nothing else. Anything
fitted on data (scaling, encoders) belongs inside the model and is fitted on the training split, so no
statistic of a held-out or future row can leak into training.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator

import pandas as pd
import pyarrow as pa

from include import layout, storage
from include.batches import raw_batch_data
from include.chunks import DEFAULT, Chunking
from include.config import DatasetSchema

_PANDAS_DTYPES = {"float": "float64", "int": "int64", "str": "str"}


def to_features(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The schema's columns in schema order, each cast to its declared dtype, the label as text."""
    features = df[schema.columns].reset_index(drop=True)
    dtypes = {spec.name: _PANDAS_DTYPES[spec.dtype] for spec in schema.features}
    return features.astype({**dtypes, schema.label: "str"})


def write_features(
    root: str, batch_id: str, chunks: Iterable[pd.DataFrame], chunking: Chunking = DEFAULT
) -> dict:
    """Write one batch's features, given as consecutive ``chunks``, one chunk at a time; the returned
    hash lets later stages prove which bytes they used.

    Re-running a batch (a retry or a backfill) rewrites the same content, so overwriting is safe.
    """
    rows, sha256 = storage.write_parquet_chunks(
        layout.feature_batch(root, batch_id),
        (pa.Table.from_pandas(chunk, preserve_index=False) for chunk in chunks),
        chunking=chunking,
    )
    return {"batch_id": batch_id, "rows": rows, "sha256": sha256}


def raw_feature_chunks(
    root: str, batch_id: str, schema: DatasetSchema, chunking: Chunking = DEFAULT
) -> Iterator[pd.DataFrame]:
    """The features of the raw batch ``batch_id``, a chunk at a time (only the schema's columns are read)."""
    url = raw_batch_data(root, batch_id)
    with storage.open_parquet(url) as parquet:
        batch_rows = chunking.rows(len(schema.columns))
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=schema.columns):
            yield to_features(batch.to_pandas(), schema)


def build_features(
    root: str, batch_ids: list[str], schema: DatasetSchema, chunking: Chunking = DEFAULT
) -> list[dict]:
    """Turn each validated raw batch into its features file, streaming; what :func:`write_features`
    says of each."""
    return [
        write_features(root, batch_id, raw_feature_chunks(root, batch_id, schema, chunking), chunking)
        for batch_id in batch_ids
    ]


def list_feature_batches(root: str) -> list[str]:
    """Ids of the batches that have features, oldest first (batch ids sort by time)."""
    names = storage.list_names(layout.features(root), ".parquet")
    return [name.removesuffix(".parquet") for name in names]


def load_features(root: str, batch_ids: list[str] | None = None) -> tuple[pd.DataFrame, list[str], str]:
    """The features of ``batch_ids`` (default: every batch), the ids used, and a feature-data hash.

    The hash covers the sorted per-file hashes, so it names the exact training data regardless of the
    order the ids were given in, and changes when any batch's bytes change.
    """
    ids = sorted(set(list_feature_batches(root) if batch_ids is None else batch_ids))
    if not ids:
        raise ValueError(f"no feature batches to load under {layout.features(root)}")
    frames, hashes = [], []
    for batch_id in ids:
        url = layout.feature_batch(root, batch_id)
        if not storage.exists(url):
            raise FileNotFoundError(f"feature batch {batch_id!r} not found: {url} does not exist")
        data = storage.read_bytes(url)
        hashes.append(hashlib.sha256(data).hexdigest())
        frames.append(pd.read_parquet(io.BytesIO(data)))
    feature_hash = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    return pd.concat(frames, ignore_index=True), ids, feature_hash


def training_batches(root: str, requested: list[str], window: int) -> list[str]:
    """The feature batches to train on: the ids ``requested`` by hand, else the newest ``window``."""
    if requested:
        return sorted(layout.check_id(batch_id, "batch id") for batch_id in set(requested))
    if window < 1:
        raise ValueError(f"training_window_batches must be at least 1, got {window}")
    return list_feature_batches(root)[-window:]
