"""The REST client's queries, over canned API answers."""

from __future__ import annotations

from datetime import UTC, datetime

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
