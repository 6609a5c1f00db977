"""A source that keeps failing reaches a person once, and its recovery too, on a real stack."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from scripts.data_source import STATUS_FILE
from scripts.publish import publish
from scripts.stack.launcher import LocalStack
from tests.integration.chain import body, events_since, mails_since
from tests.integration.test_arrival import queued_since, watching

ALERT_AFTER = 10  # seconds of failures in a row that make an outage (source_alert_after_seconds)
FAILED = "Task failed: ingest.wait_for_new_data"
RECOVERED = "Source recovered"


def subjects(stack: LocalStack, since: datetime, text: str) -> list:
    return [m for m in mails_since(stack, since) if text in m["Subject"]]


def answers(stack: LocalStack, path: str) -> list[str]:
    """The status of every answer the data source gave for ``path``, oldest first."""
    lines = (stack.config.log_dir / "data-source.log").read_text().splitlines()
    return [line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"GET {path} ")]


def test_an_outage_is_mailed_once_then_its_recovery_and_ingest_waits_again(
    stack: LocalStack, variables, wait_for
):
    folder = stack.config.source_dir / "outage"
    folder.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{stack.config.source_port}/outage/iris.csv"
    drill = stack.config.source_dir / STATUS_FILE
    since = datetime.now(UTC)
    drill.write_text("500")
    try:
        variables(source_alert_after_seconds=str(ALERT_AFTER), source_max_backoff_seconds="2", crawl_url=url)
        wait_for(lambda: watching(stack, url), 180, f"an ingest sensor watching {url}")
        watched = time.monotonic()

        [alert] = wait_for(lambda: subjects(stack, since, FAILED), 120, "the outage mail")
        to_mail = time.monotonic() - watched
        print(f"\nsource failing -> mail: {to_mail:.1f} s (alert after {ALERT_AFTER} s)")
        assert url in body(alert)
        assert "HTTP 500" in body(alert)
        assert "has failed since" in body(alert)

        # The next run waits on the failing source again, and polls on for longer than ALERT_AFTER.
        mailed = datetime.now(UTC)
        wait_for(lambda: watching(stack, url) and queued_since(stack, mailed), 120, "ingest to wait again")
        answered = len(answers(stack, "/outage/iris.csv"))
        time.sleep(ALERT_AFTER + 5)
        assert answers(stack, "/outage/iris.csv")[answered:].count("500") > 3, (
            "it polls the failing source on"
        )
        assert len(subjects(stack, since, FAILED)) == 1, "one outage is mailed once"
    finally:
        drill.unlink(missing_ok=True)

    recovering = datetime.now(UTC)
    publish(folder, "good", seed=19)
    [recovered] = wait_for(lambda: subjects(stack, since, RECOVERED), 120, "the recovered mail")
    assert url in recovered["Subject"]
    assert "HTTP 500" in body(recovered)
    event = wait_for(
        lambda: next(
            (
                e
                for e in events_since(stack, "raw_batches", recovering)
                if e["extra"]["batches"][0]["source"]["url"] == url
            ),
            None,
        ),
        120,
        "the next good batch to land",
    )
    assert event["extra"]["rows"] == 120
    assert len(subjects(stack, since, FAILED)) == 1
    assert len(subjects(stack, since, RECOVERED)) == 1
    assert not list((stack.config.home / "data" / "health" / "sources").glob("*.json")), "the outage is over"
    wait_for(lambda: watching(stack, url) and queued_since(stack, recovering), 120, "ingest to wait again")
