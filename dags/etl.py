"""
### etl: validate new raw batches, quarantine bad ones, turn good ones into features

Runs when `ingest` publishes `raw_batches` (every event since the last run: several batches may
arrive before one run starts), and daily at 03:00 UTC over the batches landed in the 24 hours before,
which is what `airflow backfill create --dag-id etl` replays. A manual run takes `batch_ids` or an
ingestion-date range (`landed_from` / `landed_to`).

Each batch is validated fail-fast against the dataset schema (columns, dtypes, nulls, ranges, labels,
empty, duplicate rows). A bad batch moves to `quarantine/` with `<batch_id>.reason.json`, and an e-mail
names it and its failed checks. Good batches become `features/<batch_id>.parquet`, and the `features`
asset event lists their batch ids and row counts. When no batch is valid no event is published, so
`train_validate` does not run.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from mlpipe.assets import features, raw_batches
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import stage_dag_args


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * *", timezone="UTC", interval=timedelta(days=1)),
        assets=[raw_batches],
    ),
    doc_md=__doc__,
    **stage_dag_args("etl"),
    params={
        "batch_ids": Param(
            [], type="array", items={"type": "string"}, description="Re-run over these raw batch ids."
        ),
        "landed_from": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Re-run over batches landed on or after.",
        ),
        "landed_to": Param(
            None, type=["null", "string"], format="date", description="... and on or before this date (UTC)."
        ),
    },
)
def etl():
    @task
    def select_batches(
        *, params, triggering_asset_events=None, data_interval_start=None, data_interval_end=None
    ):
        """The batches this run covers: chosen by hand, announced by ingest, or landed in the interval."""
        from include.batches import landed_between, landed_on_days
        from include.config import storage_root

        if params["batch_ids"]:
            return sorted(params["batch_ids"])
        if params["landed_from"] or params["landed_to"]:
            return landed_on_days(storage_root(), params["landed_from"], params["landed_to"])
        announced = sorted(
            event.extra["batch_id"]
            for events in (triggering_asset_events or {}).values()
            for event in events
            if "batch_id" in event.extra
        )
        if announced:
            return announced
        if data_interval_start is not None:
            return landed_between(storage_root(), data_interval_start, data_interval_end)
        return []

    @task
    def validate_batches(batch_ids: list[str]) -> dict:
        from include.batches import load_raw_batch, quarantine_batch
        from include.config import load_schema, storage_root
        from include.validation import validate_batch

        root, schema = storage_root(), load_schema()
        report = {"valid": [], "quarantined": []}
        for batch_id in batch_ids:
            failures = validate_batch(load_raw_batch(root, batch_id), schema)
            if not failures:
                report["valid"].append(batch_id)
                continue
            reason_url = quarantine_batch(root, batch_id, failures)
            report["quarantined"].append(
                {"batch_id": batch_id, "reason_url": reason_url, "failed_checks": [vars(f) for f in failures]}
            )
        return report

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def any_quarantined(report: dict) -> bool:
        return bool(report["quarantined"])

    @task(outlets=[features])
    def build_features(report: dict, *, outlet_events=None) -> list[dict]:
        from include.batches import load_raw_batch
        from include.config import load_schema, storage_root
        from include.features import to_features, write_features

        if not report["valid"]:
            raise AirflowSkipException("no valid batch in this run; no features event")
        root, schema = storage_root(), load_schema()
        written = [
            write_features(root, batch_id, to_features(load_raw_batch(root, batch_id), schema))
            for batch_id in report["valid"]
        ]
        outlet_events[features].extra = {
            "batch_ids": [w["batch_id"] for w in written],
            "rows": sum(w["rows"] for w in written),
            "batches": written,
        }
        return written

    report = validate_batches(select_batches())
    build_features(report)
    any_quarantined(report) >> SmtpAlertOperator(
        task_id="alert_quarantined",
        subject="[ml-pipeline] etl quarantined {{ ti.xcom_pull(task_ids='validate_batches')['quarantined'] "
        "| map(attribute='batch_id') | join(', ') }}",
        html_content="quarantine_alert.html",
    )


etl()
