"""Data arrival drives ingest by itself: the sensor waits deferred, a new batch lands, the same does not."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from scripts.stack.launcher import LocalStack
from tests.integration.chain import body, events_since, mail_with_subject, source_answers


def current_sensor(stack: LocalStack) -> tuple[str, str | None]:
    """(run id, state of wait_for_new_data) of the newest ingest run."""
    run_id = stack.rest.dag_runs("ingest")[0]["dag_run_id"]
    states = {ti["task_id"]: ti["state"] for ti in stack.rest.task_instances("ingest", run_id)}
    return run_id, states.get("wait_for_new_data")


def sensor_deferred(stack: LocalStack) -> str | None:
    """The run id whose sensor is deferred, if the newest run's is."""
    if not stack.rest.dag_runs("ingest"):
        return None
    run_id, state = current_sensor(stack)
    return run_id if state == "deferred" else None


def test_new_batch_lands_by_itself(stack: LocalStack, wait_for):
    wait_for(lambda: sensor_deferred(stack), 90, "the ingest sensor to be deferred")
    since = datetime.now(UTC)
    stack.publish(seed=1)

    event = wait_for(
        lambda: next(iter(events_since(stack, "raw_batches", since)), None), 90, "a raw_batches event"
    )
    assert (event["source_dag_id"], event["source_task_id"]) == ("ingest", "publish_batches")
    assert event["extra"]["rows"] == 120
    [extra] = event["extra"]["batches"]
    assert event["extra"]["batch_ids"] == [extra["batch_id"]]
    assert extra["rows"] == 120
    assert len(extra["sha256"]) == 64
    assert extra["batch_id"].endswith(extra["sha256"][:8])
    assert extra["source"]["url"] == stack.config.crawl_url
    assert extra["source"]["etag"]
    run = next(r for r in stack.rest.dag_runs("ingest") if r["dag_run_id"] == event["source_run_id"])
    assert run["run_type"] == "scheduled", "ingest must start by itself, not by hand"
    assert (stack.config.home / "data" / "raw" / "batches" / f"{extra['batch_id']}.parquet").is_file()


def test_same_content_lands_nothing_new(stack: LocalStack, wait_for):
    wait_for(lambda: sensor_deferred(stack), 90, "the ingest sensor to be deferred")
    since = datetime.now(UTC)
    served = stack.publish(kind="bad")  # new content of its own to serve; etl stops at quarantine
    wait_for(lambda: events_since(stack, "raw_batches", since), 90, "the published batch to land")
    seen = len(source_answers(stack))
    # A 304 answers a conditional GET for the content the source serves now: the sensor knows it.
    wait_for(lambda: "304" in source_answers(stack)[seen:], 60, "the sensor to know the served content")
    waiting_run = wait_for(lambda: sensor_deferred(stack), 60, "the ingest sensor to wait")
    events_before = len(stack.rest.asset_events("raw_batches"))

    served.write_bytes(served.read_bytes())  # byte-identical, with a new modification time
    polled = len(source_answers(stack))
    wait_for(lambda: len(source_answers(stack)) >= polled + 4, 60, "four polls of the rewritten file")

    assert current_sensor(stack) == (waiting_run, "deferred"), "the sensor fired on unchanged content"
    assert len(stack.rest.asset_events("raw_batches")) == events_before


def test_content_that_is_not_a_table_is_quarantined_and_mailed(stack: LocalStack, wait_for):
    wait_for(lambda: sensor_deferred(stack), 90, "the ingest sensor to wait")
    since = datetime.now(UTC)
    events_before = len(stack.rest.asset_events("raw_batches"))
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(256)  # an image where a CSV was expected

    served = stack.config.source_dir / Path(urlsplit(stack.config.crawl_url).path).name
    partial = served.with_name(f".{served.name}.tmp")
    partial.write_bytes(content)
    partial.replace(served)

    mail = wait_for(lambda: mail_with_subject(stack, since, "ingest quarantined"), 90, "the quarantine mail")
    batch_id = mail["Subject"].rsplit(" ", 1)[1]
    quarantine = stack.config.home / "data" / "quarantine"
    reason = json.loads((quarantine / f"{batch_id}.reason.json").read_text())
    assert reason["failed_checks"], "the reason names the failed check"
    assert all(check["check"] in body(mail) for check in reason["failed_checks"])
    kept = [p.read_bytes() for p in quarantine.glob(f"{batch_id}*") if not p.name.endswith(".json")]
    assert kept == [content], "the content is kept as received"
    assert batch_id.endswith(hashlib.sha256(content).hexdigest()[:8])

    wait_for(lambda: sensor_deferred(stack), 60, "ingest to wait again")
    assert len(stack.rest.asset_events("raw_batches")) == events_before
    assert not (stack.config.home / "data" / "raw" / "batches" / f"{batch_id}.parquet").exists()
