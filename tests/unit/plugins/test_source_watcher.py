"""SourceWatcher, the AssetWatcher option's trigger, against a real drop folder, a real HTTP source and a
real ledger: one event per new item, nothing again while its run lands it, a new crawl_url watched
without an event, an outage reported once and its end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from airflow.sdk import Variable
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from include import ledger, source_health
from mlpipe.source_watcher import SourceWatcher
from tests.http_servers import data_source, serving

DEADLINE = 30.0
FAST = {"poll_interval": 0.05}


@pytest.fixture
def variables(monkeypatch) -> dict[str, str]:
    """The Airflow Variables the trigger reads (on the triggerer, through its supervisor)."""
    values: dict[str, str] = {}
    monkeypatch.setattr(Variable, "get", lambda key, default=None: values.get(key, default))
    return values


@pytest.fixture
def drop(tmp_path: Path, variables) -> str:
    folder = tmp_path / "drop"
    folder.mkdir()
    variables["crawl_url"] = folder.as_uri() + "/"
    return variables["crawl_url"]


@pytest.fixture
def root(tmp_path: Path) -> str:
    return (tmp_path / "data").as_uri()


def write(drop: str, name: str, text: str = "x\n1\n") -> None:
    Path(drop.removeprefix("file://"), name).write_text(text)


def land(root: str, payload_items: list[dict]) -> None:
    """Record the items as an ingest run does when it has landed them."""
    for item in payload_items:
        ledger.record_item(
            root, item["url"], item["validators"], sha256="0" * 64, outcome="landed", batch_id="b", run_id="r"
        )


class Watching:
    """The trigger's event stream, driven by the test: the next event, or quiet for a number of polls."""

    def __init__(self, trigger: SourceWatcher) -> None:
        self.trigger = trigger
        self.events: AsyncIterator[TriggerEvent] = trigger.run()
        self.pending: asyncio.Future | None = None

    async def next(self) -> dict:
        self.pending = self.pending or asyncio.ensure_future(anext(self.events))
        try:
            async with asyncio.timeout(DEADLINE):
                event = await asyncio.shield(self.pending)
        except TimeoutError:
            pytest.fail(f"no event within {DEADLINE:.0f} s")
        self.pending = None
        return event.payload

    async def quiet(self, polls: int) -> None:
        """No event while the trigger makes ``polls`` more polls."""
        self.pending = self.pending or asyncio.ensure_future(anext(self.events))
        async with asyncio.timeout(DEADLINE):
            start = self.trigger.polls
            while self.trigger.polls < start + polls:
                assert not self.pending.done(), f"fired: {self.pending.result().payload}"
                await asyncio.sleep(0.01)
        assert not self.pending.done(), f"fired: {self.pending.result().payload}"

    async def close(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pending
        await self.events.aclose()


def scenario(trigger: SourceWatcher, steps) -> None:
    async def run() -> None:
        watching = Watching(trigger)
        try:
            await steps(watching)
        finally:
            await watching.close()

    asyncio.run(run())


def test_is_an_event_trigger_whose_serialize_round_trips():
    trigger = SourceWatcher(storage_root="s3://bucket/data", poll_interval=2, refresh_every=60)
    classpath, kwargs = trigger.serialize()
    assert isinstance(trigger, BaseEventTrigger)
    assert classpath == "mlpipe.source_watcher.SourceWatcher"
    assert kwargs == {
        "storage_root": "s3://bucket/data",
        "source_variable": "crawl_url",
        "poll_interval": 2,
        "refresh_every": 60,
    }
    assert SourceWatcher(**kwargs).serialize() == (classpath, kwargs)


def test_a_burst_is_announced_once_and_later_files_each_once_more(drop, root):
    for name in ("a.csv", "b.csv", "c.csv"):
        write(drop, name)
    trigger = SourceWatcher(storage_root=root, **FAST)

    async def steps(watching: Watching) -> None:
        first = await watching.next()
        assert first["url"] == drop
        assert sorted(i["url"].rsplit("/", 1)[1] for i in first["items"]) == ["a.csv", "b.csv", "c.csv"]
        await watching.quiet(polls=5)  # not landed yet, and not announced again
        land(root, first["items"])
        write(drop, "d.csv")
        second = await watching.next()
        assert [i["url"].rsplit("/", 1)[1] for i in second["items"]] == ["d.csv"]
        await watching.quiet(polls=3)

    scenario(trigger, steps)


def test_what_was_not_landed_is_announced_again_after_a_refresh(drop, root):
    write(drop, "a.csv")
    trigger = SourceWatcher(storage_root=root, poll_interval=0.05, refresh_every=0.5)

    async def steps(watching: Watching) -> None:
        first = await watching.next()
        again = await watching.next()  # its run failed: nothing recorded it in the ledger
        assert again["items"] == first["items"]
        land(root, again["items"])
        await watching.quiet(polls=15)  # past the next refreshes: landed means never again

    scenario(trigger, steps)


def test_a_new_crawl_url_is_watched_from_the_next_poll_without_an_event(drop, root, tmp_path, variables):
    other = tmp_path / "other"
    other.mkdir()
    trigger = SourceWatcher(storage_root=root, **FAST)

    async def steps(watching: Watching) -> None:
        await watching.quiet(polls=2)
        variables["crawl_url"] = other.as_uri() + "/"
        write(drop, "old.csv")  # the old source is not watched any more
        (other / "new.csv").write_text("x\n1\n")
        event = await watching.next()
        assert event["url"] == other.as_uri() + "/"
        assert [i["url"] for i in event["items"]] == [(other / "new.csv").as_uri()]

    scenario(trigger, steps)


def test_a_single_url_fires_once_per_content_and_polls_with_conditional_gets_after(tmp_path, root, variables):
    served = tmp_path / "served"
    served.mkdir()
    (served / "data.csv").write_text("x\n1\n")
    with data_source(served) as server:
        variables["crawl_url"] = server.url("data.csv")
        trigger = SourceWatcher(storage_root=root, **FAST)

        async def steps(watching: Watching) -> None:
            first = await watching.next()
            [item] = first["items"]
            assert item["url"] == server.url("data.csv")
            before = len(server.statuses)
            await watching.quiet(polls=4)
            assert set(server.statuses[before:]) == {304}, "announced content is not downloaded again"
            (served / "data.csv").write_text("x\n2\n")
            second = await watching.next()
            assert second["items"][0]["sha256"] != item["sha256"]

        scenario(trigger, steps)


def test_settings_come_from_the_variables_on_the_triggerer(drop, root, variables):
    write(drop, "big.csv", "x\n" * 100)
    variables["crawl_max_bytes"] = "10"
    trigger = SourceWatcher(storage_root=root, **FAST)

    async def steps(watching: Watching) -> None:
        await watching.quiet(polls=4)
        assert [poller.max_bytes for poller in trigger.watching] == [10]

    scenario(trigger, steps)


def always_500(handler: BaseHTTPRequestHandler) -> None:
    handler.send_error(500)


def test_an_outage_is_reported_once_and_its_end_once(root, variables):
    answering = {"now": False}

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if not answering["now"]:
            handler.send_error(500)
            return
        body = b"x\n1\n"
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with serving(respond, name="data.csv") as server:
        variables |= {
            "crawl_url": server.url,
            "source_alert_after_seconds": "0.2",
            "source_max_backoff_seconds": "0.05",
        }
        trigger = SourceWatcher(storage_root=root, **FAST)

        async def steps(watching: Watching) -> None:
            failing = (await watching.next())["source_failing"]
            assert failing["url"] == server.url
            assert "HTTP 500" in failing["last_error"]
            await watching.quiet(polls=6)  # still failing: reported once
            answering["now"] = True
            recovered = await watching.next()
            assert recovered["recovered"] == failing
            assert [i["url"] for i in recovered["items"]] == [server.url]

        scenario(trigger, steps)


def test_an_outage_recorded_by_an_earlier_run_is_not_reported_again_after_a_restart(root, variables):
    with serving(always_500, name="data.csv") as server:
        variables |= {
            "crawl_url": server.url,
            "source_alert_after_seconds": "0",
            "source_max_backoff_seconds": "0.05",
        }
        source_health.record_outage(root, {"url": server.url, "since": "2026-12-01T00:00:00+00:00"})
        trigger = SourceWatcher(storage_root=root, **FAST)

        async def steps(watching: Watching) -> None:
            await watching.quiet(polls=6)
            assert [poller.outage["since"] for poller in trigger.watching] == ["2026-12-01T00:00:00+00:00"]

        scenario(trigger, steps)


def test_a_bad_setting_stops_nothing_but_the_polls_until_it_is_fixed(drop, root, variables, monkeypatch):
    from mlpipe import source_watcher

    monkeypatch.setattr(source_watcher, "SETTINGS_RETRY_SECONDS", 0.05)
    reads = []
    monkeypatch.setattr(
        Variable, "get", lambda key, default=None: reads.append(key) or variables.get(key, default)
    )
    variables["crawl_max_bytes"] = "lots"
    write(drop, "a.csv")
    trigger = SourceWatcher(storage_root=root, **FAST)

    async def steps(watching: Watching) -> None:
        watching.pending = asyncio.ensure_future(anext(watching.events))
        while reads.count("crawl_max_bytes") < 3:  # read again and again, nothing polled meanwhile
            assert not watching.pending.done()
            assert trigger.watching == []
            await asyncio.sleep(0.01)
        variables["crawl_max_bytes"] = "1000"
        event = await watching.next()
        assert [i["url"].rsplit("/", 1)[1] for i in event["items"]] == ["a.csv"]

    scenario(trigger, steps)


def test_a_file_dropped_before_the_watch_started_is_announced(drop, root):
    """A restart of the triggerer: what is in the folder and not in the ledger is offered."""
    write(drop, "while-down.csv")
    os.utime(Path(drop.removeprefix("file://"), "while-down.csv"), (1000, 1000))
    trigger = SourceWatcher(storage_root=root, **FAST)

    async def steps(watching: Watching) -> None:
        event = await watching.next()
        assert [i["url"].rsplit("/", 1)[1] for i in event["items"]] == ["while-down.csv"]

    scenario(trigger, steps)


def test_several_sources_are_watched_side_by_side_and_a_failing_one_holds_none_back(
    tmp_path, root, variables
):
    """``crawl_url`` lists two folders and a URL that answers 500: each folder's file is announced
    once, by an event naming its folder, and the failing URL's outage once, beside them."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with serving(always_500, name="data.csv") as server:
        variables |= {
            "crawl_url": json.dumps([a.as_uri() + "/", b.as_uri() + "/", server.url]),
            "source_alert_after_seconds": "0.3",
            "source_max_backoff_seconds": "0.05",
        }
        (a / "1.csv").write_text("x\n1\n")
        (b / "2.csv").write_text("x\n2\n")
        trigger = SourceWatcher(storage_root=root, **FAST)

        async def steps(watching: Watching) -> None:
            events = [await watching.next() for _ in range(3)]
            by_source = {event["url"]: event for event in events}
            assert [i["url"] for i in by_source[a.as_uri() + "/"]["items"]] == [(a / "1.csv").as_uri()]
            assert [i["url"] for i in by_source[b.as_uri() + "/"]["items"]] == [(b / "2.csv").as_uri()]
            assert by_source[server.url]["source_failing"]["url"] == server.url
            await watching.quiet(polls=20)  # nothing announced twice, the outage not reported again

        scenario(trigger, steps)
