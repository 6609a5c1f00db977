"""What the fault scenarios read back from a stack they hurt (with ``tests.sabotage``)."""

from __future__ import annotations

import json
from pathlib import Path

from include.report import KEY_PLOT_FILE, REPORT_FILE
from scripts.stack.launcher import LocalStack
from tests.waits import wait_for


def pointer(data: Path) -> bytes | None:
    """The production pointer's exact bytes (``None`` before the first promotion)."""
    path = data / "models" / "production.json"
    return path.read_bytes() if path.exists() else None


def production_version(data: Path) -> str | None:
    text = pointer(data)
    return json.loads(text)["version"] if text else None


def version_folders(data: Path) -> dict[str, list[str]]:
    """Every folder under models/versions/ with the names of its registered files, complete or not.
    The report (``write_report``, after the registration, once the version is promoted or the wait
    ends) is left out: whether it is there yet depends on timing, not on the fault."""
    versions = data / "models" / "versions"
    if not versions.exists():
        return {}
    written_later = {REPORT_FILE, KEY_PLOT_FILE}
    return {
        v.name: sorted(f.name for f in v.iterdir() if f.name not in written_later) for v in versions.iterdir()
    }


def run_of(stack: LocalStack, dag_id: str, run_id: str) -> dict:
    return stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")


def finished(stack: LocalStack, dag_id: str, run_id: str, timeout: float = 150) -> dict:
    """The run once it has succeeded or failed."""
    return wait_for(
        lambda: (run := run_of(stack, dag_id, run_id))["state"] in ("success", "failed") and run,
        timeout,
        f"{dag_id} run {run_id} to finish",
    )


def task_instance(stack: LocalStack, dag_id: str, run_id: str, task_id: str) -> dict:
    return stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")


def deploy_run_of(stack: LocalStack, train_run_id: str, timeout: float = 150) -> str:
    """The id of the deploy run started by the model_candidate event of the train_validate run."""

    def created() -> str | None:
        for event in stack.rest.asset_events("model_candidate"):
            if event["source_run_id"] == train_run_id and event["created_dagruns"]:
                return event["created_dagruns"][0]["run_id"]
        return None

    return wait_for(created, timeout, f"the deploy run started by {train_run_id}")
