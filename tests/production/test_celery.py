"""The production topology run natively: PostgreSQL metadata database, Redis broker, CeleryExecutor.

The same data-arrival scenarios as on the embedded stack: a good batch reaches production by
itself with every task executed by the Celery worker and the sensor deferred on the triggerer, and a
bad batch is quarantined. The metadata database is a throwaway one, dropped afterwards. PostgreSQL
and Redis must be running (CI has them); if not, starting the stack fails and says how to start them.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from scripts.stack.config import CeleryConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_port
from tests.integration.chain import (
    events_since,
    finished_run,
    leftover_processes,
    production,
    served_version,
    task_states,
    wait_until_idle,
)


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory) -> LocalStack:
    home = tmp_path_factory.mktemp("celery-stack")
    config = CeleryConfig(
        home,
        database=f"mlpipe_test_{uuid.uuid4().hex[:8]}",
        redis_db=random.randint(1, 15),  # not the broker database of a `make up-celery` stack
        api_port=free_port(),
        source_port=free_port(),
        smtp_port=free_port(),
        log_server_ports=(free_port(), free_port()),
        flower_port=free_port(),
        model_server_port=free_port(),
    )
    stack = LocalStack(config)
    try:
        stack.start()
        yield stack
    finally:
        stopped = stack.stop()
        config.drop_database()
    assert not leftover_processes(stack), f"processes of the stack outlived `stop()` of {stopped}"


def executed_by_worker(stack: LocalStack, dag_id: str, run_id: str) -> set[str]:
    """Task ids of the run that the Celery worker says it executed."""
    log = (stack.config.log_dir / "celery-worker.log").read_text()
    return {
        task_id
        for task_id in task_states(stack, dag_id, run_id)
        if f"log_path='dag_id={dag_id}/run_id={run_id}/task_id={task_id}/" in log
    }


def test_data_arrival_reaches_production_on_celery(celery_stack: LocalStack, wait_for):
    stack = celery_stack
    assert httpx.get(f"{stack.config.flower_url}/healthcheck", timeout=10).status_code == 200

    def sensor_deferred() -> bool:
        runs = stack.rest.dag_runs("ingest")
        return (
            bool(runs)
            and task_states(stack, "ingest", runs[0]["dag_run_id"]).get("wait_for_new_data") == "deferred"
        )

    wait_for(sensor_deferred, 120, "the ingest sensor to be deferred on the triggerer")
    wait_until_idle(stack, wait_for)
    since = datetime.now(UTC)
    stack.publish(seed=21)

    promoted = wait_for(lambda: events_since(stack, "production_model", since), 240, "a model in production")
    took = (datetime.fromisoformat(promoted[0]["timestamp"]) - since).total_seconds()
    print(f"\npublish -> production on Celery: {took:.1f} s")
    version = promoted[0]["extra"]["version"]
    assert production(stack)["version"] == version
    wait_for(lambda: served_version(stack) == version, 60, "the model server to serve the new model")
    wait_for(lambda: finished_run(stack, "monitor", since), 120, "monitor to run after deploy")

    [landed] = events_since(stack, "raw_batches", since)
    for dag_id, asset in (
        ("ingest", "raw_batches"),
        ("etl", "features"),
        ("train_validate", "model_candidate"),
        ("deploy", "production_model"),
    ):
        [event] = events_since(stack, asset, since)
        run_id = event["source_run_id"]
        assert event["source_task_id"] in executed_by_worker(stack, dag_id, run_id), (dag_id, run_id)
    assert landed["extra"]["rows"] == 120


def test_bad_batch_is_quarantined_on_celery(celery_stack: LocalStack, wait_for):
    stack = celery_stack
    wait_until_idle(stack, wait_for)
    in_production = production(stack)
    since = datetime.now(UTC)
    stack.publish(kind="bad", seed=22)

    run = wait_for(lambda: finished_run(stack, "etl", since), 180, "etl to handle the bad batch")
    assert task_states(stack, "etl", run["dag_run_id"])["alert_quarantined"] == "success"
    [raw] = events_since(stack, "raw_batches", since)
    reason = stack.config.home / "data" / "quarantine" / f"{raw['extra']['batch_ids'][0]}.reason.json"
    assert {"dtype", "range", "labels"} <= {
        c["check"] for c in json.loads(reason.read_text())["failed_checks"]
    }
    assert events_since(stack, "features", since) == []
    assert production(stack) == in_production
