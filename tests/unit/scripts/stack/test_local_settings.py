"""config/airflow_local_settings.py: only the processes that fork task processes preload libraries; the
scheduler ignores the exit report of a worker that parked a try resumed since."""

from __future__ import annotations

import importlib.util

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from scripts.stack.config import REPO


@pytest.fixture(scope="module")
def local_settings():
    spec = importlib.util.spec_from_file_location(
        "local_settings", REPO / "config" / "airflow_local_settings.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # under pytest's argv: preloads nothing
    return module


@pytest.mark.parametrize(
    ("argv", "preloads"),
    [
        (["airflow", "scheduler"], True),
        (["airflow", "celery", "worker"], True),
        (["airflow", "celery", "flower"], False),
        (["airflow", "api-server", "--port", "8080"], False),
        (["airflow", "dag-processor"], False),
        (["airflow", "triggerer"], False),
        (["airflow", "db", "migrate"], False),
        (["airflow"], False),
    ],
)
def test_only_task_forking_processes_preload(local_settings, argv, preloads):
    assert local_settings._forks_tasks(argv) is preloads


def test_no_cluster_policies_and_no_project_code(local_settings):
    assert local_settings.__all__ == []
    assert not any(name.split(".")[0] in ("include", "mlpipe", "dags") for name in local_settings.PRELOAD)


@pytest.mark.parametrize(
    ("argv", "patched"),
    [
        (["airflow", "scheduler"], True),
        (["airflow", "celery", "worker"], False),
        (["airflow", "api-server"], False),
        (["airflow", "triggerer"], False),
    ],
)
def test_only_the_scheduler_ignores_stale_reports(local_settings, argv, patched):
    assert local_settings._schedules(argv) is patched


KEY = TaskInstanceKey("deploy", "approval", "run", 1, -1)


@pytest.mark.parametrize(
    "state", [TaskInstanceState.SCHEDULED, TaskInstanceState.QUEUED, TaskInstanceState.RUNNING]
)
def test_a_parked_workers_exit_report_is_stale_once_its_try_is_resumed(local_settings, state):
    """The approval answered before the scheduler read the report of the worker that parked it (the
    scheduler's states and keys, as it reads them)."""
    reported = {KEY: TaskInstanceState.SUCCESS}
    assert local_settings.stale_reports(reported, [(KEY, state, "execute_complete")]) == {KEY}


@pytest.mark.parametrize(
    ("reported", "current"),
    [
        # killed outside Airflow: never parked, so no method to resume with
        ({KEY: "success"}, [(KEY, "running", None)]),
        # still parked: the report is about the process that parked it, and harmless
        ({KEY: "success"}, [(KEY, "awaiting_input", "execute_complete")]),
        # the resumed try ended and said so itself
        ({KEY: "success"}, [(KEY, "success", None)]),
        # a worker that failed is not a parked one
        ({KEY: "failed"}, [(KEY, "running", "execute_complete")]),
        # a report about an earlier try
        ({KEY: "success"}, [(KEY._replace(try_number=2), "running", "execute_complete")]),
    ],
)
def test_every_other_report_is_kept(local_settings, reported, current):
    assert local_settings.stale_reports(reported, current) == set()


PARKING_DAG = """
from airflow.sdk import DAG, task

with DAG("parks_and_resumes", schedule=None) as dag:

    @task(retries=1)
    def approval() -> None:
        pass

    approval()
"""


@pytest.mark.parametrize(("fixed", "after"), [(True, "running"), (False, "up_for_retry")])
def test_the_scheduler_keeps_a_resumed_try_running(local_settings, load_dag, monkeypatch, fixed, after):
    """The scheduler's own handling of executor reports, on the test database: the report of the worker
    that parked a try, read once the try runs again. Without the fix, Airflow 3.3.2 fails the try
    (apache/airflow#72716); once an Airflow release does not, the fix can go."""
    from airflow.executors.local_executor import LocalExecutor
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dagbag import DBDagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run = load_dag("parks_and_resumes", PARKING_DAG).test()
    # Put back at teardown whatever the fix replaces: this process's scheduler code is Airflow's own.
    monkeypatch.setattr(
        SchedulerJobRunner, "process_executor_events", SchedulerJobRunner.__dict__["process_executor_events"]
    )
    if fixed:
        local_settings._ignore_stale_reports()
    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
        ).one()
        ti.state, ti.next_method = TaskInstanceState.RUNNING, "execute_complete"  # resumed after parking
        session.flush()
        executor = LocalExecutor()  # not started: only its event buffer is read
        executor.event_buffer[ti.key] = (TaskInstanceState.SUCCESS, None)

        SchedulerJobRunner.process_executor_events(executor, None, DBDagBag(), session)

        session.flush()
        session.refresh(ti)
        assert ti.state == after
