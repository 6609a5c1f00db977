"""NewDataTrigger against real local HTTP servers: with validators, without, failing and slow."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from airflow.triggers.base import TriggerEvent

from mlpipe.triggers import NewDataTrigger
from scripts.data_source import DataSource

CONTENT = b"sepal_length,species\n5.1,setosa\n"
FAST = {"poll_interval": 0.05, "request_timeout": 0.5}


def first_event(trigger: NewDataTrigger, within: float = 5.0) -> TriggerEvent | None:
    """The trigger's first event, or None if it stays quiet for ``within`` seconds."""

    async def run() -> TriggerEvent | None:
        generator = trigger.run()
        try:
            return await asyncio.wait_for(anext(generator), within)
        except TimeoutError:
            return None
        finally:
            await generator.aclose()

    return asyncio.run(run())


@pytest.fixture(params=[True, False], ids=["validators", "no-validators"])
def source(request, tmp_path: Path):
    (tmp_path / "data.csv").write_bytes(CONTENT)
    server = DataSource(tmp_path, validators=request.param).start()
    yield server
    server.stop()


def served_fingerprint(source: DataSource) -> dict:
    """The fingerprint the first trigger run reports for the current content."""
    event = first_event(NewDataTrigger(url=source.url("data.csv"), **FAST))
    assert event is not None
    return event.payload["fingerprint"]


def test_serialize_round_trip():
    trigger = NewDataTrigger(
        url="http://example.invalid/x.csv",
        known_fingerprint={"etag": '"abc"', "last_modified": None, "sha256": "00"},
        poll_interval=7,
        request_timeout=3,
        max_bytes=1000,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "mlpipe.triggers.NewDataTrigger"
    rebuilt = NewDataTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_fires_on_first_content(source):
    event = first_event(NewDataTrigger(url=source.url("data.csv"), **FAST))
    assert event is not None
    fingerprint = event.payload["fingerprint"]
    assert fingerprint["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert fingerprint["bytes"] == len(CONTENT)
    assert event.payload["url"] == source.url("data.csv")


def test_quiet_while_content_unchanged(source):
    known = served_fingerprint(source)
    before = len(source.statuses)
    trigger = NewDataTrigger(url=source.url("data.csv"), known_fingerprint=known, **FAST)
    assert first_event(trigger, within=1.0) is None
    polls = source.statuses[before:]
    assert len(polls) >= 5, "the trigger should have kept polling"
    expected_status = 304 if known["etag"] else 200
    assert set(polls) == {expected_status}


def test_quiet_when_etag_changes_but_content_does_not(source):
    known = served_fingerprint(source)
    trigger = NewDataTrigger(
        url=source.url("data.csv"), known_fingerprint={**known, "etag": '"stale"'}, **FAST
    )
    assert first_event(trigger, within=0.5) is None


def test_fires_when_content_changes(source, tmp_path):
    known = served_fingerprint(source)
    trigger = NewDataTrigger(url=source.url("data.csv"), known_fingerprint=known, **FAST)

    def change_later():
        time.sleep(0.3)
        (tmp_path / "data.csv").write_bytes(CONTENT + b"4.9,setosa\n")

    threading.Thread(target=change_later).start()
    event = first_event(trigger)
    assert event is not None
    assert event.payload["fingerprint"]["sha256"] != known["sha256"]


def test_does_not_fire_on_oversized_body(source):
    trigger = NewDataTrigger(url=source.url("data.csv"), max_bytes=len(CONTENT) - 1, **FAST)
    assert first_event(trigger, within=0.5) is None


class FlakyServer:
    """Answers the first ``failures`` requests badly (HTTP 500, or too slowly), then serves CONTENT."""

    def __init__(self, failures: int, mode: str):
        state = {"requests": 0}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state["requests"] += 1
                if state["requests"] <= failures:
                    if mode == "error":
                        self.send_error(500)
                        return
                    time.sleep(0.6)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(CONTENT)))
                    self.end_headers()
                    self.wfile.write(CONTENT)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the trigger gave up on a slow answer, as it should

            def log_message(self, *args) -> None:
                pass

        self.state = state
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/data.csv"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["error", "timeout"])
def test_keeps_polling_through_errors_and_timeouts(mode):
    server = FlakyServer(failures=2, mode=mode)
    try:
        event = first_event(NewDataTrigger(url=server.url, poll_interval=0.05, request_timeout=0.3), within=8)
    finally:
        server.stop()
    assert event is not None
    assert event.payload["fingerprint"]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert server.state["requests"] == 3
