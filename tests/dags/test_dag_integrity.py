"""DAG integrity: every file imports, the five stages exist and are wired by assets as intended."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import BaseSensorOperator

from mlpipe.notifications import PerCallSmtpNotifier
from tests.asset_graph import declared_graph, published, scheduled_on

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
HEAVY_MODULES = {"pandas", "numpy", "sklearn", "pyarrow", "joblib", "scipy"}

# The task each stage starts with; every other task must wait for something (a task with no upstream
# would run at once, before the decisions it depends on).
FIRST_TASK = {
    "ingest": "wait_for_new_data",
    "etl": "validate_batches",
    "train_validate": "train",
    "deploy": "compare_with_production",
    "monitor": "check_production",
}

# The intended graph: which assets each stage is scheduled on and which it publishes.
INTENDED = {
    "ingest": {"scheduled_on": set(), "publishes": {"raw_batches"}},
    "etl": {"scheduled_on": {"raw_batches"}, "publishes": {"features"}},
    "train_validate": {"scheduled_on": {"features"}, "publishes": {"model_candidate"}},
    "deploy": {"scheduled_on": {"model_candidate"}, "publishes": {"production_model"}},
    "monitor": {"scheduled_on": {"production_model"}, "publishes": set()},
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=DAGS_FOLDER, safe_mode=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_file_per_stage_named_after_its_dag(dagbag):
    assert set(dagbag.dag_ids) == set(INTENDED)
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).name == f"{dag_id}.py"
        assert dag.doc_md, f"{dag_id} has no doc_md"


@pytest.mark.parametrize("dag_id", INTENDED)
def test_asset_graph(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert scheduled_on(dag) == INTENDED[dag_id]["scheduled_on"]
    assert published(dag) == INTENDED[dag_id]["publishes"]


def test_every_consumed_asset_has_a_producer(dagbag):
    graph = declared_graph(dagbag.dags)
    consumed = {name for name, ends in graph.items() if ends["consumers"]}
    assert consumed, "no DAG is scheduled on an asset"
    unproduced = {name for name in consumed if not graph[name]["producers"]}
    assert not unproduced, f"consumed but never produced: {unproduced}"


@pytest.mark.parametrize("dag_id", INTENDED)
def test_each_stage_starts_with_one_task(dagbag, dag_id):
    roots = [task.task_id for task in dagbag.dags[dag_id].roots]
    assert roots == [FIRST_TASK[dag_id]]


def test_deploy_promotes_only_after_deciding(dagbag):
    deploy = dagbag.dags["deploy"]
    assert deploy.get_task("promote").upstream_task_ids == {"compare_with_production", "approval"}
    assert deploy.get_task("approval").upstream_task_ids == {"compare_with_production"}
    assert deploy.get_task("kept_out_alert").upstream_task_ids == {"compare_with_production"}
    # One task moves the pointer and has the model server confirm it: nothing between them can fail.
    assert deploy.get_task("success_email").upstream_task_ids == {"promote"}


@pytest.mark.parametrize("dag_id", INTENDED)
def test_tags_and_retries(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert set(dag.tags) == {"ml-pipeline", dag_id}
    for task in dag.tasks:
        if not isinstance(task, BaseSensorOperator):
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize("dag_id", INTENDED)
def test_every_task_mails_its_failure(dagbag, dag_id):
    for task in dagbag.dags[dag_id].tasks:
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert any(isinstance(c, PerCallSmtpNotifier) for c in callbacks), f"{dag_id}.{task.task_id}"


@pytest.mark.parametrize("dag_id", INTENDED)
def test_every_param_has_a_description(dagbag, dag_id):
    for name, param in dagbag.dags[dag_id].params.items():
        assert param.description, f"{dag_id} param {name!r} has no description for the Trigger form"


PARSE_IN_A_FRESH_INTERPRETER = """
import runpy, sys
import airflow.sdk  # what every DAG file imports anyway
before = set(sys.modules)
runpy.run_path(sys.argv[1])
print(" ".join(sorted({name.split(".")[0] for name in set(sys.modules) - before})))
"""


@pytest.mark.parametrize("path", sorted(DAGS_FOLDER.glob("*.py")), ids=lambda p: p.name)
def test_parsing_a_dag_file_loads_no_heavy_module(path):
    """The dag-processor re-parses every file every few seconds: whatever a DAG file imports, directly
    or through plugins/ and include/, must not pull in the data libraries."""
    root = DAGS_FOLDER.parent
    result = subprocess.run(
        [sys.executable, "-c", PARSE_IN_A_FRESH_INTERPRETER, str(path)],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'plugins'}"},
        timeout=120,
        check=True,
    )
    loaded = set(result.stdout.split())
    assert "mlpipe" in loaded, "the check must see what the DAG file imported"
    assert not loaded & HEAVY_MODULES, f"parsing {path.name} imports {sorted(loaded & HEAVY_MODULES)}"
