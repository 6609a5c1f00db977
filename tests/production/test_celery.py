"""The production topology run natively: PostgreSQL metadata database, Redis broker, CeleryExecutor,
with the data and models on S3.

The storage root is ``s3://<bucket>/pipeline`` on a local S3 endpoint, moto's standalone server
(tests/s3.py), which every component (scheduler, Celery worker, triggerer, API server, model server)
reaches through s3fs and the standard AWS environment variables, as on AWS. The scenarios: a good
batch reaches production by itself, with every task executed by the Celery worker, the sensor
deferred on the triggerer, the model server serving the promoted version from S3 and monitor's
report written there, and nothing written to a local disk; a bad batch is quarantined, on S3. The
metadata database is a throwaway one, dropped afterwards. PostgreSQL and Redis must be running (CI
has them); if not, starting the stack fails and says how to start them.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from include import layout, registry, storage
from scripts.publish import iris_frame
from scripts.stack.config import REPO, CeleryConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_port, free_ports
from tests.integration.chain import (
    events_of_run,
    events_since,
    finished_run,
    production,
    returned,
    served_version,
    task_states,
    wait_until_idle,
)
from tests.processes import leftover_processes, stack_sessions
from tests.s3 import S3Endpoint, moto_server, s3_environment

BUCKET = "mlpipe-production"
# What the pipeline writes: none of it may land on a local disk while the root is on S3.
PIPELINE_FILES = ("*.parquet", "*.joblib", "*.reason.json", "production.json", "promotion.json")


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3Endpoint]:
    """The S3 endpoint with an empty bucket; this process (and so every component of the stack, which
    inherits its environment) reaches it through the AWS variables."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        endpoint.filesystem().mkdir(BUCKET)
        with s3_environment(endpoint):
            yield endpoint


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory, s3: S3Endpoint) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("celery-stack")
    config = CeleryConfig(
        home,
        database=f"mlpipe_test_{uuid.uuid4().hex[:8]}",
        redis_db=random.randint(1, 15),  # not the broker database of a `make up-celery` stack
        flower_port=free_port(),
        **free_ports(),
        storage_root=f"s3://{BUCKET}/pipeline",
    )
    stack = LocalStack(config)
    sessions: set[int] = set()
    try:
        stack.start()
        sessions = stack_sessions(stack)
        yield stack
    finally:
        sessions |= stack_sessions(stack)  # read before `stop()` removes stack.json
        stopped = stack.stop()
        config.drop_database()
    assert not leftover_processes(stack, sessions), f"processes of the stack outlived `stop()` of {stopped}"


def bucket_objects(s3: S3Endpoint, root: str) -> set[str]:
    """Every object under ``root``, as paths relative to it, listed by a client of the test's own."""
    prefix = root.removeprefix("s3://")
    return {path.removeprefix(prefix + "/") for path in s3.filesystem().find(prefix)}


def local_pipeline_files(folder: Path, since: datetime) -> list[Path]:
    """Files the pipeline writes, found on the local disk under ``folder``, changed after ``since``
    (the virtualenv and git's objects left out)."""
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = [name for name in dirs if name not in (".venv", ".git")]
        for name in names:
            path = Path(parent, name)
            if any(fnmatch(name, pattern) for pattern in PIPELINE_FILES) and (
                path.stat().st_mtime >= since.timestamp()
            ):
                found.append(path)
    return found


def executed_by_worker(stack: LocalStack, dag_id: str, run_id: str) -> set[str]:
    """Task ids of the run that the Celery worker says it executed."""
    log = (stack.config.log_dir / "celery-worker.log").read_text()
    return {
        task_id
        for task_id in task_states(stack, dag_id, run_id)
        if f"log_path='dag_id={dag_id}/run_id={run_id}/task_id={task_id}/" in log
    }


