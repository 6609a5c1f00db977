"""Publish to production pointer over consecutive batches, with a per-stage breakdown from the REST API.

For each batch: publish it at the stack's data source (time = the file's mtime, the moment of the
atomic rename), wait until ``models/production.json`` names a new version (time = its
``promoted_at``), then read the runs, task instances and asset events of the chain back from the REST
API and split the interval into detection, scheduling gaps and each task's own duration.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import record
from bench.stack import wait_for
from include import layout, storage

# The chain from a publish to the production pointer: (dag, task) in order. The pointer is written
# inside ``promote``; the tasks after it (reload, e-mail) and the branches not taken are off the path.
CRITICAL_PATH = (
    ("ingest", "wait_for_new_data"),
    ("ingest", "land_batch"),
    ("ingest", "publish_batches"),
    ("etl", "validate_batches"),
    ("etl", "build_features"),
    ("train_validate", "train"),
    ("train_validate", "check_threshold"),
    ("train_validate", "register"),
    ("deploy", "compare_with_production"),
    ("deploy", "promote"),
)
# Which asset event starts which stage, and whose run produced it.
CHAIN_ASSETS = {
    "ingest": "raw_batches",
    "etl": "features",
    "train_validate": "model_candidate",
    "deploy": "production_model",
}
REACTIONS = ("asset_triggered", "manual")


def _t(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def breakdown(sample: dict[str, Any], path: tuple[tuple[str, str], ...] = CRITICAL_PATH) -> dict[str, Any]:
    """Split one batch's publish-to-pointer interval into stages, from what the REST API said.

    ``sample`` holds ``published_at`` and ``pointer_at`` (epoch seconds), ``runs``
    ({dag_id: {"run": dag run, "tis": [task instances]}}) and ``events`` ({asset: event}), as recorded
    by :func:`collect`. Returns ``stages`` (ordered (name, kind, seconds), the kinds being
    ``detection``, ``gap`` and ``task``) and the totals per kind; the stages add up to ``total``.
    """
    published, pointer = sample["published_at"], sample["pointer_at"]
    stages: list[tuple[str, str, float]] = []
    previous_end = published
    previous_dag = None
    for dag_id, task_id in path:
        run = sample["runs"][dag_id]
        ti = next(t for t in run["tis"] if t["task_id"] == task_id)
        start, end = _t(ti["start_date"]), _t(ti["end_date"])
        if task_id == "wait_for_new_data":
            # The sensor started long before the publish and waited deferred: only its end counts.
            stages.append(("detection: publish -> sensor fired", "detection", end - published))
        else:
            if dag_id != previous_dag:
                run_start = _t(run["run"]["start_date"])
                queued = _t(run["run"].get("queued_at")) or run_start
                stages.append((f"{previous_dag} event -> {dag_id} run queued", "gap", queued - previous_end))
                stages.append((f"{dag_id} run queued -> running", "gap", run_start - queued))
                stages.append((f"{dag_id} run start -> {task_id} start", "gap", start - run_start))
            else:
                stages.append((f"gap before {task_id}", "gap", start - previous_end))
            if task_id == "promote":
                stages.append(("promote (to pointer written)", "task", pointer - start))
                end = pointer
            else:
                stages.append((task_id, "task", end - start))
        previous_end, previous_dag = end, dag_id
    totals = {kind: 0.0 for kind in ("detection", "gap", "task")}
    for _name, kind, seconds in stages:
        totals[kind] += seconds
    return {
        "total": pointer - published,
        "stages": [(n, k, round(s, 3)) for n, k, s in stages],
        "totals": {k: round(v, 3) for k, v in totals.items()},
    }


def aggregate(
    samples: list[dict[str, Any]], path: tuple[tuple[str, str], ...] = CRITICAL_PATH
) -> dict[str, Any]:
    """Latency percentiles over the samples, and each stage's median."""
    parts = [breakdown(s, path) for s in samples]
    names = [(n, k) for n, k, _s in parts[0]["stages"]] if parts else []
    per_stage = {
        name: {"kind": kind, "p50": round(statistics.median(p["stages"][i][2] for p in parts), 3)}
        for i, (name, kind) in enumerate(names)
    }
    return {
        "latency": record.summary([p["total"] for p in parts]),
        "per_stage_p50": per_stage,
        "kind_p50": {
            kind: round(statistics.median(p["totals"][kind] for p in parts), 3)
            for kind in ("detection", "gap", "task")
        }
        if parts
        else {},
    }


# -- against a running stack ------------------------------------------------------------------------


def _pointer(stack) -> dict | None:
    url = layout.production_pointer(stack.config.storage_root)  # a folder or an object store
    return storage.read_json(url) if storage.exists(url) else None


