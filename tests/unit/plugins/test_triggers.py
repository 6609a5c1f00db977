"""The source triggers: NewDataTrigger against real local HTTP servers (with validators, without, failing,
slow, reverted), NewFilesTrigger against a real folder (bursts, half-written files, listing errors),
SourcesTrigger over several of them at once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from airflow.triggers.base import BaseTrigger, TriggerEvent

from include import ledger, sources
from include.ingest import land
from mlpipe.triggers import NewDataTrigger, NewFilesTrigger, SourcesTrigger
from scripts.data_source import DataSource
from tests.http_servers import data_source, send_body, serving, stall_until_hang_up
from tests.received import received
from tests.waits import wait_for

CONTENT = b"sepal_length,species\n5.1,setosa\n"
# Quick polls; a request timeout only a stalled server reaches (a short one fails every poll of a
# starved test process), except where the timeout is what is tested (STALL_TIMEOUT).
FAST = {"poll_interval": 0.05, "request_timeout": 10}
STALL_TIMEOUT = 0.5
# How long a test waits for what it expects; generous, since only a failing test waits it out.
DEADLINE = 30.0


def run_trigger(
    trigger: BaseTrigger, until: Callable[[], bool] | None, deadline: float = DEADLINE
) -> TriggerEvent | None:
    """Run ``trigger`` until its first event (returned) or until ``until()`` holds (None); a failure
    if neither happens within ``deadline`` seconds. ``until`` runs in a thread: it may block (ask a
    server) while the trigger goes on polling."""

    async def run() -> TriggerEvent | None:
        generator = trigger.run()
        fired = asyncio.ensure_future(anext(generator))
        try:
            async with asyncio.timeout(deadline):
                while not fired.done():
                    if until is not None and await asyncio.to_thread(until):
                        return None
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pytest.fail(
                f"the trigger neither fired nor got there within {deadline:.0f} s ({trigger.polls} polls)"
            )
        finally:
            fired.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fired
            await generator.aclose()
        return fired.result()

    return asyncio.run(run())


def first_event(trigger: BaseTrigger) -> TriggerEvent:
    """The trigger's first event."""
    return run_trigger(trigger, until=None)


def assert_quiet(trigger: BaseTrigger, polls: int) -> None:
    """``trigger`` finishes ``polls`` polls without an event: it starts poll ``polls + 1`` only after
    poll ``polls`` found nothing, however long the polls take."""
    event = run_trigger(trigger, until=lambda: trigger.polls > polls)
    assert event is None, f"fired after {trigger.polls} polls: {event.payload}"


@pytest.fixture(params=[True, False], ids=["validators", "no-validators"])
def source(request, tmp_path: Path):
    (tmp_path / "data.csv").write_bytes(CONTENT)
    with data_source(tmp_path, validators=request.param) as server:
        yield server


def served_fingerprint(source: DataSource) -> dict:
    """The fingerprint the first trigger run reports for the current content."""
    event = first_event(NewDataTrigger(url=source.url("data.csv"), **FAST))
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
        alert_after=120,
        max_backoff=30,
        outage={"url": "http://example.invalid/x.csv", "since": "2026-01-01T00:00:00+00:00"},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "mlpipe.triggers.NewDataTrigger"
    rebuilt = NewDataTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["request_timeout"] == 3
    assert kwargs["source_variable"] == "crawl_url"
    assert (kwargs["alert_after"], kwargs["max_backoff"]) == (120, 30)
    assert kwargs["outage"]["since"] == "2026-01-01T00:00:00+00:00"


