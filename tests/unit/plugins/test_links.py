"""The "Model report" extra link and the report URLs the tasks publish."""

from __future__ import annotations

import pytest

from mlpipe import links

VERSION = "20261121T161500000000Z-aaaaaaaa"


def test_the_link_is_the_url_the_task_published(monkeypatch):
    asked = {}

    def get_value(*, ti_key, key):
        asked.update(ti_key=ti_key, key=key)
        return f"http://models:8500/models/{VERSION}/report"

    monkeypatch.setattr(links.XCom, "get_value", get_value)
    link = links.ModelReportLink()

    assert link.name == "Model report"
    assert link.get_link(None, ti_key="the ti") == f"http://models:8500/models/{VERSION}/report"
    assert asked == {"ti_key": "the ti", "key": links.REPORT_URL_KEY}


def test_no_url_published_is_no_link(monkeypatch):
    monkeypatch.setattr(links.XCom, "get_value", lambda **_: None)
    assert links.ModelReportLink().get_link(None, ti_key="ti") == ""


@pytest.mark.parametrize(
    ("host", "port", "scheme", "expected"),
    [
        ("127.0.0.1", 8500, None, "http://127.0.0.1:8500"),
        ("model-server", 8500, "https", "https://model-server:8500"),
        ("http://models.example.com/", None, None, "http://models.example.com"),
    ],
)
def test_server_url_from_a_connection(host, port, scheme, expected):
    assert links.server_url(host, port, scheme) == expected


def test_the_report_url_follows_the_model_server_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MODEL_SERVER", '{"conn_type": "http", "host": "127.0.0.1", "port": 8531}'
    )
    assert links.version_report_url(VERSION) == f"http://127.0.0.1:8531/models/{VERSION}/report"
    monkeypatch.setenv("AIRFLOW_VAR_REPORT_BASE_URL", "https://models.example.com")
    assert links.version_report_url(VERSION) == f"https://models.example.com/models/{VERSION}/report"
