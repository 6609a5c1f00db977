"""Data arrival you can trust, on a real stack: a reverted URL, a burst into a drop folder, several sources
watched at once, files dropped while the stack is down, and a triggerer killed while the sensor waits.
Every item lands exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scripts.publish import publish
from scripts.stack.launcher import LocalStack
from tests.integration.chain import events_since, source_answers, task_states
from tests.processes import alive
from tests.sabotage import Saboteur


def queued_since(stack: LocalStack, since: datetime) -> list[dict]:
    """The ingest runs queued at or after ``since``, newest first. (Not ``run_after``: a continuous DAG's
    next run gets its ``run_after`` when the run before it is created.)"""
    runs = [
        r
        for r in stack.rest.dag_runs("ingest")
        if r["queued_at"] and datetime.fromisoformat(r["queued_at"]) >= since
    ]
    return sorted(runs, key=lambda r: r["queued_at"], reverse=True)


def deferred_since(stack: LocalStack, since: datetime) -> str | None:
    """The run id of the newest ingest run, if it was queued after ``since`` and its sensor is deferred."""
    runs = queued_since(stack, since)
    if runs and task_states(stack, "ingest", runs[0]["dag_run_id"]).get("wait_for_new_data") == "deferred":
        return runs[0]["dag_run_id"]
    return None


def watching(stack: LocalStack, url: str) -> str | None:
    """The run id of the newest ingest run if its sensor is deferred on the trigger for ``url``'s kind
    of source (the REST API hides a trigger's arguments; its class tells a URL from a folder or from a
    list of sources). The run
    may have been queued before crawl_url changed: its sensor reads crawl_url when it starts."""
    runs = queued_since(stack, datetime.min.replace(tzinfo=UTC))
    if not runs:
        return None
    run_id = runs[0]["dag_run_id"]
    ti = stack.rest.get(f"/api/v2/dags/ingest/dagRuns/{run_id}/taskInstances/wait_for_new_data")
    kinds = {"[": "SourcesTrigger", "h": "NewDataTrigger"}  # a JSON list of sources, an http(s) URL
    kind = kinds.get(url[:1], "NewFilesTrigger")
    classpath = (ti.get("trigger") or {}).get("classpath", "")
    return run_id if ti["state"] == "deferred" and classpath.endswith(kind) else None


def watch(stack: LocalStack, wait_for, url: str) -> datetime:
    """Point ``crawl_url`` at ``url`` and wait until a sensor watching it is deferred."""
    switched = datetime.now(UTC)
    stack.rest.set_variable("crawl_url", url)
    try:
        wait_for(lambda: watching(stack, url), 180, f"an ingest sensor watching {url}")
    except pytest.fail.Exception:
        runs = queued_since(stack, datetime.min.replace(tzinfo=UTC))
        newest = {r["dag_run_id"]: task_states(stack, "ingest", r["dag_run_id"]) for r in runs[:2]}
        pytest.fail(f"no ingest sensor watching {url} within 180 s; the newest ingest runs: {newest}")
    return switched


def landed_from(stack: LocalStack, since: datetime, paths: list[Path]) -> list[dict]:
    """The batches announced by raw_batches events since ``since`` whose source is one of ``paths``,
    with the time of their event."""
    uris = {path.as_uri() for path in paths}
    return [
        {**batch, "timestamp": event["timestamp"]}
        for event in events_since(stack, "raw_batches", since)
        for batch in event["extra"]["batches"]
        if batch["source"]["url"] in uris
    ]


def ledger_duplicates(stack: LocalStack, url: str) -> int:
    items = Path(stack.config.storage_root) / "ledger" / "items"
    entries = [json.loads(p.read_text()) for p in items.glob("*.json")] if items.is_dir() else []
    return sum(1 for e in entries if e["item"] == url and e["outcome"] == "duplicate")


def test_reverted_url_lands_nothing_and_starts_no_run_loop(stack: LocalStack, wait_for):
    wait_for(lambda: deferred_since(stack, datetime.min.replace(tzinfo=UTC)), 90, "the ingest sensor")
    since = datetime.now(UTC)
    for n, seed in enumerate((101, 102), start=1):  # A, then B ("bad" batches: etl stops at quarantine)
        stack.publish(kind="bad", seed=seed)
        wait_for(lambda n=n: len(events_since(stack, "raw_batches", since)) >= n, 90, f"batch {n} to land")
    wait_for(lambda: deferred_since(stack, since), 60, "ingest to wait again")
    duplicates = ledger_duplicates(stack, stack.config.crawl_url)

    reverted = datetime.now(UTC)
    stack.publish(kind="bad", seed=101)  # A again
    wait_for(
        lambda: ledger_duplicates(stack, stack.config.crawl_url) > duplicates, 30, "the revert to be recorded"
    )
    # A run loop would start a run on every poll: after four polls of A (the sensor of the run that
    # followed the revert) there would be four runs, not the one.
    polled = len(source_answers(stack))
    wait_for(lambda: len(source_answers(stack)) >= polled + 4, 60, "four polls after the revert")

    runs = queued_since(stack, reverted)
    print(f"\ningest runs started after the revert, by four polls later: {len(runs)}")
    assert len(runs) <= 1
    assert events_since(stack, "raw_batches", reverted) == []
    assert sum(len(e["extra"]["batch_ids"]) for e in events_since(stack, "raw_batches", since)) == 2


@pytest.fixture(scope="module")
def drop(stack: LocalStack, wait_for):
    """A drop folder as the source for this module's folder scenarios; the single URL again afterwards."""
    folder = stack.config.home / "drop"
    folder.mkdir(exist_ok=True)
    watch(stack, wait_for, folder.as_uri() + "/")
    yield folder
    watch(stack, wait_for, stack.config.crawl_url)


