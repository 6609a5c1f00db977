"""The AssetWatcher option as the dag-processor sees it: PIPELINE_ARRIVAL is read when dags/ingest.py is
parsed (in a fresh interpreter here, as a dag-processor started with it), and a bad value is an import
error naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DESCRIBE_INGEST = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.encoders import encode_trigger

from airflow.sdk import Asset

bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
dag = bag.dags.get("ingest")
out = {"import_errors": [str(e) for e in bag.import_errors.values()]}
if dag is not None:
    condition = getattr(dag.timetable, "asset_condition", None)
    assets = [a for a in getattr(condition, "objects", []) if isinstance(a, Asset)]
    out |= {
        "timetable": type(dag.timetable).__name__,
        "scheduled_on": [a.name for a in assets],
        "watchers": [
            {"name": w.name, **encode_trigger(w.trigger)} for a in assets for w in a.watchers
        ],
        "roots": sorted(t.task_id for t in dag.roots),
        "tasks": sorted(dag.task_ids),
        "max_active_runs": dag.max_active_runs,
    }
print(json.dumps(out))
"""


def describe(arrival: str | None) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    env.pop("PIPELINE_ARRIVAL", None)
    if arrival is not None:
        env["PIPELINE_ARRIVAL"] = arrival
    result = subprocess.run(
        [sys.executable, "-c", DESCRIBE_INGEST, str(ROOT / "dags" / "ingest.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_watcher_option_schedules_ingest_on_the_source_asset_and_its_watcher():
    ingest = describe("watcher")
    assert ingest["import_errors"] == []
    assert ingest["scheduled_on"] == ["source"]
    [watcher] = ingest["watchers"]
    assert watcher["name"] == "source_watcher"
    assert watcher["classpath"] == "mlpipe.source_watcher.SourceWatcher"
    # Fixed at parse time: the Variable to read on the triggerer, never the source's URL itself.
    assert watcher["kwargs"]["source_variable"] == "crawl_url"
    assert "url" not in watcher["kwargs"]
    assert ingest["roots"] == ["read_arrival"]
    assert "wait_for_new_data" not in ingest["tasks"]
    assert {"land_batch", "publish_batches", "report_source_failure", "alert_source_recovered"} <= set(
        ingest["tasks"]
    )
    assert ingest["max_active_runs"] == 1


def test_the_sensor_stays_the_default():
    ingest = describe(None)
    assert ingest["timetable"] == "ContinuousTimetable"
    assert ingest["watchers"] == []
    assert "wait_for_new_data" in ingest["tasks"]


def test_a_bad_value_is_an_import_error_naming_it():
    ingest = describe("asset-watcher")
    assert any(
        "PIPELINE_ARRIVAL='asset-watcher' is not one of sensor, watcher" in e for e in ingest["import_errors"]
    )
