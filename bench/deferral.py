"""Waiting costs nothing: n sensors deferred at once on one triggerer (``bench/dags/deferred_sensors.py``).

Measured while all n wait: task instances holding a worker slot (queued or running: must be 0), the
triggerer's CPU (share of one core over a window) and RSS (its whole process tree). Then one source
changes (one file appears): the time until its sensor's task instance succeeds. Then the run is
marked failed, which ends the other sensors and frees their triggers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil

from bench import record
from bench.latency import _t
from bench.stack import wait_for


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _states(stack, dag_id: str, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    offset = 0
    while True:
        page = stack.rest.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100, offset=offset
        )["task_instances"]
        for ti in page:
            counts[ti["state"] or "none"] = counts.get(ti["state"] or "none", 0) + 1
        if len(page) < 100:
            return counts
        offset += 100


def measure(stack, size: int, window: float = 20) -> dict[str, Any]:
    dag_id = f"bench_deferred_{size}"
    folder = Path(stack.config.home) / "defer" / str(size)
    folder.mkdir(parents=True, exist_ok=True)
    triggerer = stack.supervisor.running()["triggerer"]
    rss_before = sum(p.memory_info().rss for p in _tree(triggerer))
    started = time.monotonic()
    run_id = stack.rest.trigger(dag_id)["dag_run_id"]
    wait_for(lambda: _states(stack, dag_id, run_id).get("deferred", 0) == size, 600, f"{size} deferred", 2)
    all_deferred_after = time.monotonic() - started
    time.sleep(3)  # let the triggerer load every trigger
    procs = _tree(triggerer)
    cpu0 = sum(sum(p.cpu_times()[:2]) for p in procs)
    slots = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < window:
        states = _states(stack, dag_id, run_id)
        slots.append(states.get("running", 0) + states.get("queued", 0))
        time.sleep(2)
    cpu1 = sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())
    cpu_share = (cpu1 - cpu0) / (time.monotonic() - t0)
    rss = sum(p.memory_info().rss for p in _tree(triggerer))
    pools = stack.rest.get("/api/v2/pools")["pools"]
    default_pool = next(p for p in pools if p["name"] == "default_pool")
    # One source changes: its sensor should fire within one poll plus scheduling.
    changed = time.time()
    (folder / "0").write_text("changed")
    ti = wait_for(
        lambda: (
            (t := stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/wait_0000"))["state"]
            == "success"
            and t
        ),
        120,
        "the changed source's sensor to fire",
        0.2,
    )
    fired = _t(ti["end_date"]) - changed
    # Releasing the rest would run n worker tasks; ending the run frees their triggers at once instead.
    stack.rest.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
    wait_for(
        lambda: _states(stack, dag_id, run_id).get("deferred", 0) == 0, 300, "the sensors to be ended", 3
    )
    return {
        "sensors": size,
        "seconds_to_all_deferred": round(all_deferred_after, 1),
        "worker_slots_used_max": max(slots),
        "default_pool_occupied": default_pool.get("occupied_slots"),
        "triggerer_cpu_share_of_one_core": round(cpu_share, 3),
        "triggerer_rss_mb": round(rss / 2**20, 1),
        "triggerer_rss_growth_mb": round((rss - rss_before) / 2**20, 1),
        "change_to_sensor_success_s": round(fired, 3),
    }


def run(stack, executor: str, sizes: list[int]) -> dict[str, Any]:
    return {"executor": executor, "sizes": [measure(stack, size) for size in sizes]}


def print_report(result: dict[str, Any]) -> None:
    record.table(
        [
            "sensors",
            "to all deferred s",
            "worker slots",
            "triggerer CPU",
            "RSS MB",
            "RSS growth MB",
            "fire s",
        ],
        [
            [
                s["sensors"],
                s["seconds_to_all_deferred"],
                s["worker_slots_used_max"],
                s["triggerer_cpu_share_of_one_core"],
                s["triggerer_rss_mb"],
                s["triggerer_rss_growth_mb"],
                s["change_to_sensor_success_s"],
            ]
            for s in result["sizes"]
        ],
        title="Deferred sensors on one triggerer (CPU as a share of one core)",
    )
