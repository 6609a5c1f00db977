"""
### bench_deferred_<n>: n sensors waiting at once on the triggerer (benchmark only)

Each sensor waits for its own file `<BENCH_DEFER_DIR>/<n>/<i>` to appear. It starts on the triggerer
(`start_from_trigger`), so no worker process ever runs it while it waits; when the file appears the
trigger fires and a worker runs `execute_complete`, which returns at once. Sizes come from
`BENCH_DEFER_SIZES` (default `200,500`), the poll interval from `BENCH_DEFER_POLL` (default 3 s).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import BaseSensorOperator, dag
from airflow.triggers.base import StartTriggerArgs

DEFER_DIR = os.environ.get("BENCH_DEFER_DIR", "/tmp/bench-defer")
POLL = float(os.environ.get("BENCH_DEFER_POLL", "3"))


class FileAppearsSensor(BaseSensorOperator):
    """Waits on the triggerer for a file to appear (the standard provider's ``FileTrigger``)."""

    start_from_trigger = True

    def __init__(self, *, path: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls="airflow.providers.standard.triggers.file.FileTrigger",
            trigger_kwargs={"filepath": path, "poke_interval": POLL},
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

    def poke(self, context) -> bool:
        return os.path.exists(self.path)

    def execute_complete(self, context, event=None) -> None:
        return None


def deferred_dag(size: int):
    @dag(
        dag_id=f"bench_deferred_{size}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["bench"],
        doc_md=__doc__,
        max_active_tasks=size,
    )
    def sensors():
        for i in range(size):
            FileAppearsSensor(task_id=f"wait_{i:04d}", path=f"{DEFER_DIR}/{size}/{i}")

    return sensors()


for _size in (int(s) for s in os.environ.get("BENCH_DEFER_SIZES", "200,500").split(",") if s.strip()):
    deferred_dag(_size)