def test_burst_of_files_lands_each_once_and_reaches_features(stack: LocalStack, drop: Path, wait_for):
    since = datetime.now(UTC)
    started = time.monotonic()
    paths = [publish(drop, rows=30, seed=1000 + n, drop=True) for n in range(20)]
    dropped_in = time.monotonic() - started  # reported, not bounded: it measures the machine's load

    def all_landed() -> list[dict] | None:
        events = landed_from(stack, since, paths)
        return events if len(events) >= len(paths) else None

    events = wait_for(all_landed, 120, "20 batches")
    batch_ids = {e["batch_id"] for e in events}
    first = min(datetime.fromisoformat(e["timestamp"]) for e in events)
    print(
        f"\nburst: {len(paths)} files dropped in {dropped_in:.1f} s; first raw_batches event after "
        f"{(first - since).total_seconds():.1f} s"
    )

    def featured() -> set[str]:
        return {b for e in events_since(stack, "features", since) for b in e["extra"]["batch_ids"]}

    wait_for(lambda: batch_ids <= featured(), 180, "every batch of the burst to reach features")
    events = landed_from(stack, since, paths)
    print(f"burst: {len(paths)} files dropped, {len(events)} batches announced, {len(batch_ids)} distinct")
    assert len(events) == len(batch_ids) == 20
    assert {e["source"]["url"] for e in events} == {p.as_uri() for p in paths}


def test_several_sources_at_once_each_item_lands_once(stack: LocalStack, drop: Path, wait_for):
    """``crawl_url`` lists two drop folders and the single URL: a file in each folder and a new version
    at the URL land once each (bad batches: etl stops at quarantine, no training), and ingest waits on
    all three again."""
    second = drop.parent / "drop-2"
    second.mkdir(exist_ok=True)
    url = stack.config.crawl_url
    watch(stack, wait_for, json.dumps([drop.as_uri() + "/", second.as_uri() + "/", url]))
    since = datetime.now(UTC)
    paths = [
        publish(folder, kind="bad", rows=30, seed=3000 + n, drop=True)
        for n, folder in enumerate((drop, second))
    ]
    stack.publish(kind="bad", seed=3100)

    def landed() -> list[dict]:
        at_url = [b for e in events_since(stack, "raw_batches", since) for b in e["extra"]["batches"]]
        return landed_from(stack, since, paths) + [b for b in at_url if b["source"]["url"] == url]

    wait_for(lambda: len(landed()) >= 3, 120, "a batch from each of the three sources")
    wait_for(lambda: deferred_since(stack, since), 90, "ingest to wait on the sources again")
    batches = landed()
    assert sorted(b["source"]["url"] for b in batches) == sorted([*(p.as_uri() for p in paths), url])
    assert len({b["batch_id"] for b in batches}) == 3
    watch(stack, wait_for, drop.as_uri() + "/")  # the module's other scenarios watch the one folder


