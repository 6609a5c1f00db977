"""Promises of the stages' settings and params, each on the real stack, each independent of the others.

Each scenario arranges the data it needs directly in the stack's storage root (the way a batch landed
by an earlier export would be), so it runs the same alone, in any order, or after the other files.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include import layout, registry, storage
from include.config import load_schema
from include.features import build_features
from include.ingest import land
from include.training import train_and_evaluate
from scripts.publish import make_batch
from scripts.stack.config import REPO
from scripts.stack.launcher import LocalStack
from tests.integration.chain import (
    body,
    events_since,
    mail_with_subject,
    production,
    task_states,
    wait_until_idle,
)
from tests.received import received


def data_root(stack: LocalStack) -> str:
    return (stack.config.home / "data").as_uri()


def landed(stack: LocalStack, kind: str, seed: int, at: datetime) -> str:
    """Land a batch of ``kind`` as if ingest had received it at ``at``; return its batch id."""
    content = make_batch(kind, rows=60, seed=seed).to_csv(index=False).encode()
    with tempfile.TemporaryDirectory(prefix="received-") as folder:
        batch = received(Path(folder), content, "an earlier export")
        return land(data_root(stack), batch, now=at)["batch_id"]


def finished(stack: LocalStack, wait_for, dag_id: str, run_id: str) -> dict:
    def done() -> dict | None:
        run = stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    return wait_for(done, 150, f"{dag_id} run {run_id} to finish")


@pytest.fixture
def variables(stack: LocalStack, wait_for) -> Iterator[dict[str, str]]:
    """Set Variables for one scenario; once the runs it caused have ended, each is put back to its
    value in config/variables.json."""
    changed: dict[str, str] = {}
    yield changed
    wait_until_idle(stack, wait_for)
    defaults = json.loads((REPO / "config" / "variables.json").read_text())
    for key in changed:
        value = defaults[key]
        stack.rest.set_variable(key, json.dumps(value) if isinstance(value, dict) else value)


def set_variables(stack: LocalStack, variables: dict[str, str], **values: str) -> None:
    for key, value in values.items():
        stack.rest.set_variable(key, value)
        variables[key] = value


@pytest.fixture(scope="module")
def feature_batch(stack: LocalStack) -> str:
    """A good batch with features, landed a week ago (no timetable run covers it)."""
    root = data_root(stack)
    batch_id = landed(stack, "good", seed=41, at=datetime.now(UTC) - timedelta(days=7))
    build_features(root, [batch_id], load_schema())
    return batch_id


@pytest.fixture
def in_production(stack: LocalStack, wait_for, feature_batch: str) -> str:
    """The version in production once earlier runs have ended: whatever an earlier scenario
    promoted, or one registered here."""
    wait_until_idle(stack, wait_for)
    if (pointer := production(stack)) is not None:
        return pointer["version"]
    root, schema = data_root(stack), load_schema()
    frame = storage.read_parquet(layout.feature_batch(root, feature_batch))
    result = train_and_evaluate(frame, schema, "logistic_regression", {})
    staged = registry.stage_candidate(
        root, result, threshold=0.8, metric="accuracy", batch_ids=[feature_batch], feature_hash="f" * 64
    )
    registry.register(root, staged["version"])
    return registry.set_production(root, staged["version"])["version"]


def test_manual_etl_over_a_landing_day_quarantines_the_bad_batch_and_keeps_the_good(
    stack: LocalStack, wait_for, variables
):
    set_variables(stack, variables, deploy_margin="-1")  # what it trains is kept out of production
    day = datetime.now(UTC) - timedelta(days=3)
    good = landed(stack, "good", seed=43, at=day.replace(hour=9))
    bad = landed(stack, "bad", seed=44, at=day.replace(hour=10))
    landed(stack, "good", seed=45, at=day - timedelta(days=1))  # the day before: not in the range
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)

    date = day.date().isoformat()
    run = stack.rest.trigger("etl", {"landed_from": date, "landed_to": date})

    assert finished(stack, wait_for, "etl", run["dag_run_id"])["state"] == "success"
    [event] = events_since(stack, "features", since)
    assert event["extra"]["batch_ids"] == [good]
    assert (stack.config.home / "data" / "quarantine" / f"{bad}.reason.json").is_file()
    mail = wait_for(lambda: mail_with_subject(stack, since, f"etl quarantined {bad}"), 30, "the alert")
    assert good in body(mail)  # "valid batches in the same run"


def test_training_params_and_the_hyperparameters_variable_reach_the_candidate(
    stack: LocalStack, wait_for, feature_batch, variables
):
    set_variables(
        stack,
        variables,
        deploy_margin="-1",
        ml_hyperparameters=json.dumps({"random_forest": {"n_estimators": 7, "max_depth": 3}}),
    )
    wait_until_idle(stack, wait_for)

    run = stack.rest.trigger(
        "train_validate", {"metric": "f1_macro", "threshold": 0.5, "batch_ids": [feature_batch]}
    )

    assert finished(stack, wait_for, "train_validate", run["dag_run_id"])["state"] == "success"
    [candidate] = [
        e for e in stack.rest.asset_events("model_candidate") if e["source_run_id"] == run["dag_run_id"]
    ]
    extra = candidate["extra"]
    assert (extra["model_type"], extra["params"]) == ("random_forest", {"n_estimators": 7, "max_depth": 3})
    assert (extra["metric"], extra["threshold"], extra["batch_ids"]) == ("f1_macro", 0.5, [feature_batch])
    assert 0.5 <= extra["metrics"]["f1_macro"] <= 1


def test_monitor_alert_names_each_failed_check_and_keeps_its_report(
    stack: LocalStack, wait_for, in_production, variables
):
    set_variables(stack, variables, monitor_drift_threshold="-1")  # any data counts as drifted
    since = datetime.now(UTC)

    run = stack.rest.trigger("monitor")

    assert finished(stack, wait_for, "monitor", run["dag_run_id"])["state"] == "success"
    assert task_states(stack, "monitor", run["dag_run_id"])["alert_unhealthy"] == "success"
    mail = wait_for(lambda: mail_with_subject(stack, since, "failed"), 30, "the monitor alert")
    assert in_production in mail["Subject"]
    assert "drift" in mail["Subject"]
    reports = sorted((stack.config.home / "data" / "monitor").glob("*.json"))
    report = json.loads(reports[-1].read_text())
    assert (report["version"], report["healthy"]) == (in_production, False)
    assert {check["name"]: check["ok"] for check in report["checks"]}["drift"] is False
    assert reports[-1].name in body(mail)


def test_deploy_refuses_a_tampered_model_and_keeps_production(
    stack: LocalStack, wait_for, feature_batch, in_production
):
    root, schema = data_root(stack), load_schema()
    frame = storage.read_parquet(layout.feature_batch(root, feature_batch))
    staged = registry.stage_candidate(
        root,
        train_and_evaluate(frame, schema, "logistic_regression", {"C": 3.0}),
        threshold=0.8,
        metric="accuracy",
        batch_ids=[],
        feature_hash="f" * 64,
    )
    tampered = registry.register(root, staged["version"])["version"]
    model = stack.config.home / "data" / "models" / "versions" / tampered / "model.joblib"
    model.write_bytes(model.read_bytes() + b"tampered")
    before = production(stack)

    run = stack.rest.trigger("deploy", {"version": tampered})

    assert finished(stack, wait_for, "deploy", run["dag_run_id"])["state"] == "failed"
    assert production(stack) == before
    assert not [
        e for e in stack.rest.asset_events("production_model") if e["source_run_id"] == run["dag_run_id"]
    ]
