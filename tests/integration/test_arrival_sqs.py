"""An ``s3://`` drop folder watched through its bucket's event notifications (S3 -> SQS, both on moto's
server), on a real stack: files land once each, a burst too; a duplicate notification and one for a key
outside the folder land nothing; a file whose notification never came is landed by the full listing.

The stack is this module's own: its components must inherit the AWS variables that reach moto.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from scripts.publish import make_batch
from scripts.stack.config import StackConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_ports
from tests.integration.chain import events_since, task_states
from tests.processes import leftover_processes, stack_sessions
from tests.s3 import S3Endpoint, client, moto_server, notify_queue, queued, s3_environment

BUCKET = "mlpipe-drops"
FOLDER = f"s3://{BUCKET}/drop/"


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3Endpoint]:
    """moto's server (S3 and SQS) with the bucket; this process, and so every component of the stack,
    reaches it through the AWS variables."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        client(endpoint, "s3").create_bucket(Bucket=BUCKET)
        with s3_environment(endpoint):
            yield endpoint


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3: S3Endpoint) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("sqs-stack")
    stack = LocalStack(
        StackConfig(
            home,
            **free_ports(),
            storage_root=str(home / "data"),
        )
    )
    sessions: set[int] = set()
    try:
        stack.start()
        sessions = stack_sessions(stack)
        yield stack
    finally:
        sessions |= stack_sessions(stack)
        stopped = stack.stop()
    assert not leftover_processes(stack, sessions), f"processes of the stack outlived `stop()` of {stopped}"


@pytest.fixture(scope="module")
def queue(stack: LocalStack, s3: S3Endpoint, wait_for) -> str:
    """The bucket's notifications go to a queue, and ingest watches the folder through it."""
    queue_url = notify_queue(s3, BUCKET, "mlpipe-drops")
    stack.rest.set_variable("crawl_notification_queue", queue_url)
    stack.rest.set_variable("crawl_url", FOLDER)
    wait_for(lambda: notified_sensor(stack), 180, "an ingest sensor watching the queue")
    return queue_url


def notified_sensor(stack: LocalStack) -> str | None:
    """The newest ingest run's id if its sensor is deferred on a ``NotifiedFilesTrigger``."""
    runs = sorted(stack.rest.dag_runs("ingest"), key=lambda r: r["queued_at"] or "", reverse=True)
    if not runs:
        return None
    run_id = runs[0]["dag_run_id"]
    ti = stack.rest.get(f"/api/v2/dags/ingest/dagRuns/{run_id}/taskInstances/wait_for_new_data")
    classpath = (ti.get("trigger") or {}).get("classpath", "")
    return run_id if ti["state"] == "deferred" and classpath.endswith("NotifiedFilesTrigger") else None


def put(s3: S3Endpoint, key: str, seed: int) -> str:
    """A new CSV batch at ``key`` (a "bad" one: it lands, and etl stops at its quarantine); its URL."""
    body = make_batch("bad", rows=30, seed=seed).to_csv(index=False).encode()
    client(s3, "s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def landed(stack: LocalStack, since: datetime) -> Counter:
    """How many times each source file was announced in raw_batches events since ``since``."""
    return Counter(
        batch["source"]["url"]
        for event in events_since(stack, "raw_batches", since)
        for batch in event["extra"]["batches"]
    )


def ledger_items(stack: LocalStack) -> list[dict]:
    folder = stack.config.home / "data" / "ledger" / "items"
    return [json.loads(path.read_text()) for path in folder.glob("*.json")]


def test_notified_files_land_once_each_and_others_are_ignored(stack, s3, queue, wait_for):
    since = datetime.now(UTC)
    one = put(s3, "drop/one.csv", seed=4000)
    wait_for(lambda: landed(stack, since)[one], 120, "the first notified file to land")
    burst = [put(s3, f"drop/burst-{n:02}.csv", seed=4100 + n) for n in range(12)]
    outside = [put(s3, "elsewhere/x.csv", seed=4200), put(s3, "drop/sub/y.csv", seed=4201)]

    wait_for(lambda: set(burst) <= set(landed(stack, since)), 240, "the 12 files of the burst to land")
    # A message is deleted once its file is in the ledger (received again after redeliver_after).
    wait_for(lambda: queued(s3, queue) == (0, 0), 180, "every message handled and deleted")
    wait_for(lambda: notified_sensor(stack), 120, "ingest to wait again")

    counts = landed(stack, since)
    print(f"\n{len(counts)} notified files landed in {len(events_since(stack, 'raw_batches', since))} runs")
    assert counts == Counter({url: 1 for url in [one, *burst]}), "each notified file landed once"
    assert not set(outside) & {item["item"] for item in ledger_items(stack)}


def test_a_duplicate_notification_lands_nothing(stack, s3, queue, wait_for):
    url = put(s3, "drop/twice.csv", seed=4300)
    since = datetime.now(UTC)
    wait_for(lambda: landed(stack, since)[url], 120, "the file to land")
    wait_for(lambda: queued(s3, queue) == (0, 0), 180, "its message handled and deleted")
    items = ledger_items(stack)
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": "drop/twice.csv"}},
    }

    client(s3, "sqs").send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))

    wait_for(lambda: queued(s3, queue) == (0, 0), 120, "the duplicate notification handled and deleted")
    assert landed(stack, since) == Counter({url: 1})
    assert ledger_items(stack) == items, "nothing recorded for the duplicate notification"
    assert notified_sensor(stack), "the sensor is still waiting: it never fired for the duplicate"


def test_a_file_whose_notification_was_lost_is_landed_by_the_full_listing(stack, s3, queue, wait_for):
    s3_client = client(s3, "s3")
    stack.rest.set_variable("crawl_full_listing_seconds", "10")
    try:
        # The next sensor reads the shorter period: one more file, and the run after it uses it.
        since = datetime.now(UTC)
        url = put(s3, "drop/before-the-loss.csv", seed=4400)
        wait_for(lambda: landed(stack, since)[url], 120, "the file before the loss")
        run_id = wait_for(lambda: notified_sensor(stack), 120, "a sensor with the new period")
        configuration = s3_client.get_bucket_notification_configuration(Bucket=BUCKET)
        configuration.pop("ResponseMetadata")
        s3_client.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})
        lost = put(s3, "drop/lost.csv", seed=4401)  # S3 sends no notification for it
        s3_client.put_bucket_notification_configuration(
            Bucket=BUCKET, NotificationConfiguration=configuration
        )

        wait_for(lambda: landed(stack, since)[lost], 120, "the file whose notification was lost")
        assert task_states(stack, "ingest", run_id)["wait_for_new_data"] == "success"
        wait_for(lambda: notified_sensor(stack), 120, "ingest to wait again")
        assert landed(stack, since) == Counter({url: 1, lost: 1})
    finally:
        stack.rest.set_variable("crawl_full_listing_seconds", "300")
