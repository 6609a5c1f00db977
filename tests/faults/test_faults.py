"""Faults and hostile input on a real stack, each scenario asserting what the pipeline kept.

The scenarios share one stack, but each sets up what it needs (``model_in_production`` publishes a batch
and waits for its model when none is in production yet) and checks only what it changed, so any one runs
alone (``-k``) and in any order: hostile params are refused before anything is touched; the scheduler is
killed mid-chain and the chain completes once; a task killed during `train` retries into one version;
the model server is down during a promotion and production stays what is served; the SMTP server is
down and the pipeline goes on while its alert tasks fail visibly. The stack's keeper restarts a killed
component within seconds: where a scenario needs one down for a while, it freezes the keeper meanwhile.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from scripts.publish import make_batch
from scripts.stack.errors import StackError
from scripts.stack.launcher import LocalStack
from tests.faults.support import (
    deploy_run_of,
    finished,
    pointer,
    production_version,
    task_instance,
    version_folders,
)
from tests.integration.chain import (
    PUBLISHES,
    body,
    chain_of,
    consumed_events,
    events_of_run,
    events_since,
    mail_with_subject,
    mails_since,
    runs_since,
    served_version,
    task_states,
    wait_until_idle,
)
from tests.sabotage import Saboteur
from tests.snapshots import snapshot
from tests.waits import wait_for

UNKNOWN = "20991231T235959999999Z-deadbeef"  # well-formed, names nothing
# The Iris models of these tests convert to ONNX, so each version has its twin (include/onnx_model.py).
COMPLETE_VERSION = ["holdout.parquet", "metadata.json", "model.joblib", "model.onnx", "reference.parquet"]


@pytest.fixture
def model_in_production(stack: LocalStack, data: Path) -> str:
    """The version in production, and so a feature batch to train on: when there is none yet, a good
    batch is published and followed to production (every passing candidate goes in: deploy_margin 1).
    Either way the pipeline is idle when the scenario starts, so nothing it did not cause runs on."""
    if production_version(data) is None:
        since = datetime.now(UTC)
        stack.publish(seed=11)
        wait_for(lambda: events_since(stack, "production_model", since), 180, "a first model in production")
    wait_until_idle(stack, wait_for)
    version = production_version(data)
    assert version is not None
    return version


def outputs(data: Path) -> dict[str, dict]:
    """What the stages after etl's landing wrote: feature batches and model versions."""
    return {name: snapshot(data / name) for name in ("features", "models")}


def feature_batch(data: Path) -> str:
    return sorted(p.stem for p in (data / "features").glob("*.parquet"))[-1]


def train_by_hand(stack: LocalStack, data: Path) -> str:
    """A train_validate run on the newest feature batch (a new candidate without waiting for ingest)."""
    return stack.rest.trigger("train_validate", {"batch_ids": [feature_batch(data)]})["dag_run_id"]


# -- hostile params ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dag_id", "conf"),
    [
        ("etl", {"batch_ids": ["../../../planted"]}),
        ("etl", {"batch_ids": ["/etc/passwd"]}),
        ("train_validate", {"batch_ids": ["../../../planted"]}),
        ("deploy", {"version": "../../../../etc"}),
        ("deploy", {"version": "/etc"}),
        ("etl", {"batch_ids": [f"{UNKNOWN}\n"]}),
        ("deploy", {"version": f"{UNKNOWN}\n"}),
    ],
    ids=[
        "etl-dotdot",
        "etl-absolute",
        "train-dotdot",
        "deploy-dotdot",
        "deploy-absolute",
        "etl-trailing-newline",
        "deploy-trailing-newline",
    ],
)
def test_the_rest_api_refuses_a_malformed_id(stack: LocalStack, data: Path, dag_id, conf):
    sandbox = data.parent
    before = snapshot(sandbox, skip="data")

    with pytest.raises(StackError, match=r"HTTP 400.*does not match"):
        stack.rest.trigger(dag_id, conf)

    assert snapshot(sandbox, skip="data") == before


