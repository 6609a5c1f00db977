"""config/airflow_local_settings.py: only the processes that fork task processes preload libraries."""

from __future__ import annotations

import importlib.util

import pytest

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
