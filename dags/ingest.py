"""
### ingest: land new data from the source as immutable raw Parquet batches

Always waiting (`@continuous`, one active run). `wait_for_new_data` defers to the triggerer, which
watches the sources the `crawl_url` Variable names (one, or a JSON list of several, watched side by
side): a single http(s) URL (conditional GETs; fires for content never received before, in any earlier
version) or a drop folder (any other fsspec URL; fires with every settled file not yet received). Both
check the ledger of what was received (`ledger/` under the
storage root). `land_batch` reads each new item within the `crawl_*` limits and lands it once, oldest
first, as `raw/batches/<batch_id>.parquet`; `publish_batches` publishes one `raw_batches` event listing
the batches landed (ids, row counts, sha256s, sources), or none when nothing new landed. Content that
is not a CSV table is kept in `quarantine/` with a reason and `alert_quarantined` e-mails it; content
received before is recorded as a duplicate and not landed. A source failing every poll for
`source_alert_after_seconds` fails `wait_for_new_data` once per outage (the failure mail names it);
`alert_source_recovered` mails when it answers again.

With `PIPELINE_ARRIVAL=watcher` (read when this file is parsed) no run waits: an `AssetWatcher` on the
`source` asset polls the same way on the triggerer, and each of its events starts a run scheduled on
`source`; `read_arrival` merges the events the run consumed (an outage they report fails
`report_source_failure`, which mails), and the same landing and publishing follow.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from include.arrivals import WATCHER, arrival_mode
from mlpipe.assets import raw_batches, source
from mlpipe.sensors import NewDataSensor, watched_arrival
from mlpipe.settings import setting
from mlpipe.stages import alert_quarantined, alert_source_recovered, fail_fast, stage_dag_args

WATCHED = arrival_mode() == WATCHER


@dag(
    schedule=[source] if WATCHED else "@continuous",
    doc_md=__doc__,
    **stage_dag_args("ingest", retries=2),
)
def ingest():
    if WATCHED:
        arrival = watched_arrival()
    else:
        arrival = NewDataSensor(
            task_id="wait_for_new_data",
            poll_interval=1,  # a conditional GET (or a listing) per second; detection waits 0.5 s on average
            timeout=timedelta(days=1),
            soft_fail=True,  # a day without new data is not a failure: the next run waits again
            retries=0,
        ).output

    @task
    def land_batch(arrival: dict, *, run_id=None) -> dict:
        """Land every new item, each once (a retry of this run reports what it already landed)."""
        from include.config import storage_root
        from include.ingest import land_arrival

        return land_arrival(
            storage_root(),
            arrival,
            run_id=run_id,
            timeout=setting("crawl_timeout_seconds"),
            max_bytes=setting("crawl_max_bytes"),
            max_columns=setting("crawl_max_columns"),
        )

    @task(outlets=[raw_batches])
    def publish_batches(report: dict, *, outlet_events=None) -> list[str]:
        from include.ingest import announcement

        if not report["landed"]:
            raise AirflowSkipException("nothing new landed; no raw_batches event")
        outlet_events[raw_batches].extra = announcement(report["landed"])
        return report["valid"]

    alert_source_recovered(arrival)
    report = land_batch(arrival)
    publish_batches(report)
    alert_quarantined(report, stage="ingest")


fail_fast(ingest())
