"""The limit: the pipeline's chain as one plain Python process, calling include/ directly on the same
kind of batch the latency benchmark publishes (download over HTTP, land, validate, features, train,
register, compare, promote). ``cold`` is a fresh interpreter including its imports; ``warm`` is a
batch in a process that has already handled one (what an orchestrator could at best approach)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import record

STEPS = ("download", "land", "validate", "features", "train", "register", "compare", "promote")


def chain_once(root: str, url: str, source_dir: Path, seed: int, rows: int) -> dict[str, float]:
    """Publish one batch, then run the chain on it; seconds per step (publishing not counted)."""
    from include import promotion, registry
    from include.candidate import train_candidate
    from include.config import load_schema
    from include.features import build_features
    from include.ingest import land, receive
    from include.metrics import metric
    from include.training import TrainingConfig
    from include.validation import validate_and_quarantine
    from scripts.publish import publish

    publish(source_dir, seed=seed, rows=rows)
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[step] = now - clock
        clock = now

    schema = load_schema()
    with receive(url, {"url": url, "validators": {}}, timeout=30, max_bytes=50_000_000) as batch:
        lap("download")
        landed = land(root, batch)
        lap("land")
    report = validate_and_quarantine(root, [landed["batch_id"]], schema)
    assert report["valid"], report
    lap("validate")
    build_features(root, report["valid"], schema)
    lap("features")
    config = TrainingConfig(
        model_type="random_forest",
        hyperparameters={"n_estimators": 100, "max_depth": None},
        metric=metric("accuracy"),
        threshold=0.8,
        batch_ids=[],
        window=1,
    )
    trained = train_candidate(root, config)
    lap("train")
    metadata = registry.register(root, trained["version"])
    registry.discard_staged(root, trained["version"])
    lap("register")
    decision = promotion.compare_with_production(root, schema, registry.candidate_event(metadata), 1.0)
    lap("compare")
    registry.production_event(root, decision["version"], decision["reason"])
    lap("promote")
    times["total"] = sum(times[s] for s in STEPS)
    return times


def _in_process(batches: int, rows: int) -> dict[str, Any]:
    """Run ``batches`` chains in this process (the first one cold); print JSON with their times."""
    started = time.perf_counter()
    from scripts.data_source import DataSource

    with tempfile.TemporaryDirectory(prefix="bench-limit-") as home:
        source_dir = Path(home) / "source"
        source_dir.mkdir()
        source = DataSource(source_dir).start()
        try:
            root = Path(home, "data").as_uri()
            runs = []
            for i in range(batches):
                runs.append(chain_once(root, source.url("iris.csv"), source_dir, 1000 + i, rows))
                if i == 0:
                    runs[0]["process_start_to_end"] = time.perf_counter() - started
        finally:
            source.stop()
    return {"runs": runs}


def run(batches: int = 4, rows: int = 120) -> dict[str, Any]:
    """A fresh interpreter runs ``batches`` chains: the first is the cold figure (imports included,
    interpreter start excluded), the median of the rest the warm one."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.limit", str(batches), str(rows)],
        capture_output=True,
        text=True,
        cwd=record.REPO,
        check=True,
    )
    wall = time.perf_counter() - started
    runs = json.loads(out.stdout.strip().splitlines()[-1])["runs"]
    cold, warm = runs[0], runs[1:] or runs
    return {
        "rows": rows,
        "batches": batches,
        "cold_with_imports_s": round(cold["process_start_to_end"], 3),
        "cold_chain_s": round(cold["total"], 3),
        "fresh_interpreter_wall_s": round(wall, 3),
        "warm_chain_s": round(statistics.median(r["total"] for r in warm), 3),
        "warm_steps_s": {s: round(statistics.median(r[s] for r in warm), 4) for s in STEPS},
    }


def print_report(result: dict[str, Any], orchestrated: dict[str, float] | None = None) -> None:
    record.table(
        ["step", "warm s"],
        [[s, v] for s, v in result["warm_steps_s"].items()],
        title=f"Plain Python chain, {result['rows']} rows (median of {result['batches'] - 1} warm batches)",
    )
    rows = [
        ["warm chain", result["warm_chain_s"]],
        ["cold chain (imports included)", result["cold_with_imports_s"]],
        ["fresh interpreter, wall", result["fresh_interpreter_wall_s"]],
    ]
    for executor, p50 in (orchestrated or {}).items():
        rows.append([f"{executor} p50 / warm plain", round(p50 / result["warm_chain_s"], 1)])
        rows.append([f"{executor} p50 / cold plain", round(p50 / result["cold_with_imports_s"], 1)])
    record.table(["figure", "value"], rows, title="The limit")


if __name__ == "__main__":
    print(json.dumps(_in_process(int(sys.argv[1]), int(sys.argv[2]))))
