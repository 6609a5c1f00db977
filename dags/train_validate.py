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
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from include.layout import ID_PATTERN
from include.metrics import METRICS
from include.settings import MODEL_TYPES
from mlpipe.assets import features, model_candidate
from mlpipe.links import REPORT_URL_KEY, ModelReportLink, version_report_url
from mlpipe.settings import setting
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import fail_fast, stage_dag_args
from mlpipe.threshold_branch import ThresholdBranchOperator

REPORT_WAIT_SECONDS = 15  # how long write_report waits for deploy to promote the version first


@dag(
    schedule=[features],
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
            description="Train on these feature batches instead.",
        ),
    },
)
def train_validate():
    @task
    def train(*, params) -> dict:
        """Train and score the configured model; stage it; return its metadata (version, metrics, bar)."""
        from include.candidate import train_candidate
        from include.config import load_schema, storage_root
        from include.training import resolve_config

        return train_candidate(storage_root(), resolve_config(params, setting, load_schema().task))

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
        from include.registry import await_production

        root = storage_root()
        # Let deploy's tasks have the cores: until the version is promoted (or, kept out, a while).
        os.nice(10)
        await_production(root, lambda production: production == version, REPORT_WAIT_SECONDS)
        from include.report import write_version_report

        return write_version_report(root, version, load_schema())

    @task
    def discard_rejected(trained: dict) -> None:
        from include.config import storage_root
        from include.registry import discard_staged

        discard_staged(storage_root(), trained["version"])

    trained = train()
    check_threshold = ThresholdBranchOperator(
        task_id="check_threshold",
        metrics=trained["metrics"],
        metric_name=trained["metric"],
        threshold=trained["threshold"],
        higher_is_better=trained["higher_is_better"],
        pass_task_ids="register",
        fail_task_ids=["retrain_alert", "discard_rejected"],
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
    check_threshold >> [registered, retrain_alert, discard_rejected(trained)]


fail_fast(train_validate())
