"""The ML chain on a real Airflow, driven only by data arriving at the source (and, last, by hand).

The scenarios run in file order on one stack: a happy path puts a model in production, then a bad
batch and a below-threshold batch must leave it there, then per-stage manual runs re-run etl and roll
deploy back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from include import layout, registry, storage
from include.config import load_schema
from include.ingest import land
from scripts.publish import make_batch
from scripts.stack.launcher import LocalStack
from tests.integration.chain import (
    RECIPIENT,
    STAGES,
    body,
    chain_of,
    consumed_events,
    events_of_run,
    events_since,
    finished_run,
    mail_of_run,
    mail_with_subject,
    production,
    returned,
    runs_since,
    served_version,
    task_states,
    variables_changed,
    wait_for_run,
    wait_until_idle,
)
from tests.models import register_model
from tests.received import received


@pytest.fixture(scope="module")
def happy(stack: LocalStack, wait_for) -> Iterator[dict]:
    """Publish one good batch and wait for the chain to end with monitor; say what happened. The
    module's scenarios run with deploy_margin 1, put back after the last of them."""
    with variables_changed(stack, wait_for) as set_variables:
        # An earlier batch may have put a model in production. Two good Iris models tie or differ by a
        # row on 30 held-out rows, so let any candidate that passes the threshold through.
        set_variables(deploy_margin="1")
        wait_until_idle(stack, wait_for)
        since = datetime.now(UTC)
        stack.publish(seed=11)
        [landed] = wait_for(lambda: events_since(stack, "raw_batches", since), 90, "the batch to land")
        chain = wait_for(
            lambda: ended_at(stack, landed, "monitor"), 240, "the batch's chain to end with monitor"
        )
        event = chain["production_model"]
        took = (datetime.fromisoformat(event["timestamp"]) - since).total_seconds()
        print(f"\npublish -> production: {took:.1f} s")
        yield {
            "since": since,
            "batch_id": landed["extra"]["batch_ids"][0],
            "chain": chain,
            "promoted": event,
            "monitor_run": chain["monitor"],
        }


def ended_at(stack: LocalStack, event: dict, dag_id: str) -> dict | None:
    """What ``event`` caused (``chain_of``), once its run of ``dag_id`` and every run before it have
    ended: etl's ``check_drift`` and train_validate's ``write_report`` wait for the promotion, so their
    runs end after the next stage's have started."""
    chain = chain_of(stack, event)
    runs = [chain[stage] for stage in STAGES[1:] if stage in chain]
    ended = all(run["state"] in ("success", "failed") for run in runs)
    return chain if dag_id in chain and ended else None


def test_happy_path_reaches_production_by_itself(stack: LocalStack, happy, wait_for):
    since = happy["since"]
    batch_id = happy["batch_id"]
    chain = happy["chain"]
    raw, features, candidate = chain["raw_batches"], chain["features"], chain["model_candidate"]
    assert raw["extra"]["batch_ids"] == [batch_id]
    assert features["extra"]["batch_ids"] == [batch_id]
    assert features["extra"]["rows"] == raw["extra"]["rows"]
    assert candidate["extra"]["batch_ids"] == [batch_id]
    assert candidate["extra"]["metrics"]["accuracy"] >= candidate["extra"]["threshold"]
    promoted = happy["promoted"]["extra"]
    assert promoted["version"] == candidate["extra"]["version"] == production(stack)["version"]
    wait_for(
        lambda: served_version(stack) == promoted["version"], 60, "the model server to serve the new model"
    )

    for dag_id in STAGES[1:]:
        run = chain[dag_id]
        assert run["run_type"] == "asset_triggered", f"{dag_id} must be started by its asset, not by hand"
        assert run["state"] == "success", f"{dag_id} run {run['dag_run_id']} is {run['state']}"
    assert happy["monitor_run"]["state"] == "success"
    assert task_states(stack, "monitor", happy["monitor_run"]["dag_run_id"])["alert_unhealthy"] == "skipped"

    version_dir = stack.config.home / "data" / "models" / "versions" / promoted["version"]
    metadata = json.loads((version_dir / "metadata.json").read_text())
    assert metadata["batch_ids"] == [batch_id]
    assert {"model_sha256", "feature_hash", "libraries", "params", "threshold"} <= set(metadata)

    mail = wait_for(lambda: mail_with_subject(stack, since, "is in production"), 30, "the success e-mail")
    assert promoted["version"] in mail["Subject"]
    assert RECIPIENT in mail["X-Envelope-To"]
    assert "accuracy" in body(mail)


