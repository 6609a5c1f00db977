"""
Shared fixtures for the plugin tests: a real SMTP sink, an SMTP connection pointing at it, and an
isolated Airflow home with a migrated SQLite database for ``dag.test()`` runs.

Airflow reads AIRFLOW_HOME and its config when first imported, so the environment is set here, at
conftest import time, before any test module imports ``airflow``.
"""

from __future__ import annotations

import email
import email.policy
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from scripts.smtp_sink import MaildirSink

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mlpipe-test-airflow-home-"))
_DB_PATH = _AIRFLOW_HOME / "airflow.db"
if "airflow" not in sys.modules:
    os.environ.update(
        {
            "AIRFLOW_HOME": str(_AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(_AIRFLOW_HOME / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_DB_PATH}",
            "AIRFLOW__API__BASE_URL": "http://airflow.test:8080",
        }
    )

FROM_EMAIL = "pipeline@example.com"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


def smtp_connection_json(port: int) -> str:
    """The ``AIRFLOW_CONN_SMTP_DEFAULT`` value for a plain-text SMTP server on 127.0.0.1."""
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "login": "",
            "password": "",
            "extra": {
                "disable_tls": True,
                "disable_ssl": True,
                "from_email": FROM_EMAIL,
                "timeout": 5,
                "retry_limit": 0,
            },
        }
    )


@pytest.fixture(name="smtp_connection_json")
def smtp_connection_json_fixture() -> Callable[[int], str]:
    return smtp_connection_json


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[MaildirSink]:
    """A real SMTP server on a free port, storing messages under ``tmp_path/maildir``."""
    with MaildirSink("127.0.0.1", 0, tmp_path / "maildir") as sink:
        yield sink


@pytest.fixture
def smtp_conn(smtp_sink: MaildirSink, monkeypatch: pytest.MonkeyPatch) -> MaildirSink:
    """Point the ``smtp_default`` connection at ``smtp_sink``."""
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection_json(smtp_sink.port))
    return smtp_sink


@pytest.fixture
def received(smtp_sink: MaildirSink) -> Callable[[], list[EmailMessage]]:
    """Return a function listing the messages the sink has stored, oldest first."""

    def read() -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in smtp_sink.messages()
        ]

    return read


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the metadata tables in the isolated SQLite database; return the DAGs folder."""
    from airflow import settings

    if str(_DB_PATH) not in settings.SQL_ALCHEMY_CONN:
        pytest.skip(
            "airflow was imported before this conftest could isolate AIRFLOW_HOME; "
            "refusing to run dag.test() against " + settings.SQL_ALCHEMY_CONN
        )
    from airflow.utils import db

    db.initdb()
    dags_folder = _AIRFLOW_HOME / "dags"
    dags_folder.mkdir(exist_ok=True)
    return dags_folder


@pytest.fixture
def load_dag(airflow_db: Path):
    """
    Write DAG source into the isolated DAGs folder and return the DAG it defines as ``dag``.

    ``dag.test()`` syncs the DAGs folder bundle to the database, so the DAG must live in a file there.
    """

    def load(name: str, source: str):
        path = airflow_db / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(f"mlpipe_test_dag_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.dag

    return load
