"""
### train_validate: train the configured model, evaluate it, register it only if it is good enough

Runs when `etl` publishes `features`. Trains `ml_model_type` (Variable; `random_forest`,
`logistic_regression` or `gradient_boosting`) with its hyperparameters from the `ml_hyperparameters`
Variable, on the newest `training_window_batches` feature batches, and scores it on a stratified
held-out split (fixed seed): accuracy and macro F1. `check_threshold` (our `ThresholdBranchOperator`)
compares the chosen metric with `accuracy_threshold`: a passing model is registered as a new version
under `models/versions/` and the `model_candidate` asset gets its metadata; a failing one is discarded
and a retrain alert is e-mailed. A manual run can override the model type, hyperparameters,
threshold, metric and the batches to train on.
"""

from __future__ import annotations

from airflow.sdk import Param, Variable, dag, task

from mlpipe.assets import features, model_candidate
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import stage_dag_args
from mlpipe.threshold_branch import ThresholdBranchOperator

MODEL_TYPES = ["random_forest", "logistic_regression", "gradient_boosting"]


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
        "metric": Param("accuracy", enum=["accuracy", "f1_macro"], description="Metric the threshold is on."),
        "batch_ids": Param(
            [], type="array", items={"type": "string"}, description="Train on these feature batches instead."
        ),
    },
)
def train_validate():
    @task(multiple_outputs=True)
    def train(*, params, run_id) -> dict:
        from include.config import load_schema, storage_root
        from include.features import list_feature_batches, load_features
        from include.registry import stage_result
        from include.training import train_and_evaluate

        root = storage_root()
        model_type = params["model_type"] or Variable.get("ml_model_type", default="random_forest")
        hyperparameters = params["hyperparameters"]
        if hyperparameters is None:
            configured = Variable.get("ml_hyperparameters", default={}, deserialize_json=True)
            hyperparameters = configured.get(model_type, {})
        window = int(Variable.get("training_window_batches", default="1"))
        batch_ids = params["batch_ids"] or list_feature_batches(root)[-window:]
        frame, batch_ids, feature_hash = load_features(root, batch_ids)
        result = train_and_evaluate(frame, load_schema(), model_type, hyperparameters)
        stage_result(root, run_id, result)
        threshold = params["threshold"]
        return {
            "metrics": result.metrics,
            "metric": params["metric"],
            "threshold": float(
                Variable.get("accuracy_threshold", default="0.8") if threshold is None else threshold
            ),
            "model_type": model_type,
            "hyperparameters": hyperparameters,
            "batch_ids": batch_ids,
            "feature_hash": feature_hash,
        }

    @task(outlets=[model_candidate])
    def register(trained: dict, *, run_id, outlet_events=None) -> str:
        from include.config import storage_root
        from include.registry import discard_staged, load_staged, register_candidate

        root = storage_root()
        metadata = register_candidate(
            root,
            load_staged(root, run_id),
            threshold=trained["threshold"],
            metric=trained["metric"],
            batch_ids=trained["batch_ids"],
            feature_hash=trained["feature_hash"],
        )
        discard_staged(root, run_id)
        outlet_events[model_candidate].extra = {
            key: metadata[key]
            for key in (
                "version",
                "model_type",
                "params",
                "metrics",
                "metric",
                "threshold",
                "batch_ids",
                "feature_hash",
                "model_sha256",
            )
        }
        return metadata["version"]

    @task
    def discard_rejected(*, run_id) -> None:
        from include.config import storage_root
        from include.registry import discard_staged

        discard_staged(storage_root(), run_id)

    trained = train()
    check_threshold = ThresholdBranchOperator(
        task_id="check_threshold",
        metrics=trained["metrics"],
        metric_name=trained["metric"],
        threshold=trained["threshold"],
        pass_task_ids="register",
        fail_task_ids=["retrain_alert", "discard_rejected"],
    )
    retrain_alert = SmtpAlertOperator(
        task_id="retrain_alert",
        subject="[ml-pipeline] retrain needed: candidate {{ ti.xcom_pull(task_ids='train', key='metric') }} "
        "below {{ ti.xcom_pull(task_ids='train', key='threshold') }}",
        html_content="retrain_alert.html",
    )
    check_threshold >> [register(trained), retrain_alert, discard_rejected()]


train_validate()
