"""Drift on a real stack: a batch whose petals moved by +1.5 cm reported as drifted, then absorbed by
retraining. Where a person finds a promoted model's report is checked on the happy path's chain
(``test_pipeline.py``), which promotes a model anyway."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from scripts.stack.launcher import LocalStack
from tests.integration.chain import (
    body,
    events_since,
    mail_of_run,
    mail_with_subject,
    production,
    returned,
    runs_since,
    variables_changed,
    wait_for_run,
    wait_until_idle,
)


def publish_and_promote(stack: LocalStack, wait_for, kind: str, seed: int) -> tuple[datetime, dict]:
    """Publish a batch and wait until its model is in production; when it started and the event."""
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)
    stack.publish(kind=kind, seed=seed)
    event = wait_for(
        lambda: next(iter(events_since(stack, "production_model", since)), None), 180, "a model in production"
    )
    return since, event


def page(url: str) -> str | None:
    response = httpx.get(url, timeout=10)
    return response.text if response.status_code == 200 else None


def test_a_batch_with_shifted_petals_is_reported_as_drifted(stack: LocalStack, wait_for):
    with variables_changed(stack, wait_for) as set_variables:
        set_variables(deploy_margin="1")
        since, promoted = publish_and_promote(stack, wait_for, "drifted-petals", seed=32)
        etl_run = runs_since(stack, "etl", since)[-1]["dag_run_id"]
        wait_for_run(stack, wait_for, "etl", etl_run)
        drift = returned(stack, "etl", etl_run, "check_drift")
        assert drift["drifted"] == ["petal_length", "petal_width"]
        assert drift["version"] == promoted["extra"]["previous_version"]  # the model it arrived to
        mail = wait_for(lambda: mail_of_run(stack, since, etl_run, "drift in batch"), 60, "the drift alert")
        assert "petal_length, petal_width" in mail["Subject"]
        assert drift["report_url"] in body(mail)
        drift_page = page(drift["report_url"])
        assert drift_page is not None
        assert drift_page.count("<td>drifted</td>") == 2

        # The retrained model absorbed it (check_drift waits for the promotion, so it knows): the mail
        # says so, as information, and so does monitor, with both scores.
        if drift["absorbed_by"] is not None:  # promoted within check_drift's wait (15 s): usual, not certain
            assert drift["absorbed_by"]["version"] == promoted["extra"]["version"]
            assert "already absorbed by retraining" in body(mail)
        monitor_run = wait_for_run(stack, wait_for, "monitor", stack.rest.trigger("monitor")["dag_run_id"])
        report = returned(stack, "monitor", monitor_run["dag_run_id"], "check_production")
        [absorbed] = [check for check in report["checks"] if check["name"] == "drift_absorbed"]
        assert absorbed["ok"] is True
        assert "petal_length, petal_width" in absorbed["detail"]
        monitor_page = page(report["report_url"])
        assert monitor_page is not None
        assert "Quality over time" in monitor_page

        # Put unshifted data back in production for the scenarios after this one: roll back to the
        # model the batch arrived to, one deploy run, as a person would (not one more chain).
        rollback = stack.rest.trigger("deploy", {"version": promoted["extra"]["previous_version"]})
        wait_for_run(stack, wait_for, "deploy", rollback["dag_run_id"])
        assert production(stack)["version"] == promoted["extra"]["previous_version"]
    assert mail_with_subject(stack, since, "drift in batch") is not None