def test_data_arrival_reaches_production_on_celery_with_everything_on_s3(
    celery_stack: LocalStack, s3: S3Endpoint, wait_for
):
    stack = celery_stack
    root = stack.config.storage_root
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
    version = promoted[0]["extra"]["version"]
    pointer = production(stack)
    assert pointer["version"] == version
    to_pointer = (datetime.fromisoformat(pointer["promoted_at"]) - since).total_seconds()
    to_event = (datetime.fromisoformat(promoted[0]["timestamp"]) - since).total_seconds()
    print(f"\npublish -> production pointer on S3 (Celery): {to_pointer:.1f} s (event: {to_event:.1f} s)")
    wait_for(lambda: served_version(stack) == version, 60, "the model server to serve the new model")
    first_setosa, first_virginica = iris_frame().iloc[[0, 100], :4].to_dict("records")
    answer = httpx.post(
        f"{stack.config.model_server_url}/predict", json={"rows": [first_setosa, first_virginica]}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == version
    assert answer.json()["predictions"][0] == "setosa"
    monitor_run = wait_for(lambda: finished_run(stack, "monitor", since), 120, "monitor to run after deploy")
    assert monitor_run["state"] == "success", task_states(stack, "monitor", monitor_run["dag_run_id"])

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

    # Every stage's output is an object in the bucket, and the Assets view says where.
    [batch_id] = landed["extra"]["batch_ids"]
    objects = bucket_objects(s3, root)
    assert {
        f"raw/batches/{batch_id}.parquet",
        f"raw/batches/{batch_id}.json",
        f"ledger/content/{landed['extra']['batches'][0]['sha256']}.json",
        f"features/{batch_id}.parquet",
        *(
            f"models/versions/{version}/{name}"
            for name in (
                registry.MODEL_FILE,
                registry.HOLDOUT_FILE,
                registry.REFERENCE_FILE,
                registry.METADATA_FILE,
            )
        ),
        "models/production.json",
    } <= objects
    assert len(storage.read_parquet(layout.feature_batch(root, batch_id))) == 120
    assert registry.version_metadata(root, version)["batch_ids"] == [batch_id]
    assert not [name for name in objects if name.startswith("models/staging/")], "a candidate left staged"
    assert "models/promotion.json" not in objects, "a promotion left unconfirmed"
    # The report of the run the promotion started (monitor's hourly run may have written another).
    stored_at = returned(stack, "monitor", monitor_run["dag_run_id"], "check_production")["stored_at"]
    assert stored_at.removeprefix(f"{root}/") in objects
    assert storage.read_json(stored_at)["version"] == version
    assert {a["uri"] for a in stack.rest.get("/api/v2/assets")["assets"]} == {
        layout.raw_batches(root),
        layout.features(root),
        layout.model_versions(root),
        layout.production_pointer(root),
    }

    # ... and nothing the pipeline writes went to a local disk.
    assert not (stack.config.home / "data").exists()
    assert not list(REPO.glob("s3:*")), "an s3:// URL was used as a local path"
    assert local_pipeline_files(stack.config.home, since) == []
    assert local_pipeline_files(REPO, since) == []


def test_bad_batch_is_quarantined_on_celery(celery_stack: LocalStack, s3: S3Endpoint, wait_for):
    stack = celery_stack
    root = stack.config.storage_root
    wait_until_idle(stack, wait_for)
    in_production = production(stack)
    since = datetime.now(UTC)
    stack.publish(kind="bad", seed=22)

    run = wait_for(lambda: finished_run(stack, "etl", since), 180, "etl to handle the bad batch")
    assert task_states(stack, "etl", run["dag_run_id"])["alert_quarantined"] == "success"
    [raw] = events_since(stack, "raw_batches", since)
    assert [r["run_id"] for r in raw["created_dagruns"]] == [run["dag_run_id"]]
    [batch_id] = raw["extra"]["batch_ids"]
    reason = storage.read_json(layout.quarantined(root, batch_id, layout.REASON_SUFFIX))
    assert {"dtype", "range", "labels"} <= {c["check"] for c in reason["failed_checks"]}
    objects = bucket_objects(s3, root)
    assert {f"quarantine/{batch_id}.parquet", f"quarantine/{batch_id}.json"} <= objects
    assert not {f"raw/batches/{batch_id}.parquet", f"raw/batches/{batch_id}.json"} & objects
    # Nothing downstream came of the batch; etl's nightly run may have published features of others.
    assert events_of_run(stack, "features", run["dag_run_id"]) == []
    assert production(stack) == in_production
