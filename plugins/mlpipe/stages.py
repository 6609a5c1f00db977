"""What every stage DAG of the pipeline shares: start date, tags, retries, failure e-mails, templates,
and failing at once on what no retry can fix (``include.errors.PermanentError``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, XComArg, task
from airflow.sdk.exceptions import AirflowFailException

from include.config import TEMPLATES_DIR
from include.errors import PermanentError
from mlpipe.notifications import failure_notifier
from mlpipe.smtp_alert import SmtpAlertOperator

START_DATE = datetime(2026, 1, 1)


def stage_dag_args(stage: str, *, retries: int = 1) -> dict[str, Any]:
    """``@dag`` keyword arguments for the stage DAG ``stage``: one active run, no catch-up, tags
    ``ml-pipeline`` and the stage, e-mail templates from ``include/templates``, and every task retried
    and e-mailing ``notification_email`` when it fails for good."""
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["ml-pipeline", stage],
        "template_searchpath": [str(TEMPLATES_DIR)],
        "default_args": {
            "retries": retries,
            "retry_delay": timedelta(seconds=10),
            "on_failure_callback": failure_notifier(),
        },
    }


@contextmanager
def no_retry_on(*errors: type[BaseException]) -> Iterator[None]:
    """Turn ``errors`` (by default every ``PermanentError``) raised inside into ``AirflowFailException``:
    the task fails for good at once, with the error's message, instead of retrying what cannot succeed.
    The failure e-mail still goes out."""
    caught = errors or (PermanentError,)
    try:
        yield
    except caught as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _failing_fast(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # the signature too: Airflow passes a task the context it asks for
    def run(*args: Any, **kwargs: Any) -> Any:
        with no_retry_on():
            return function(*args, **kwargs)

    return run


def fail_fast(dag: DAG) -> DAG:
    """Make every ``@task`` of the stage DAG ``dag`` fail for good at once on a ``PermanentError`` (a bad
    request, bad params, an invalid setting, an unusable candidate: ``include.errors``); every other
    error is left to the retries. Wrap the DAG where it is created: ``fail_fast(ingest())``."""
    for operator in dag.tasks:
        if callable(getattr(operator, "python_callable", None)):
            operator.python_callable = _failing_fast(operator.python_callable)
    return dag


def alert_quarantined(report: XComArg, *, stage: str) -> None:
    """Mail ``notification_email`` when ``report`` (``{"quarantined": [{"batch_id", "reason_url",
    "failed_checks"}], "valid": [batch_id]}``) names a quarantined batch: ``any_quarantined``
    short-circuits ``alert_quarantined`` otherwise. Call inside the stage's ``@dag`` function."""

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def any_quarantined(report: dict) -> bool:
        return bool(report["quarantined"])

    any_quarantined(report) >> SmtpAlertOperator(
        task_id="alert_quarantined",
        data=report,
        subject=f"[ml-pipeline] {stage} quarantined "
        "{{ data.quarantined | map(attribute='batch_id') | join(', ') }}",
        html_content="quarantine_alert.html",
    )


def alert_source_recovered(arrival: XComArg) -> None:
    """Mail ``notification_email`` when ``arrival`` (the source sensor's event) says the source
    answers again after an outage (``recovered``): the outage's failure mail has its end. Call inside
    the ``@dag`` function."""

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def source_recovered(arrival: dict) -> bool:
        return bool(arrival.get("recovered"))

    source_recovered(arrival) >> SmtpAlertOperator(
        task_id="alert_source_recovered",
        data=arrival,
        subject="[ml-pipeline] Source recovered: {{ data.recovered.url }}",
        html_content="source_recovered.html",
    )
