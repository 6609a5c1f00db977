"""NewDataSensor in a real DAG run (``dag.test()`` runs its trigger inline): it watches the source the
``crawl_url`` Variable names, picks the trigger for a URL or a folder, and returns the trigger's event."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.http_servers import data_source

CONTENT = b"sepal_length,species\n5.1,setosa\n"

SENSOR_DAG = """
from airflow.sdk import DAG, task
from mlpipe.sensors import NewDataSensor

with DAG("sensor_test", schedule=None) as dag:
    arrival = NewDataSensor(task_id="wait_for_new_data", poll_interval=0.1, timeout=60)

    @task
    def report(event: dict) -> None:
        import json, os
        with open(os.environ["SENSOR_TEST_REPORT"], "w") as fh:
            json.dump(event, fh)

    report(arrival.output)
"""


@pytest.fixture
def run_sensor(load_dag, monkeypatch, tmp_path: Path):
    """Run the sensor DAG with ``crawl_url`` set to ``url``; return the event its next task received."""

    def run(url: str) -> dict:
        monkeypatch.setenv("AIRFLOW_VAR_CRAWL_URL", url)
        monkeypatch.setenv("PIPELINE_STORAGE_ROOT", str(tmp_path / "data"))
        monkeypatch.setenv("SENSOR_TEST_REPORT", str(tmp_path / "event.json"))
        dag_run = load_dag("sensor_test", SENSOR_DAG).test()
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        assert states == {"wait_for_new_data": "success", "report": "success"}
        return json.loads((tmp_path / "event.json").read_text())

    return run


def test_fires_for_new_content_at_the_url_the_variable_names(run_sensor, tmp_path: Path):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "iris.csv").write_bytes(CONTENT)
    with data_source(tmp_path / "served") as source:
        event = run_sensor(source.url("iris.csv"))
    assert event["url"] == source.url("iris.csv")
    [item] = event["items"]
    assert item["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert source.statuses, "the trigger asked the source"


def test_fires_with_the_files_of_a_drop_folder(run_sensor, tmp_path: Path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.csv").write_bytes(CONTENT)
    (drop / "b.csv").write_bytes(CONTENT + b"4.9,setosa\n")

    event = run_sensor(drop.as_uri() + "/")

    assert event["url"] == drop.as_uri() + "/"
    assert sorted(Path(item["url"]).name for item in event["items"]) == ["a.csv", "b.csv"]


def test_an_outage_fails_the_sensor_once_and_the_next_answer_ends_it(load_dag, monkeypatch, tmp_path: Path):
    from include import source_health
    from tests.http_servers import serving

    root = tmp_path / "data"
    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", str(root))
    monkeypatch.setenv("SENSOR_TEST_REPORT", str(tmp_path / "event.json"))
    monkeypatch.setenv("AIRFLOW_VAR_SOURCE_ALERT_AFTER_SECONDS", "0.5")
    monkeypatch.setenv("AIRFLOW_VAR_SOURCE_MAX_BACKOFF_SECONDS", "0.2")
    dag = load_dag("sensor_test", SENSOR_DAG)
    status = [500]

    def respond(handler) -> None:
        if status[0] != 200:
            handler.send_error(status[0])
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(CONTENT)))
        handler.end_headers()
        handler.wfile.write(CONTENT)

    with serving(respond) as server:
        monkeypatch.setenv("AIRFLOW_VAR_CRAWL_URL", server.url)
        failed = dag.test()
        [sensor] = [ti for ti in failed.get_task_instances() if ti.task_id == "wait_for_new_data"]
        outage = source_health.outage(str(root), server.url)
        status[0] = 200
        recovered = dag.test()

    assert sensor.state == "failed"
    assert outage["url"] == server.url
    assert "HTTP 500" in outage["last_error"]
    assert outage["since"] <= outage["alerted_at"]
    assert {ti.task_id: ti.state for ti in recovered.get_task_instances()} == {
        "wait_for_new_data": "success",
        "report": "success",
    }
    event = json.loads((tmp_path / "event.json").read_text())
    assert event["recovered"]["since"] == outage["since"]
    assert event["items"][0]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert source_health.outage(str(root), server.url) is None, "the answer ends the outage"


def test_several_sources_fire_with_the_one_that_has_something_new(run_sensor, tmp_path: Path):
    """``crawl_url`` a JSON list: a quiet URL beside a drop folder; the folder's file is the event."""
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "iris.csv").write_bytes(CONTENT)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.csv").write_bytes(CONTENT)
    with data_source(tmp_path / "served") as source:
        root = str(tmp_path / "data")
        # The URL's content was received before, so only the folder has something new.
        from include import ledger

        ledger.remember_source(
            root,
            source.url("iris.csv"),
            {"etag": None, "last_modified": None},
            hashlib.sha256(CONTENT).hexdigest(),
        )
        event = run_sensor(json.dumps([source.url("iris.csv"), drop.as_uri() + "/"]))
    assert event["url"] == drop.as_uri() + "/"
    assert [Path(item["url"]).name for item in event["items"]] == ["a.csv"]


@pytest.mark.parametrize(
    ("crawl_url", "queue", "named"),
    [
        ('["file:///a/", "file:///b/"]', "http://127.0.0.1:9/123456789012/q", "crawl_url lists 2 sources"),
        ('["file:///a/", "file:///a/"]', "", "crawl_url names file:///a/ more than once"),
    ],
)
def test_sources_it_cannot_watch_fail_the_sensor_naming_why(
    crawl_url, queue, named, load_dag, monkeypatch, tmp_path: Path, capsys
):
    monkeypatch.setenv("AIRFLOW_VAR_CRAWL_URL", crawl_url)
    monkeypatch.setenv("AIRFLOW_VAR_CRAWL_NOTIFICATION_QUEUE", queue)
    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SENSOR_TEST_REPORT", str(tmp_path / "event.json"))

    dag_run = load_dag("sensor_test", SENSOR_DAG).test()

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["wait_for_new_data"] == "failed"
    assert named in capsys.readouterr().out
    assert not (tmp_path / "event.json").exists()