def test_files_dropped_while_the_stack_is_down_land_once(stack: LocalStack, drop: Path, wait_for):
    wait_for(lambda: deferred_since(stack, datetime.min.replace(tzinfo=UTC)), 90, "the ingest sensor")
    stack.stop()
    since = datetime.now(UTC)
    paths = [publish(drop, rows=30, seed=2000 + n, drop=True) for n in range(3)]
    stack.start()
    stack.rest.set_variable("crawl_url", drop.as_uri() + "/")  # start() imports config/variables.json again

    wait_for(lambda: len(landed_from(stack, since, paths)) >= 3, 180, "the 3 files dropped while down")
    wait_for(lambda: deferred_since(stack, since), 90, "ingest to wait again")
    assert len(landed_from(stack, since, paths)) == 3


@pytest.fixture
def saboteur(stack: LocalStack) -> Iterator[Saboteur]:
    saboteur = Saboteur(stack)
    yield saboteur
    saboteur.stop_orphans()


def test_triggerer_killed_while_the_sensor_waits(stack: LocalStack, drop: Path, wait_for, saboteur):
    wait_for(lambda: deferred_since(stack, datetime.min.replace(tzinfo=UTC)), 90, "the ingest sensor")
    since = datetime.now(UTC)

    # The keeper restarts a dead component within a second or so: frozen, it cannot restart the
    # triggerer before the file is in the folder, whatever the machine's load.
    with saboteur.keeper_paused():
        killed = datetime.now(UTC)
        saboteur.kill("triggerer")
        path = publish(drop, rows=30, seed=3000, drop=True)
        time.sleep(3)  # longer than the keeper's check interval: a keeper still running would act
        dead = saboteur.last_killed["triggerer"]
        assert saboteur.pid("triggerer") == dead, "the triggerer was restarted before the file was in"
        assert not alive(dead)
        assert not landed_from(stack, since, [path]), "the file landed with no triggerer to notice it"
    saboteur.restarted("triggerer")  # by the stack's keeper, on its own, once thawed
    back = (datetime.now(UTC) - killed).total_seconds()
    print(f"\ntriggerer SIGKILLed -> restarted by the keeper: {back:.1f} s")

    def healthy_again() -> bool:
        triggerer = stack.rest.get("/api/v2/monitor/health")["triggerer"]
        beat = triggerer["latest_triggerer_heartbeat"]
        return triggerer["status"] == "healthy" and beat is not None and datetime.fromisoformat(beat) > killed

    wait_for(healthy_again, 60, "the restarted triggerer's heartbeat")

    [event] = wait_for(lambda: landed_from(stack, since, [path]), 150, "the file dropped around the kill")
    wait_for(lambda: deferred_since(stack, since), 90, "ingest to wait again")
    assert len(landed_from(stack, since, [path])) == 1
    landed_after = (datetime.fromisoformat(event["timestamp"]) - since).total_seconds()
    print(f"\nafter a triggerer SIGKILL: the dropped file landed {landed_after:.0f} s later")

    dropped = datetime.now(UTC)
    path = publish(drop, rows=30, seed=3001, drop=True)
    [event] = wait_for(lambda: landed_from(stack, dropped, [path]), 60, "a file dropped after the restart")
    latency = (datetime.fromisoformat(event["timestamp"]) - dropped).total_seconds()
    print(f"one file dropped -> its raw_batches event: {latency:.1f} s")
