"""Send an HTML e-mail through the smtp provider's hook."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import jinja2
from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk import BaseOperator

from include import storage
from mlpipe.settings import setting

if TYPE_CHECKING:
    from airflow.sdk import Context


def _recipients(to: str | Iterable[str]) -> list[str]:
    """Split comma/semicolon-separated addresses the way the hook does, dropping blanks."""
    parts = [to] if isinstance(to, str) else list(to)
    return [addr.strip() for part in parts for addr in part.replace(";", ",").split(",") if addr.strip()]


class SmtpAlertOperator(BaseOperator):
    """
    E-mail an HTML message through the SMTP connection ``smtp_conn_id``.

    :param subject: Subject line. (templated)
    :param html_content: HTML body, or a path ending in ``.html`` to a Jinja template; every value it
        renders is HTML-escaped. (templated)
    :param data: What the message is about, usually an upstream task's result (an ``XComArg``). It is
        resolved first, and ``subject`` and ``html_content`` see it as ``data``. (templated)
    :param to: Recipient address(es), a list or a comma-separated string. ``None`` reads the setting
        ``notification_email`` when the task runs. (templated)
    :param smtp_conn_id: SMTP connection; its ``from_email`` extra is the sender unless ``from_email``
        is given.
    :param from_email: Sender address, overriding the connection's ``from_email``.
    :param cc: Carbon-copy address(es).
    :param files: Paths of files to attach.
    :param inline_images: Storage URLs (``include.storage``) of images to attach for the body to show
        inline as ``<img src="cid:<file name>">``; one that does not exist after ``inline_wait_seconds``
        is left out (the body's ``alt`` text shows instead). (templated)
    :param inline_wait_seconds: How long to wait for an inline image that is still being written.
    :return: The list of envelope recipients (``to`` and ``cc``), so downstream tasks can log it.
    """

    template_fields: Sequence[str] = ("data", "subject", "html_content", "to", "inline_images")
    template_ext: Sequence[str] = (".html",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"html_content": "html"}
    ui_color = "#f5e6c8"

    def __init__(
        self,
        *,
        subject: str,
        html_content: str,
        data: Any = None,
        to: str | Iterable[str] | None = None,
        smtp_conn_id: str = SmtpHook.default_conn_name,
        from_email: str | None = None,
        cc: str | Iterable[str] | None = None,
        files: list[str] | None = None,
        inline_images: list[str] | None = None,
        inline_wait_seconds: float = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.subject = subject
        self.html_content = html_content
        self.data = data
        self.to = to
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.cc = cc
        self.files = files
        self.inline_images = inline_images
        self.inline_wait_seconds = inline_wait_seconds

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Resolve ``data`` first and show it to the other templates; render the HTML body with
        autoescaping, so no value (a batch's cell, an exception) can inject markup into the mail."""
        jinja_env = jinja_env or self.get_template_env()
        self._do_render_template_fields(self, ["data"], context, jinja_env, set())
        context["data"] = self.data  # type: ignore[typeddict-unknown-key]
        self._do_render_template_fields(self, ["subject", "to", "inline_images"], context, jinja_env, set())
        html_env = jinja_env.overlay(autoescape=True)
        self._do_render_template_fields(self, ["html_content"], context, html_env, set())

    @cached_property
    def hook(self) -> SmtpHook:
        return SmtpHook(smtp_conn_id=self.smtp_conn_id)

    def _resolve_to(self) -> list[str]:
        recipients = _recipients(setting("notification_email") if self.to is None else self.to)
        if not recipients:
            raise ValueError("No recipients: pass `to` or set the Airflow Variable 'notification_email'")
        return recipients

    def execute(self, context: Context) -> list[str]:
        to = self._resolve_to()
        cc = _recipients(self.cc) if self.cc else []
        self.log.info("Sending %r to %s (cc %s) via %s", self.subject, to, cc, self.smtp_conn_id)
        with tempfile.TemporaryDirectory(prefix="mail-") as folder:
            files = [*(self.files or []), *self._fetch_inline_images(Path(folder))]
            with self.hook as smtp:
                smtp.send_email_smtp(
                    to=to,
                    cc=cc or None,
                    subject=self.subject,
                    html_content=self.html_content,
                    from_email=self.from_email,
                    files=files or None,
                )
        return to + cc

    def _fetch_inline_images(self, folder: Path) -> list[str]:
        """Copy each inline image into ``folder`` (the hook attaches local files, each with its name as
        Content-ID); wait up to ``inline_wait_seconds`` in all for those not written yet."""
        deadline = time.monotonic() + self.inline_wait_seconds
        fetched = []
        for url in self.inline_images or []:
            while not storage.exists(url) and time.monotonic() < deadline:
                time.sleep(1)
            if not storage.exists(url):
                self.log.warning("Inline image %s does not exist; sending without it", url)
                continue
            path = folder / url.rstrip("/").rsplit("/", 1)[-1]
            path.write_bytes(storage.read_bytes(url))
            fetched.append(str(path))
        return fetched
