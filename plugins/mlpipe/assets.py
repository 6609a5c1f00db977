"""The pipeline's assets, declared once; producers and consumers import them from here.

URIs are built from the storage root (``PIPELINE_STORAGE_ROOT``), so the Assets view shows where the
data and models actually live.
"""

from __future__ import annotations

from airflow.sdk import Asset

from include import storage
from include.config import storage_root

_ROOT = storage_root()

raw_batches = Asset(
    name="raw_batches",
    uri=storage.join(_ROOT, "raw", "batches"),
    group="data",
    extra={"format": "parquet", "written_by": "ingest"},
)
features = Asset(
    name="features",
    uri=storage.join(_ROOT, "features"),
    group="data",
    extra={"format": "parquet", "written_by": "etl"},
)
model_candidate = Asset(
    name="model_candidate",
    uri=storage.join(_ROOT, "models", "versions"),
    group="model",
    extra={"format": "joblib", "written_by": "train_validate"},
)
production_model = Asset(
    name="production_model",
    uri=storage.join(_ROOT, "models", "production.json"),
    group="model",
    extra={"format": "pointer", "written_by": "deploy"},
)
