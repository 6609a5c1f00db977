"""The AssetWatcher option on a real stack: no ingest run waits; the watcher's events start the runs. A
burst of files each lands once, a replayed event lands nothing, and a file dropped while the triggerer
is down lands once after it is back."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from scripts.publish import publish
from scripts.stack.launcher import LocalStack
from tests.integration.chain import events_since, task_states
from tests.processes import alive
from tests.sabotage import Saboteur


def landed_from(stack: LocalStack, since: datetime, paths: list[Path]) -> list[dict]:
    """The batches raw_batches events announced since ``since`` whose source is one of ``paths``."""
    uris = {path.as_uri() for path in paths}
    return [
        {**batch, "timestamp": event["timestamp"]}
        for event in events_since(stack, "raw_batches", since)
        for batch in event["extra"]["batches"]
        if batch["source"]["url"] in uris
    ]


def ledger_outcomes(stack: LocalStack, paths: list[Path]) -> Counter:
    """What the ledger recorded for ``paths``, per outcome."""
    uris = {path.as_uri() for path in paths}
    items = Path(stack.config.storage_root) / "ledger" / "items"
    entries = [json.loads(p.read_text()) for p in items.glob("*.json")]
    return Counter(e["outcome"] for e in entries if e["item"] in uris)


def ingest_runs(stack: LocalStack) -> list[dict]:
    return stack.rest.dag_runs("ingest")


def idle(stack: LocalStack) -> bool:
    """No ingest run is queued or running, and no event waits for one."""
    busy = [r for r in ingest_runs(stack) if r["state"] in ("queued", "running")]
    return not busy and not stack.rest.queued_asset_events("ingest")


def test_no_run_waits_and_a_burst_lands_each_file_once(watcher_stack: LocalStack, drop: Path, wait_for):
    stack = watcher_stack
    wait_for(lambda: idle(stack), 120, "ingest to be idle")
    assert all(r["run_type"] == "asset_triggered" for r in ingest_runs(stack)), "only the watcher starts runs"
    since = datetime.now(UTC)
    paths = [publish(drop, rows=30, seed=1000 + n, drop=True) for n in range(12)]

    events = wait_for(
        lambda: (e := landed_from(stack, since, paths)) and len(e) >= 12 and e, 240, "12 batches"
    )
    wait_for(lambda: idle(stack), 120, "ingest to be idle after the burst")

    events = landed_from(stack, since, paths)
    runs = [r for r in ingest_runs(stack) if datetime.fromisoformat(r["run_after"]) >= since]
    announced = events_since(stack, "raw_batches", since)
    print(f"\nburst of 12 files: {len(runs)} ingest runs, {len(announced)} raw_batches events")
    assert len(events) == len({e["batch_id"] for e in events}) == 12
    assert {e["source"]["url"] for e in events} == {p.as_uri() for p in paths}
    assert ledger_outcomes(stack, paths) == Counter({"landed": 12})
    assert all(r["state"] == "success" for r in runs), [(r["dag_run_id"], r["state"]) for r in runs]


def test_a_replayed_event_for_files_already_landed_lands_nothing(
    watcher_stack: LocalStack, drop: Path, wait_for
):
    """An event listing what was landed (a watcher re-announcing after a refresh, or a person posting
    it): its run lands nothing and publishes no raw_batches event."""
    stack = watcher_stack
    since = datetime.now(UTC)
    path = publish(drop, rows=30, seed=1500, drop=True)
    [landed] = wait_for(lambda: landed_from(stack, since, [path]), 120, "the file to land")
    wait_for(lambda: idle(stack), 120, "ingest to be idle")
    stat = path.stat()
    payload = {
        "url": drop.as_uri() + "/",
        "items": [{"url": path.as_uri(), "validators": {"size": stat.st_size, "mtime": stat.st_mtime}}],
    }
    source = next(
        a for a in stack.rest.get("/api/v2/assets", name_pattern="source")["assets"] if a["name"] == "source"
    )
    replayed = datetime.now(UTC)
    stack.rest.request(
        "POST",
        "/api/v2/assets/events",
        json={"asset_id": source["id"], "extra": {"from_trigger": True, "payload": payload}},
    )

    def replay_run() -> dict | None:
        runs = [r for r in ingest_runs(stack) if datetime.fromisoformat(r["run_after"]) >= replayed]
        return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None

    run = wait_for(replay_run, 120, "the replayed event's ingest run")
    states = task_states(stack, "ingest", run["dag_run_id"])
    assert run["state"] == "success"
    assert states["land_batch"] == "success"
    assert states["publish_batches"] == "skipped"
    assert events_since(stack, "raw_batches", replayed) == []
    assert ledger_outcomes(stack, [path]) == Counter({"landed": 1}), "the ledger keeps it as landed"
    assert landed["source"]["url"] == path.as_uri()


def test_a_file_dropped_while_the_triggerer_is_down_lands_once_after_it_is_back(
    watcher_stack: LocalStack, drop: Path, wait_for
):
    stack = watcher_stack
    saboteur = Saboteur(stack)
    try:
        wait_for(lambda: idle(stack), 120, "ingest to be idle")
        since = datetime.now(UTC)
        with saboteur.keeper_paused():  # frozen, the keeper cannot restart the triggerer too soon
            saboteur.kill("triggerer")
            path = publish(drop, rows=30, seed=3000, drop=True)
            time.sleep(3)  # longer than the keeper's check interval: a keeper still running would act
            dead = saboteur.last_killed["triggerer"]
            assert saboteur.pid("triggerer") == dead, "the triggerer was restarted before the file was in"
            assert not alive(dead)
            assert not landed_from(stack, since, [path]), "landed with no triggerer to notice it"
        saboteur.restarted("triggerer")

        [event] = wait_for(lambda: landed_from(stack, since, [path]), 240, "the file dropped while down")
        wait_for(lambda: idle(stack), 120, "ingest to be idle again")
        assert len(landed_from(stack, since, [path])) == 1
        assert ledger_outcomes(stack, [path]) == Counter({"landed": 1})
        after = (datetime.fromisoformat(event["timestamp"]) - since).total_seconds()
        print(f"\nfile dropped while the triggerer was down: landed {after:.0f} s after the kill")

        dropped = datetime.now(UTC)
        path = publish(drop, rows=30, seed=3001, drop=True)
        [event] = wait_for(
            lambda: landed_from(stack, dropped, [path]), 120, "a file dropped after the restart"
        )
        latency = (datetime.fromisoformat(event["timestamp"]) - dropped).total_seconds()
        print(f"one file dropped -> its raw_batches event: {latency:.1f} s")
    finally:
        saboteur.stop_orphans()
