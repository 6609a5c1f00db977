"""E-mail notifiers for task callbacks, built on the smtp provider's ``SmtpNotifier``."""

from __future__ import annotations

import copy
from collections.abc import Generator, Iterable

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import Context

from mlpipe.settings import setting

FAILURE_SUBJECT = (
    "[ml-pipeline] Task failed: {{ ti.dag_id }}.{{ ti.task_id }} run {{ run_id }} (try {{ ti.try_number }})"
)
FAILURE_HTML = (
    "<p>Task <b>{{ ti.task_id | e }}</b> of DAG <b>{{ ti.dag_id | e }}</b> failed "
    "in run <code>{{ run_id | e }}</code>, try {{ ti.try_number }}.</p>"
    "<p>Exception: <code>{{ exception | e }}</code></p>"
    '<p>Log: <a href="{{ ti.log_url }}">{{ ti.log_url | e }}</a></p>'
)

# The approval task's own question (``mlpipe.approval``), rendered when it starts to wait.
APPROVAL_SUBJECT = "[ml-pipeline] Approval needed: {{ task.subject }}"
APPROVAL_HTML = (
    "<p>A candidate waits for a person to approve or reject it before <code>deploy</code> promotes "
    "it (run <code>{{ run_id | e }}</code>).</p>"
    "<pre>{{ task.body | e }}</pre>"
    '<p>Answer under Browse &gt; Required Actions in Airflow: <a href="{{ task.required_actions_url }}">'
    "{{ task.required_actions_url | e }}</a></p>"
)


class PerCallSmtpNotifier(SmtpNotifier):
    """
    An ``SmtpNotifier`` that renders its templates on a copy of itself for every notification.

    ``BaseNotifier`` renders template fields in place, and ``default_args`` hands the same instance
    to every task of a DAG; where several tasks run in one process (``dag.test()``), the second
    failure would otherwise be reported with the first one's subject and body. ``to=None`` mails
    the setting ``notification_email``, read when the notification is sent.
    """

    def notify(self, context: Context) -> None:
        if self.to is None:
            self.to = setting("notification_email")
        super().notify(context)

    async def async_notify(self, context: Context) -> None:
        if self.to is None:
            self.to = setting("notification_email")
        await super().async_notify(context)

    def __call__(self, *args) -> None:
        SmtpNotifier.__call__(copy.copy(self), *args)

    def __await__(self) -> Generator:
        return SmtpNotifier.__await__(copy.copy(self))


def failure_notifier(
    *,
    to: str | Iterable[str] | None = None,
    smtp_conn_id: str = SmtpHook.default_conn_name,
    from_email: str | None = None,
) -> PerCallSmtpNotifier:
    """
    Return an ``SmtpNotifier`` that e-mails a task failure, for ``on_failure_callback``.

    In Airflow 3 task callbacks run in the task's own process after it fails; an exception raised
    while notifying (an unset Variable, an unreachable server) is logged there and does not change
    the task's state.

    :param to: Recipient(s), a list or a comma-separated string; ``None``: the setting
        ``notification_email``, read when the callback runs. (templated)
    :param smtp_conn_id: SMTP connection to send through.
    :param from_email: Sender; ``None`` uses the connection's ``from_email`` extra.
    """
    return PerCallSmtpNotifier(
        to=to,
        from_email=from_email,
        subject=FAILURE_SUBJECT,
        html_content=FAILURE_HTML,
        smtp_conn_id=smtp_conn_id,
    )


def approval_request_notifier() -> PerCallSmtpNotifier:
    """Return a notifier that mails ``notification_email`` the question an approval task asks, with
    the link to answer it in the UI (its ``required_actions_url``)."""
    return PerCallSmtpNotifier(to=None, subject=APPROVAL_SUBJECT, html_content=APPROVAL_HTML)
