"""The asset graph as the DAG files declare it: which tasks publish each asset, which DAGs wait for it."""

from __future__ import annotations

from airflow.sdk import DAG, Asset
from airflow.sdk.definitions.asset import AssetBooleanCondition


def asset_names(condition) -> set[str]:
    """The names of the assets a schedule's asset condition waits for."""
    if condition is None:
        return set()
    if isinstance(condition, Asset):
        return {condition.name}
    if isinstance(condition, AssetBooleanCondition):
        return set().union(*(asset_names(obj) for obj in condition.objects))
    raise TypeError(f"unexpected schedule condition {condition!r}")


def scheduled_on(dag: DAG) -> set[str]:
    """The assets ``dag`` is scheduled on (none for a DAG on a timetable only)."""
    return asset_names(getattr(dag.timetable, "asset_condition", None))


def published(dag: DAG) -> set[str]:
    """The assets the tasks of ``dag`` publish."""
    return {outlet.name for task in dag.tasks for outlet in task.outlets if isinstance(outlet, Asset)}


def declared_graph(dags: dict[str, DAG]) -> dict[str, dict[str, set[str]]]:
    """Per asset: the tasks that publish it (``dag.task``) and the DAGs scheduled on it."""
    graph: dict[str, dict[str, set[str]]] = {}

    def asset(name: str) -> dict[str, set[str]]:
        return graph.setdefault(name, {"producers": set(), "consumers": set()})

    for dag in dags.values():
        for task in dag.tasks:
            for outlet in task.outlets:
                if isinstance(outlet, Asset):
                    asset(outlet.name)["producers"].add(f"{dag.dag_id}.{task.task_id}")
        for name in scheduled_on(dag):
            asset(name)["consumers"].add(dag.dag_id)
    return graph
