"""A deferrable sensor for new content at an HTTP source."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context

from mlpipe.settings import setting
from mlpipe.triggers import NewDataTrigger


class NewDataSensor(BaseSensorOperator):
    """
    Wait for content at ``url`` that differs from ``known_fingerprint``, holding no worker slot.

    The sensor defers at once to :class:`~mlpipe.triggers.NewDataTrigger`, so while it waits its task
    instance is ``deferred`` and the polling runs on the triggerer. It succeeds once the trigger has
    seen new content; the task that downloads it runs next.

    :param known_fingerprint: fingerprint of the content already received, or None (templated; an
        XComArg resolves to the dict).
    :param url: the source to watch; ``None``: the setting ``crawl_url``. (templated)
    :param poll_interval: seconds between polls on the triggerer.
    :param request_timeout: seconds one request may take; ``None``: the setting ``crawl_timeout_seconds``,
        the limit the download itself has.
    :param max_bytes: bodies larger than this are not considered; ``None``: the setting
        ``crawl_max_bytes``, the limit the download itself has.
    """

    template_fields: Sequence[str] = ("known_fingerprint", "url")

    def __init__(
        self,
        *,
        known_fingerprint: dict[str, Any] | None = None,
        url: str | None = None,
        poll_interval: float = 5.0,
        request_timeout: float | None = None,
        max_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.known_fingerprint = known_fingerprint
        self.url = url
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes

    def execute(self, context: Context) -> None:
        self.defer(
            trigger=NewDataTrigger(
                url=self.url or setting("crawl_url"),
                known_fingerprint=self.known_fingerprint,
                poll_interval=self.poll_interval,
                request_timeout=self.request_timeout or setting("crawl_timeout_seconds"),
                max_bytes=self.max_bytes or setting("crawl_max_bytes"),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        self.log.info("New content at %s: %s", event["url"], event["fingerprint"])
