"""Promises of the stages' settings and params, each on the real stack, each independent of the others.

Each scenario arranges the data it needs directly in the stack's storage root (the way a batch landed
by an earlier export would be), so it runs the same alone, in any order, or after the other files.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from include import layout, registry, storage
from include.config import load_schema
from include.features import build_features
from include.ingest import land
from scripts.publish import make_batch
from scripts.stack.launcher import LocalStack
from tests.integration.chain import (
    body,
    events_of_run,
    mail_of_run,
    mail_with_subject,
    production,
    returned,
    served_version,
    task_states,
    wait_until_idle,
)
from tests.models import register_model, tamper
from tests.received import received


def data_root(stack: LocalStack) -> str:
    return (stack.config.home / "data").as_uri()


def landed(stack: LocalStack, kind: str, seed: int, at: datetime, rows: int = 60) -> str:
    """Land a batch of ``kind`` as if ingest had received it at ``at``; return its batch id."""
    content = make_batch(kind, rows=rows, seed=seed).to_csv(index=False).encode()
    with tempfile.TemporaryDirectory(prefix="received-") as folder:
        batch = received(Path(folder), content, "an earlier export")
        return land(data_root(stack), batch, now=at)["batch_id"]


def finished(stack: LocalStack, wait_for, dag_id: str, run_id: str) -> dict:
    def done() -> dict | None:
        run = stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    return wait_for(done, 150, f"{dag_id} run {run_id} to finish")


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
    root = data_root(stack)
    frame = storage.read_parquet(layout.feature_batch(root, feature_batch))
    version = register_model(root, frame, load_schema(), batch_ids=[feature_batch])["version"]
    return registry.set_production(root, version)["version"]


def test_manual_etl_over_a_landing_day_quarantines_the_bad_batch_and_keeps_the_good(
    stack: LocalStack, wait_for, variables
):
    variables(deploy_margin="-1")  # what it trains is kept out of production
    day = datetime.now(UTC) - timedelta(days=3)
    good = landed(stack, "good", seed=43, at=day.replace(hour=9))
    bad = landed(stack, "bad", seed=44, at=day.replace(hour=10))
    landed(stack, "good", seed=45, at=day - timedelta(days=1))  # the day before: not in the range
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)

    date = day.date().isoformat()
    run = stack.rest.trigger("etl", {"landed_from": date, "landed_to": date})

    assert finished(stack, wait_for, "etl", run["dag_run_id"])["state"] == "success"
    [event] = events_of_run(stack, "features", run["dag_run_id"])
    assert event["extra"]["batch_ids"] == [good]
    assert (stack.config.home / "data" / "quarantine" / f"{bad}.reason.json").is_file()
    mail = wait_for(lambda: mail_with_subject(stack, since, f"etl quarantined {bad}"), 30, "the alert")
    assert good in body(mail)  # "valid batches in the same run"


def test_training_params_and_the_hyperparameters_variable_reach_the_candidate(
    stack: LocalStack, wait_for, feature_batch, variables
):
    variables(
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
    variables(monitor_drift_threshold="-1")  # any data counts as drifted
    since = datetime.now(UTC)

    run = stack.rest.trigger("monitor")

    run_id = run["dag_run_id"]
    assert finished(stack, wait_for, "monitor", run_id)["state"] == "success"
    assert task_states(stack, "monitor", run_id)["alert_unhealthy"] == "success"
    # This run's report and alert: monitor's hourly run may write and send its own meanwhile.
    checked = returned(stack, "monitor", run_id, "check_production")
    report, report_url = storage.read_json(checked["stored_at"]), checked["report_url"]
    assert (report["version"], report["healthy"]) == (in_production, False)
    assert httpx.get(report_url, timeout=30).status_code == 200  # the page, served by the model server
    assert {check["name"]: check["ok"] for check in report["checks"]}["drift"] is False
    mail = wait_for(lambda: mail_of_run(stack, since, run_id, "production model"), 30, "the monitor alert")
    assert in_production in mail["Subject"]
    assert "drift" in mail["Subject"]
    assert report_url in body(mail)


def test_a_candidate_below_the_accuracy_threshold_variable_is_not_registered(
    stack: LocalStack, wait_for, variables
):
    # Every model type scores 0.9 on this batch's held-out rows (3 of 30 wrong): above the default
    # bar of 0.8, so only the Variable can keep it out, and three rows short of 0.99.
    batch_id = landed(stack, "good", seed=57, at=datetime.now(UTC) - timedelta(days=7), rows=120)
    build_features(data_root(stack), [batch_id], load_schema())
    variables(accuracy_threshold="0.99")
    since = datetime.now(UTC)

    run = stack.rest.trigger("train_validate", {"batch_ids": [batch_id]})  # no threshold param

    run_id = run["dag_run_id"]
    assert finished(stack, wait_for, "train_validate", run_id)["state"] == "success"
    trained = returned(stack, "train_validate", run_id, "train")
    assert trained["threshold"] == 0.99
    assert 0.8 <= trained["metrics"]["accuracy"] < 0.99, "the batch no longer tells the bars apart"
    states = task_states(stack, "train_validate", run_id)
    assert (states["register"], states["retrain_alert"]) == ("skipped", "success")
    mail = wait_for(lambda: mail_of_run(stack, since, run_id, "retrain needed"), 30, "the retrain alert")
    verdict = f"accuracy {trained['metrics']['accuracy']} is below the minimum 0.99"
    assert verdict in mail["Subject"]
    assert verdict in body(mail)
    assert events_of_run(stack, "model_candidate", run_id) == []  # the run has ended


def test_deploy_refuses_a_tampered_model_and_keeps_production(
    stack: LocalStack, wait_for, feature_batch, in_production
):
    root = data_root(stack)
    frame = storage.read_parquet(layout.feature_batch(root, feature_batch))
    candidate = register_model(root, frame, load_schema(), params={"C": 3.0}, batch_ids=[])
    tampered = candidate["version"]
    tampered_sha256 = hashlib.sha256(
        tamper(layout.model_version(root, tampered, registry.MODEL_FILE))
    ).hexdigest()
    pointer = storage.read_bytes(layout.production_pointer(root))
    server_log = stack.config.log_dir / "model-server.log"
    logged = server_log.stat().st_size
    since = datetime.now(UTC)

    run = stack.rest.trigger("deploy", {"version": tampered})

    run_id = run["dag_run_id"]
    assert finished(stack, wait_for, "deploy", run_id)["state"] == "failed"
    assert task_states(stack, "deploy", run_id)["promote"] == "failed"
    # deploy's own check refused it: its error names both hashes. Had the pointer moved, the model
    # server would have refused the file instead, and promote would fail with the reload's HTTP 409.
    mail = wait_for(lambda: mail_of_run(stack, since, run_id, "deploy.promote"), 30, "the failure e-mail")
    assert f"has sha256 {tampered_sha256}, metadata.json records {candidate['model_sha256']}" in body(mail)
    # ... so the model server was never asked to load it (it logs every version it loads or refuses).
    assert tampered.encode() not in server_log.read_bytes()[logged:]
    assert served_version(stack) == in_production
    assert storage.read_bytes(layout.production_pointer(root)) == pointer
    assert events_of_run(stack, "production_model", run_id) == []