def test_fires_on_first_content(source):
    event = first_event(NewDataTrigger(url=source.url("data.csv"), **FAST))
    [item] = event.payload["items"]
    assert item["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert item["bytes"] == len(CONTENT)
    assert event.payload["url"] == item["url"] == source.url("data.csv")


def test_quiet_while_content_unchanged(source):
    known = served_fingerprint(source)
    before = len(source.statuses)
    trigger = NewDataTrigger(url=source.url("data.csv"), known_fingerprint=known, **FAST)
    assert_quiet(trigger, polls=5)
    polls = source.statuses[before:]
    assert len(polls) >= 5, "every poll should have reached the source"
    expected_status = 304 if known["etag"] else 200
    assert set(polls) == {expected_status}


def test_quiet_when_etag_changes_but_content_does_not(source):
    known = served_fingerprint(source)
    trigger = NewDataTrigger(
        url=source.url("data.csv"), known_fingerprint={**known, "etag": '"stale"'}, **FAST
    )
    before = len(source.statuses)
    assert_quiet(trigger, polls=3)
    assert 200 in source.statuses[before:], "the body was downloaded and its hash compared"


def test_fires_when_content_changes(source, tmp_path):
    known = served_fingerprint(source)
    trigger = NewDataTrigger(url=source.url("data.csv"), known_fingerprint=known, **FAST)
    assert_quiet(trigger, polls=2)

    (tmp_path / "data.csv").write_bytes(CONTENT + b"4.9,setosa\n")

    event = first_event(trigger)
    assert event.payload["items"][0]["sha256"] == hashlib.sha256(CONTENT + b"4.9,setosa\n").hexdigest()


def test_does_not_fire_on_oversized_body(source):
    trigger = NewDataTrigger(url=source.url("data.csv"), max_bytes=len(CONTENT) - 1, **FAST)
    assert_quiet(trigger, polls=3)
    assert source.statuses.count(200) >= 3, "the body was offered at every poll"


def failing_first(failures: int, mode: str, hung_up: list[bool]) -> Callable[[BaseHTTPRequestHandler], None]:
    """Answer the first ``failures`` requests badly, then with CONTENT: HTTP 500 (``error``), or
    nothing until the trigger hangs up (``timeout``; whether it did goes to ``hung_up``)."""
    answered = itertools.count(1)

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if next(answered) <= failures:
            if mode == "error":
                handler.send_error(500)
            else:
                hung_up.append(stall_until_hang_up(handler))
            return
        send_body(handler, CONTENT)

    return respond


@pytest.mark.parametrize("mode", ["error", "timeout"])
def test_keeps_polling_through_errors_and_timeouts(mode):
    hung_up: list[bool] = []
    with serving(failing_first(2, mode, hung_up), name="data.csv") as server:
        event = first_event(NewDataTrigger(url=server.url, **{**FAST, "request_timeout": STALL_TIMEOUT}))

    assert event.payload["items"][0]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    # Two failures, then the content; an answer slower than the timeout on a loaded machine adds a poll.
    assert len(server.requests) >= 3
    if mode == "timeout":
        wait_for(lambda: len(hung_up) == 2, DEADLINE, "both stalled answers to end", interval=0.01)
        assert hung_up == [True, True], "the trigger should give up on each stalled answer"


def test_redirect_to_another_host_is_refused_and_polling_goes_on():
    # Another port is another origin, refused as another host is; a redirect followed would be seen.
    with serving(lambda handler: handler.send_error(404), name="data.csv") as elsewhere:

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", elsewhere.url)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with serving(redirect, name="data.csv") as server:
            assert_quiet(NewDataTrigger(url=server.url, **FAST), polls=3)

    assert len(server.requests) >= 3, "polling goes on"
    assert elsewhere.requests == [], "the redirect must not be followed"


# --- a source that keeps failing ------------------------------------------------------------------


def always(status: int) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda handler: handler.send_error(status)


def test_a_source_failing_for_alert_after_seconds_fires_once_with_what_failed():
    with serving(always(500), name="data.csv") as server:
        trigger = NewDataTrigger(url=server.url, alert_after=0.3, **{**FAST, "poll_interval": 0.02})
        event = first_event(trigger)

    failing = event.payload["source_failing"]
    assert event.payload["items"] == []
    assert failing["url"] == server.url
    assert "HTTP 500" in failing["last_error"]
    assert failing["failures"] == trigger.failures == len(server.requests) >= 2
    assert datetime.fromisoformat(failing["since"]) <= datetime.now(UTC)


def test_failed_polls_back_off_up_to_the_cap():
    # Without backoff 0.02 s apart: ~75 polls in 1.5 s. Doubling from 0.02 s up to 0.32 s: 0.04, 0.08,
    # 0.16, then 0.32 s apart, 8 polls (a slow poll only makes fewer).
    with serving(always(503), name="data.csv") as server:
        trigger = NewDataTrigger(
            url=server.url, alert_after=1.5, max_backoff=0.32, **{**FAST, "poll_interval": 0.02}
        )
        event = first_event(trigger)

    assert "source_failing" in event.payload
    assert 4 <= len(server.requests) <= 9, server.requests


def test_an_unexpected_error_in_a_poll_is_a_failure_and_polling_goes_on(drop, tmp_path, monkeypatch):
    """A ValueError (as a bad modification time raises) used to end the trigger."""
    (drop / "a.csv").write_text("x\n1\n")
    real, calls = sources.list_folder, []

    def broken_then_fine(url: str, **kwargs):
        calls.append(url)
        if len(calls) <= 3:
            raise ValueError("Invalid isoformat string: 'yesterday'")
        return real(url, **kwargs)

    monkeypatch.setattr(sources, "list_folder", broken_then_fine)
    trigger = folder_trigger(drop, tmp_path, max_backoff=0.05)

    event = first_event(trigger)

    assert event.payload["items"][0]["url"] == (drop / "a.csv").as_uri()
    assert trigger.polls == 5, "three failed listings, then two that agree"
    assert trigger.failures == 0, "a poll that answers resets the count"


def test_an_outage_already_reported_is_not_reported_again():
    outage = {"url": "", "since": "2026-01-01T00:00:00+00:00", "failures": 9, "last_error": "HTTP 500"}
    with serving(always(500), name="data.csv") as server:
        trigger = NewDataTrigger(url=server.url, alert_after=0.0, outage=outage, max_backoff=0.05, **FAST)
        assert_quiet(trigger, polls=5)


def test_the_first_poll_that_answers_after_an_outage_fires_recovered(source):
    fingerprint = served_fingerprint(source)
    outage = {"url": source.url("data.csv"), "since": "2026-01-01T00:00:00+00:00", "failures": 9}

    # Nothing new (the known content, or a 304): it fires all the same, to end the outage.
    event = first_event(
        NewDataTrigger(url=source.url("data.csv"), known_fingerprint=fingerprint, outage=outage, **FAST)
    )

    assert event.payload == {"url": source.url("data.csv"), "items": [], "recovered": outage}


def test_a_short_failure_is_forgotten_once_the_source_answers():
    with serving(failing_first(2, "error", []), name="data.csv") as server:
        trigger = NewDataTrigger(url=server.url, alert_after=60, **FAST)
        event = first_event(trigger)

    assert "recovered" not in event.payload
    assert "source_failing" not in event.payload
    assert event.payload["items"]
    assert trigger.failures == 0


# --- a reverted single URL -----------------------------------------------------------------------


def test_content_reverted_to_an_earlier_version_does_not_fire(tmp_path):
    """A, B, A at the URL: the second A was received before; it is recorded and not fired for."""
    root = (tmp_path / "data").as_uri()
    served = tmp_path / "served"
    served.mkdir()
    with data_source(served) as server:
        url = server.url("iris.csv")
        for version in (b"a\n1\n", b"a\n2\n"):
            (served / "iris.csv").write_bytes(version)
            event = first_event(NewDataTrigger(url=url, storage_root=root, **FAST))
            validators = event.payload["items"][0]["validators"]
            land(root, received(tmp_path / "received", version, url, validators))

        (served / "iris.csv").write_bytes(b"a\n1\n")  # A again, with a new mtime (new validators)
        reverted = NewDataTrigger(
            url=url, storage_root=root, known_fingerprint=ledger.source_fingerprint(root, url), **FAST
        )
        assert_quiet(reverted, polls=5)
        before = len(server.statuses)
        again = NewDataTrigger(
            url=url, storage_root=root, known_fingerprint=ledger.source_fingerprint(root, url), **FAST
        )
        assert_quiet(again, polls=3)

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

    assert [item["url"] for item in event.payload["items"]] == [
        (drop / "a.csv").as_uri(),
        (drop / "b.csv").as_uri(),
    ]
    assert event.payload["items"][0]["validators"] == {"size": 4, "mtime": 1001.0}


def test_a_file_still_being_written_is_not_offered(drop, tmp_path, monkeypatch):
    growing = drop / "big.csv"
    growing.write_text("x\n")
    listing = sources.list_folder

    def list_while_it_grows(url: str, **kwargs) -> list[sources.FileItem]:
        # The writer appends after every listing, so two listings never agree, however the threads
        # are scheduled (a writer thread starved for two polls made the file look settled).
        items = listing(url, **kwargs)
        with growing.open("a") as file:
            file.write("1\n")
        return items

    with monkeypatch.context() as patched:
        patched.setattr(sources, "list_folder", list_while_it_grows)
        assert_quiet(folder_trigger(drop, tmp_path), polls=5)

    event = first_event(folder_trigger(drop, tmp_path))
    assert event.payload["items"][0]["validators"]["size"] == growing.stat().st_size


def test_keeps_polling_through_listing_errors(drop, tmp_path, monkeypatch):
    (drop / "a.csv").write_text("x\n1\n")
    real, calls = sources.list_folder, []

    def flaky(url: str, **kwargs):
        calls.append(url)
        if len(calls) <= 3:
            raise PermissionError("listing refused")
        return real(url, **kwargs)

    monkeypatch.setattr(sources, "list_folder", flaky)
    trigger = folder_trigger(drop, tmp_path)

    event = first_event(trigger)

    assert event.payload["items"][0]["url"] == (drop / "a.csv").as_uri()
    assert len(calls) == 5, "three failed listings, then two that agree"
    assert trigger.polls == 5


def test_files_over_the_limit_are_not_offered(drop, tmp_path):
    (drop / "big.csv").write_text("x\n" * 100)
    assert_quiet(folder_trigger(drop, tmp_path, max_bytes=10), polls=3)


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


# --- several sources at once --------------------------------------------------------------------------


def sources_trigger(*pollers: NewDataTrigger | NewFilesTrigger, **kwargs) -> SourcesTrigger:
    return SourcesTrigger(watches=[poller.serialize() for poller in pollers], poll_interval=0.05, **kwargs)


def folders(tmp_path: Path, count: int) -> list[Path]:
    made = [tmp_path / f"drop-{n}" for n in range(count)]
    for folder in made:
        folder.mkdir()
    return made


def test_sources_trigger_serialize_round_trip(tmp_path):
    [a] = folders(tmp_path, 1)
    trigger = sources_trigger(folder_trigger(a, tmp_path), NewDataTrigger(url="http://x.test/a.csv", **FAST))
    classpath, kwargs = trigger.serialize()
    assert classpath == "mlpipe.triggers.SourcesTrigger"
    assert SourcesTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert [type(p) for p in SourcesTrigger(**kwargs).pollers] == [NewFilesTrigger, NewDataTrigger]


def test_sources_trigger_fires_with_the_source_that_has_something_new(tmp_path):
    a, b, c = folders(tmp_path, 3)
    trigger = sources_trigger(*(folder_trigger(folder, tmp_path) for folder in (a, b, c)))
    (b / "new.csv").write_bytes(CONTENT)

    event = first_event(trigger)

    assert event.payload == {
        "url": b.as_uri() + "/",
        "items": [{"url": (b / "new.csv").as_uri(), "validators": event.payload["items"][0]["validators"]}],
    }
    assert all(poller.polls >= 2 for poller in trigger.pollers), "every source was polled side by side"


def test_sources_trigger_quiet_while_no_source_has_anything_new(tmp_path):
    trigger = sources_trigger(*(folder_trigger(folder, tmp_path) for folder in folders(tmp_path, 3)))
    assert_quiet(trigger, polls=12)


def test_a_failing_source_holds_back_neither_the_others_nor_its_own_report(drop, tmp_path):
    """One source down (answering 500, backing off) beside a folder: the folder's file fires; with
    nothing new elsewhere, the outage is reported, naming the source that failed."""
    with serving(always(500)) as server:
        (drop / "a.csv").write_bytes(CONTENT)
        down = NewDataTrigger(url=server.url, alert_after=600, max_backoff=0.1, **FAST)
        assert first_event(sources_trigger(down, folder_trigger(drop, tmp_path))).payload["url"] == (
            drop.as_uri() + "/"
        )

        quiet = tmp_path / "quiet"
        quiet.mkdir()
        down = NewDataTrigger(url=server.url, alert_after=0.3, max_backoff=0.1, **FAST)
        event = first_event(sources_trigger(down, folder_trigger(quiet, tmp_path)))
        assert event.payload["url"] == server.url
        assert event.payload["source_failing"]["url"] == server.url
        assert event.payload["items"] == []


def test_sources_trigger_ends_when_the_variable_names_other_sources(tmp_path, monkeypatch):
    from airflow.sdk import Variable

    a, b, c = folders(tmp_path, 3)
    watched = json.dumps([a.as_uri() + "/", b.as_uri() + "/"])
    values = iter([watched, watched, json.dumps([a.as_uri() + "/", c.as_uri() + "/"])])
    monkeypatch.setattr(Variable, "get", lambda key, default=None: next(values))
    trigger = sources_trigger(
        folder_trigger(a, tmp_path), folder_trigger(b, tmp_path), source_variable="crawl_url"
    )

    event = first_event(trigger)

    assert event.payload == {
        "url": watched,
        "items": [],
        "source_changed": json.dumps([a.as_uri() + "/", c.as_uri() + "/"]),
    }


def test_a_variable_naming_no_usable_source_ends_the_wait_so_the_next_run_names_the_problem(
    drop, tmp_path, monkeypatch
):
    from airflow.sdk import Variable

    monkeypatch.setattr(Variable, "get", lambda key, default=None: '["file:///a/", "file:///a/"]')
    event = first_event(folder_trigger(drop, tmp_path, source_variable="crawl_url"))
    assert event.payload["source_changed"] == '["file:///a/", "file:///a/"]'
