"""Every test runs against a throwaway Airflow home, database and storage root, never the developer's.

Airflow reads its configuration when first imported, so the environment is set here, when pytest
loads this file, before any test module imports ``airflow``.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mlpipe-test-home-"))
TEST_DAGS_FOLDER = AIRFLOW_HOME / "dags"  # DAGs written by tests for dag.test(); the real ones load by path
TEST_DAGS_FOLDER.mkdir()

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__API__BASE_URL": "http://airflow.test:8080",
        "PIPELINE_STORAGE_ROOT": str(AIRFLOW_HOME / "data"),
        # As the local stack runs tasks (scripts/stack/config.py): OpenMP threads of the models fitted
        # in tests would otherwise wait on each other on 2 busy cores.
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
)


TIERS = ("dags", "unit", "bench", "integration", "own_data", "watcher", "production", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tiers in order, fastest first, so a running stack never shares the machine with the
    unit tier's timing-sensitive tests: each tier's stack is package-scoped and stops with its tier."""

    def tier(item: pytest.Item) -> int:
        parts = item.path.relative_to(Path(__file__).parent).parts
        return TIERS.index(parts[0]) if parts[0] in TIERS else len(TIERS)

    items.sort(key=tier)


@pytest.fixture(scope="session")
def wait_for():
    """Poll a condition with a deadline (``tests.waits.wait_for``), for tests that watch a live stack."""
    from tests import waits

    return waits.wait_for


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