def _sensor_deferred(stack) -> bool:
    runs = stack.rest.dag_runs("ingest")
    if not runs:
        return False
    tis = stack.rest.task_instances("ingest", runs[0]["dag_run_id"])
    return any(t["task_id"] == "wait_for_new_data" and t["state"] == "deferred" for t in tis)


def _idle(stack) -> bool:
    for dag_id in ("etl", "train_validate", "deploy", "monitor"):
        if stack.rest.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")["queued_events"]:
            return False
        if any(
            r["state"] in ("queued", "running") and r["run_type"] in REACTIONS
            for r in stack.rest.dag_runs(dag_id)
        ):
            return False
    return _sensor_deferred(stack)


def wait_idle(stack, timeout: float = 240) -> None:
    wait_for(lambda: _idle(stack), timeout, "the pipeline to be idle with the sensor deferred", interval=1)


def _event_after(stack, asset: str, since: float) -> dict | None:
    events = [e for e in stack.rest.asset_events(asset) if _t(e["timestamp"]) >= since]
    return events[-1] if events else None  # the oldest one after ``since``


def collect(stack, published_at: float, pointer: dict) -> dict[str, Any]:
    """What the REST API says about the chain one batch went through (waits for deploy's events)."""
    events = {}
    for asset in CHAIN_ASSETS.values():
        events[asset] = wait_for(
            lambda a=asset: _event_after(stack, a, published_at - 1), 120, f"{asset} event"
        )
    runs = {}
    for dag_id, asset in CHAIN_ASSETS.items():
        run_id = events[asset]["source_run_id"]
        run = stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        runs[dag_id] = {"run": run, "tis": stack.rest.task_instances(dag_id, run_id)}
    return {
        "published_at": published_at,
        "pointer_at": _t(pointer["promoted_at"]),
        "version": pointer["version"],
        "runs": runs,
        "events": events,
    }


def publish_and_wait(stack, seed: int, timeout: float = 300) -> dict[str, Any]:
    before = (_pointer(stack) or {}).get("version")
    path = stack.publish(seed=seed)
    published_at = path.stat().st_mtime
    pointer = wait_for(
        lambda: (p := _pointer(stack)) and p["version"] != before and p,
        timeout,
        "a new production pointer",
        0.2,
    )
    return collect(stack, published_at, pointer)


def run(stack, executor: str, batches: int, raw_out: Path | None = None) -> dict[str, Any]:
    """Publish ``batches`` good batches one after another (each once the pipeline is idle again) after
    one warm-up batch; return the aggregate figures and the raw samples."""
    # Every candidate is promoted, so each batch reaches the pointer: the benchmark measures the
    # promote path; champion/challenger decisions are the tests' business.
    stack.rest.set_variable("deploy_margin", "1.0")
    wait_idle(stack)
    publish_and_wait(stack, seed=1000)  # warm-up: first registration, first promotion, cold caches
    samples = []
    for i in range(batches):
        wait_idle(stack)
        time.sleep(1)
        sample = publish_and_wait(stack, seed=1001 + i)
        samples.append(sample)
        part = breakdown(sample)
        print(
            f"  {executor} batch {i + 1}/{batches}: {part['total']:.2f} s "
            f"(detection {part['totals']['detection']:.2f}, gaps {part['totals']['gap']:.2f}, "
            f"tasks {part['totals']['task']:.2f})",
            flush=True,
        )
    if raw_out is not None:
        raw_out.parent.mkdir(parents=True, exist_ok=True)
        raw_out.write_text(json.dumps(samples, indent=1, default=str))
    return {"executor": executor, **aggregate(samples), "samples": [breakdown(s) for s in samples]}


def stack_name(result: dict[str, Any]) -> str:
    """The executor a result was measured on, and its storage when that is not a local folder."""
    storage = result.get("storage", "local")
    return result["executor"] if storage == "local" else f"{result['executor']}, {storage}"


def print_report(results: list[dict[str, Any]]) -> None:
    record.table(
        ["executor", "n", "p50 s", "p95 s", "max s", "detection p50", "gaps p50", "tasks p50"],
        [
            [
                stack_name(r),
                r["latency"]["n"],
                r["latency"]["p50"],
                r["latency"]["p95"],
                r["latency"]["max"],
                r["kind_p50"].get("detection"),
                r["kind_p50"].get("gap"),
                r["kind_p50"].get("task"),
            ]
            for r in results
        ],
        title="Publish -> production pointer",
    )
    names = list(results[0]["per_stage_p50"]) if results else []
    record.table(
        ["stage (p50 s)", *[stack_name(r) for r in results]],
        [[name, *[r["per_stage_p50"].get(name, {}).get("p50") for r in results]] for name in names],
        title="Per-stage breakdown (median over batches)",
    )
