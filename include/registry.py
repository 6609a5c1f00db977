"""A file-based model registry: immutable versions and one atomic production pointer.

Each version is a folder under ``models/versions/``. Its ``metadata.json`` is written last, so a folder
without it is an interrupted registration and is ignored. Versions are never overwritten or deleted
(their files are written create-only, see ``include.storage``);
promotion rewrites only ``models/production.json``, so rolling back is promoting an older version.
A model file is checked against the hash in its metadata before it is unpickled, because unpickling
runs code.

Registering, promoting and reading metadata need no data library: the ``register`` and ``promote``
tasks start faster without them (scikit-learn, pandas and pyarrow cost 1.5-2 s to import), so those
are imported where a model or a data frame is actually handled.
"""

from __future__ import annotations

import hashlib
import io
import platform
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from include import layout, storage
from include.errors import ConfigurationError, UnusableCandidateError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.base import BaseEstimator

    from include.metrics import Metric
    from include.training import TrainingResult

MODEL_FILE = "model.joblib"
ONNX_FILE = "model.onnx"  # the model's ONNX twin, when it has one (include/onnx_model.py)
HOLDOUT_FILE = "holdout.parquet"
REFERENCE_FILE = "reference.parquet"
METADATA_FILE = "metadata.json"
REFERENCE_ROWS = 10_000
REFERENCE_SEED = 0
STALE_STAGED = timedelta(hours=1)  # a staged candidate this much older than a new one is a leftover


class IntegrityError(UnusableCandidateError):
    """A model file whose bytes no longer match the hash recorded when it was registered."""


def stage_candidate(
    root: str,
    result: TrainingResult,
    *,
    threshold: float,
    metric: Metric,
    batch_ids: Iterable[str],
    feature_hash: str,
    now: datetime | None = None,
    as_of: datetime | None = None,
) -> dict:
    """Keep a trained candidate under ``models/staging/<version>/`` until the quality bar has decided;
    return its metadata (the version it will have, its metrics, the verdict on ``metric`` against
    ``threshold`` in words, its model's sha256 and its schema's fingerprint). With ``as_of`` it is a
    backtest (``backtest: true``, ``as_of``): a look at the quality a training then would have had,
    never promoted (``include.promotion``).

    Staging is not registration: nothing lists staged candidates. :func:`register` makes one a version,
    :func:`discard_staged` drops it.
    """
    if metric.name not in result.metrics:
        raise ConfigurationError(
            f"metric {metric.name!r} was not computed; available: {', '.join(sorted(result.metrics))}"
        )
    import joblib
    import numpy as np
    import pandas as pd
    import pyarrow
    import sklearn

    from include.report import data_summary

    buffer = io.BytesIO()
    joblib.dump(result.model, buffer)
    model_bytes = buffer.getvalue()
    model_sha256 = hashlib.sha256(model_bytes).hexdigest()
    created = now or datetime.now(UTC)
    version = layout.make_id(created, model_sha256)
    reference = result.train[result.schema.feature_names]
    if len(reference) > REFERENCE_ROWS:
        reference = reference.sample(n=REFERENCE_ROWS, random_state=REFERENCE_SEED)
    storage.write_bytes_atomic(layout.staging(root, version, MODEL_FILE), model_bytes)
    onnx = _export_onnx(root, version, result)
    storage.write_parquet_atomic(result.holdout, layout.staging(root, version, HOLDOUT_FILE))
    storage.write_parquet_atomic(
        reference.reset_index(drop=True), layout.staging(root, version, REFERENCE_FILE)
    )
    metadata = {
        "version": version,
        "created_at": created.isoformat(),
        "backtest": as_of is not None,
        "as_of": as_of and as_of.isoformat(),
        "model_type": result.model_type,
        "params": result.params,
        "seed": result.seed,
        "test_size": result.test_size,
        "metrics": result.metrics,
        "threshold": threshold,
        "metric": metric.name,
        "higher_is_better": metric.higher_is_better,
        "verdict": metric.verdict(result.metrics[metric.name], threshold),
        "batch_ids": sorted(batch_ids),
        "feature_hash": feature_hash,
        "model_sha256": model_sha256,
        "onnx": onnx,
        "schema": result.schema.name,
        "schema_fingerprint": result.schema.fingerprint,
        "task": result.schema.task,
        "features": result.schema.feature_names,
        "label": result.schema.label,
        "classes": list(result.schema.classes or ()),
        "rows": {"train": len(result.train), "holdout": len(result.holdout)},
        "data_summary": data_summary(result.train, result.schema),
        "libraries": {
            "python": platform.python_version(),
            "sklearn": sklearn.__version__,
            "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__,
            "joblib": joblib.__version__,
            "numpy": np.__version__,
        },
    }
    storage.write_json_atomic(layout.staging(root, version, METADATA_FILE), metadata)
    return metadata


