"""The AssetWatcher option watching several sources on a real stack, one of them failing: the others'
files land meanwhile, the outage reaches a person once (the failure mail of ``report_source_failure``),
its end once (the "recovered" mail naming it), and the recovered source's batch lands once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from scripts.data_source import STATUS_FILE
from scripts.publish import publish
from scripts.stack.launcher import LocalStack
from tests.integration.chain import body, events_since, mails_since
from tests.watcher.test_watcher_arrival import idle, landed_from

ALERT_AFTER = 5  # seconds of failures in a row that make an outage (source_alert_after_seconds)
FAILED = "Task failed: ingest.report_source_failure"
RECOVERED = "Source recovered"


def subjects(stack: LocalStack, since: datetime, text: str) -> list:
    return [m for m in mails_since(stack, since) if text in m["Subject"]]


def from_url(stack: LocalStack, since: datetime, url: str) -> list[dict]:
    return [
        batch
        for event in events_since(stack, "raw_batches", since)
        for batch in event["extra"]["batches"]
        if batch["source"]["url"] == url
    ]


def test_a_failing_source_holds_back_no_other_and_is_mailed_once_then_its_recovery(
    watcher_stack: LocalStack, drop: Path, wait_for
):
    stack = watcher_stack
    served = stack.config.source_dir / "outage"
    served.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{stack.config.source_port}/outage/iris.csv"
    drill = stack.config.source_dir / STATUS_FILE
    wait_for(lambda: idle(stack), 120, "ingest to be idle")
    since = datetime.now(UTC)
    drill.write_text("500")  # the data source answers every GET with 500
    try:
        # The watcher reads these settings again when crawl_url changes, so crawl_url comes last.
        stack.rest.set_variable("source_alert_after_seconds", str(ALERT_AFTER))
        stack.rest.set_variable("source_max_backoff_seconds", "1")
        stack.rest.set_variable("crawl_url", json.dumps([drop.as_uri() + "/", url]))

        path = publish(drop, rows=30, seed=4000, drop=True)
        [alert] = wait_for(lambda: subjects(stack, since, FAILED), 180, "the outage mail")
        assert url in body(alert)
        assert "HTTP 500" in body(alert)
        wait_for(lambda: landed_from(stack, since, [path]), 120, "the folder's file, beside the failing URL")

        time.sleep(ALERT_AFTER * 3)  # the watcher polls the failing source on, and reports nothing more
        assert len(subjects(stack, since, FAILED)) == 1, "one outage is mailed once"
        assert not from_url(stack, since, url)
    finally:
        drill.unlink(missing_ok=True)

    try:
        publish(served, "good", seed=41)
        [recovered] = wait_for(lambda: subjects(stack, since, RECOVERED), 120, "the recovered mail")
        assert url in recovered["Subject"]
        assert "HTTP 500" in body(recovered)
        [batch] = wait_for(lambda: from_url(stack, since, url), 120, "the recovered source's batch")
        assert batch["rows"] == 120
        wait_for(lambda: idle(stack), 120, "ingest to be idle again")
        assert len(from_url(stack, since, url)) == 1
        assert len(landed_from(stack, since, [path])) == 1
        assert len(subjects(stack, since, FAILED)) == len(subjects(stack, since, RECOVERED)) == 1
        outages = Path(stack.config.storage_root) / "health" / "sources"
        assert not list(outages.glob("*.json")), "the ended outage is no longer recorded"
    finally:
        stack.rest.set_variable("crawl_url", drop.as_uri() + "/")
        stack.rest.set_variable("source_alert_after_seconds", "600")  # the defaults
        stack.rest.set_variable("source_max_backoff_seconds", "60")