def test_assets_view_shows_producers_consumers_and_metadata(stack: LocalStack, happy):
    assets = {a["name"]: a for a in stack.rest.get("/api/v2/assets", limit=100)["assets"]}
    graph = {
        "raw_batches": ("ingest", "etl"),
        "features": ("etl", "train_validate"),
        "model_candidate": ("train_validate", "deploy"),
        "production_model": ("deploy", "monitor"),
    }
    for name, (producer, consumer) in graph.items():
        asset = assets[name]
        assert producer in {t["dag_id"] for t in asset["producing_tasks"]}, name
        assert consumer in {d["dag_id"] for d in asset["scheduled_dags"]}, name
        assert asset["uri"].startswith((stack.config.home / "data").as_uri())
    # Each event names the run it started: the lineage the Assets view draws.
    candidate = happy["chain"]["model_candidate"]
    assert [r["dag_id"] for r in candidate["created_dagruns"]] == ["deploy"]
    assert set(candidate["extra"]) >= {"version", "metrics", "model_type", "batch_ids", "model_sha256"}


def links(stack: LocalStack, dag_id: str, run_id: str, task_id: str) -> dict:
    return stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")[
        "extra_links"
    ]


def page(url: str) -> str | None:
    response = httpx.get(url, timeout=10)
    return response.text if response.status_code == 200 else None


def test_a_promoted_model_has_a_report_in_its_events_the_ui_the_server_and_the_mail(
    stack: LocalStack, happy, wait_for
):
    """On the happy path's chain (every run of it has ended), while its model is still in production."""
    chain = happy["chain"]
    candidate, promoted = chain["model_candidate"], happy["promoted"]
    version = candidate["extra"]["version"]
    url = f"{stack.config.model_server_url}/models/{version}/report"
    assert candidate["extra"]["report_url"] == promoted["extra"]["report_url"] == url

    report = wait_for(lambda: page(url), 60, "the report to be served")
    assert f"<h1>Model {version}</h1>" in report
    assert "Confusion matrix" in report or "confusion matrix" in report
    assert "Which columns matter" in report
    assert candidate["extra"]["verdict"] in report
    assert production(stack)["version"] == version
    assert page(f"{stack.config.model_server_url}/report") == report

    train_run, deploy_run = chain["train_validate"]["dag_run_id"], chain["deploy"]["dag_run_id"]
    assert returned(stack, "train_validate", train_run, "write_report")["version"] == version
    assert links(stack, "train_validate", train_run, "register") == {"Model report": url}
    assert links(stack, "deploy", deploy_run, "promote") == {"Model report": url}

    mail = wait_for(
        lambda: mail_of_run(stack, happy["since"], deploy_run, "is in production"), 60, "the mail"
    )
    assert url in body(mail)
    [plot] = [part for part in mail.walk() if part["Content-ID"] == "<key_plot.png>"]
    assert plot.get_content().startswith(b"\x89PNG")
    assert 'src="cid:key_plot.png"' in body(mail)


def test_bad_batch_is_quarantined_with_an_alert(stack: LocalStack, happy, wait_for):
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)
    stack.publish(kind="bad", seed=12)

    run = wait_for(lambda: finished_run(stack, "etl", since), 120, "etl to handle the bad batch")
    assert run["state"] == "success"
    states = task_states(stack, "etl", run["dag_run_id"])
    assert states["build_features"] == "skipped"
    assert states["alert_quarantined"] == "success"
    [raw] = events_since(stack, "raw_batches", since)
    assert [r["run_id"] for r in raw["created_dagruns"]] == [run["dag_run_id"]]
    [batch_id] = raw["extra"]["batch_ids"]
    reason = json.loads((stack.config.home / "data" / "quarantine" / f"{batch_id}.reason.json").read_text())
    failed = {check["check"] for check in reason["failed_checks"]}
    assert {"dtype", "range", "labels"} <= failed
    assert not (stack.config.home / "data" / "raw" / "batches" / f"{batch_id}.parquet").exists()

    mail = wait_for(lambda: mail_with_subject(stack, since, "quarantined"), 30, "the quarantine alert")
    assert batch_id in mail["Subject"]
    assert all(check in body(mail) for check in failed)
    # The run has ended, so any event of it is out. Only an event of it could start train_validate on
    # the batch; etl's nightly run may publish features of other batches meanwhile.
    assert events_of_run(stack, "features", run["dag_run_id"]) == []


