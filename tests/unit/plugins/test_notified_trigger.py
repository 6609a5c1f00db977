"""``NotifiedFilesTrigger`` on moto's server (S3 and SQS over HTTP, as on AWS): it fires with the files
S3's notifications name, deletes a message only once its files are in the ledger, offers a file again
whose landing did not happen, and finds a file whose notification was lost by the full listing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from include import ledger, sources
from mlpipe.triggers import NotifiedFilesTrigger
from tests.s3 import S3Endpoint, client, notify_queue, queued
from tests.unit.plugins.test_sensors import SENSOR_DAG
from tests.unit.plugins.test_triggers import run_trigger

DEADLINE = 60.0  # only a failing test waits it out


@pytest.fixture
def folder(s3_endpoint: S3Endpoint) -> tuple[str, str]:
    """A bucket of its own notifying a queue of its own: (the drop folder's URL, the queue's URL)."""
    bucket = f"notified-{uuid.uuid4().hex[:12]}"
    client(s3_endpoint, "s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/drop/", notify_queue(s3_endpoint, bucket, bucket)


def trigger(folder: tuple[str, str], root: str, **kwargs) -> NotifiedFilesTrigger:
    return NotifiedFilesTrigger(
        url=folder[0],
        queue_url=folder[1],
        storage_root=root,
        poll_interval=0.05,
        wait_seconds=1,
        **{"redeliver_after": 1, "full_listing_every": 3600, **kwargs},
    )


def listed_recently(root: str, url: str) -> None:
    """The state after a full listing just now: the next ones are an hour away."""
    ledger.save_folder_mark(root, url, "", time.time())


def emptied(endpoint: S3Endpoint, queue: str) -> Callable[[], bool]:
    """Whether ``queue`` holds no message, visible or in flight: every one was deleted."""
    return lambda: queued(endpoint, queue) == (0, 0)


def put(endpoint: S3Endpoint, url: str, body: bytes = b"x\n1\n") -> None:
    endpoint.filesystem().pipe_file(url.removeprefix("s3://"), body)


def receive(root: str, item: dict) -> None:
    """Record ``item`` in the ledger as landed, the last thing landing does."""
    ledger.record_item(
        root, item["url"], item["validators"], sha256="0" * 64, outcome="landed", batch_id=None
    )


def test_serialize_round_trip():
    trigger = NotifiedFilesTrigger(
        url="s3://bucket/drop/",
        queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/drops",
        storage_root="s3://bucket/data",
        poll_interval=2,
        source_variable="crawl_url",
        wait_seconds=5,
        redeliver_after=30,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "mlpipe.triggers.NotifiedFilesTrigger"
    assert NotifiedFilesTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_fires_with_the_notified_files_and_deletes_their_messages_once_landed(s3_endpoint, folder, root):
    url, queue = folder
    listed_recently(root, url)
    bucket = url.removeprefix("s3://").split("/")[0]
    for name in ("drop/a.csv", "drop/b.csv", "elsewhere/c.csv", "drop/sub/d.csv", "drop/.e.tmp"):
        put(s3_endpoint, f"s3://{bucket}/{name}")

    event = run_trigger(trigger(folder, root), until=None, deadline=DEADLINE)

    listed = {item.url: item.validators for item in sources.list_folder(url)}
    assert {item["url"]: item["validators"] for item in event.payload["items"]} == {
        f"{url}a.csv": listed[f"{url}a.csv"],
        f"{url}b.csv": listed[f"{url}b.csv"],
    }, "the files the notifications name, each as a listing sees it"
    assert sum(queued(s3_endpoint, queue)) == 2, "only the offered files' messages are kept"
    for item in event.payload["items"]:
        receive(root, item)

    assert run_trigger(trigger(folder, root), until=emptied(s3_endpoint, queue), deadline=DEADLINE) is None


def test_a_file_not_landed_is_offered_again_and_a_duplicate_notification_is_not(s3_endpoint, folder, root):
    url, queue = folder
    listed_recently(root, url)
    put(s3_endpoint, f"{url}a.csv")
    first = run_trigger(trigger(folder, root), until=None, deadline=DEADLINE)

    # The run that got it died before landing.
    again = run_trigger(trigger(folder, root), until=None, deadline=DEADLINE)

    assert again.payload["items"] == first.payload["items"]
    receive(root, first.payload["items"][0])
    sqs = client(s3_endpoint, "sqs")
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, VisibilityTimeout=0)["Messages"]
    sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])  # S3 delivers at least once
    assert run_trigger(trigger(folder, root), until=emptied(s3_endpoint, queue), deadline=DEADLINE) is None


def test_a_message_that_is_not_a_notification_is_deleted(s3_endpoint, folder, root, capsys):
    url, queue = folder
    listed_recently(root, url)
    client(s3_endpoint, "sqs").send_message(QueueUrl=queue, MessageBody=json.dumps({"hello": 1}))

    assert run_trigger(trigger(folder, root), until=emptied(s3_endpoint, queue), deadline=DEADLINE) is None
    assert "deleted: no Records: not an S3 event notification" in capsys.readouterr().out


def test_a_file_whose_notification_was_lost_is_found_by_the_full_listing(s3_endpoint, folder, root):
    url, queue = folder
    listed_recently(root, url)
    put(s3_endpoint, f"{url}a.csv")
    client(s3_endpoint, "sqs").purge_queue(QueueUrl=queue)
    watching = trigger(folder, root, full_listing_every=3)

    event = run_trigger(watching, until=None, deadline=DEADLINE)

    assert [item["url"] for item in event.payload["items"]] == [f"{url}a.csv"]
    assert queued(s3_endpoint, queue) == (0, 0), "found with no notification: by the full listing"


def test_a_queue_that_does_not_answer_is_a_failed_poll(folder, root, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries would only make each failed poll slower
    watching = trigger(
        (folder[0], "http://127.0.0.1:9/123456789012/nowhere"), root, alert_after=0.5, max_backoff=0.1
    )
    listed_recently(root, folder[0])

    event = run_trigger(watching, until=None, deadline=DEADLINE)

    assert event.payload["source_failing"]["url"] == folder[0]
    assert event.payload["items"] == []


def run_sensor(load_dag, monkeypatch, tmp_path: Path, url: str, queue: str) -> dict[str, str]:
    """Run a DAG of the sensor with ``crawl_url`` and ``crawl_notification_queue`` set; its task states."""
    monkeypatch.setenv("AIRFLOW_VAR_CRAWL_URL", url)
    monkeypatch.setenv("AIRFLOW_VAR_CRAWL_NOTIFICATION_QUEUE", queue)
    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SENSOR_TEST_REPORT", str(tmp_path / "event.json"))
    dag_run = load_dag("sensor_test", SENSOR_DAG).test()
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_the_sensor_watches_the_queue_the_setting_names(s3_endpoint, folder, load_dag, monkeypatch, tmp_path):
    url, queue = folder
    listed_recently((tmp_path / "data").as_uri(), url)
    put(s3_endpoint, f"{url}a.csv")

    states = run_sensor(load_dag, monkeypatch, tmp_path, url, queue)

    assert states == {"wait_for_new_data": "success", "report": "success"}
    event = json.loads((tmp_path / "event.json").read_text())
    assert [item["url"] for item in event["items"]] == [f"{url}a.csv"]
    assert sum(queued(s3_endpoint, queue)) == 1, "the file's message is kept until it is landed"


def test_a_queue_for_a_source_that_is_not_s3_fails_the_sensor(load_dag, monkeypatch, tmp_path, capsys):
    states = run_sensor(
        load_dag, monkeypatch, tmp_path, tmp_path.as_uri() + "/", "http://127.0.0.1:9/123456789012/q"
    )

    assert states["wait_for_new_data"] == "failed"
    assert "is not an s3:// drop folder" in capsys.readouterr().out
    assert not (tmp_path / "event.json").exists()
