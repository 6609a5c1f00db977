"""How ingest waits, side by side in one run: the deferrable sensor (``PIPELINE_ARRIVAL=sensor``, the
default) against the AssetWatcher option (``PIPELINE_ARRIVAL=watcher``), each on a stack of its own
(embedded, one after the other, the sides alternating when ``BENCH_WATCHER_ROUNDS`` > 1), watching
the same kind of drop folder.

Per side:

- **idle cost**: CPU seconds per minute of the triggerer (its process tree) and of the scheduler while
  nothing arrives, over ``BENCH_WATCHER_IDLE_SECONDS``, after the source has been watched a while;
- **detection latency** of ``BENCH_WATCHER_FILES`` files dropped one at a time (each once ingest is
  idle again): file written -> the ingest run that lands it is created (``queued_at``; the sensor's
  run already exists, so for it: its ``wait_for_new_data`` ends) and -> its ``raw_batches`` event;
- the ingest runs each file cost (the sensor: the run that lands it starts the next waiting one).

The stages after ingest are paused, so only the arrival is measured.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import record
from bench.stack import running_stack, wait_for

SIDES = ("sensor", "watcher")
HEADER = "sepal_length,sepal_width,petal_length,petal_width,species"
AFTER_INGEST = ("etl", "train_validate", "deploy", "monitor")


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its children."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for process in (root, *root.children(recursive=True)):
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        return total
    return total


def _t(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def _idle(stack, side: str) -> bool:
    """Ingest waits for the next file: the sensor deferred in the newest run, or (the watcher) no run
    queued or running and no event waiting for one."""
    runs = stack.rest.dag_runs("ingest")
    if side == "sensor":
        if not runs or runs[0]["state"] != "running":
            return False
        ti = stack.rest.get(
            f"/api/v2/dags/ingest/dagRuns/{runs[0]['dag_run_id']}/taskInstances/wait_for_new_data"
        )
        return ti["state"] == "deferred"
    busy = [r for r in runs if r["state"] in ("queued", "running")]
    return not busy and not stack.rest.queued_asset_events("ingest")


def _landed(stack, uri: str, since: datetime) -> dict | None:
    """The raw_batches event announcing the file ``uri``, published after ``since``."""
    for event in stack.rest.asset_events("raw_batches", timestamp_gte=since.isoformat()):
        if any(batch["source"]["url"] == uri for batch in event["extra"]["batches"]):
            return event
    return None


def _detected_at(stack, side: str, event: dict) -> float | None:
    """When ingest knew of the file: the sensor's end, or the watcher-started run's creation."""
    run_id = event["source_run_id"]
    if side == "sensor":
        ti = stack.rest.get(f"/api/v2/dags/ingest/dagRuns/{run_id}/taskInstances/wait_for_new_data")
        return _t(ti["end_date"])
    run = stack.rest.get(f"/api/v2/dags/ingest/dagRuns/{run_id}")
    return _t(run["queued_at"])


def measure(side: str, home: Path, files: int, idle_seconds: float) -> dict[str, Any]:
    result: dict[str, Any] = {"side": side, "load_avg_before": list(os.getloadavg())}
    with running_stack("embedded", home, extra_env={"PIPELINE_ARRIVAL": side}) as stack:
        for dag_id in AFTER_INGEST:
            stack.rest.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})
        drop = home / "drop"
        drop.mkdir(exist_ok=True)
        stack.rest.set_variable("crawl_url", drop.as_uri() + "/")
        # The first file proves the source is watched (the sensor's run reads crawl_url when it
        # starts); it is not measured.
        # Named by time like the measured files: a name sorting before the watermark waits for the
        # full listing (docs/architecture.md, "Name files by time").
        warm = drop / f"f-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-warm-up.csv"
        warm.write_text(f"{HEADER}\n4.4,2.9,1.4,0.2,setosa\n{time.time_ns() % 10**9},3,1,0,setosa\n")
        wait_for(
            lambda: _landed(stack, warm.as_uri(), datetime.fromtimestamp(0, UTC)), 300, "the warm-up file"
        )
        wait_for(lambda: _idle(stack, side), 300, "ingest to wait", interval=0.5)
        time.sleep(5)

        pids = stack.supervisor.running()
        cpu0 = {name: _tree_cpu(pids[name]) for name in ("triggerer", "scheduler")}
        started = time.monotonic()
        time.sleep(idle_seconds)
        elapsed = time.monotonic() - started
        result["idle_cpu_s_per_min"] = {
            name: round((_tree_cpu(pids[name]) - cpu0[name]) * 60 / elapsed, 3) for name in cpu0
        }
        runs_before = len(stack.rest.dag_runs("ingest"))
        detect, event_latency = [], []
        for n in range(files):
            wait_for(lambda: _idle(stack, side), 300, "ingest to wait", interval=0.5)
            since = datetime.now(UTC)
            path = drop / f"f-{since:%Y%m%dT%H%M%S%f}-{n}.csv"
            tmp = drop / f".{path.name}.tmp"
            # A content of its own: a content received before is a duplicate, which lands nothing.
            tmp.write_text(f"{HEADER}\n5.{n},3.5,1.4,0.2,setosa\n{time.time_ns() % 10**9},3,1,0,setosa\n")
            written = time.time()
            os.replace(tmp, path)
            uri, after = path.as_uri(), since
            event = wait_for(lambda: _landed(stack, uri, after), 300, f"file {n}", interval=0.2)  # noqa: B023
            event_latency.append(_t(event["timestamp"]) - written)
            if (known := _detected_at(stack, side, event)) is not None:
                detect.append(known - written)
        result["runs_per_file"] = round((len(stack.rest.dag_runs("ingest")) - runs_before) / files, 2)
        result["detect_s"] = record.summary(detect)
        result["raw_batches_event_s"] = record.summary(event_latency)
        result["detect_values_s"] = [round(v, 3) for v in detect]
        result["event_values_s"] = [round(v, 3) for v in event_latency]
    result["load_avg_after"] = list(os.getloadavg())
    return result


def run(files: int = 5, idle_seconds: float = 30, rounds: int = 1) -> dict[str, Any]:
    """Both sides, ``rounds`` times (the order alternating), each on a fresh stack."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-watcher-") as tmp:
        for n in range(rounds):
            for side in SIDES if n % 2 == 0 else reversed(SIDES):
                rows.append(measure(side, Path(tmp) / f"{side}-{n}", files, idle_seconds))
                print(rows[-1], flush=True)
    summary = {}
    for side in SIDES:
        mine = [r for r in rows if r["side"] == side]
        summary[side] = {
            "detect_p50_s": statistics.median(v for r in mine for v in r["detect_values_s"]),
            "event_p50_s": statistics.median(v for r in mine for v in r["event_values_s"]),
            "triggerer_cpu_s_per_min": statistics.median(r["idle_cpu_s_per_min"]["triggerer"] for r in mine),
            "scheduler_cpu_s_per_min": statistics.median(r["idle_cpu_s_per_min"]["scheduler"] for r in mine),
        }
    return {"files": files, "idle_seconds": idle_seconds, "rounds": rounds, "rows": rows, "summary": summary}


def print_report(result: dict[str, Any]) -> None:
    record.table(
        ["side", "detect p50 s", "event p50 s", "triggerer CPU s/min", "scheduler CPU s/min"],
        [
            [
                side,
                s["detect_p50_s"],
                s["event_p50_s"],
                s["triggerer_cpu_s_per_min"],
                s["scheduler_cpu_s_per_min"],
            ]
            for side, s in result["summary"].items()
        ],
        title="How ingest waits: the deferrable sensor against the AssetWatcher, in one run",
    )
