"""The benchmarks that need a running Airflow: latency, per-task overhead and deferred sensors, one
throwaway stack per executor (``BENCH_EXECUTORS``, default ``embedded,celery``) and storage
(``BENCH_STORAGE``: ``local``, the default, a folder in the stack's home; ``s3``, a bucket on a local
S3 emulator; ``local,s3`` both, one after the other)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench import deferral, latency, overhead, record
from bench.stack import running_stack, s3_root


def main(which: set[str] | None = None) -> dict[str, Any]:
    which = which or {"latency", "overhead", "deferral"}
    executors = [e for e in (os.environ.get("BENCH_EXECUTORS") or "embedded,celery").split(",") if e]
    defer_on = set((os.environ.get("BENCH_DEFER_EXECUTORS") or executors[0]).split(","))
    batches = record.env_int("BENCH_BATCHES", 10)
    noop_tasks = record.env_int("BENCH_NOOP_TASKS", 10)
    sizes = record.env_ints("BENCH_DEFER_SIZES", "200,500")
    storages = [s for s in (os.environ.get("BENCH_STORAGE") or "local").split(",") if s]
    # BENCH_EXTRA_ENV (JSON) overrides the stack's Airflow settings, e.g. the defaults before tuning,
    # for an A/B in one sitting; BENCH_LABEL names the variant in the records.
    overrides = json.loads(os.environ.get("BENCH_EXTRA_ENV") or "{}")
    label = os.environ.get("BENCH_LABEL") or ("custom" if overrides else "stack defaults")
    extra_env = {
        "BENCH_NOOP_TASKS": str(noop_tasks),
        "BENCH_DEFER_SIZES": ",".join(map(str, sizes)),
        **overrides,
    }
    lat, over, defer = [], [], []
    for executor, where in ((e, s) for e in executors for s in storages):
        with tempfile.TemporaryDirectory(prefix=f"bench-{executor}-{where}-") as home:
            started = time.monotonic()
            load_at_start = [round(x, 2) for x in os.getloadavg()]  # the record adds the load at its end
            with (
                s3_root(Path(home)) if where == "s3" else nullcontext(None) as root,
                running_stack(executor, Path(home), extra_env, root) as stack,
            ):
                print(
                    f"{executor} stack on {where} storage up in {time.monotonic() - started:.0f} s",
                    flush=True,
                )
                context = {"label": label, "overrides": overrides, "storage": where}
                if "latency" in which:
                    raw = record.results_dir() / "raw" / f"latency-{executor}-{where}-{int(time.time())}.json"
                    result = {**context, "load_avg_at_start": load_at_start}
                    result |= latency.run(stack, executor, batches, raw_out=raw)
                    lat.append(result)
                    record.append("latency", result)
                if "overhead" in which and where == storages[0]:
                    result = {**context, **overhead.run(stack, executor)}
                    over.append(result)
                    record.append("overhead", result)
                if "deferral" in which and executor in defer_on and where == storages[0]:
                    result = deferral.run(stack, executor, sizes)
                    defer.append(result)
                    record.append("deferral", result)
    if lat:
        latency.print_report(lat)
    if over:
        overhead.print_report(over)
    for result in defer:
        deferral.print_report(result)
    return {"latency": lat, "overhead": over, "deferral": defer}


if __name__ == "__main__":
    main()
