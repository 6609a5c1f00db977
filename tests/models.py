"""Models in a registry as train_validate leaves them, and a model file spoiled after registration: for
the unit tests (a throwaway root) and the integration tests (the running stack's root) alike."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd

from include import metrics, registry, storage
from include.config import DatasetSchema
from include.training import train_and_evaluate


def register_model(
    root: str,
    features: pd.DataFrame,
    schema: DatasetSchema,
    model_type: str = "linear",
    params: dict | None = None,
    *,
    threshold: float = 0.8,
    metric: str = "accuracy",
    batch_ids: Iterable[str] = ("20261121T161500000000Z-aaaaaaaa",),
    as_of: datetime | None = None,
) -> dict:
    """Train ``model_type`` on ``features``, stage and register it as train_validate does (with
    ``as_of``: a backtest, as a backfill run does); return its metadata."""
    result = train_and_evaluate(features, schema, model_type, params or {"C": 2.0})
    staged = registry.stage_candidate(
        root,
        result,
        threshold=threshold,
        metric=metrics.metric(metric),
        batch_ids=batch_ids,
        feature_hash="f" * 64,
        as_of=as_of,
    )
    return registry.register(root, staged["version"])


def tamper(url: str) -> bytes:
    """Flip one byte in the middle of a stored file (a second call flips it back); return the new
    bytes."""
    data = bytearray(storage.read_bytes(url))
    data[len(data) // 2] ^= 0xFF
    storage.write_bytes_atomic(url, bytes(data))
    return bytes(data)