def test_a_well_formed_id_that_names_nothing_fails_the_first_task_and_touches_nothing(
    stack: LocalStack, data: Path
):
    """The API cannot know which ids exist; the first task refuses an unknown one, without a retry."""
    sandbox = data.parent
    make_batch("good", rows=30, seed=1).to_parquet(sandbox / "planted.parquet")
    before = snapshot(sandbox, skip="data")
    made = outputs(data)
    since = datetime.now(UTC)
    expected = {
        ("train_validate", "train", f"feature batch '{UNKNOWN}' not found"): {"batch_ids": [UNKNOWN]},
        ("deploy", "compare_with_production", f"model version '{UNKNOWN}' not found"): {"version": UNKNOWN},
    }
    runs = {key: stack.rest.trigger(key[0], conf)["dag_run_id"] for key, conf in expected.items()}

    for (dag_id, first_task, message), run_id in runs.items():
        assert finished(stack, dag_id, run_id)["state"] == "failed"
        ti = task_instance(stack, dag_id, run_id, first_task)
        assert (ti["state"], ti["try_number"]) == ("failed", 1), "a bad param is not worth a retry"
        others = {t: s for t, s in task_states(stack, dag_id, run_id).items() if t != first_task}
        assert "success" not in others.values(), others
        mail = wait_for(
            lambda d=dag_id, r=run_id, t=first_task: next(
                (m for m in _failure_mails(stack, since, d, t) if r in m["Subject"]), None
            ),
            30,
            f"the failure mail of {dag_id}.{first_task}",
        )
        assert message in body(mail).replace("&#39;", "'")

    assert snapshot(sandbox, skip="data") == before
    assert outputs(data) == made
    for asset in ("features", "model_candidate", "production_model"):
        assert events_since(stack, asset, since) == []


def _failure_mails(stack: LocalStack, since: datetime, dag_id: str, task_id: str) -> list:
    return [m for m in mails_since(stack, since) if f"Task failed: {dag_id}.{task_id} " in m["Subject"]]


# -- scheduler killed -------------------------------------------------------------------------------


def test_scheduler_killed_mid_chain_the_chain_completes_once(
    stack: LocalStack, saboteur: Saboteur, data: Path
):
    wait_until_idle(stack, wait_for)
    before = version_folders(data)
    since = datetime.now(UTC)
    stack.publish(seed=21)
    # etl takes a second or two now: kill as soon as its run exists, with train and deploy still ahead.
    wait_for(lambda: runs_since(stack, "etl", since), 120, "etl to start on the new batch", interval=0.2)

    started = saboteur.kill("scheduler", group=False)  # its executor workers outlive it
    saboteur.restart("scheduler", *started)

    [landed] = events_since(stack, "raw_batches", since)

    def promoted() -> dict | None:
        chain = chain_of(stack, landed)
        return chain if "production_model" in chain else None

    chain = wait_for(promoted, 180, "the batch's model in production")
    version = chain["production_model"]["extra"]["version"]
    for dag_id in ("etl", "train_validate", "deploy"):
        assert finished(stack, dag_id, chain[dag_id]["dag_run_id"])["state"] == "success", dag_id
    # Each event of the batch's chain started one run, and each run published one event and consumed
    # only its own: the restart repeated nothing.
    for asset, dag_id in (
        ("raw_batches", "etl"),
        ("features", "train_validate"),
        ("model_candidate", "deploy"),
    ):
        assert [r["run_id"] for r in chain[asset]["created_dagruns"]] == [chain[dag_id]["dag_run_id"]], asset
        assert len(consumed_events(stack, dag_id, chain[dag_id]["dag_run_id"])) == 1, dag_id
        assert len(events_of_run(stack, PUBLISHES[dag_id], chain[dag_id]["dag_run_id"])) == 1, dag_id
    assert version_folders(data) == {**before, version: COMPLETE_VERSION}
    assert production_version(data) == version
    wait_for(lambda: served_version(stack) == version, 30, "the model server to serve it")


# -- task processes killed --------------------------------------------------------------------------


def test_a_task_killed_during_train_retries_into_one_version(
    stack: LocalStack, saboteur: Saboteur, data: Path, model_in_production: str
):
    """`register` takes ~0.2 s, too short to be caught running from outside; its retry after a kill is
    tested on the files a killed registration leaves (tests/unit/include/test_registry.py)."""
    before = version_folders(data)
    since = datetime.now(UTC)
    run_id = train_by_hand(stack, data)

    assert saboteur.kill_task("train_validate", run_id, "train") == 1

    assert finished(stack, "train_validate", run_id)["state"] == "success"
    ti = task_instance(stack, "train_validate", run_id, "train")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    after = version_folders(data)
    [new] = set(after) - set(before)
    assert after == {**before, new: COMPLETE_VERSION}, "a partial or second version folder"
    [candidate] = events_since(stack, "model_candidate", since)
    assert candidate["extra"]["version"] == new
    finished(stack, "deploy", deploy_run_of(stack, run_id))


