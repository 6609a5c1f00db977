"""
Shared fixtures for the plugin tests: a real SMTP sink and an SMTP connection pointing at it.
"""

from __future__ import annotations

import email
import email.policy
import json
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
