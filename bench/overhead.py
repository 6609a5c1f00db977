"""Per-task overhead: a chain of N no-op tasks (``bench/dags/noop_chain.py``), seconds per task."""

from __future__ import annotations

import statistics
from typing import Any

from bench import record
from bench.latency import _t
from bench.stack import wait_for


def analyse(run: dict, tis: list[dict]) -> dict[str, Any]:
    """Seconds per task over the run, and how they split into the tasks' own time and the gaps."""
    tis = sorted(tis, key=lambda t: t["task_id"])
    starts = [_t(t["start_date"]) for t in tis]
    ends = [_t(t["end_date"]) for t in tis]
    gaps = [s - e for s, e in zip(starts[1:], ends[:-1], strict=True)]
    span = _t(run["end_date"]) - _t(run["start_date"])
    n = len(tis)
    return {
        "tasks": n,
        "run_seconds": round(span, 3),
        "seconds_per_task": round(span / n, 3),
        "task_duration_p50": round(statistics.median(e - s for s, e in zip(starts, ends, strict=True)), 3),
        "gap_p50": round(statistics.median(gaps), 3) if gaps else None,
        "first_task_after_run_start": round(starts[0] - _t(run["start_date"]), 3),
    }


def run(stack, executor: str, repeats: int = 2) -> dict[str, Any]:
    results = []
    for _ in range(repeats):
        created = stack.rest.trigger("bench_noop_chain")
        run_id = created["dag_run_id"]

        def finished(run_id=run_id):
            r = stack.rest.get(f"/api/v2/dags/bench_noop_chain/dagRuns/{run_id}")
            return r if r["state"] in ("success", "failed") else None

        dag_run = wait_for(finished, 600, "the no-op chain to finish", interval=1)
        results.append(analyse(dag_run, stack.rest.task_instances("bench_noop_chain", run_id)))
    best = min(results, key=lambda r: r["seconds_per_task"])
    return {"executor": executor, **best, "runs": results}


def print_report(results: list[dict[str, Any]]) -> None:
    record.table(
        ["executor", "tasks", "run s", "s/task", "task p50 s", "gap p50 s"],
        [
            [
                r["executor"],
                r["tasks"],
                r["run_seconds"],
                r["seconds_per_task"],
                r["task_duration_p50"],
                r["gap_p50"],
            ]
            for r in results
        ],
        title="Per-task overhead: a chain of no-op tasks (best of the repeats)",
    )
