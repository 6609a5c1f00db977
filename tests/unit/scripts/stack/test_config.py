"""The stack's configuration: per-home secrets and the settings every component shares."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from scripts.stack.config import CeleryConfig, StackConfig, private_json


@pytest.fixture
def wide_umask():
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("wide_umask")
def test_secrets_are_made_once_readable_by_the_owner_only(tmp_path: Path):
    config = StackConfig(tmp_path)

    first = config.secrets()

    assert mode(tmp_path / "secrets.json") == 0o600
    assert set(first) == {"fernet_key", "jwt_secret", "api_secret_key"}
    assert StackConfig(tmp_path).secrets() == first


@pytest.mark.usefixtures("wide_umask")
def test_private_json_never_overwrites(tmp_path: Path):
    path = tmp_path / "passwords.json"

    assert private_json(path, lambda: {"admin": "first"}) == {"admin": "first"}
    assert private_json(path, lambda: {"admin": "second"}) == {"admin": "first"}
    assert mode(path) == 0o600
    assert json.loads(path.read_text()) == {"admin": "first"}


def test_every_component_shares_the_home_ports_and_keys(tmp_path: Path):
    config = StackConfig(tmp_path, api_port=18080, model_server_port=18500, storage_root="/srv/data")
    env = config.env

    assert env["AIRFLOW_HOME"] == str(tmp_path.resolve())
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__FERNET_KEY"] == config.secrets()["fernet_key"]
    model_server = json.loads(env["AIRFLOW_CONN_MODEL_SERVER"])
    assert model_server["port"] == 18500
    assert model_server["password"] == env["MODEL_SERVER_TOKEN"] == config.model_server_token
    assert model_server["login"], "HttpHook sends the password (as HTTP Basic) only with a login"
    assert mode(tmp_path / "model-server.json") == 0o600
    assert StackConfig(tmp_path).model_server_token == config.model_server_token
    assert env["PIPELINE_STORAGE_ROOT"] == "/srv/data"
    assert config.components()["model-server"][-3:] == ["serving", "--port", "18500"]


def test_on_object_storage_the_model_server_checks_the_pointer_once_a_second(tmp_path: Path):
    """A check is a request to the store there; on a local disk it is a stat, made on every request."""
    on_s3 = StackConfig(tmp_path, model_server_port=18500, storage_root="s3://bucket/pipeline")
    on_disk = StackConfig(tmp_path, model_server_port=18500, storage_root=(tmp_path / "data").as_uri())

    assert on_s3.components()["model-server"][-5:] == [
        "serving",
        "--port",
        "18500",
        "--pointer-check-seconds",
        "1",
    ]
    assert on_disk.components()["model-server"][-3:] == ["serving", "--port", "18500"]


def test_the_celery_topology_adds_its_executor_broker_and_processes(tmp_path: Path):
    config = CeleryConfig(tmp_path, database="db1", redis_db=3, flower_port=15555)

    assert config.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert config.env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/3"
    assert config.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/db1")
    assert {"celery-worker", "flower"} <= set(config.components())
    assert 15555 in config.ports()
    assert config.storage_root == str(tmp_path.resolve() / "data")


def test_how_ingest_waits_reaches_every_component_and_defaults_to_the_sensor(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("PIPELINE_ARRIVAL", raising=False)
    for home in "abc":
        (tmp_path / home).mkdir()
    assert StackConfig(tmp_path / "a").env["PIPELINE_ARRIVAL"] == "sensor"
    monkeypatch.setenv("PIPELINE_ARRIVAL", "watcher")  # `PIPELINE_ARRIVAL=watcher make up`
    assert StackConfig(tmp_path / "b").env["PIPELINE_ARRIVAL"] == "watcher"
    assert StackConfig(tmp_path / "c", arrival="sensor").env["PIPELINE_ARRIVAL"] == "sensor"


def test_an_unknown_way_of_waiting_stops_the_stack_before_anything_starts(tmp_path: Path):
    from scripts.stack.errors import StackError

    config = StackConfig(tmp_path, arrival="poll")
    with pytest.raises(StackError, match="PIPELINE_ARRIVAL='poll' is not one of sensor, watcher"):
        config.prepare()
    assert not (tmp_path / "airflow.db").exists()
