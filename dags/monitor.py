"""
### monitor: watch the production model

Runs after every promotion (`production_model`) and hourly. Checks that the production model file
still matches its sha256, that the newest raw batch is fresh (`monitor_max_batch_age_hours`), that the
newest validated batch has not drifted from the training data (per feature: Kolmogorov-Smirnov for
numbers, total variation distance for categories, the change in missing values; none above
`monitor_drift_threshold`), and that the model's quality metric on it clears `accuracy_threshold`.
The report is kept under `monitor/` with a page (per feature the training data's and the newest batch's
distributions and the drift statistic; the quality metric of every version and of production on new
data over time), served by the model server at `/monitor/<checked_at>/report`; if any check fails, an
e-mail names each failed check and the drifted features, and links the page, except that stale data
(the freshness check) is mailed once when it starts and once when it ends, not every hour it lasts. A
drift measured on arrival (`etl`'s `check_drift`) that retraining absorbed is reported as information
(`drift_absorbed`). Trigger it by hand to check now.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from mlpipe.assets import production_model
from mlpipe.links import server_page_url
from mlpipe.settings import setting
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import fail_fast, stage_dag_args


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 * * * *", timezone="UTC"), assets=[production_model]
    ),
    doc_md=__doc__,
    **stage_dag_args("monitor"),
)
def monitor():
    @task
    def check_production() -> dict:
        """Every health check of the production model; the report is kept under monitor/."""
        from include.config import load_schema, storage_root
        from include.monitoring import health_report, report_stamp, write_report
        from include.staleness import stale_data_news, summary

        root = storage_root()
        schema = load_schema()
        report = health_report(
            root,
            schema,
            max_batch_age=timedelta(hours=setting("monitor_max_batch_age_hours")),
            drift_threshold=setting("monitor_drift_threshold"),
            threshold=setting("accuracy_threshold"),
        )
        report |= stale_data_news(root, report)
        report["summary"] = summary(report)
        stored = write_report(root, report, schema)
        page = server_page_url(f"/monitor/{report_stamp(report)}/report")
        return {**report, "report_url": page, "stored_at": stored}

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def unhealthy(report: dict) -> bool:
        """A failed check, or stale data that started or ended (not every hour it lasts)."""
        from include.staleness import worth_a_mail

        return worth_a_mail(report)

    report = check_production()
    unhealthy(report) >> SmtpAlertOperator(
        task_id="alert_unhealthy",
        data=report,
        subject="[ml-pipeline] production model {{ data.version }}: {{ data.summary }}",
        html_content="monitor_alert.html",
    )


fail_fast(monitor())
