"""
### train_validate: train the configured model, evaluate it, register it only if it is good enough

Runs when `etl` publishes `features`. Trains `ml_model_type` (Variable; `random_forest`, `linear` or
`gradient_boosting`, each a classifier or a regressor as the dataset schema's `task` says) with its
hyperparameters from the `ml_hyperparameters` Variable, on the newest `training_window_batches`
feature batches of the current schema, and scores it on a held-out split (fixed seed; stratified for
classes): the task's metrics. `check_threshold` (our `ThresholdBranchOperator`) compares
`quality_metric` with `accuracy_threshold`, in the metric's direction: a passing model is registered
as a new version under `models/versions/` and the `model_candidate` asset gets its metadata (with the
URL of its report); a failing one is discarded and a retrain alert is e-mailed. `write_report` then
writes the version's report (`report.html`: verdict, errors, feature importance, training data,
lineage, quality over time) beside it, off the path to production; the register task's "Model report"
button opens it. A manual run can override the model type,
hyperparameters, threshold, metric and the batches to train on.

It also runs daily at 04:00 UTC, an hour after `etl`'s nightly run: that run trains only when a
feature batch landed by its tick is newer than every batch trained on so far (features published
while this DAG was paused start no run), else it ends skipped, publishing and mailing nothing. The
timetable is what makes it backfillable: a **backfill run is a backtest** as of its logical date. It
trains on the batches landed by then (the newest `training_window_batches` of them), and
`register_backtest` registers the result marked `backtest` with its `as_of`, passing or not, with its
report and without a `model_candidate` event or a mail: `deploy` never sees it and refuses it by
hand. The reports' quality-over-time plot shows backtests beside production
(docs/reports.md#backtesting).
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from include.layout import ID_PATTERN
from include.metrics import METRICS
from include.settings import MODEL_TYPES
from mlpipe.assets import features, model_candidate
from mlpipe.links import REPORT_URL_KEY, ModelReportLink, version_report_url
from mlpipe.settings import setting
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import fail_fast, stage_dag_args
from mlpipe.threshold_branch import ThresholdBranchOperator

REPORT_WAIT_SECONDS = 15  # how long write_report waits for deploy to promote the version or keep it out


@dag(
    schedule=AssetOrTimeSchedule(
        # No data interval: a run's logical date is the one moment a backtest looks back from.
        timetable=CronTriggerTimetable("0 4 * * *", timezone="UTC"),
        assets=[features],
    ),
    doc_md=__doc__,
    **stage_dag_args("train_validate"),
    params={
        "model_type": Param(
            None, type=["null", "string"], enum=[None, *MODEL_TYPES], description="Default: ml_model_type."
        ),
        "hyperparameters": Param(
            None, type=["null", "object"], description="Default: this model type's ml_hyperparameters."
        ),
        "threshold": Param(None, type=["null", "number"], description="Default: accuracy_threshold."),
        "metric": Param(
            None,
            type=["null", "string"],
            enum=[None, *METRICS],
            description="Metric the threshold is on (of the schema's task). Default: quality_metric.",
        ),
        "batch_ids": Param(
            [],
            type="array",
            items={"type": "string", "pattern": ID_PATTERN},
            description="Train on these feature batches instead (not in a backfill: a backtest trains "
            "on the batches landed by its logical date).",
        ),
    },
)
def train_validate():
    @task
    def train(*, params, dag_run=None, logical_date=None) -> dict:
        """Train and score the configured model; stage it; return its metadata (version, metrics, bar).
        A timetable run without new features, or a backtest before any batch had landed, is skipped."""
        from include.backtest import run_kind
        from include.candidate import check_timetable_work, train_candidate
        from include.config import load_schema, storage_root
        from include.errors import NothingToDo
        from include.training import resolve_config

        root, schema, kind = storage_root(), load_schema(), run_kind(dag_run.run_type)
        try:
            if kind == "timetable":
                check_timetable_work(root, schema, logical_date)
            as_of = logical_date if kind == "backtest" else None
            return train_candidate(root, resolve_config(params, setting, schema.task), as_of=as_of)
        except NothingToDo as exc:
            raise AirflowSkipException(str(exc)) from exc

    @task(outlets=[model_candidate])
    def register(trained: dict, *, outlet_events=None, ti=None) -> str:
        from include.config import storage_root
        from include.registry import candidate_event, discard_staged, register

        root = storage_root()
        metadata = register(root, trained["version"])
        discard_staged(root, trained["version"])
        report_url = version_report_url(metadata["version"])
        ti.xcom_push(key=REPORT_URL_KEY, value=report_url)
        outlet_events[model_candidate].extra = {**candidate_event(metadata), "report_url": report_url}
        return metadata["version"]

    @task
    def write_report(version: str) -> dict:
        """The version's report.html and key_plot.png; after register, so no promotion waits for it."""
        import os

        from include.config import load_schema, storage_root
        from include.registry import await_decision

        root = storage_root()
        # Let deploy's tasks have the cores: until the version is promoted or kept out (or a while).
        os.nice(10)
        await_decision(
            root, lambda model: model["version"] == version, REPORT_WAIT_SECONDS, not_before=version
        )
        from include.report import write_version_report

        return write_version_report(root, version, load_schema())

    @task
    def register_backtest(trained: dict, *, ti=None) -> dict:
        """Register a backtest, passing or not, and write its report: no model_candidate event."""
        from include.config import load_schema, storage_root
        from include.registry import discard_staged, register
        from include.report import write_version_report

        root = storage_root()
        metadata = register(root, trained["version"])
        discard_staged(root, trained["version"])
        ti.xcom_push(key=REPORT_URL_KEY, value=version_report_url(metadata["version"]))
        write_version_report(root, metadata["version"], load_schema())
        keys = ("version", "as_of", "batch_ids", "metric", "metrics", "verdict")
        return {key: metadata[key] for key in keys}

    @task
    def discard_rejected(trained: dict) -> None:
        from include.config import storage_root
        from include.registry import discard_staged, record_kept_out

        root = storage_root()
        record_kept_out(root, trained["version"], trained["batch_ids"], trained["verdict"])
        discard_staged(root, trained["version"])

    trained = train()
    check_threshold = ThresholdBranchOperator(
        task_id="check_threshold",
        metrics=trained["metrics"],
        metric_name=trained["metric"],
        threshold=trained["threshold"],
        higher_is_better=trained["higher_is_better"],
        pass_task_ids="register",
        fail_task_ids=["retrain_alert", "discard_rejected"],
        bypass=trained["backtest"],
        bypass_task_ids="register_backtest",
    )
    retrain_alert = SmtpAlertOperator(
        task_id="retrain_alert",
        data=trained,
        subject="[ml-pipeline] retrain needed: candidate {{ data.verdict }}",
        html_content="retrain_alert.html",
    )
    registered = register(trained)
    registered.operator.operator_extra_links = [ModelReportLink()]
    write_report(registered)
    backtest = register_backtest(trained)
    backtest.operator.operator_extra_links = [ModelReportLink()]
    check_threshold >> [registered, retrain_alert, discard_rejected(trained), backtest]


fail_fast(train_validate())
