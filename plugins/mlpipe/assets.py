"""The pipeline's assets, declared once; producers and consumers import them from here.

URIs are built from the storage root (``PIPELINE_STORAGE_ROOT``) with the storage layout, so the
Assets view shows where the data and models actually live. Only light modules are imported here:
every DAG file imports this one, and the dag-processor parses DAG files every few seconds.
"""

from __future__ import annotations

from airflow.sdk import Asset

from include import layout
from include.config import storage_root

_ROOT = storage_root()

raw_batches = Asset(
    name="raw_batches",
    uri=layout.raw_batches(_ROOT),
    group="data",
    extra={"format": "parquet", "written_by": "ingest"},
)
features = Asset(
    name="features",
    uri=layout.features(_ROOT),
    group="data",
    extra={"format": "parquet", "written_by": "etl"},
)
model_candidate = Asset(
    name="model_candidate",
    uri=layout.model_versions(_ROOT),
    group="model",
    extra={"format": "joblib", "written_by": "train_validate"},
)
production_model = Asset(
    name="production_model",
    uri=layout.production_pointer(_ROOT),
    group="model",
    extra={"format": "pointer", "written_by": "deploy"},
)
