"""A deferrable sensor for data not yet received at the source: a single URL or a drop folder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context

from include.config import storage_root
from include.sources import is_folder
from mlpipe.settings import setting
from mlpipe.triggers import NewDataTrigger, NewFilesTrigger


class NewDataSensor(BaseSensorOperator):
    """
    Wait for data at ``url`` that was not received before, holding no worker slot.

    The sensor defers at once, so while it waits its task instance is ``deferred`` and the polling runs
    on the triggerer: :class:`~mlpipe.triggers.NewDataTrigger` for an http(s) URL,
    :class:`~mlpipe.triggers.NewFilesTrigger` for a drop folder (any other fsspec URL). Both check the
    ledger under the storage root. It returns the trigger's event, ``{"url", "items"}`` (and
    ``source_changed`` when the ``crawl_url`` Variable changed meanwhile), for the landing task.

    :param known_fingerprint: validators last seen at a single URL, for conditional GETs (templated;
        an XComArg resolves to the dict).
    :param url: the source to watch; ``None``: the setting ``crawl_url``, re-read at every poll. (templated)
    :param poll_interval: seconds between polls on the triggerer.
    :param request_timeout: seconds one poll may take; ``None``: the setting ``crawl_timeout_seconds``,
        the limit the download itself has.
    :param max_bytes: larger content is not considered; ``None``: the setting ``crawl_max_bytes``, the
        limit the download itself has.
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
        url = self.url or setting("crawl_url")
        common = {
            "url": url,
            "storage_root": storage_root(),
            "poll_interval": self.poll_interval,
            "max_bytes": self.max_bytes or setting("crawl_max_bytes"),
            "source_variable": None if self.url else "crawl_url",
        }
        if is_folder(url):
            trigger = NewFilesTrigger(**common)
        else:
            trigger = NewDataTrigger(
                **common,
                known_fingerprint=self.known_fingerprint,
                request_timeout=self.request_timeout or setting("crawl_timeout_seconds"),
            )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if moved := event.get("source_changed"):
            self.log.info(
                "The source changed from %s to %s; nothing to land from the old one", event["url"], moved
            )
        else:
            self.log.info("%s new item(s) at %s", len(event["items"]), event["url"])
        return event
