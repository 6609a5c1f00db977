"""Approval before promotion on the real stack: a person approves, rejects, or does not answer.

Each scenario turns ``approval_required`` on, publishes a batch whose candidate beats production
(``deploy_margin`` 1), finds the pending request where the UI's Required Actions page does (the REST
API's ``hitlDetails``), answers it there as the stack's admin, and checks production afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from include import approval, layout, storage
from scripts.stack.config import ADMIN_USER
from scripts.stack.launcher import LocalStack
from tests.integration.chain import (
    body,
    events_of_run,
    events_since,
    mail_of_run,
    production,
    served_version,
    task_states,
    wait_for_run,
    wait_until_idle,
)

PENDING = "/api/v2/dags/deploy/dagRuns/~/hitlDetails"
WAITING = ["deferred", "awaiting_input"]


def pointer_bytes(stack: LocalStack) -> bytes | None:
    url = layout.production_pointer(stack.config.storage_root)
    return storage.read_bytes(url) if storage.exists(url) else None


def candidate_awaiting_approval(stack: LocalStack, wait_for, seed: int) -> tuple[str, dict]:
    """Publish a batch, and return its candidate's version and the approval request it waits on."""
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)
    stack.publish(seed=seed)
    [candidate] = wait_for(lambda: events_since(stack, "model_candidate", since), 180, "the candidate")
    version = candidate["extra"]["version"]

    def pending() -> dict | None:
        # As the UI's Required Actions page lists them: unanswered, their task parked waiting for one.
        requests = stack.rest.get(PENDING, response_received=False, state=WAITING)["hitl_details"]
        return next((r for r in requests if r["subject"] == f"Promote {version}?"), None)

    return version, wait_for(pending, 120, f"the approval request for {version}")


def answer(stack: LocalStack, request: dict, chosen: str, comment: str) -> dict:
    """Answer ``request`` as the UI's Respond button does."""
    ti = request["task_instance"]
    path = f"/api/v2/dags/deploy/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/{ti['map_index']}"
    return stack.rest.request(
        "PATCH",
        f"{path}/hitlDetails",
        json={"chosen_options": [chosen], "params_input": {"comment": comment}},
    )


@pytest.fixture
def approval_on(variables) -> Callable[..., None]:
    variables(approval_required="true", deploy_margin="1")
    return variables


def test_an_approved_candidate_waits_holding_no_worker_then_is_promoted(
    stack: LocalStack, wait_for, approval_on
):
    before = pointer_bytes(stack)
    since = datetime.now(UTC)

    version, request = candidate_awaiting_approval(stack, wait_for, seed=81)

    run_id = request["task_instance"]["dag_run_id"]
    asked = wait_for(lambda: mail_of_run(stack, since, run_id, "Approval needed"), 60, "the request mail")
    assert f"Promote {version}?" in asked["Subject"]
    link = f"{stack.config.api_url}/dags/deploy/runs/{run_id}/tasks/approval/required_actions"
    assert link in body(asked)
    # Parked: its worker process has ended (Airflow 3.3's "Awaiting Input", not a running task).
    assert task_states(stack, "deploy", run_id)["approval"] == "awaiting_input"
    assert task_states(stack, "deploy", run_id)["promote"] is None  # not decided yet
    assert pointer_bytes(stack) == before
    assert request["options"] == ["Approve", "Reject"]
    assert f"/models/{version}/report" in request["body"]
    assert "production" in request["body"]

    answered = answer(stack, request, "Approve", "good to go")

    assert answered["responded_by"]["name"] == ADMIN_USER
    wait_for_run(stack, wait_for, "deploy", run_id)
    assert production(stack)["version"] == version
    [event] = events_of_run(stack, "production_model", run_id)
    assert event["extra"]["version"] == version
    wait_for(lambda: served_version(stack) == version, 60, "the model server to serve the approved model")
    kept = approval.recorded(stack.config.storage_root, version)
    assert (kept["answer"], kept["responded_by"], kept["comment"]) == ("approved", ADMIN_USER, "good to go")


def test_a_rejected_candidate_leaves_production_and_is_recorded_and_mailed(
    stack: LocalStack, wait_for, approval_on
):
    version, request = candidate_awaiting_approval(stack, wait_for, seed=82)
    run_id = request["task_instance"]["dag_run_id"]
    before, served = pointer_bytes(stack), served_version(stack)
    since = datetime.now(UTC)

    answer(stack, request, "Reject", "drift looks odd")

    wait_for_run(stack, wait_for, "deploy", run_id)
    states = task_states(stack, "deploy", run_id)
    assert (states["promote"], states["success_email"], states["not_approved_alert"]) == (
        "skipped",
        "skipped",
        "success",
    )
    assert pointer_bytes(stack) == before
    assert served_version(stack) == served
    assert events_of_run(stack, "production_model", run_id) == []
    kept = approval.recorded(stack.config.storage_root, version)
    assert (kept["answer"], kept["responded_by"], kept["comment"]) == (
        "rejected",
        ADMIN_USER,
        "drift looks odd",
    )
    mail = wait_for(lambda: mail_of_run(stack, since, run_id, "not promoted"), 30, "the rejection mail")
    assert f"candidate {version} not promoted: rejected by {ADMIN_USER}" in mail["Subject"]
    assert "drift looks odd" in body(mail)


def test_no_answer_in_time_keeps_production_and_says_so(stack: LocalStack, wait_for, approval_on):
    approval_on(approval_timeout_hours="0.001")  # 3.6 s; the scheduler looks every 15 s
    version, request = candidate_awaiting_approval(stack, wait_for, seed=83)
    run_id = request["task_instance"]["dag_run_id"]
    before = pointer_bytes(stack)
    since = datetime.now(UTC)

    wait_for_run(stack, wait_for, "deploy", run_id)

    assert task_states(stack, "deploy", run_id)["promote"] == "skipped"
    assert pointer_bytes(stack) == before
    assert events_of_run(stack, "production_model", run_id) == []
    kept = approval.recorded(stack.config.storage_root, version)
    assert (kept["answer"], kept["responded_by"]) == ("timed out", None)
    mail = wait_for(lambda: mail_of_run(stack, since, run_id, "not promoted"), 30, "the timeout mail")
    assert f"candidate {version} not promoted: timed out" in mail["Subject"]