def test_batch_below_threshold_sends_retrain_alert(stack: LocalStack, happy, wait_for):
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)
    stack.publish(kind="shuffled-labels", seed=13)

    [landed] = wait_for(lambda: events_since(stack, "raw_batches", since), 90, "the batch to land")
    run = wait_for(lambda: ended_at(stack, landed, "train_validate"), 150, "train_validate to run")[
        "train_validate"
    ]
    states = task_states(stack, "train_validate", run["dag_run_id"])
    assert (states["register"], states["retrain_alert"]) == ("skipped", "success")
    mail = wait_for(lambda: mail_of_run(stack, since, run["dag_run_id"], "retrain needed"), 30, "the alert")
    assert "threshold" in body(mail)
    # The run has ended. Without a candidate of it no deploy run can put its model in production.
    assert events_of_run(stack, "model_candidate", run["dag_run_id"]) == []
    staged_since = f"{since:%Y%m%dT%H%M%S%fZ}"  # staging folders are named by version: time first
    staging = stack.config.home / "data" / "models" / "staging"
    assert not [p for p in staging.glob("*") if p.name >= staged_since], "the rejected model was kept"


@contextmanager
def paused(stack: LocalStack, dag_id: str) -> Iterator[None]:
    """``dag_id`` paused inside the block, and unpaused after it whatever happened: the later scenarios
    need it running."""
    stack.rest.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})
    try:
        yield
    finally:
        stack.rest.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})


def test_one_etl_run_takes_every_raw_batches_event_since_its_last_run(stack: LocalStack, wait_for):
    """Airflow 3.3.2 queues no run for a paused DAG: the events ingest emits while etl is paused start
    nothing, and the run the next event starts consumes them all (triggering_asset_events since the
    previous asset-triggered run)."""
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)
    with paused(stack, "etl"):
        for n, seed in enumerate((14, 15), start=1):  # one ingest run, and one event, for each
            stack.publish(seed=seed)
            wait_for(
                lambda n=n: len(events_since(stack, "raw_batches", since)) >= n, 90, f"batch {n} to land"
            )
    stack.publish(seed=16)

    run = wait_for(lambda: finished_run(stack, "etl", since), 150, "etl to run on the third batch")
    assert run["state"] == "success", task_states(stack, "etl", run["dag_run_id"])
    assert [r["dag_run_id"] for r in runs_since(stack, "etl", since)] == [run["dag_run_id"]]
    raw = events_since(stack, "raw_batches", since)
    assert len(raw) == 3
    consumed = consumed_events(stack, "etl", run["dag_run_id"])
    assert sorted(e["id"] for e in consumed) == sorted(e["id"] for e in raw)
    [features] = events_of_run(stack, "features", run["dag_run_id"])
    assert features["extra"]["batch_ids"] == sorted(b for e in raw for b in e["extra"]["batch_ids"])
    assert features["extra"]["rows"] == sum(e["extra"]["rows"] for e in raw)


def test_manual_etl_rerun_over_a_chosen_batch(stack: LocalStack, happy, wait_for):
    batch_id = happy["batch_id"]
    wait_until_idle(stack, wait_for)
    run = stack.rest.trigger("etl", {"batch_ids": [batch_id]})
    wait_for_run(stack, wait_for, "etl", run["dag_run_id"])
    [event] = events_of_run(stack, "features", run["dag_run_id"])
    assert event["extra"]["batch_ids"] == [batch_id]


def test_backfill_of_etl_processes_the_batches_landed_in_its_interval(stack: LocalStack, wait_for, tmp_path):
    """Backfill replays etl's daily timetable: the run at D 03:00 covers what landed in the day before."""
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    content = make_batch("good", rows=60, seed=31).to_csv(index=False).encode()
    batch = received(tmp_path, content, "an earlier export")
    manifest = land((stack.config.home / "data").as_uri(), batch, now=two_days_ago)["manifest"]
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)
    day = (two_days_ago + timedelta(days=1)).date().isoformat()

    stack.config.airflow(
        "backfill",
        "create",
        "--dag-id",
        "etl",
        "--from-date",
        f"{day}T00:00:00+00:00",
        "--to-date",
        f"{day}T23:59:59+00:00",
        "--reprocess-behavior",
        "completed",
    )

    def of_the_backfill() -> dict | None:
        """The features event of a backfill run (etl's nightly run may publish one meanwhile)."""
        events = events_since(stack, "features", since)
        runs = {
            e["source_run_id"]: stack.rest.get(f"/api/v2/dags/etl/dagRuns/{e['source_run_id']}")
            for e in events
        }
        return next((e for e in events if runs[e["source_run_id"]]["run_type"] == "backfill"), None)

    event = wait_for(of_the_backfill, 120, "a features event of the backfill")
    assert event["extra"]["batch_ids"] == [manifest["batch_id"]]


MARGIN = 0.05  # a candidate may score up to 5 points of accuracy below production and still go in


