"""DAG integrity: every file imports, the five stages exist and are wired by assets as intended."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Asset, BaseSensorOperator
from airflow.sdk.definitions.asset import AssetBooleanCondition

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
HEAVY_MODULES = {"pandas", "numpy", "sklearn", "pyarrow", "joblib", "scipy"}
PARSE_BUDGET_SECONDS = 2.0

# The task each stage starts with; every other task must wait for something (a task with no upstream
# would run at once, before the decisions it depends on).
FIRST_TASK = {
    "ingest": "last_seen_fingerprint",
    "etl": "select_batches",
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


def asset_names(condition) -> set[str]:
    if condition is None:
        return set()
    if isinstance(condition, Asset):
        return {condition.name}
    if isinstance(condition, AssetBooleanCondition):
        return set().union(*(asset_names(obj) for obj in condition.objects))
    raise TypeError(f"unexpected schedule condition {condition!r}")


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
    condition = getattr(dag.timetable, "asset_condition", None)
    assert asset_names(condition) == INTENDED[dag_id]["scheduled_on"]
    published = {outlet.name for task in dag.tasks for outlet in task.outlets if isinstance(outlet, Asset)}
    assert published == INTENDED[dag_id]["publishes"]


def test_every_consumed_asset_has_a_producer():
    produced = set().union(*(stage["publishes"] for stage in INTENDED.values()))
    consumed = set().union(*(stage["scheduled_on"] for stage in INTENDED.values()))
    assert consumed <= produced


@pytest.mark.parametrize("dag_id", INTENDED)
def test_each_stage_starts_with_one_task(dagbag, dag_id):
    roots = [task.task_id for task in dagbag.dags[dag_id].roots]
    assert roots == [FIRST_TASK[dag_id]]


def test_deploy_promotes_only_after_deciding(dagbag):
    deploy = dagbag.dags["deploy"]
    assert deploy.get_task("promote").upstream_task_ids == {"compare_with_production"}
    assert deploy.get_task("kept_out_alert").upstream_task_ids == {"compare_with_production"}
    assert deploy.get_task("success_email").upstream_task_ids == {"reload_model_server"}


@pytest.mark.parametrize("dag_id", INTENDED)
def test_tags_and_retries(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert set(dag.tags) == {"ml-pipeline", dag_id}
    for task in dag.tasks:
        if not isinstance(task, BaseSensorOperator):
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize("path", sorted(DAGS_FOLDER.glob("*.py")), ids=lambda p: p.name)
def test_no_heavy_module_level_imports(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        heavy = {name.split(".")[0] for name in names} & HEAVY_MODULES
        assert not heavy, f"{path.name}:{node.lineno} imports {heavy} at module level"


def test_each_file_parses_within_budget(dagbag):
    """Airflow re-parses every file every few seconds; a slow file slows the whole scheduler."""
    durations = {Path(stat.file).name: stat.duration.total_seconds() for stat in dagbag.dagbag_stats}
    assert set(durations) == {f"{dag_id}.py" for dag_id in INTENDED}
    slow = {name: seconds for name, seconds in durations.items() if seconds > PARSE_BUDGET_SECONDS}
    assert not slow, f"DAG files over the {PARSE_BUDGET_SECONDS}s parse budget: {slow}"
