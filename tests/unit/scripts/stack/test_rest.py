"""The REST client's queries, over canned API answers, and its paging against a real HTTP server that
pages asset events the way Airflow's API does."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from scripts.stack.rest import AirflowRestClient

SINCE = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def run(run_id: str, run_type: str, run_after: str, end_date: str | None = None) -> dict:
    return {"dag_run_id": run_id, "run_type": run_type, "run_after": run_after, "end_date": end_date}


def test_runs_since_leaves_out_the_later_stages_timetable_runs(monkeypatch):
    runs = {
        "ingest": [run("continuous", "scheduled", "2026-11-22T11:00:00+00:00")],
        "etl": [
            run("nightly", "scheduled", "2026-11-22T12:00:01+00:00"),
            run("reacted", "asset_triggered", "2026-11-22T12:00:02+00:00"),
            run("by-hand", "manual", "2026-11-22T12:00:03+00:00"),
            run("earlier", "asset_triggered", "2026-11-22T10:00:00+00:00", "2026-11-22T10:01:00+00:00"),
        ],
    }
    client = AirflowRestClient("http://127.0.0.1:1", "admin", lambda: "secret")
    monkeypatch.setattr(client, "stage_dags", lambda: list(runs))
    monkeypatch.setattr(client, "dag_runs", runs.__getitem__)

    found = [(dag_id, r["dag_run_id"]) for dag_id, r in client.runs_since(SINCE)]

    assert found == [("ingest", "continuous"), ("etl", "reacted"), ("etl", "by-hand")]


def event(number: int) -> dict:
    timestamp = SINCE + timedelta(seconds=number)
    return {"id": number, "timestamp": timestamp.isoformat(), "source_run_id": f"run-{number}"}


@contextmanager
def airflow_api(events: list[dict], after_page: Callable[[int], None] = lambda _: None) -> Iterator[str]:
    """A real HTTP server answering the three calls ``asset_events`` makes like Airflow's API does:
    a token, the asset ``raw_batches``, and its ``events`` newest first, ``limit`` (50 when not given)
    at a time from ``offset``. ``after_page(n)`` runs after the n-th page is sent."""
    pages = []

    class Handler(BaseHTTPRequestHandler):
        def answer(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self.answer({"access_token": "token"})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/v2/assets":
                self.answer({"assets": [{"id": 7, "name": "raw_batches"}], "total_entries": 1})
                return
            newest_first = sorted(events, key=lambda e: e["timestamp"], reverse=True)
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
            self.answer({"asset_events": newest_first[offset : offset + limit], "total_entries": len(events)})
            pages.append(query)
            after_page(len(pages))

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_asset_events_pages_through_every_event_newest_first():
    events = [event(n) for n in range(1, 231)]  # more than four of the API's default pages
    with airflow_api(events) as url:
        found = AirflowRestClient(url, "admin", lambda: "secret").asset_events("raw_batches")

    assert [e["id"] for e in found] == list(range(230, 0, -1))


def test_an_event_published_between_two_pages_loses_no_event_and_doubles_none():
    events = [event(n) for n in range(1, 151)]

    def publish_one_more(page: int) -> None:
        if page == 1:
            events.append(event(1000))

    with airflow_api(events, after_page=publish_one_more) as url:
        found = AirflowRestClient(url, "admin", lambda: "secret").asset_events("raw_batches")

    # The new event came after the first page, at the newest end; every older one is there once.
    assert [e["id"] for e in found] == list(range(150, 0, -1))
