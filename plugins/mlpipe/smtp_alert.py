"""Send an HTML e-mail through the smtp provider's hook."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk import BaseOperator, Variable

if TYPE_CHECKING:
    from airflow.sdk import Context

NOTIFICATION_EMAIL_VARIABLE = "notification_email"


def _recipients(to: str | Iterable[str]) -> list[str]:
    """Split comma/semicolon-separated addresses the way the hook does, dropping blanks."""
    parts = [to] if isinstance(to, str) else list(to)
    return [addr.strip() for part in parts for addr in part.replace(";", ",").split(",") if addr.strip()]


class SmtpAlertOperator(BaseOperator):
    """
    E-mail an HTML message through the SMTP connection ``smtp_conn_id``.

    :param subject: Subject line. (templated)
    :param html_content: HTML body, or a path ending in ``.html`` to a Jinja template. (templated)
    :param to: Recipient address(es), a list or a comma-separated string. ``None`` reads the Airflow
        Variable ``notification_email`` when the task runs. (templated)
    :param smtp_conn_id: SMTP connection; its ``from_email`` extra is the sender unless ``from_email``
        is given.
    :param from_email: Sender address, overriding the connection's ``from_email``.
    :param cc: Carbon-copy address(es).
    :param files: Paths of files to attach.
    :return: The list of envelope recipients (``to`` and ``cc``), so downstream tasks can log it.
    """

    template_fields: Sequence[str] = ("subject", "html_content", "to")
    template_ext: Sequence[str] = (".html",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"html_content": "html"}
    ui_color = "#f5e6c8"

    def __init__(
        self,
        *,
        subject: str,
        html_content: str,
        to: str | Iterable[str] | None = None,
        smtp_conn_id: str = SmtpHook.default_conn_name,
        from_email: str | None = None,
        cc: str | Iterable[str] | None = None,
        files: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.subject = subject
        self.html_content = html_content
        self.to = to
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.cc = cc
        self.files = files

    @cached_property
    def hook(self) -> SmtpHook:
        return SmtpHook(smtp_conn_id=self.smtp_conn_id)

    def _resolve_to(self) -> list[str]:
        to = self.to
        if to is None:
            to = Variable.get(NOTIFICATION_EMAIL_VARIABLE, default="")
        recipients = _recipients(to)
        if not recipients:
            raise ValueError(
                f"No recipients: pass `to` or set the Airflow Variable {NOTIFICATION_EMAIL_VARIABLE!r}"
            )
        return recipients

    def execute(self, context: Context) -> list[str]:
        to = self._resolve_to()
        cc = _recipients(self.cc) if self.cc else []
        self.log.info("Sending %r to %s (cc %s) via %s", self.subject, to, cc, self.smtp_conn_id)
        with self.hook as smtp:
            smtp.send_email_smtp(
                to=to,
                cc=cc or None,
                subject=self.subject,
                html_content=self.html_content,
                from_email=self.from_email,
                files=self.files,
            )
        return to + cc
