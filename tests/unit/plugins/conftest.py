"""
Shared fixtures for the plugin tests: a real SMTP sink, an SMTP connection pointing at it, and a
migrated SQLite database in the test Airflow home (tests/conftest.py) for ``dag.test()`` runs.
"""

from __future__ import annotations

import email
import email.policy
import importlib.util
import json
import textwrap
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from scripts.smtp_sink import MaildirSink

FROM_EMAIL = "pipeline@example.com"


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
    """Create the metadata tables in the test database (see tests/conftest.py); return the DAGs folder."""
    from airflow import settings
    from airflow.utils import db

    db.initdb()
    return Path(settings.DAGS_FOLDER)


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