def _export_onnx(root: str, version: str, result: TrainingResult) -> dict:
    """Write the candidate's ONNX twin beside it when it converts and answers as the model does on the
    held-out rows; what metadata.json says of it either way (``reason``: why there is none)."""
    from include.onnx_model import export

    exported = export(result.model, result.schema, result.holdout)
    if exported.onnx is None:
        return {"file": None, "reason": exported.reason}
    storage.write_bytes_atomic(layout.staging(root, version, ONNX_FILE), exported.onnx)
    return {
        "file": ONNX_FILE,
        "sha256": hashlib.sha256(exported.onnx).hexdigest(),
        "checked_rows": exported.checked_rows,
        "max_difference": exported.max_difference,
    }


def register(root: str, version: str) -> dict:
    """Make the staged candidate ``version`` a registered version and return its metadata.

    Idempotent: a retry after a registration that completed returns the registered metadata, and a
    retry after one that died half-way finishes it. The files are copied first and ``metadata.json``
    last, so until it exists the version is not listed anywhere.
    """
    if storage.exists(layout.model_version(root, version, METADATA_FILE)):
        return version_metadata(root, version)
    metadata_url = layout.staging(root, version, METADATA_FILE)
    if not storage.exists(metadata_url):
        raise FileNotFoundError(f"no staged candidate {version!r}: {metadata_url} does not exist")
    metadata = storage.read_json(metadata_url)
    _verified(storage.read_bytes(layout.staging(root, version, MODEL_FILE)), metadata, version)
    twin = (metadata.get("onnx") or {}).get("file")
    for name in (MODEL_FILE, HOLDOUT_FILE, REFERENCE_FILE, *([twin] if twin else [])):
        storage.write_bytes_atomic(
            layout.model_version(root, version, name),
            storage.read_bytes(layout.staging(root, version, name)),
            overwrite=False,  # a retry rewrites nothing: the same bytes count as written
        )
    storage.write_json_atomic(layout.model_version(root, version, METADATA_FILE), metadata, overwrite=False)
    return metadata


def discard_staged(root: str, version: str) -> None:
    """Drop a staged candidate (done with it: registered, or below the bar)."""
    storage.remove_tree(layout.staging(root, version))


def discard_older_staged(root: str, version: str) -> list[str]:
    """Drop every staged candidate staged ``STALE_STAGED`` or more before ``version`` (left by a
    ``train`` killed before its candidate was registered or discarded); the versions dropped. Younger
    ones may still be wanted: a backfill's runs (backtests) train beside each other and beside the
    pipeline's own run, and a candidate waits for its verdict seconds, not an hour. Version ids start
    with their UTC creation time; a name that is not a version id is left alone."""
    cut = layout.id_time(version) - STALE_STAGED
    stale = [
        name
        for name in storage.list_names(layout.join(root, "models", "staging"))
        if layout.is_id(name) and layout.id_time(name) <= cut
    ]
    for name in stale:
        discard_staged(root, name)
    return stale


def candidate_event(metadata: dict) -> dict:
    """What the ``model_candidate`` asset event says of a registered version: enough for ``deploy`` to
    decide without reading the registry, and for a person to read in the Assets view."""
    keys = (
        "version",
        "model_type",
        "params",
        "metrics",
        "metric",
        "higher_is_better",
        "threshold",
        "verdict",
        "batch_ids",
        "feature_hash",
        "model_sha256",
        "schema_fingerprint",
    )
    return {key: metadata[key] for key in keys}


def version_metadata(root: str, version: str) -> dict:
    url = layout.model_version(root, version, METADATA_FILE)
    if not storage.exists(url):
        raise FileNotFoundError(f"model version {version!r} not found (or incomplete): {url} does not exist")
    return storage.read_json(url)


def load_model(root: str, version: str) -> BaseEstimator:
    """The fitted model of ``version``, unpickled only after its bytes match the registered hash."""
    import joblib

    return joblib.load(io.BytesIO(_verified_model_bytes(root, version)))


