"""
### bench_noop_chain: N no-op Python tasks in a chain (benchmark only, not part of the pipeline)

Measures what the orchestrator costs per task: every task is a real task-runner process that does
nothing. N comes from `BENCH_NOOP_TASKS` (default 10) when the file is parsed.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import chain, dag, task


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["bench"], doc_md=__doc__)
def bench_noop_chain():
    @task
    def noop() -> None:
        return None

    chain(
        *[
            noop.override(task_id=f"noop_{i:03d}")()
            for i in range(int(os.environ.get("BENCH_NOOP_TASKS", "10")))
        ]
    )


bench_noop_chain()