# -- model server down ------------------------------------------------------------------------------


def test_model_server_down_during_promotion_keeps_production_what_is_served(
    stack: LocalStack, saboteur: Saboteur, data: Path, model_in_production: str
):
    kept = pointer(data)
    served = model_in_production
    with saboteur.keeper_paused():  # the model server stays down until the promotion has failed
        started = saboteur.kill("model-server")
        since = datetime.now(UTC)

        run_id = train_by_hand(stack, data)
        deploy_run = deploy_run_of(stack, run_id)

        assert finished(stack, "deploy", deploy_run)["state"] == "failed"
        promote = task_instance(stack, "deploy", deploy_run, "promote")
        assert (promote["state"], promote["try_number"]) == ("failed", 2)
        assert task_states(stack, "deploy", deploy_run)["success_email"] == "upstream_failed"
        assert pointer(data) == kept, "the pointer must name what the server serves"
        assert not (data / "models" / "promotion.json").exists()
        assert events_since(stack, "production_model", since) == []
        assert [r for r in runs_since(stack, "monitor", since) if r["run_type"] == "asset_triggered"] == []
        mail = wait_for(
            lambda: mail_with_subject(stack, since, "Task failed: deploy.promote"), 30, "the failure mail"
        )
        assert "Connection refused" in body(mail) or "connect" in body(mail).lower()

    saboteur.restart("model-server", *started)
    wait_for(lambda: _served(stack) == served, 60, "the restarted model server to serve the pointer's model")

    since = datetime.now(UTC)
    run_id = train_by_hand(stack, data)
    assert finished(stack, "deploy", deploy_run_of(stack, run_id))["state"] == "success"
    [event] = events_since(stack, "production_model", since)
    assert event["extra"]["previous_version"] == served
    assert production_version(data) == event["extra"]["version"] == served_version(stack)


def _served(stack: LocalStack) -> str | None:
    try:
        return served_version(stack)
    except httpx.HTTPError:  # not listening yet
        return None


# -- SMTP server down -------------------------------------------------------------------------------


def test_smtp_down_the_pipeline_goes_on_and_alert_tasks_fail_visibly(
    stack: LocalStack, saboteur: Saboteur, data: Path
):
    wait_until_idle(stack, wait_for)  # no earlier run's mail or alert task runs into this one
    with saboteur.keeper_paused():  # the SMTP server stays down until every alert task has failed
        started = saboteur.kill("smtp-sink")
        mails = stack.mails()
        since = datetime.now(UTC)

        stack.publish(kind="bad", seed=31)
        [bad] = wait_for(lambda: events_since(stack, "raw_batches", since), 60, "the bad batch to land")
        stack.publish(seed=32)
        good = wait_for(
            lambda: next(
                (e for e in events_since(stack, "raw_batches", since) if e["id"] != bad["id"]), None
            ),
            60,
            "the good batch to land",
        )
        promoted = wait_for(
            lambda: chain_of(stack, good).get("production_model"), 180, "the good batch in production"
        )

        [bad_id] = bad["extra"]["batch_ids"]
        reason = json.loads((data / "quarantine" / f"{bad_id}.reason.json").read_text())
        assert reason["failed_checks"]
        [etl_run] = next(e for e in stack.rest.asset_events("raw_batches") if e["id"] == bad["id"])[
            "created_dagruns"
        ]
        assert finished(stack, "etl", etl_run["run_id"])["state"] == "failed"
        alert = task_instance(stack, "etl", etl_run["run_id"], "alert_quarantined")
        assert (alert["state"], alert["try_number"]) == ("failed", 2)

        deploy_run = promoted["source_run_id"]
        assert finished(stack, "deploy", deploy_run)["state"] == "failed"
        states = task_states(stack, "deploy", deploy_run)
        assert (states["promote"], states["success_email"]) == ("success", "failed")
        assert production_version(data) == promoted["extra"]["version"]
        assert stack.mails() == mails

    saboteur.restart("smtp-sink", *started)
