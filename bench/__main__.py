"""``python -m bench [NAME ...]``: run the benchmarks (all by default) and append their records to
``bench/results/``. Names: latency, overhead, deferral (these three share one stack per executor),
limit, etl, parse.

Sizes come from the environment, so a quick run is one variable away:

    BENCH_BATCHES=10            batches per executor for the latency benchmark
    BENCH_EXECUTORS=embedded,celery
    BENCH_NOOP_TASKS=10         length of the no-op chain
    BENCH_DEFER_SIZES=200,500   sensors deferred at once
    BENCH_DEFER_EXECUTORS=embedded
    BENCH_ETL_ROWS=1000000,10000000
    BENCH_ETL_REPEATS=3         runs of each side per size (the fastest counts)
    BENCH_LIMIT_BATCHES=4       plain-Python chains (the first is the cold one)
    BENCH_TRAIN_ROWS=120,10000
    BENCH_RESULTS_DIR=bench/results
"""

from __future__ import annotations

import sys

from bench import etl_scale, limit, orchestrated, parse_train, record

STACK = {"latency", "overhead", "deferral"}
NAMES = ("limit", "etl", "parse", *sorted(STACK))


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
    if names & STACK:
        result = orchestrated.main(names & STACK)
        if plain and result["latency"]:
            p50s = {r["executor"]: r["latency"]["p50"] for r in result["latency"]}
            record.append("limit_ratio", {"plain": plain, "orchestrated_p50": p50s})
            limit.print_report(plain, p50s)


if __name__ == "__main__":
    main(sys.argv[1:])
