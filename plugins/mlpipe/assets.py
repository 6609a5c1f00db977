"""The pipeline's assets, declared once; producers and consumers import them from here.

URIs are built from the storage root (``PIPELINE_STORAGE_ROOT``) with the storage layout, so the
Assets view shows where the data and models actually live. Only light modules are imported here:
every DAG file imports this one, and the dag-processor parses DAG files every few seconds.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from include import layout
from include.arrivals import WATCHER, arrival_mode
from include.config import storage_root

_ROOT = storage_root()


def _source_watchers() -> list[AssetWatcher]:
    """With ``PIPELINE_ARRIVAL=watcher``: the watcher that polls the source on the triggerer. Its
    trigger's kwargs are fixed here, at parse time: the Variable it reads the source from, not the
    source itself (include.arrivals, mlpipe.source_watcher)."""
    if arrival_mode() != WATCHER:
        return []
    from mlpipe.source_watcher import SourceWatcher

    return [AssetWatcher(name="source_watcher", trigger=SourceWatcher(storage_root=_ROOT))]


# What arrives at the source the crawl_url Variable names; ingest is scheduled on it in the watcher
# option (its events come from the trigger, and carry what it found).
source = Asset(
    name="source",
    uri="x-mlpipe://crawl_url",
    group="data",
    extra={"watched_by": "source_watcher", "read_by": "ingest"},
    watchers=_source_watchers(),
)

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
