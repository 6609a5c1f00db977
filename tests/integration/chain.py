"""What the integration scenarios read back from a running stack: runs, asset events, mails, files."""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx

from include import layout, storage
from scripts.stack.launcher import LocalStack
from scripts.stack.rest import STAGES

RECIPIENT = "ml-team@example.com"  # config/variables.json
# The runs data or people cause; etl's and monitor's timetables also create "scheduled" runs.
REACTIONS = ("asset_triggered", "manual")


def events_since(stack: LocalStack, asset: str, since: datetime) -> list[dict]:
    """The asset's events published at or after ``since``, newest first."""
    return [e for e in stack.rest.asset_events(asset) if datetime.fromisoformat(e["timestamp"]) >= since]


def runs_since(
    stack: LocalStack, dag_id: str, since: datetime, run_types: Collection[str] = REACTIONS
) -> list[dict]:
    """Runs of ``dag_id`` of one of ``run_types`` queued after ``since``, newest first."""
    return [
        r
        for r in stack.rest.dag_runs(dag_id)
        if r["run_type"] in run_types and datetime.fromisoformat(r["run_after"]) >= since
    ]


def events_of_run(stack: LocalStack, asset: str, run_id: str) -> list[dict]:
    """The asset's events that the run ``run_id`` published, newest first."""
    return stack.rest.asset_events(asset, source_run_id=run_id)


# What each stage after ingest publishes when its run succeeds (monitor publishes nothing).
PUBLISHES = {
    "ingest": "raw_batches",
    "etl": "features",
    "train_validate": "model_candidate",
    "deploy": "production_model",
}


def chain_of(stack: LocalStack, event: dict) -> dict[str, dict]:
    """What one asset event caused, followed run by run as far as it has got: for each stage, the run
    the event before created (its ``created_dagruns``) and, under the asset's name, the event that run
    published. Not "the newest run since": etl's 03:00 run and monitor's hourly one, or the chain they
    start, may come in between."""
    chain: dict[str, dict] = {}
    asset = PUBLISHES[event["source_dag_id"]]
    while True:
        # Re-read: the runs an event creates are listed a moment after it is published.
        [event] = [e for e in events_of_run(stack, asset, event["source_run_id"]) if e["id"] == event["id"]]
        chain[asset] = event
        created = event["created_dagruns"]
        if not created:
            return chain
        dag_id, run_id = created[0]["dag_id"], created[0]["run_id"]
        chain[dag_id] = stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        asset = PUBLISHES.get(dag_id)
        published = events_of_run(stack, asset, run_id) if asset else []
        if not published:
            return chain
        [event] = published


def consumed_events(stack: LocalStack, dag_id: str, run_id: str) -> list[dict]:
    """The asset events the run ``run_id`` of ``dag_id`` was started by (its triggering_asset_events)."""
    return stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]


def task_states(stack: LocalStack, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in stack.rest.task_instances(dag_id, run_id)}


def returned(stack: LocalStack, dag_id: str, run_id: str, task_id: str):
    """What ``task_id`` returned in the run ``run_id`` (its ``return_value`` XCom)."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    return stack.rest.get(path)["value"]


def mails_since(stack: LocalStack, since: datetime) -> list[EmailMessage]:
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in stack.mails()]
    return [
        m for m in messages if email.utils.parsedate_to_datetime(m["Date"]) >= since.replace(microsecond=0)
    ]


def mail_with_subject(stack: LocalStack, since: datetime, text: str) -> EmailMessage | None:
    return next((m for m in mails_since(stack, since) if text in m["Subject"]), None)


def mail_of_run(stack: LocalStack, since: datetime, run_id: str, subject: str) -> EmailMessage | None:
    """The mail with ``subject`` in its subject that names ``run_id`` (every alert of the pipeline does):
    a timetable's run of the same DAG may send one like it meanwhile."""
    return next((m for m in mails_since(stack, since) if subject in m["Subject"] and run_id in body(m)), None)


def production(stack: LocalStack) -> dict | None:
    """The production pointer under the stack's storage root (a folder, or an object store)."""
    url = layout.production_pointer(stack.config.storage_root)
    return storage.read_json(url) if storage.exists(url) else None


def finished_run(stack: LocalStack, dag_id: str, since: datetime) -> dict | None:
    """The newest asset-triggered run of ``dag_id`` queued after ``since``, once it has finished."""
    runs = runs_since(stack, dag_id, since, run_types=("asset_triggered",))
    return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None


def wait_until_idle(stack: LocalStack, wait_for) -> None:
    """Wait until no stage after ingest has an asset-triggered or manual run queued or running, nor
    asset events queued for a run not created yet: earlier data has been handled."""

    def busy(dag_id: str) -> bool:
        runs = stack.rest.dag_runs(dag_id)
        return bool(stack.rest.queued_asset_events(dag_id)) or any(
            run["state"] in ("queued", "running") and run["run_type"] in REACTIONS for run in runs
        )

    def idle() -> bool:
        return not any(busy(dag_id) for dag_id in STAGES[1:])

    wait_for(idle, 180, "the pipeline to finish handling earlier data")


def body(message: EmailMessage) -> str:
    return message.get_body(("html", "plain")).get_content()


def wait_for_run(stack: LocalStack, wait_for, dag_id: str, run_id: str) -> dict:
    def finished():
        run = stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(finished, 120, f"{dag_id} run {run_id}")
    assert run["state"] == "success", f"{dag_id} run {run_id} failed: {task_states(stack, dag_id, run_id)}"
    return run


def served_version(stack: LocalStack) -> str | None:
    """The model version the stack's model server answers with."""
    return httpx.get(f"{stack.config.model_server_url}/health", timeout=10).json()["version"]


def source_answers(stack: LocalStack) -> list[str]:
    """The status of every answer the data source gave for the crawl URL, oldest first (its log has one
    "GET /path status" line per request)."""
    path = urlsplit(stack.config.crawl_url).path
    lines = (stack.config.log_dir / "data-source.log").read_text().splitlines()
    return [line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"GET {path} ")]


@contextmanager
def variables_changed(stack: LocalStack, wait_for) -> Iterator[Callable[..., None]]:
    """A setter of Variables (``set_variables(deploy_margin="-1")``) for a scenario; once the runs it
    caused have ended, each Variable it set is put back to the value it had, even if the scenario
    failed: a later scenario must not inherit it."""
    before: dict[str, str] = {}

    def set_variables(**values: str) -> None:
        for key, value in values.items():
            before.setdefault(key, stack.rest.get(f"/api/v2/variables/{key}")["value"])
            stack.rest.set_variable(key, value)

    try:
        yield set_variables
    finally:
        try:
            wait_until_idle(stack, wait_for)
        finally:
            for key, value in before.items():
                stack.rest.set_variable(key, value)