def scores(reason: str) -> tuple[float, float]:
    """(candidate, production) from a decision's reason: "candidate accuracy 0.97 vs production 0.3 ..."."""
    found = re.search(r"candidate \w+ ([\d.]+) vs production ([\d.]+) .*margin ([\d.-]+)", reason)
    assert found, reason
    assert float(found[3]) == MARGIN, reason
    return float(found[1]), float(found[2])


def candidate_of(stack: LocalStack, wait_for, conf: dict) -> dict:
    """Train by hand with ``conf``; the candidate event, once the deploy run it starts has ended."""
    trained = stack.rest.trigger("train_validate", conf)
    wait_for_run(stack, wait_for, "train_validate", trained["dag_run_id"])

    def deployed() -> dict | None:
        [candidate] = events_of_run(stack, "model_candidate", trained["dag_run_id"]) or [None]
        if not candidate or not candidate["created_dagruns"]:
            return None
        [deploy] = candidate["created_dagruns"]
        run = stack.rest.get(f"/api/v2/dags/deploy/dagRuns/{deploy['run_id']}")
        return candidate if run["state"] in ("success", "failed") else None

    return wait_for(deployed, 120, "the deploy run the candidate starts to end")


def test_champion_challenger_with_a_real_margin_then_deployed_and_rolled_back_by_hand(
    stack: LocalStack, happy, wait_for, variables
):
    """deploy_margin 0.05. Against a weak champion (a linear model trained on the batch with its labels
    shuffled, registered here) a good random forest is promoted; against that forest, a one-split
    forest (a single stump, at most ~2/3 right on three classes) scores more than the margin below and
    is kept out. Then the stump is deployed by hand and rolled back."""
    batch_id = happy["batch_id"]
    variables(deploy_margin=str(MARGIN))
    wait_until_idle(stack, wait_for)
    root = stack.config.storage_root
    frame = storage.read_parquet(layout.feature_batch(root, batch_id))
    schema = load_schema()
    shuffled = frame.assign(**{schema.label: frame[schema.label].sample(frac=1, random_state=5).to_numpy()})
    weak = register_model(root, shuffled, schema, threshold=0.0, batch_ids=[batch_id])["version"]
    registry.set_production(root, weak)
    since = datetime.now(UTC)

    good = candidate_of(stack, wait_for, {"model_type": "random_forest", "batch_ids": [batch_id]})
    first = good["extra"]["version"]
    [promoted] = events_of_run(stack, "production_model", good["created_dagruns"][0]["run_id"])
    assert promoted["extra"]["version"] == first == production(stack)["version"]
    assert promoted["extra"]["previous_version"] == weak
    candidate_score, champion_score = scores(promoted["extra"]["reason"])
    assert candidate_score > champion_score + MARGIN, "not a test of the margin: the champion is not weak"

    stump = {"n_estimators": 1, "max_depth": 1}
    conf = {
        "model_type": "random_forest",
        "hyperparameters": stump,
        "threshold": 0.3,
        "batch_ids": [batch_id],
    }
    kept = candidate_of(stack, wait_for, conf)
    second = kept["extra"]["version"]
    [auto_deploy] = kept["created_dagruns"]
    assert task_states(stack, "deploy", auto_deploy["run_id"])["kept_out_alert"] == "success"
    assert events_of_run(stack, "production_model", auto_deploy["run_id"]) == []
    assert production(stack)["version"] == first
    mail = wait_for(
        lambda: mail_with_subject(stack, since, "kept out of production"), 30, "the kept-out e-mail"
    )
    assert second in mail["Subject"]
    assert "held-out data" in body(mail)
    candidate_score, champion_score = scores(" ".join(body(mail).split()))
    assert candidate_score < champion_score - MARGIN

    forward = stack.rest.trigger("deploy", {"version": second})
    wait_for_run(stack, wait_for, "deploy", forward["dag_run_id"])
    assert production(stack)["version"] == second

    rollback = stack.rest.trigger("deploy", {"version": first})
    wait_for_run(stack, wait_for, "deploy", rollback["dag_run_id"])
    assert production(stack)["version"] == first
    assert production(stack)["previous_version"] == second
    assert served_version(stack) == first
    [event] = [
        e for e in stack.rest.asset_events("production_model") if e["source_run_id"] == rollback["dag_run_id"]
    ]
    assert event["extra"]["version"] == first
    assert event["extra"]["reason"] == "requested by hand"
    versions = stack.config.home / "data" / "models" / "versions"
    assert (versions / first / "model.joblib").is_file()
    assert (versions / second / "model.joblib").is_file()
