"""A deferrable sensor for new content at an HTTP source."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context

from mlpipe.triggers import NewDataTrigger


class NewDataSensor(BaseSensorOperator):
    """
    Wait for content at ``url`` that differs from ``known_fingerprint``, holding no worker slot.

    The sensor defers at once to :class:`~mlpipe.triggers.NewDataTrigger`, so while it waits its task
    instance is ``deferred`` and the polling runs on the triggerer. It returns the new content's
    fingerprint (``etag``, ``last_modified``, ``sha256``, ``bytes``), which lands in XCom.

    :param url: the source to watch (templated).
    :param known_fingerprint: fingerprint of the content already landed, or None (templated; an XComArg
        resolves to the dict).
    :param poll_interval: seconds between polls on the triggerer.
    :param request_timeout: seconds one request may take.
    :param max_bytes: bodies larger than this are not considered.
    """

    template_fields: Sequence[str] = ("url", "known_fingerprint")

    def __init__(
        self,
        *,
        url: str,
        known_fingerprint: dict[str, Any] | None = None,
        poll_interval: float = 5.0,
        request_timeout: float = 10.0,
        max_bytes: int = 50_000_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.url = url
        self.known_fingerprint = known_fingerprint
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes

    def execute(self, context: Context) -> None:
        self.defer(
            trigger=NewDataTrigger(
                url=self.url,
                known_fingerprint=self.known_fingerprint,
                poll_interval=self.poll_interval,
                request_timeout=self.request_timeout,
                max_bytes=self.max_bytes,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self.log.info("New content at %s: %s", event["url"], event["fingerprint"])
        return event["fingerprint"]
