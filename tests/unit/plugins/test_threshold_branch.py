from __future__ import annotations

import pytest

from mlpipe.threshold_branch import ThresholdBranchOperator


def make(**overrides) -> ThresholdBranchOperator:
    kwargs = {
        "task_id": "check_quality",
        "metrics": {"accuracy": 0.9, "f1": 0.7},
        "metric_name": "accuracy",
        "threshold": 0.8,
        "pass_task_ids": "register_candidate",
        "fail_task_ids": ["alert", "quarantine"],
    }
    kwargs.update(overrides)
    return ThresholdBranchOperator(**kwargs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.95, ["register_candidate"]),
        (0.8, ["register_candidate"]),
        (0.7999, ["alert", "quarantine"]),
    ],
    ids=["above", "exactly-at-threshold", "below"],
)
def test_choose_branch(value, expected):
    assert make(metrics={"accuracy": value}).choose_branch({}) == expected


def test_threshold_given_as_string():
    assert make(threshold="0.85").choose_branch({}) == ["register_candidate"]
    assert make(threshold=" 0.95 ").choose_branch({}) == ["alert", "quarantine"]


def test_metric_value_given_as_string():
    assert make(metrics={"accuracy": "0.81"}).choose_branch({}) == ["register_candidate"]


def test_missing_metric_names_it_and_the_available_ones():
    with pytest.raises(ValueError, match=r"'auc' not found in metrics; available: \['accuracy', 'f1'\]"):
        make(metric_name="auc").choose_branch({})


@pytest.mark.parametrize("threshold", ["high", None, "nan"])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="accuracy"):
        make(threshold=threshold).choose_branch({})


def test_non_numeric_metric_value():
    with pytest.raises(
        ValueError, match=r"'accuracy' has non-numeric value 'n/a'; available: \['accuracy'\]"
    ):
        make(metrics={"accuracy": "n/a"}).choose_branch({})


def test_metrics_must_be_a_mapping():
    with pytest.raises(TypeError, match="got list"):
        make(metrics=[0.9]).choose_branch({})


def test_branch_ids_validated_at_construction():
    with pytest.raises(ValueError, match="pass_task_ids"):
        make(pass_task_ids=[])
    with pytest.raises(ValueError, match=r"\['alert'\] are in both"):
        make(pass_task_ids=["alert"])


def test_template_fields_render():
    op = make(
        metrics={"auc": "{{ params.auc }}"},
        metric_name="{{ params.metric }}",
        threshold="{{ params.threshold }}",
        higher_is_better=False,  # in a DAG, an XComArg resolving to the metric's direction
    )
    assert set(op.template_fields) == {"metrics", "metric_name", "threshold", "higher_is_better", "bypass"}

    op.render_template_fields({"params": {"auc": 0.62, "metric": "auc", "threshold": 0.6}})

    assert (op.metrics, op.metric_name, op.threshold, op.higher_is_better) == (
        {"auc": "0.62"},
        "auc",
        "0.6",
        False,
    )
    assert op.choose_branch({}) == ["alert", "quarantine"]


def test_logs_decision(capfd):
    # Airflow 3 task loggers go through structlog to the process's output, not to caplog.
    make(metrics={"accuracy": 0.5}).choose_branch({})
    assert (
        "Metric accuracy = 0.5 < threshold 0.8 (higher is better): following ['alert', 'quarantine']"
        in capfd.readouterr().out
    )
    make(metrics={"rmse": 12.3}, metric_name="rmse", threshold=10, higher_is_better=False).choose_branch({})
    assert (
        "Metric rmse = 12.3 > threshold 10.0 (lower is better): following ['alert', 'quarantine']"
        in capfd.readouterr().out
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (9.5, ["register_candidate"]),
        (10.0, ["register_candidate"]),
        (10.01, ["alert", "quarantine"]),
    ],
    ids=["below", "exactly-at-threshold", "above"],
)
def test_lower_is_better_passes_at_and_below_the_threshold(value, expected):
    op = make(metrics={"rmse": value}, metric_name="rmse", threshold="10", higher_is_better=False)

    assert op.choose_branch({}) == expected


def test_higher_is_better_must_be_a_bool():
    with pytest.raises(TypeError, match="higher_is_better must be a bool, got 'False'"):
        make(higher_is_better="False").choose_branch({})


@pytest.mark.parametrize("value", [0.95, 0.5], ids=["passing", "failing"])
def test_bypass_follows_its_own_branch_whatever_the_metric(value):
    gate = make(metrics={"accuracy": value}, bypass=True, bypass_task_ids="record")
    assert gate.choose_branch({}) == ["record"]
    assert make(metrics={"accuracy": value}, bypass=False, bypass_task_ids="record").choose_branch({}) == (
        ["register_candidate"] if value > 0.8 else ["alert", "quarantine"]
    )


def test_bypass_is_checked():
    with pytest.raises(TypeError, match="bypass must be a bool, got 'true'"):
        make(bypass="true", bypass_task_ids="record").choose_branch({})
    with pytest.raises(ValueError, match="bypass is true but no bypass_task_ids were given"):
        make(bypass=True).choose_branch({})
    with pytest.raises(ValueError, match=r"\['alert'\] are in bypass_task_ids and in another branch"):
        make(bypass_task_ids=["alert"])


BRANCH_DAG = """
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, task

    from mlpipe.threshold_branch import ThresholdBranchOperator

    with DAG("threshold_branch_test", schedule=None, params={"accuracy": 0.9}) as dag:

        @task
        def evaluate(params=None):
            return {"accuracy": params["accuracy"], "f1": 0.5}

        gate = ThresholdBranchOperator(
            task_id="gate",
            metrics=evaluate(),
            metric_name="accuracy",
            threshold="{{ var.value.get('accuracy_threshold', 0.8) }}",
            pass_task_ids="deploy",
            fail_task_ids="alert",
        )
        gate >> [EmptyOperator(task_id="deploy"), EmptyOperator(task_id="alert")]
"""


@pytest.mark.parametrize(
    ("accuracy", "ran", "skipped"),
    [(0.95, "deploy", "alert"), (0.77, "deploy", "alert"), (0.7, "alert", "deploy")],
    ids=["pass", "pass-only-by-the-variable", "fail"],
)
def test_dag_run_skips_the_other_branch(load_dag, monkeypatch, accuracy, ran, skipped):
    monkeypatch.setenv("AIRFLOW_VAR_ACCURACY_THRESHOLD", "0.75")
    dag = load_dag("threshold_branch_test", BRANCH_DAG)

    dag_run = dag.test(run_conf={"accuracy": accuracy})

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"evaluate": "success", "gate": "success", ran: "success", skipped: "skipped"}
    assert dag_run.state == "success"
