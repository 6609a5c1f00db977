"""Backtesting by backfill: a backfill of train_validate over past days registers one backtest per day,
trained as of that day, and leaves production alone.

The batches are arranged in the stack's storage root as an earlier export would have landed them
(their landing time is in the past, which is what "as of" reads); everything else goes through the
running stack: the backfill through the REST API, the runs through the scheduler, the refusal through
a deploy run.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

from include import layout, registry, storage
from include.config import load_schema
from include.features import build_features
from include.ingest import land
from scripts.publish import make_batch
from scripts.stack.launcher import LocalStack
from tests.integration.chain import (
    body,
    events_of_run,
    mail_of_run,
    mails_since,
    returned,
    runs_since,
    task_states,
    wait_until_idle,
)
from tests.received import received

# Long before anything else the integration tier lands (days before now): these days hold only ours.
A = datetime(2026, 6, 1, 1, tzinfo=UTC)
B = datetime(2026, 6, 2, 1, tzinfo=UTC)
C = datetime(2026, 6, 2, 5, tzinfo=UTC)  # after the 04:00 cut of June 2: only June 3 sees it


def landed_with_features(root: str, kind: str, seed: int, at: datetime) -> str:
    """A batch of ``kind`` landed at ``at`` and turned into features, as ingest and etl would have."""
    content = make_batch(kind, rows=60, seed=seed).to_csv(index=False).encode()
    with tempfile.TemporaryDirectory(prefix="received-") as folder:
        batch_id = land(root, received(Path(folder), content, "an earlier export"), now=at)["batch_id"]
    build_features(root, [batch_id], load_schema())
    return batch_id


def test_a_backfill_of_train_validate_registers_backtests_and_leaves_production_alone(
    stack: LocalStack, wait_for, variables
):
    variables(training_window_batches="2")
    root = stack.config.storage_root

    def timetable_run_ended() -> bool:
        # The timetable's run of today, created when the DAG is first parsed, trains on whatever
        # batches it finds new: let it end before ours land, so it cannot start a deploy meanwhile.
        runs = stack.rest.dag_runs("train_validate")
        return any(r["run_type"] == "scheduled" for r in runs) and not any(
            r["state"] in ("queued", "running") for r in runs
        )

    wait_for(timetable_run_ended, 300, "train_validate's timetable run to end")
    a = landed_with_features(root, "good", 61, A)
    b = landed_with_features(root, "shuffled-labels", 62, B)  # a bad day: its backtests score low
    c = landed_with_features(root, "good", 63, C)
    wait_until_idle(stack, wait_for)
    pointer_url = layout.production_pointer(root)
    pointer = storage.read_bytes(pointer_url) if storage.exists(pointer_url) else None
    promotions = len(stack.rest.asset_events("production_model"))
    since = datetime.now(UTC)

    backfill = stack.rest.request(
        "POST",
        "/api/v2/backfills",
        json={
            "dag_id": "train_validate",
            "from_date": "2026-05-31T00:00:00Z",
            "to_date": "2026-06-03T12:00:00Z",
            "max_active_runs": 2,
        },
    )

    def completed() -> dict | None:
        state = stack.rest.get(f"/api/v2/backfills/{backfill['id']}")
        return state if state["completed_at"] else None

    wait_for(completed, 420, f"backfill {backfill['id']} to complete")
    runs = {
        run["logical_date"][:10]: run
        for run in runs_since(
            stack, "train_validate", datetime(2026, 5, 1, tzinfo=UTC), run_types=("backfill",)
        )
        if datetime.fromisoformat(run["queued_at"]) >= since
    }
    assert sorted(runs) == ["2026-05-31", "2026-06-01", "2026-06-02", "2026-06-03"]
    assert {day: run["state"] for day, run in runs.items()} == dict.fromkeys(runs, "success")

    # Before any batch had landed: nothing to backtest, the run is skipped and registers nothing.
    assert task_states(stack, "train_validate", runs["2026-05-31"]["dag_run_id"])["train"] == "skipped"
    # Each day trains on the newest two batches landed by its 04:00 UTC cut.
    expected = {"2026-06-01": [a], "2026-06-02": [a, b], "2026-06-03": [b, c]}
    backtests = {}
    for day, batch_ids in expected.items():
        run_id = runs[day]["dag_run_id"]
        states = task_states(stack, "train_validate", run_id)
        assert states["register_backtest"] == "success", states
        assert {states[t] for t in ("register", "retrain_alert", "discard_rejected", "write_report")} == {
            "skipped"
        }
        recorded = returned(stack, "train_validate", run_id, "register_backtest")
        metadata = registry.version_metadata(root, recorded["version"])
        assert (metadata["backtest"], metadata["as_of"], metadata["batch_ids"]) == (
            True,
            f"{day}T04:00:00+00:00",
            batch_ids,
        )
        page = storage.read_bytes(layout.model_version(root, recorded["version"], "report.html")).decode()
        assert f"A backtest as of {day}T04:00:00+00:00" in page
        assert events_of_run(stack, "model_candidate", run_id) == []
        backtests[day] = metadata
    # A backtest below the bar is recorded as well (a backtest is for looking at quality over time).
    assert "below" in backtests["2026-06-03"]["verdict"], backtests["2026-06-03"]["verdict"]

    # Production alone: the pointer byte for byte, no production_model event, no deploy run, no mail.
    assert (storage.read_bytes(pointer_url) if storage.exists(pointer_url) else None) == pointer
    assert len(stack.rest.asset_events("production_model")) == promotions
    assert (
        runs_since(stack, "deploy", since, run_types=("asset_triggered", "manual", "scheduled", "backfill"))
        == []
    )
    mentioning = [
        m["Subject"]
        for m in mails_since(stack, since)
        if any(r["dag_run_id"] in body(m) for r in runs.values())
    ]
    assert mentioning == []
    versions = [metadata["version"] for metadata in backtests.values()]
    assert not [m["Subject"] for m in mails_since(stack, since) if any(v in body(m) for v in versions)]

    # Asked for by hand, deploy refuses a backtest, naming it; production stays.
    backtest = backtests["2026-06-01"]["version"]
    refused = stack.rest.trigger("deploy", {"version": backtest})["dag_run_id"]

    def ended() -> dict | None:
        run = stack.rest.get(f"/api/v2/dags/deploy/dagRuns/{refused}")
        return run if run["state"] in ("success", "failed") else None

    assert wait_for(ended, 150, f"deploy run {refused}")["state"] == "failed"
    mail = wait_for(
        lambda: mail_of_run(stack, since, refused, "deploy.compare_with_production"), 30, "the failure e-mail"
    )
    assert f"model version '{backtest}' is a backtest as of 2026-06-01T04:00:00+00:00" in unescape(body(mail))
    assert (storage.read_bytes(pointer_url) if storage.exists(pointer_url) else None) == pointer
    assert len(stack.rest.asset_events("production_model")) == promotions
