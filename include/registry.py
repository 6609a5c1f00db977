"""A file-based model registry: immutable versions and one atomic production pointer.

Each version is a folder under ``models/versions/``. Its ``metadata.json`` is written last, so a folder
without it is an interrupted registration and is ignored. Versions are never overwritten or deleted;
promotion rewrites only ``models/production.json``, so rolling back is promoting an older version.
A model file is checked against the hash in its metadata before it is unpickled, because unpickling
runs code.
"""

from __future__ import annotations

import hashlib
import io
import platform
from collections.abc import Iterable
from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import pyarrow
import sklearn
from sklearn.base import BaseEstimator

from include import storage
from include.training import TrainingResult

REFERENCE_ROWS = 10_000
REFERENCE_SEED = 0


class IntegrityError(ValueError):
    """A model file whose bytes no longer match the hash recorded when it was registered."""


def register_candidate(
    root: str,
    result: TrainingResult,
    *,
    threshold: float,
    metric: str,
    batch_ids: Iterable[str],
    feature_hash: str,
) -> dict:
    """Store ``result`` as a new version and return its metadata."""
    if metric not in result.metrics:
        raise ValueError(
            f"metric {metric!r} was not computed; available: {', '.join(sorted(result.metrics))}"
        )
    buffer = io.BytesIO()
    joblib.dump(result.model, buffer)
    model_bytes = buffer.getvalue()
    model_sha256 = hashlib.sha256(model_bytes).hexdigest()
    created = datetime.now(UTC)
    version = f"{created:%Y%m%dT%H%M%S%fZ}-{model_sha256[:8]}"
    if storage.exists(_version_url(root, version)):
        raise FileExistsError(f"model version {version!r} already exists and is immutable")

    features = result.schema.feature_names
    reference = result.train[features]
    if len(reference) > REFERENCE_ROWS:
        reference = reference.sample(n=REFERENCE_ROWS, random_state=REFERENCE_SEED)
    storage.write_bytes_atomic(_version_url(root, version, "model.joblib"), model_bytes, overwrite=False)
    storage.write_parquet_atomic(
        result.holdout, _version_url(root, version, "holdout.parquet"), overwrite=False
    )
    storage.write_parquet_atomic(
        reference.reset_index(drop=True), _version_url(root, version, "reference.parquet"), overwrite=False
    )
    metadata = {
        "version": version,
        "created_at": created.isoformat(),
        "model_type": result.model_type,
        "params": result.params,
        "seed": result.seed,
        "test_size": result.test_size,
        "metrics": result.metrics,
        "threshold": threshold,
        "metric": metric,
        "batch_ids": sorted(batch_ids),
        "feature_hash": feature_hash,
        "model_sha256": model_sha256,
        "schema": result.schema.name,
        "features": features,
        "label": result.schema.label,
        "classes": list(result.schema.classes),
        "rows": {"train": len(result.train), "holdout": len(result.holdout)},
        "libraries": {
            "python": platform.python_version(),
            "sklearn": sklearn.__version__,
            "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__,
            "joblib": joblib.__version__,
            "numpy": np.__version__,
        },
    }
    storage.write_json_atomic(_version_url(root, version, "metadata.json"), metadata, overwrite=False)
    return metadata


def stage_result(root: str, key: str, result: TrainingResult) -> str:
    """Keep a trained result between the training task and the registering task; return its URL.

    Staging is not registration: nothing lists staged results, and ``discard_staged`` removes them.
    """
    buffer = io.BytesIO()
    joblib.dump(result, buffer)
    url = _staging_url(root, key)
    storage.write_bytes_atomic(url, buffer.getvalue())
    return url


def load_staged(root: str, key: str) -> TrainingResult:
    url = _staging_url(root, key)
    if not storage.exists(url):
        raise FileNotFoundError(f"no staged training result {key!r}: {url} does not exist")
    return joblib.load(io.BytesIO(storage.read_bytes(url)))


def discard_staged(root: str, key: str) -> None:
    storage.remove(_staging_url(root, key))


def list_versions(root: str) -> list[str]:
    """Complete versions, oldest first (version ids sort by creation time)."""
    names = storage.list_names(storage.join(root, "models", "versions"))
    return [name for name in names if storage.exists(_version_url(root, name, "metadata.json"))]


def version_metadata(root: str, version: str) -> dict:
    url = _version_url(root, version, "metadata.json")
    if not storage.exists(url):
        raise FileNotFoundError(f"model version {version!r} not found (or incomplete): {url} does not exist")
    return storage.read_json(url)


def load_model(root: str, version: str) -> BaseEstimator:
    """The fitted model of ``version``, unpickled only after its bytes match the registered hash."""
    return joblib.load(io.BytesIO(_verified_model_bytes(root, version)))


def production_version(root: str) -> str | None:
    """The version serving in production, or ``None`` before the first promotion."""
    url = _production_url(root)
    return storage.read_json(url)["version"] if storage.exists(url) else None


def promote(root: str, version: str) -> dict:
    """Point production at ``version`` (also how to roll back) and return the pointer.

    Promoting the version already in production changes nothing, so a retried deploy keeps the real
    ``previous_version`` to roll back to.
    """
    _verified_model_bytes(root, version)
    url = _production_url(root)
    current = storage.read_json(url) if storage.exists(url) else None
    if current is not None and current["version"] == version:
        return current
    pointer = {
        "version": version,
        "promoted_at": datetime.now(UTC).isoformat(),
        "previous_version": current["version"] if current else None,
    }
    storage.write_json_atomic(url, pointer)
    return pointer


def load_holdout(root: str, version: str) -> pd.DataFrame:
    """The split ``version`` was scored on, so a challenger can be compared with it on equal terms."""
    version_metadata(root, version)
    return storage.read_parquet(_version_url(root, version, "holdout.parquet"))


def load_reference(root: str, version: str) -> pd.DataFrame:
    """A sample of the features ``version`` was trained on: the baseline for drift."""
    version_metadata(root, version)
    return storage.read_parquet(_version_url(root, version, "reference.parquet"))


def _verified_model_bytes(root: str, version: str) -> bytes:
    expected = version_metadata(root, version)["model_sha256"]
    data = storage.read_bytes(_version_url(root, version, "model.joblib"))
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise IntegrityError(
            f"model version {version!r} failed its integrity check: model.joblib has sha256 {actual}, "
            f"metadata.json records {expected}"
        )
    return data


def _version_url(root: str, version: str, *name: str) -> str:
    return storage.join(root, "models", "versions", version, *name)


def _staging_url(root: str, key: str) -> str:
    """One file per key: the key's readable part plus a hash of the whole, so no two keys share one."""
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:80]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return storage.join(root, "models", "staging", f"{readable}-{digest}.joblib")


def _production_url(root: str) -> str:
    return storage.join(root, "models", "production.json")
