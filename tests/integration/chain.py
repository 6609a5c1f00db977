"""What the integration scenarios read back from a running stack: runs, asset events, mails, files."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import time
from datetime import datetime
from email.message import EmailMessage

import httpx

from scripts.local_stack import LocalStack

STAGES = ("ingest", "etl", "train_validate", "deploy", "monitor")
RECIPIENT = "ml-team@example.com"  # config/variables.json


def events_since(stack: LocalStack, asset: str, since: datetime) -> list[dict]:
    return [e for e in stack.asset_events(asset) if datetime.fromisoformat(e["timestamp"]) >= since]


def runs_since(stack: LocalStack, dag_id: str, since: datetime) -> list[dict]:
    return [r for r in stack.dag_runs(dag_id) if datetime.fromisoformat(r["run_after"]) >= since]


def task_states(stack: LocalStack, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in stack.task_instances(dag_id, run_id)}


def mails_since(stack: LocalStack, since: datetime) -> list[EmailMessage]:
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in stack.mails()]
    return [
        m for m in messages if email.utils.parsedate_to_datetime(m["Date"]) >= since.replace(microsecond=0)
    ]


def mail_with_subject(stack: LocalStack, since: datetime, text: str) -> EmailMessage | None:
    return next((m for m in mails_since(stack, since) if text in m["Subject"]), None)


def production(stack: LocalStack) -> dict | None:
    path = stack.home / "data" / "models" / "production.json"
    return json.loads(path.read_text()) if path.exists() else None


def finished_run(stack: LocalStack, dag_id: str, since: datetime) -> dict | None:
    """The newest run of ``dag_id`` queued after ``since``, once it has finished."""
    runs = runs_since(stack, dag_id, since)
    return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None


def wait_until_idle(stack: LocalStack, wait_for) -> None:
    """Wait until no stage after ingest has a run queued or running (earlier data has been handled)."""

    def idle() -> bool:
        return not any(
            run["state"] in ("queued", "running")
            for dag_id in STAGES[1:]
            for run in stack.dag_runs(dag_id)[:3]
        )

    wait_for(idle, 180, "the pipeline to finish handling earlier data")
    time.sleep(3)  # a consumer run is created a moment after its asset event
    wait_for(idle, 180, "the pipeline to finish handling earlier data")


def body(message: EmailMessage) -> str:
    return message.get_body(("html", "plain")).get_content()


def wait_for_run(stack: LocalStack, wait_for, dag_id: str, run_id: str) -> dict:
    def finished():
        run = stack.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(finished, 120, f"{dag_id} run {run_id}")
    assert run["state"] == "success", f"{dag_id} run {run_id} failed: {task_states(stack, dag_id, run_id)}"
    return run


def served_version(stack: LocalStack) -> str | None:
    """The model version the stack's model server answers with."""
    return httpx.get(f"http://127.0.0.1:{stack.model_server_port}/health", timeout=10).json()["version"]
