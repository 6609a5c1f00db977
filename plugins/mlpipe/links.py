"""The "Model report" button on a task in the Airflow UI, and where people open reports.

Airflow 3 computes an operator's extra links on the worker when the task ends (the task runner calls
``get_link`` and keeps the URL as an XCom the UI reads), so the link is whatever the task published
under :data:`REPORT_URL_KEY`: the ``register`` and ``promote`` tasks push their version's report URL
there. A task that pushed none shows no button.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink, Connection
from airflow.sdk.execution_time.xcom import XCom

from include.report import report_url
from mlpipe.settings import setting

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

REPORT_URL_KEY = "report_url"
MODEL_SERVER_CONN_ID = "model_server"


class ModelReportLink(BaseOperatorLink):
    """Opens the report of the model version the task registered or promoted."""

    name = "Model report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key=REPORT_URL_KEY) or ""


def server_url(host: str, port: int | None = None, scheme: str | None = None) -> str:
    """A base URL from an HTTP connection's parts, the way the http provider's hook builds one."""
    base = host if "://" in host else f"{scheme or 'http'}://{host}"
    return f"{base.rstrip('/')}:{port}" if port else base.rstrip("/")


def report_base_url() -> str:
    """Where browsers reach the model server: ``report_base_url``, else the ``model_server``
    connection's address."""
    base = setting("report_base_url")
    if not base:
        connection = Connection.get(MODEL_SERVER_CONN_ID)
        base = server_url(connection.host or "127.0.0.1", connection.port, connection.schema)
    return base.rstrip("/")


def version_report_url(version: str) -> str:
    """Where a person opens ``version``'s report."""
    return report_url(report_base_url(), version)


def server_page_url(path: str) -> str:
    """Where a person opens the model server's page ``path`` (a drift or monitor report)."""
    return report_base_url() + path
