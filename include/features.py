"""Turn validated batches into features, one immutable-by-content Parquet file per batch.

Features are row-wise only: each output row depends on its own input row and nothing else. Anything
fitted on data (scaling, encoders) belongs inside the model and is fitted on the training split, so no
statistic of a held-out or future row can leak into training.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

import pandas as pd
import pyarrow as pa

from include import layout, storage
from include.backtest import landed_by
from include.batches import raw_batch_data
from include.chunks import DEFAULT, Chunking
from include.config import TRUE_TEXTS, DatasetSchema
from include.errors import BadRequestError, ConfigurationError, NothingToDo, PermanentError

SCHEMA_FINGERPRINT_KEY = b"mlpipe.schema_fingerprint"  # Parquet key-value metadata of a feature file


def to_features(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The schema's columns in schema order, each as its declared dtype (missing values kept as
    missing); the label as text for classification, as a number for regression. Only values the
    validation stage passed reach here."""
    features = df[schema.columns].reset_index(drop=True)
    columns = {spec.name: _typed(features[spec.name], spec.dtype) for spec in schema.features}
    label = features[schema.label]
    columns[schema.label] = _as_text(label) if schema.is_classification else label.astype("float64")
    return pd.DataFrame(columns)


def _typed(values: pd.Series, dtype: str) -> pd.Series:
    if dtype == "float":
        return values.astype("float64")
    if dtype == "int":
        return values.astype("Int64")  # nullable: a missing value stays missing
    if dtype == "bool":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("boolean")
        return values.astype(str).str.lower().isin(TRUE_TEXTS).astype("boolean").where(values.notna())
    if dtype == "datetime":
        return pd.to_datetime(values, utc=True, format="ISO8601")
    return _as_text(values)


def _as_text(values: pd.Series) -> pd.Series:
    """Values as text; whole numbers without their ``.0`` (a code column with a gap lands as floats)."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    return values.astype("str")


def _with_fingerprint(table: pa.Table, schema: DatasetSchema) -> pa.Table:
    metadata = {**(table.schema.metadata or {}), SCHEMA_FINGERPRINT_KEY: schema.fingerprint.encode()}
    return table.replace_schema_metadata(metadata)


def feature_schema_fingerprint(root: str, batch_id: str) -> str | None:
    """The fingerprint of the schema a feature batch was built with (``None``: built before there were
    fingerprints)."""
    with storage.open_parquet(layout.feature_batch(root, batch_id)) as parquet:
        value = (parquet.schema_arrow.metadata or {}).get(SCHEMA_FINGERPRINT_KEY)
    return value.decode() if value else None


def write_features(
    root: str,
    batch_id: str,
    chunks: Iterable[pd.DataFrame],
    schema: DatasetSchema,
    chunking: Chunking = DEFAULT,
) -> dict:
    """Write one batch's features, given as consecutive ``chunks``, one chunk at a time, marked with
    ``schema``'s fingerprint; the returned hash lets later stages prove which bytes they used.

    Re-running a batch (a retry or a backfill) rewrites the same content, so overwriting is safe.
    """
    rows, sha256 = storage.write_parquet_chunks(
        layout.feature_batch(root, batch_id),
        (_with_fingerprint(pa.Table.from_pandas(chunk, preserve_index=False), schema) for chunk in chunks),
        chunking=chunking,
    )
    return {"batch_id": batch_id, "rows": rows, "sha256": sha256, "schema_fingerprint": schema.fingerprint}


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
        write_features(root, batch_id, raw_feature_chunks(root, batch_id, schema, chunking), schema, chunking)
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


def training_batches(
    root: str, requested: list[str], window: int, schema: DatasetSchema, as_of: datetime | None = None
) -> list[str]:
    """The feature batches to train on: the ids ``requested`` by hand, else the newest ``window``
    (with ``as_of``, a backtest's: of the batches landed by then, see ``include.backtest``).
    Training never mixes schemas: the window holds only the newest batches built with ``schema`` (it
    stops at the first built with another), and a requested batch of another schema is refused."""
    fingerprint = schema.fingerprint
    if requested and as_of is not None:
        raise BadRequestError(
            "batch_ids cannot be given to a backtest (a backfill run): it trains on the batches landed "
            "by its logical date; trigger a manual run to train on chosen batches"
        )
    if requested:
        ids = sorted(layout.check_id(batch_id, "batch id") for batch_id in set(requested))
        for batch_id in ids:  # a run asked for these by hand: what is wrong with them is a bad request
            url = layout.feature_batch(root, batch_id)
            if not storage.exists(url):
                raise BadRequestError(f"feature batch {batch_id!r} not found: {url} does not exist")
        other = [batch_id for batch_id in ids if feature_schema_fingerprint(root, batch_id) != fingerprint]
        if other:
            raise BadRequestError(
                f"feature batch(es) {', '.join(other)} were built with another schema than the current "
                f"one ({fingerprint}); training never mixes schemas: run etl on them again (a backfill) "
                "or leave them out"
            )
        return ids
    if window < 1:
        raise ConfigurationError(f"training_window_batches must be at least 1, got {window}")
    available = list_feature_batches(root) if as_of is None else landed_by(list_feature_batches(root), as_of)
    chosen: list[str] = []
    for batch_id in reversed(available):
        if len(chosen) == window or feature_schema_fingerprint(root, batch_id) != fingerprint:
            break
        chosen.append(batch_id)
    if not chosen and as_of is not None:
        raise NothingToDo(
            f"no feature batch of schema {schema.name!r} ({fingerprint}) had landed by {as_of.isoformat()}: "
            "nothing to backtest"
        )
    if not chosen:
        raise PermanentError(
            f"no feature batch under {layout.features(root)} was built with the current schema "
            f"{schema.name!r} ({fingerprint}): the next batch that arrives will be"
        )
    return chosen[::-1]
