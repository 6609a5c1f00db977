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

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlpipe.assets import raw_batches
from mlpipe.sensors import NewDataSensor
from mlpipe.settings import setting
from mlpipe.stages import stage_dag_args


@dag(
    schedule="@continuous",
    doc_md=__doc__,
    **stage_dag_args("ingest", retries=2),
)
def ingest():
    @task
    def last_seen_fingerprint() -> dict | None:
        """The fingerprint of the newest batch received, for the sensor to compare new content with."""
        from include.config import storage_root
        from include.ingest import known_fingerprint

        return known_fingerprint(storage_root(), setting("crawl_url"))

    new_data = NewDataSensor(
        task_id="wait_for_new_data",
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

        url = setting("crawl_url")
        batch = download(url, timeout=setting("crawl_timeout_seconds"), max_bytes=setting("crawl_max_bytes"))
        try:
            manifest = land(storage_root(), batch, source_url=url)
        except DuplicateBatchError as exc:
            raise AirflowSkipException(str(exc)) from exc
        except BatchFormatError as exc:
            raise AirflowFailException(str(exc)) from exc
        outlet_events[raw_batches].extra = {
            key: manifest[key] for key in ("batch_id", "rows", "sha256", "source")
        }
        return manifest

    new_data >> land_batch()


ingest()
