"""A smoke run of the benchmark harness with tiny sizes: it produces figures and writes records, not
how fast. The benchmarks that need a running Airflow are checked through their analysis code on REST
data recorded from a real run (tests/bench/data), since starting a stack here would cost minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import (
    arrival,
    datasets,
    etl_scale,
    latency,
    limit,
    overhead,
    parse_train,
    record,
    serving,
    sources,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_record_has_machine_and_figures(results):
    path = record.append("smoke", {"value": 1.5})
    [line] = path.read_text().splitlines()
    entry = json.loads(line)
    assert path.parent == results
    assert entry["value"] == 1.5
    assert {"cores", "memory_gb", "load_avg", "airflow", "git_revision"} <= set(entry["machine"])
    assert record.summary([1, 2, 3, 4])["p50"] == 2.5


def test_latency_breakdown_adds_up_on_recorded_rest_data(results):
    recorded = json.loads((DATA / "latency_samples.json").read_text())
    samples, path = recorded["samples"], [tuple(step) for step in recorded["critical_path"]]
    for sample in samples:
        part = latency.breakdown(sample, path)
        assert sum(part["totals"].values()) == pytest.approx(part["total"], abs=0.01)
        assert part["totals"]["task"] > 0
        assert part["stages"][0][1] == "detection"
    figures = latency.aggregate(samples, path)
    assert figures["latency"]["n"] == len(samples)
    assert "train" in figures["per_stage_p50"]
    latency.print_report([{"executor": "recorded", **figures}])
    assert record.append("latency", figures).exists()


def test_overhead_analysis():
    start = "2026-01-01T00:00:00+00:00"
    tis = [
        {
            "task_id": f"noop_{i:03d}",
            "start_date": f"2026-01-01T00:00:{2 * i + 1:02d}+00:00",
            "end_date": f"2026-01-01T00:00:{2 * i + 2:02d}+00:00",
        }
        for i in range(3)
    ]
    figures = overhead.analyse({"start_date": start, "end_date": "2026-01-01T00:00:06+00:00"}, tis)
    assert figures == {
        "tasks": 3,
        "run_seconds": 6.0,
        "seconds_per_task": 2.0,
        "task_duration_p50": 1.0,
        "gap_p50": 1.0,
        "first_task_after_run_start": 1.0,
    }


def test_plain_chain_limit(results):
    figures = limit.run(batches=2)
    assert figures["warm_chain_s"] > 0
    assert set(figures["warm_steps_s"]) == set(limit.STEPS)
    limit.print_report(figures, {"recorded": 10.0})


def test_etl_scale_against_bare_pyarrow(results):
    figures = etl_scale.run([2000], repeats=2)
    [entry] = figures["sizes"]
    assert entry["bare"]["peak_rss_mb"] > 0
    assert entry["pipeline"]["valid"] is True
    assert entry["pipeline_over_bare_rate"] > 0
    assert [len(entry["runs"][side]) for side in ("bare", "pipeline")] == [2, 2]
    etl_scale.print_report(figures)


def test_parse_and_training(results):
    figures = {
        "parse": parse_train.parse_times([record.REPO / "dags" / "ingest.py"], repeats=1),
        "training": [parse_train.training(rows=120, repeats=1)],
    }
    assert figures["parse"][0]["heavy_imports"] == []
    assert figures["training"][0]["plain_sklearn"] > 0
    parse_train.print_report(figures)


def test_datasets_train_each_table_and_compare_with_iris(results):
    figures = datasets.run(rows=300, model_types=["random_forest", "linear"], repeats=1)
    cells = {(c["dataset"], c["model_type"]): c for c in figures["cells"]}
    assert set(cells) == {
        (d, m) for d in ("iris", "churn", "deliveries") for m in ("random_forest", "linear")
    }
    assert cells["iris", "random_forest"]["train_vs_iris_rf"] == 1.0
    assert cells["deliveries", "linear"]["quality_metric"] == "r2"
    assert cells["churn", "linear"]["quality_metric"] == "accuracy"
    assert all(c["train_s"] > 0 and 0 < c["quality"] <= 1 for c in cells.values())
    datasets.print_report(figures)


def test_serving_servers_answer_and_are_compared_with_the_one_before(results):
    figures = serving.run(
        clients=[1, 2],
        rows=[1, 3],
        workers=[1],
        model_types=["linear"],
        seconds=0.3,
        warmup=0.1,
        kinds=["old", "before", "new"],
    )
    cells = figures["cells"]
    servers = {c["server"] for c in cells}
    assert "FastAPI + ONNX Runtime, 1 worker" in servers
    assert {(c["server"], c["rows"], c["clients"]) for c in cells} == {
        (s, r, c) for s in servers for r in (1, 3) for c in (1, 2)
    }
    for cell in cells:
        assert cell["model_type"] == "linear"
        assert cell["errors"] == 0
        assert cell["requests"] > 0
        assert cell["rows_per_s"] == pytest.approx(cell["rps"] * cell["rows"], rel=0.01)
        assert cell["p99_ms"] >= cell["p50_ms"] > 0
        assert cell["server_cpu_ms_per_request"] > 0
        assert ("rps_vs_reference" in cell) == (figures["reference"] is not None)
    serving.print_report(figures)
    assert record.append("serving", figures).exists()


def test_arrival_polls_before_and_after_the_watermark(results):
    figures = arrival.run([20], ["local"], polls=1)
    [row] = figures["rows"]
    for side in arrival.SIDES:
        assert row[side]["idle_wall_s"] > 0
        assert row[side]["detect_s"] > 0
    arrival.print_report(figures)
    assert record.append("arrival", figures).exists()


def test_many_sources_watched_at_once_are_each_polled_and_compared_with_one(results):
    figures = sources.run([1, 2], ["folders", "urls"], files=5, idle_seconds=2)
    rows = {(r["kind"], r["sources"]): r for r in figures["rows"]}
    assert set(rows) == {("folders", 1), ("folders", 2), ("urls", 1), ("urls", 2)}
    for row in rows.values():
        assert row["polls_per_source_per_s"] > 0
        assert row["detect_s"] > 0
    assert rows[("folders", 1)]["cpu_per_source_vs_one"] == 1.0
    sources.print_report(figures)
    assert record.append("sources", figures).exists()


def test_make_bench_entry_point_runs_the_named_benchmarks_and_refuses_unknown_ones(results):
    env = {**os.environ, "BENCH_RESULTS_DIR": str(results), "BENCH_LIMIT_BATCHES": "2"}

    def bench(*names: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "bench", *names]
        return subprocess.run(command, cwd=record.REPO, env=env, capture_output=True, text=True, timeout=300)

    ran = bench("limit")
    assert ran.returncode == 0, ran.stderr
    assert "machine: " in ran.stdout
    [line] = (results / "limit.jsonl").read_text().splitlines()
    assert json.loads(line)["batches"] == 2
    assert sorted(path.name for path in results.iterdir()) == ["limit.jsonl"]

    refused = bench("latency", "speed")
    assert refused.returncode != 0
    assert "unknown benchmark(s) ['speed']" in refused.stderr
    assert sorted(path.name for path in results.iterdir()) == ["limit.jsonl"]
