"""Airflow imports ``airflow_local_settings`` from ``$AIRFLOW_HOME/config`` (or ``PYTHONPATH``) in every
one of its processes. Here it makes the processes that fork task processes load the tasks' heavy
third-party libraries once, up front. The compose file mounts this folder as ``/opt/airflow/config``
(and the image copies it); the local stack puts it on ``PYTHONPATH``.

A task process is forked: by the LocalExecutor's workers (themselves forked from the scheduler) and by
the Celery worker's pool. A module its parent already imported costs it nothing. The pipeline's tasks
import pandas, pyarrow and scikit-learn, 1.5-2 s per task on 2 cores, on seven of the ten tasks
between a publish and the production pointer; preloaded, register and promote went from ~2 s to
~0.3 s each (bench/latency.py, docs/performance.md). The price is ~200 MB more RSS in the scheduler
or Celery worker, shared copy-on-write with the task processes.

Only third-party libraries are loaded, never ``include/`` or ``plugins/``: those change while a stack
runs, and a forked task must see the code as it is on disk. The API server, dag-processor and
triggerer skip this (DAG parsing stays light: tests/dags checks it).

In the scheduler it also keeps a resumed task from being failed by a stale report of the worker
process that parked it (apache/airflow#72716; the fix proposed upstream, apache/airflow#72767, is the
same rule and is not in 3.3.2): see :func:`stale_reports`. Without it a person who answers
``deploy``'s ``approval`` within seconds of the request loses the answer: the try fails, and the
next one asks again.
"""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__: list[str] = []  # no cluster policies here

PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "fsspec",
    "s3fs",  # when installed (requirements-s3.txt): 0.3-0.5 s of imports for a task on an S3 root
    "httpx",
    "joblib",
    "scipy.stats",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    # train's registration converts the candidate to ONNX and checks it (include/onnx_model.py):
    # skl2onnx alone is ~1-3 s of imports on 2 cores.
    "skl2onnx",
    "onnxruntime",
)


def _forks_tasks(argv: list[str]) -> bool:
    """True for ``airflow scheduler`` (the LocalExecutor forks from it) and ``airflow celery worker``."""
    args = argv[1:3]
    return args[:1] == ["scheduler"] or args == ["celery", "worker"]


def _schedules(argv: list[str]) -> bool:
    """True for ``airflow scheduler``, the process that reads the executors' reports."""
    return argv[1:2] == ["scheduler"]


# A task resumed on the same try after parking (deferred, or Human-in-the-loop's awaiting_input):
# it has a `next_method` until the try ends.
RESUMED_STATES = ("scheduled", "queued", "running")


def stale_reports(reported: Mapping[Any, str], current: Iterable[tuple[Any, str, str | None]]) -> set:
    """The executor's reports (``reported``: task instance key with try number -> state) that are about
    the worker process that parked a try which has been resumed since (``current``: each task
    instance's key, state and ``next_method``), not about the try now scheduled, queued or running.

    A task that parks ends its worker process, and the executor reports that exit as "success" for
    the try. When the answer (or the trigger event) resumes the try before the scheduler has read
    that report (up to `[workers] min_heartbeat_interval`, 5 s, late: whenever the supervisor sees
    the task's sockets close before its process has exited, it waits that long to look again),
    Airflow 3.3.2 ignores it only while the try is still ``scheduled``:
    once ``queued`` or ``running`` it takes the report for a task killed outside Airflow and fails
    the try. A try that really ended reports its own state first, and its ``next_method`` is gone."""
    return {
        key
        for key, state, next_method in current
        if next_method is not None and state in RESUMED_STATES and reported.get(key) == "success"
    }


def _drop_stale_reports(executor: Any, session: Any) -> None:
    """Take the :func:`stale_reports` out of ``executor``'s event buffer before the scheduler reads it."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancekey import TaskInstanceKey
    from sqlalchemy import select

    reported = {
        key: state for key, (state, _) in executor.event_buffer.items() if isinstance(key, TaskInstanceKey)
    }
    successes = [key for key, state in reported.items() if state == "success"]
    if not successes:
        return
    tis = session.scalars(select(TaskInstance).where(TaskInstance.filter_for_tis(successes)))
    for key in stale_reports(reported, [(ti.key, ti.state, ti.next_method) for ti in tis]):
        del executor.event_buffer[key]
        logging.getLogger(__name__).info("Ignored the parked worker's exit report for resumed %s", key)


def _ignore_stale_reports() -> None:
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    process = SchedulerJobRunner.process_executor_events.__func__

    @functools.wraps(process)
    def process_executor_events(cls, executor, job_id, scheduler_dag_bag, session):
        _drop_stale_reports(executor, session)
        return process(cls, executor, job_id, scheduler_dag_bag, session)

    SchedulerJobRunner.process_executor_events = classmethod(process_executor_events)


if _forks_tasks(sys.argv):
    for _name in PRELOAD:
        try:
            importlib.import_module(_name)
        except ImportError:  # a library the image does not have: its tasks import (and fail) as before
            continue
    # Move what was just loaded out of the collector's sight: a forked child's first collection would
    # otherwise write to every object's header and copy the whole preloaded heap (measured: 100-185 ms
    # per fork with these libraries, 7 ms frozen).
    gc.freeze()

if _schedules(sys.argv):
    _ignore_stale_reports()
