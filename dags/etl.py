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

`check_drift` then compares the new features with the training data of the model in production when
they arrived (the one a model retrained on them replaced, if it already has): after the chain has
promoted a model of them (or of newer data) or kept it out, or 15 s, so it never slows the path to
production; per feature the
drift statistic against `monitor_drift_threshold`, kept with a page of both distributions under
`monitor/drift/`; a drift is e-mailed, naming the features, with a link to that page.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from include.layout import ID_PATTERN
from mlpipe.assets import features, raw_batches
from mlpipe.links import server_page_url
from mlpipe.settings import setting
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import alert_quarantined, fail_fast, stage_dag_args

DRIFT_WAIT_SECONDS = 15  # how long check_drift waits for the chain to decide on a model of these batches


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * *", timezone="UTC", interval=timedelta(days=1)),
        assets=[raw_batches],
    ),
    doc_md=__doc__,
    **stage_dag_args("etl"),
    params={
        "batch_ids": Param(
            [],
            type="array",
            items={"type": "string", "pattern": ID_PATTERN},
            description="Re-run over these raw batch ids.",
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
    def validate_batches(
        *, params, triggering_asset_events=None, data_interval_start=None, data_interval_end=None
    ) -> dict:
        """Select the run's batches (chosen by hand, announced by ingest, or landed in the interval),
        then validate each and quarantine the bad ones. One task, not two: it is on the critical path."""
        from include.batches import select_batches
        from include.config import load_schema, storage_root
        from include.validation import validate_and_quarantine

        root = storage_root()
        batch_ids = select_batches(
            root,
            requested=params["batch_ids"],
            landed_from=params["landed_from"],
            landed_to=params["landed_to"],
            announced=[
                event.extra for events in (triggering_asset_events or {}).values() for event in events
            ],
            interval=(data_interval_start, data_interval_end) if data_interval_start else None,
        )
        return validate_and_quarantine(root, batch_ids, load_schema())

    @task(outlets=[features])
    def build_features(report: dict, *, outlet_events=None) -> list[dict]:
        from include.config import load_schema, storage_root
        from include.features import build_features as build

        if not report["valid"]:
            raise AirflowSkipException("no valid batch in this run; no features event")
        schema = load_schema()
        written = build(storage_root(), report["valid"], schema)
        outlet_events[features].extra = {
            "batch_ids": [w["batch_id"] for w in written],
            "rows": sum(w["rows"] for w in written),
            "schema": schema.name,
            "schema_fingerprint": schema.fingerprint,
            "batches": written,
        }
        return written

    @task
    def check_drift(written: list[dict]) -> dict:
        """Drift of the new features from production's training data; the page is under monitor/drift/."""
        import os

        from include.config import load_schema, storage_root
        from include.registry import as_new_as, await_decision

        root = storage_root()
        batch_ids = [w["batch_id"] for w in written]
        # Let train_validate and deploy have the cores: until a model of these batches (or of newer
        # data) is in production or kept out (or, none, a while). The reference is the model they
        # arrived to either way.
        os.nice(10)
        await_decision(
            root, lambda model: as_new_as(model, batch_ids), DRIFT_WAIT_SECONDS, not_before=max(batch_ids)
        )
        from include.monitoring import arrival_drift

        record = arrival_drift(root, load_schema(), batch_ids, setting("monitor_drift_threshold"))
        record.pop("report", None)
        return {**record, "report_url": server_page_url(f"/drift/{record['batch_id']}/report")}

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def drifted(record: dict) -> bool:
        return bool(record["drifted"])

    report = validate_batches()
    drift = check_drift(build_features(report))
    drifted(drift) >> SmtpAlertOperator(
        task_id="alert_drift",
        data=drift,
        subject="[ml-pipeline] drift in batch {{ data.batch_id }}: {{ data.drifted | join(', ') }}",
        html_content="drift_alert.html",
    )
    alert_quarantined(report, stage="etl")


fail_fast(etl())
