"""A client of Airflow's REST API (v2) for the stack's admin, with the queries the launcher and the
integration tests ask: runs, task instances, asset events, Variables, manual runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx

from scripts.stack.errors import StackError

STAGES = ("ingest", "etl", "train_validate", "deploy", "monitor")
IDEMPOTENT = ("GET", "PATCH", "PUT", "DELETE")
# Seconds of 5xx answers a request is asked again through: the asset-events 500 below lasts until the
# scheduler starts the run, a minute or so when the scheduler itself is being restarted.
RETRIES = 60
EVENTS_PAGE = 100


class AirflowRestClient:
    """Airflow's REST API at ``base_url``, logged in as ``username`` once the API first answers."""

    def __init__(self, base_url: str, username: str, password: Callable[[], str]) -> None:
        self.base_url = base_url
        self.username = username
        self._password = password  # read at login: the stack makes it on its first start
        self._token: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": self.username, "password": self._password()},
                timeout=30,
            )
            if response.status_code != 201:
                raise StackError(f"login failed: HTTP {response.status_code} {response.text}")
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(RETRIES):
            response = httpx.request(
                method, f"{self.base_url}{path}", headers=self._headers(), timeout=30, **kwargs
            )
            # Airflow 3.3.2 answers 500 for asset events while a run they created has not started yet
            # (apache/airflow#71360, fixed upstream), and on SQLite a write can meet "database is
            # locked" while the scheduler writes; both last a moment. A request that can be repeated
            # safely is asked again, and so is any other whose database transaction was rolled back
            # (creating a backfill answers 503 "Database is locked" then).
            rolled_back = (response.status_code == 500 and "Database error" in response.text) or (
                response.status_code == 503 and "Database is locked" in response.text
            )
            if response.status_code < 500 or not (method in IDEMPOTENT or rolled_back):
                break
            time.sleep(1)
        if response.status_code >= 400:
            raise StackError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def dag_runs(self, dag_id: str) -> list[dict]:
        """The newest 100 runs of ``dag_id``, newest first."""
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="-run_after", limit=100)["dag_runs"]

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        """Start a manual run of ``dag_id`` with ``conf`` as its params, like the UI's Trigger form."""
        return self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )

    def set_variable(self, key: str, value: str) -> None:
        self.request("PATCH", f"/api/v2/variables/{key}", json={"key": key, "value": value})

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def asset_events(self, asset_name: str, **filters: Any) -> list[dict]:
        """Every event of the asset that matches ``filters`` (the API's, e.g. ``source_run_id``,
        ``timestamp_gte``), newest first. The API answers a page of at most ``limit`` events (50 by
        default), so this asks page after page until it has them all."""
        assets = self.get("/api/v2/assets", name_pattern=asset_name)["assets"]
        asset = next(a for a in assets if a["name"] == asset_name)
        events: dict[int, dict] = {}
        offset = 0
        while True:
            page = self.get(
                "/api/v2/assets/events",
                asset_id=asset["id"],
                order_by="-timestamp",
                limit=EVENTS_PAGE,
                offset=offset,
                **filters,
            )["asset_events"]
            # A page ends where the API's cap ([api] maximum_page_limit) does, which may be less than
            # asked: only an empty page is the end. An event published meanwhile pushes the older ones
            # one place on: the last one of the page before comes again, and is kept once.
            if not page:
                return list(events.values())
            events.update((event["id"], event) for event in page)
            offset += len(page)

    def queued_asset_events(self, dag_id: str) -> list[dict]:
        """Asset events waiting for ``dag_id``: it has a run coming that is not created yet."""
        return self.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")["queued_events"]

    def stage_dags(self) -> list[str]:
        """The pipeline's stage DAGs that Airflow has parsed, in pipeline order."""
        parsed = {d["dag_id"] for d in self.get("/api/v2/dags", limit=100)["dags"]}
        return [stage for stage in STAGES if stage in parsed]

    def runs_since(self, since: datetime) -> Iterator[tuple[str, dict]]:
        """(dag_id, run) for every stage run the data caused that was active at or after ``since``
        (queued, running or ended then). Ingest waits for data in a continuous run, which Airflow types
        ``scheduled``; the later stages react to assets, so a ``scheduled`` run of theirs is their
        timetable's (etl's nightly run, monitor's hourly check), not the data's."""
        for dag_id in self.stage_dags():
            for run in self.dag_runs(dag_id):
                if dag_id != STAGES[0] and run["run_type"] == "scheduled":
                    continue
                ended = run["end_date"] and datetime.fromisoformat(run["end_date"])
                if not ended or ended >= since or datetime.fromisoformat(run["run_after"]) >= since:
                    yield dag_id, run
