"""
### ingest: land new data from the source as immutable raw Parquet batches

Always waiting (`@continuous`, one active run). `wait_for_new_data` defers to the triggerer, which
watches the `crawl_url` Variable: a single http(s) URL (conditional GETs; fires for content never
received before, in any earlier version) or a drop folder (any other fsspec URL; fires with every
settled file not yet received). Both check the ledger of what was received (`ledger/` under the
storage root). `land_batch` reads each new item within the `crawl_*` limits and lands it once, oldest
first, as `raw/batches/<batch_id>.parquet`, publishing one `raw_batches` event per batch with its id,
row count, sha256 and source. Content that is not a CSV table is kept in `quarantine/` with a reason
and `alert_quarantined` e-mails it; content received before is recorded as a duplicate and not landed.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from mlpipe.assets import landed_raw_batches, raw_batches
from mlpipe.sensors import NewDataSensor
from mlpipe.settings import setting
from mlpipe.stages import alert_quarantined, stage_dag_args


@dag(
    schedule="@continuous",
    doc_md=__doc__,
    **stage_dag_args("ingest", retries=2),
)
def ingest():
    @task
    def last_seen_fingerprint() -> dict | None:
        """The validators last seen at a single-URL source, for the sensor's conditional GETs."""
        from include.config import storage_root
        from include.ingest import known_fingerprint

        return known_fingerprint(storage_root(), setting("crawl_url"))

    arrival = NewDataSensor(
        task_id="wait_for_new_data",
        known_fingerprint=last_seen_fingerprint(),
        poll_interval=3,
        timeout=timedelta(days=1),
        soft_fail=True,  # a day without new data is not a failure: the next run waits again
        retries=0,
    ).output

    @task(outlets=[landed_raw_batches])
    def land_batch(arrival: dict, *, run_id=None, outlet_events=None) -> dict:
        """Land every new item, each once, and announce each landed batch with its own event."""
        from include.config import storage_root
        from include.ingest import land_arrival

        report = land_arrival(
            storage_root(),
            arrival,
            run_id=run_id,
            timeout=setting("crawl_timeout_seconds"),
            max_bytes=setting("crawl_max_bytes"),
            max_columns=setting("crawl_max_columns"),
        )
        for manifest in report["landed"]:
            extra = {key: manifest[key] for key in ("batch_id", "rows", "sha256", "source")}
            outlet_events[landed_raw_batches].add(raw_batches, extra=extra)
        return report

    alert_quarantined(land_batch(arrival), stage="ingest")


ingest()
