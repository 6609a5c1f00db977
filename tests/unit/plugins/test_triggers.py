"""The source triggers: NewDataTrigger against real local HTTP servers (with validators, without, failing,
slow, reverted), NewFilesTrigger against a real folder (bursts, half-written files, listing errors)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from airflow.triggers.base import TriggerEvent

from include import ledger, sources
from include.ingest import land
from mlpipe.triggers import NewDataTrigger, NewFilesTrigger
from scripts.data_source import DataSource
from tests.received import received

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
    [item] = event.payload["items"]
    return {**item["validators"], "sha256": item["sha256"]}


def test_serialize_round_trip():
    trigger = NewDataTrigger(
        url="http://example.invalid/x.csv",
        known_fingerprint={"etag": '"abc"', "last_modified": None, "sha256": "00"},
        storage_root="file:///data",
        poll_interval=7,
        request_timeout=3,
        max_bytes=1000,
        source_variable="crawl_url",
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "mlpipe.triggers.NewDataTrigger"
    rebuilt = NewDataTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["request_timeout"] == 3
    assert kwargs["source_variable"] == "crawl_url"


def test_fires_on_first_content(source):
    event = first_event(NewDataTrigger(url=source.url("data.csv"), **FAST))
    assert event is not None
    [item] = event.payload["items"]
    assert item["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert item["bytes"] == len(CONTENT)
    assert event.payload["url"] == item["url"] == source.url("data.csv")


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
    before = len(source.statuses)
    assert first_event(trigger, within=0.5) is None
    assert trigger.polls >= 3
    assert 200 in source.statuses[before:], "the body was downloaded and its hash compared"


def test_fires_when_content_changes(source, tmp_path):
    known = served_fingerprint(source)
    trigger = NewDataTrigger(url=source.url("data.csv"), known_fingerprint=known, **FAST)

    def change_later():
        time.sleep(0.3)
        (tmp_path / "data.csv").write_bytes(CONTENT + b"4.9,setosa\n")

    threading.Thread(target=change_later).start()
    event = first_event(trigger)
    assert event is not None
    assert event.payload["items"][0]["sha256"] != known["sha256"]


def test_does_not_fire_on_oversized_body(source):
    trigger = NewDataTrigger(url=source.url("data.csv"), max_bytes=len(CONTENT) - 1, **FAST)
    assert first_event(trigger, within=0.5) is None
    assert trigger.polls >= 3


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
    assert event.payload["items"][0]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert server.state["requests"] == 3


def test_redirect_to_another_host_is_refused_and_polling_goes_on():
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://localhost:9/data.csv")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trigger = NewDataTrigger(url=f"http://127.0.0.1:{server.server_address[1]}/data.csv", **FAST)
    try:
        assert first_event(trigger, within=0.5) is None
    finally:
        server.shutdown()
        server.server_close()
    assert trigger.polls >= 3


# --- a reverted single URL -----------------------------------------------------------------------


def test_content_reverted_to_an_earlier_version_does_not_fire(tmp_path):
    """A, B, A at the URL: the second A was received before; it is recorded and not fired for."""
    root = (tmp_path / "data").as_uri()
    served = tmp_path / "served"
    served.mkdir()
    server = DataSource(served).start()
    url = server.url("iris.csv")
    try:
        for version in (b"a\n1\n", b"a\n2\n"):
            (served / "iris.csv").write_bytes(version)
            trigger = NewDataTrigger(url=url, storage_root=root, **FAST)
            event = first_event(trigger)
            assert event is not None
            validators = event.payload["items"][0]["validators"]
            land(root, received(tmp_path / "received", version, url, validators))

        (served / "iris.csv").write_bytes(b"a\n1\n")  # A again, with a new mtime (new validators)
        reverted = NewDataTrigger(
            url=url, storage_root=root, known_fingerprint=ledger.source_fingerprint(root, url), **FAST
        )
        assert first_event(reverted, within=1.0) is None
        assert reverted.polls >= 5
        before = len(server.statuses)
        again = NewDataTrigger(
            url=url, storage_root=root, known_fingerprint=ledger.source_fingerprint(root, url), **FAST
        )
        assert first_event(again, within=0.3) is None
    finally:
        server.stop()
    assert set(server.statuses[before:]) == {304}, "the recorded duplicate must not be downloaded again"


# --- a drop folder -------------------------------------------------------------------------------


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def folder_trigger(drop: Path, tmp_path: Path, **kwargs) -> NewFilesTrigger:
    return NewFilesTrigger(
        url=drop.as_uri() + "/", storage_root=(tmp_path / "data").as_uri(), poll_interval=0.05, **kwargs
    )


def test_folder_trigger_serialize_round_trip():
    trigger = NewFilesTrigger(
        url="s3://bucket/drop/",
        storage_root="s3://bucket/data",
        poll_interval=2,
        max_bytes=10,
        source_variable="crawl_url",
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "mlpipe.triggers.NewFilesTrigger"
    assert NewFilesTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_fires_with_exactly_the_files_not_yet_received_oldest_first(drop, tmp_path):
    for n, name in enumerate(["c.csv", "a.csv", "b.csv", ".hidden.tmp", "_SUCCESS"]):
        (drop / name).write_text(f"x\n{n}\n")
        os.utime(drop / name, (1000 + n, 1000 + n))
    (drop / "sub").mkdir()
    trigger = folder_trigger(drop, tmp_path)
    received = sources.FileItem((drop / "c.csv").as_uri(), 4, 1000.0)
    ledger.record_item(
        trigger.storage_root,
        received.url,
        received.validators,
        sha256="0" * 64,
        outcome="landed",
        batch_id=None,
    )

    event = first_event(trigger)

    assert event is not None
    assert [item["url"] for item in event.payload["items"]] == [
        (drop / "a.csv").as_uri(),
        (drop / "b.csv").as_uri(),
    ]
    assert event.payload["items"][0]["validators"] == {"size": 4, "mtime": 1001.0}


def test_a_file_still_being_written_is_not_offered(drop, tmp_path):
    growing = drop / "big.csv"
    growing.write_text("x\n")
    stop = threading.Event()

    def write_on() -> None:
        with growing.open("a") as fh:
            while not stop.is_set():
                fh.write("1\n")
                fh.flush()
                time.sleep(0.01)

    writer = threading.Thread(target=write_on)
    writer.start()
    trigger = folder_trigger(drop, tmp_path)
    try:
        assert first_event(trigger, within=0.6) is None
    finally:
        stop.set()
        writer.join()
    assert trigger.polls >= 5
    event = first_event(folder_trigger(drop, tmp_path))
    assert event is not None
    assert event.payload["items"][0]["validators"]["size"] == growing.stat().st_size


def test_keeps_polling_through_listing_errors(drop, tmp_path, monkeypatch):
    (drop / "a.csv").write_text("x\n1\n")
    real, calls = sources.list_folder, []

    def flaky(url: str):
        calls.append(url)
        if len(calls) <= 3:
            raise PermissionError("listing refused")
        return real(url)

    monkeypatch.setattr(sources, "list_folder", flaky)
    trigger = folder_trigger(drop, tmp_path)

    event = first_event(trigger)

    assert event is not None
    assert len(calls) == 5, "three failed listings, then two that agree"
    assert trigger.polls == 5


def test_files_over_the_limit_are_not_offered(drop, tmp_path):
    (drop / "big.csv").write_text("x\n" * 100)
    trigger = folder_trigger(drop, tmp_path, max_bytes=10)
    assert first_event(trigger, within=0.4) is None
    assert trigger.polls >= 3


def test_a_changed_source_variable_ends_the_wait(drop, tmp_path, monkeypatch):
    from airflow.sdk import Variable

    values = iter([drop.as_uri() + "/", drop.as_uri() + "/", "http://elsewhere.test/iris.csv"])
    monkeypatch.setattr(Variable, "get", lambda key, default=None: next(values))
    trigger = folder_trigger(drop, tmp_path, source_variable="crawl_url")

    event = first_event(trigger)

    assert event.payload == {
        "url": drop.as_uri() + "/",
        "items": [],
        "source_changed": "http://elsewhere.test/iris.csv",
    }
    assert trigger.polls == 2