def load_onnx(root: str, version: str) -> tuple[bytes | None, str]:
    """The ONNX twin's bytes of ``version`` (checked against the hash in its metadata), or ``None`` and
    why the version has none."""
    onnx = version_metadata(root, version).get("onnx")
    if onnx is None:
        return None, "registered before models got an ONNX twin"
    if onnx["file"] is None:
        return None, onnx["reason"]
    data = storage.read_bytes(layout.model_version(root, version, onnx["file"]))
    actual = hashlib.sha256(data).hexdigest()
    if actual != onnx["sha256"]:
        raise IntegrityError(
            f"model version {version!r} failed its integrity check: {onnx['file']} has sha256 {actual}, "
            f"metadata.json records {onnx['sha256']}"
        )
    return data, "converted at registration and checked on the held-out rows"


def production_version(root: str) -> str | None:
    """The version serving in production, or ``None`` before the first promotion."""
    url = layout.production_pointer(root)
    return storage.read_json(url)["version"] if storage.exists(url) else None


def record_kept_out(root: str, version: str, batch_ids: Iterable[str], reason: str) -> None:
    """Keep that the candidate ``version`` (trained on ``batch_ids``) will not be promoted by the chain
    that trained it, and why: below the bar, not better than production, not approved, or superseded
    by a newer candidate. Work waiting for its promotion (:func:`await_decision`) stops waiting."""
    record = {"version": version, "batch_ids": sorted(batch_ids), "reason": reason}
    storage.write_json_atomic(layout.kept_out(root, version), record)


def as_new_as(model: dict, batch_ids: Iterable[str]) -> bool:
    """Whether ``model`` (a version's metadata or kept-out record) was trained on data as new as the
    newest of ``batch_ids``: a model of them, or of newer data. Drift on arrival waits for the chain to
    decide on such a model; when older batches are re-run or backfilled, production usually is one
    already, and nothing is to wait for."""
    return max(batch_ids) <= max(model["batch_ids"], default="")


def await_decision(
    root: str, concerns: Callable[[dict], bool], timeout: float, *, not_before: str, interval: float = 0.5
) -> str | None:
    """Wait up to ``timeout`` seconds for the chain to decide on a model that ``concerns`` takes (given
    its ``version`` and ``batch_ids``): ``"promoted"`` once production is one, ``"kept out"`` once one
    has a kept-out record (:func:`record_kept_out`), ``None`` if neither came in time. Only versions
    named ``not_before`` (an id) or later are read as kept out: a model is created after its batches.

    Work that must not slow a promotion down (a report, a drift check) waits for it first: on a
    2-core machine it would otherwise share the cores with the tasks that move the pointer.
    """
    deadline = time.monotonic() + timeout
    while True:
        version = production_version(root)
        if version is not None and concerns(version_metadata(root, version)):
            return "promoted"
        folder = layout.kept_out_records(root)
        for name in storage.list_names(folder, ".json"):
            if name >= not_before and concerns(storage.read_json(layout.join(folder, name))):
                return "kept out"
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def set_production(root: str, version: str) -> dict:
    """Point production at ``version`` (also how to roll back) and return the pointer.

    Promoting the version already in production changes nothing, so a retried deploy keeps the real
    ``previous_version`` to roll back to.
    """
    _verified_model_bytes(root, version)
    url = layout.production_pointer(root)
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


def production_event(root: str, version: str, reason: str) -> dict:
    """Put ``version`` in production and return what the ``production_model`` event says of it: the
    pointer (version, when, previous version), the model type, its metrics and why it was promoted."""
    pointer = set_production(root, version)
    metadata = version_metadata(root, version)
    return {**pointer, "model_type": metadata["model_type"], "metrics": metadata["metrics"], "reason": reason}


def load_holdout(root: str, version: str) -> pd.DataFrame:
    """The split ``version`` was scored on, so a challenger can be compared with it on equal terms."""
    version_metadata(root, version)
    return storage.read_parquet(layout.model_version(root, version, HOLDOUT_FILE))


def load_reference(root: str, version: str) -> pd.DataFrame:
    """A sample of the features ``version`` was trained on: the baseline for drift."""
    version_metadata(root, version)
    return storage.read_parquet(layout.model_version(root, version, REFERENCE_FILE))


def _verified_model_bytes(root: str, version: str) -> bytes:
    data = storage.read_bytes(layout.model_version(root, version, MODEL_FILE))
    return _verified(data, version_metadata(root, version), version)


def _verified(data: bytes, metadata: dict, version: str) -> bytes:
    expected = metadata["model_sha256"]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise IntegrityError(
            f"model version {version!r} failed its integrity check: {MODEL_FILE} has sha256 {actual}, "
            f"metadata.json records {expected}"
        )
    return data
