"""
### ingest: land new data from the source as immutable raw Parquet batches

Always waiting (`@continuous`, one active run). `wait_for_new_data` defers to the triggerer, which
polls the `crawl_url` Variable with conditional GETs and fires only when the content differs from the
last batch received (ETag / Last-Modified / sha256). `land_batch` then downloads it with a timeout and
a size limit and writes `raw/batches/<batch_id>.parquet` atomically, publishing the `raw_batches`
asset with the batch id, row count, sha256 and source fingerprint. Content that is not CSV is kept in
`quarantine/` with a reason and the run fails (an e-mail follows); the same content is never landed
twice.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Variable, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlpipe.assets import raw_batches
from mlpipe.sensors import NewDataSensor
from mlpipe.stages import stage_dag_args


@dag(
    schedule="@continuous",
    doc_md=__doc__,
    **stage_dag_args("ingest", retries=2),
)
def ingest():
    @task
    def last_seen_fingerprint() -> dict | None:
        """The source fingerprint of the newest batch received, for the sensor to compare against."""
        from include.batches import last_seen
        from include.config import storage_root

        manifest = last_seen(storage_root())
        if manifest is None:
            return None
        source = manifest["source"]
        if source["url"] != Variable.get("crawl_url"):
            return {"sha256": source["sha256"]}
        return source

    new_data = NewDataSensor(
        task_id="wait_for_new_data",
        url="{{ var.value.crawl_url }}",
        known_fingerprint=last_seen_fingerprint(),
        poll_interval=3,
        timeout=timedelta(days=1),
        soft_fail=True,  # a day without new data is not a failure: the next run waits again
        retries=0,
    )

    @task(outlets=[raw_batches])
    def land_batch(*, outlet_events=None) -> dict:
        from include.config import storage_root
        from include.ingest import BatchFormatError, DuplicateBatchError, download, land

        url = Variable.get("crawl_url")
        batch = download(
            url,
            timeout=float(Variable.get("crawl_timeout_seconds", default="30")),
            max_bytes=int(Variable.get("crawl_max_bytes", default="50000000")),
        )
        try:
            manifest = land(storage_root(), batch, source_url=url)
        except DuplicateBatchError as exc:
            raise AirflowSkipException(str(exc)) from exc
        except BatchFormatError as exc:
            raise AirflowFailException(str(exc)) from exc
        outlet_events[raw_batches].extra = {
            "batch_id": manifest["batch_id"],
            "rows": manifest["rows"],
            "sha256": manifest["sha256"],
            "source": manifest["source"],
        }
        return manifest

    new_data >> land_batch()


ingest()
