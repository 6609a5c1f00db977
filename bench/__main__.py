"""``python -m bench [NAME ...]``: run the benchmarks (all by default) and append their records to
``bench/results/``. Names: latency, overhead, deferral (these three share one stack per executor),
limit, etl, parse, datasets, serving, arrival, sources (many sources watched at once), watcher (the
sensor against the AssetWatcher), demo
(``make demo`` in a fresh clone, install included, and the install alone by pip and by uv).

Sizes come from the environment, so a quick run is one variable away:

    BENCH_BATCHES=10            batches per executor for the latency benchmark
    BENCH_EXECUTORS=embedded,celery
    BENCH_STORAGE=local         data and models: local, s3 (on a local S3 emulator) or local,s3
    BENCH_NOOP_TASKS=10         length of the no-op chain
    BENCH_DEFER_SIZES=200,500   sensors deferred at once
    BENCH_DEFER_EXECUTORS=embedded
    BENCH_ETL_ROWS=1000000,10000000
    BENCH_ETL_REPEATS=3         runs of each side per size (the fastest counts)
    BENCH_LIMIT_BATCHES=4       plain-Python chains (the first is the cold one)
    BENCH_TRAIN_ROWS=120,10000
    BENCH_DATASET_ROWS=2000         rows of each own-data table (Iris: its 150 flowers at most)
    BENCH_SERVING_CLIENTS=1,8,32    concurrent clients per model-server measurement
    BENCH_SERVING_ROWS=1,1000       rows per POST /predict (1,000: a batch, the server's max_rows)
    BENCH_SERVING_WORKERS=2         uvicorn workers of the FastAPI servers (the old server has none)
    BENCH_SERVING_SERVERS=before,new   old (http.server), before (FastAPI before ONNX Runtime), new,
                                    new-sklearn (new with --runtime scikit-learn)
    BENCH_SERVING_MODELS=random_forest,linear   model types served
    BENCH_SERVING_SECONDS=10        measured seconds per server x rows x clients, after 1 s of warm-up
    BENCH_ARRIVAL_SIZES=100,10000,100000   files already received in the drop folder
    BENCH_ARRIVAL_STORES=local,s3          local disk and/or the S3 emulator (moto)
    BENCH_ARRIVAL_POLLS=5                  idle polls measured per trigger
    BENCH_ARRIVAL_BEFORE_S3_MAX=10000      larger S3 sizes: the old poll measured once (moto is slow)
    BENCH_SOURCES_COUNTS=1,10,100          sources watched at once (the first count is the baseline)
    BENCH_SOURCES_KINDS=folders,urls       drop folders and/or single URLs
    BENCH_SOURCES_FILES=100                files already received in each drop folder
    BENCH_SOURCES_IDLE_SECONDS=30          idle window of the CPU measurement per count
    BENCH_WATCHER_FILES=5                  files dropped one at a time per side (sensor, AssetWatcher)
    BENCH_WATCHER_IDLE_SECONDS=30          idle window of the CPU measurement per side
    BENCH_WATCHER_ROUNDS=1                 stacks per side, the order alternating
    BENCH_RESULTS_DIR=bench/results
"""

from __future__ import annotations

import os
import sys

from bench import (
    arrival,
    datasets,
    demo,
    etl_scale,
    latency,
    limit,
    orchestrated,
    parse_train,
    record,
    serving,
    sources,
    watcher,
)

STACK = {"latency", "overhead", "deferral"}
NAMES = (
    "limit",
    "etl",
    "parse",
    "datasets",
    "serving",
    "arrival",
    "sources",
    "watcher",
    "demo",
    *sorted(STACK),
)


def main(argv: list[str]) -> None:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return
    names = set(argv) or set(NAMES)
    unknown = names - set(NAMES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {NAMES}")
    print(f"machine: {record.machine()}", flush=True)
    plain = None
    if "limit" in names:
        plain = limit.run(record.env_int("BENCH_LIMIT_BATCHES", 4))
        record.append("limit", plain)
        limit.print_report(plain)
    if "etl" in names:
        result = etl_scale.run(
            record.env_ints("BENCH_ETL_ROWS", "1000000,10000000"), record.env_int("BENCH_ETL_REPEATS", 3)
        )
        record.append("etl_scale", result)
        etl_scale.print_report(result)
    if "parse" in names:
        result = parse_train.run(record.env_ints("BENCH_TRAIN_ROWS", "120,10000"))
        record.append("parse_train", result)
        parse_train.print_report(result)
    if "datasets" in names:
        result = datasets.run(
            record.env_int("BENCH_DATASET_ROWS", 2000), ["random_forest", "linear", "gradient_boosting"]
        )
        record.append("datasets", result)
        datasets.print_report(result)
    if "serving" in names:
        result = serving.run(
            record.env_ints("BENCH_SERVING_CLIENTS", "1,8,32"),
            record.env_ints("BENCH_SERVING_ROWS", "1,1000"),
            record.env_ints("BENCH_SERVING_WORKERS", "2"),
            (os.environ.get("BENCH_SERVING_MODELS") or "random_forest,linear").split(","),
            seconds=record.env_int("BENCH_SERVING_SECONDS", 10),
            kinds=(os.environ.get("BENCH_SERVING_SERVERS") or "before,new").split(","),
        )
        record.append("serving", result)
        serving.print_report(result)
    if "arrival" in names:
        result = arrival.run(
            record.env_ints("BENCH_ARRIVAL_SIZES", "100,10000,100000"),
            (os.environ.get("BENCH_ARRIVAL_STORES") or "local,s3").split(","),
            record.env_int("BENCH_ARRIVAL_POLLS", 5),
            record.env_int("BENCH_ARRIVAL_BEFORE_S3_MAX", 10_000),
        )
        record.append("arrival", result)
        arrival.print_report(result)
    if "sources" in names:
        result = sources.run(
            record.env_ints("BENCH_SOURCES_COUNTS", "1,10,100"),
            (os.environ.get("BENCH_SOURCES_KINDS") or "folders,urls").split(","),
            record.env_int("BENCH_SOURCES_FILES", 100),
            record.env_int("BENCH_SOURCES_IDLE_SECONDS", 30),
        )
        record.append("sources", result)
        sources.print_report(result)
    if "watcher" in names:
        result = watcher.run(
            record.env_int("BENCH_WATCHER_FILES", 5),
            record.env_int("BENCH_WATCHER_IDLE_SECONDS", 30),
            record.env_int("BENCH_WATCHER_ROUNDS", 1),
        )
        record.append("watcher", result)
        watcher.print_report(result)
    if "demo" in names:
        result = demo.run()
        record.append("demo", result)
        demo.print_report(result)
        installed = demo.install_comparison()
        record.append("install", installed)
        print(f"install of requirements.txt into a new venv: {installed['seconds']}", flush=True)
    if names & STACK:
        result = orchestrated.main(names & STACK)
        if plain and result["latency"]:
            p50s = {latency.stack_name(r): r["latency"]["p50"] for r in result["latency"]}
            record.append("limit_ratio", {"plain": plain, "orchestrated_p50": p50s})
            limit.print_report(plain, p50s)


if __name__ == "__main__":
    main(sys.argv[1:])
