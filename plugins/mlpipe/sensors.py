"""A deferrable sensor for data not yet received at the source: a single URL or a drop folder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, XComArg
from airflow.triggers.base import BaseTrigger

from include import ledger, s3_events, source_health
from include.config import storage_root
from include.errors import ConfigurationError
from include.sources import is_folder, watched_urls
from mlpipe.settings import setting
from mlpipe.triggers import NewDataTrigger, NewFilesTrigger, NotifiedFilesTrigger, SourcesTrigger

log = logging.getLogger(__name__)


class SourceUnavailableError(RuntimeError):
    """The source failed every poll for longer than the setting ``source_alert_after_seconds``.

    Not an ``AirflowException``: ``soft_fail`` (for a day without data) must not turn it into a skip."""


class NewDataSensor(BaseSensorOperator):
    """
    Wait for data at ``url`` that was not received before, holding no worker slot.

    The sensor defers at once, so while it waits its task instance is ``deferred`` and the polling runs
    on the triggerer: :class:`~mlpipe.triggers.NewDataTrigger` for an http(s) URL,
    :class:`~mlpipe.triggers.NewFilesTrigger` for a drop folder (any other fsspec URL), or
    :class:`~mlpipe.triggers.NotifiedFilesTrigger` for an ``s3://`` one when the setting
    ``crawl_notification_queue`` names the SQS queue its bucket notifies (any other source with a
    queue set is a ``ConfigurationError``). All check the ledger under the storage root; an http(s)
    URL's trigger sends the validators the ledger last saw there in conditional GETs. When ``crawl_url``
    lists several sources, :class:`~mlpipe.triggers.SourcesTrigger` watches them all at once, each with
    its own trigger, and fires with the first source that has something. The sensor returns the
    trigger's event, ``{"url", "items"}`` (and ``source_changed`` when the ``crawl_url`` Variable
    changed meanwhile), for the landing task.

    A source that fails every poll for the setting ``source_alert_after_seconds`` is an outage: the
    sensor records it (``include.source_health``) and fails with :class:`SourceUnavailableError`, naming
    the source, the last error and since when, so the failure mail goes out. The next runs wait on the
    source without alerting again; the first that reaches it ends the outage and returns the event with
    ``recovered`` (the outage), for the "recovered" mail.

    :param url: the source(s) to watch, as ``crawl_url`` names them; ``None``: the setting ``crawl_url``,
        re-read at every poll. (templated)
    :param poll_interval: seconds between polls on the triggerer.
    :param request_timeout: seconds one poll may take; ``None``: the setting ``crawl_timeout_seconds``,
        the limit the download itself has.
    :param max_bytes: larger content is not considered; ``None``: the setting ``crawl_max_bytes``, the
        limit the download itself has.
    """

    template_fields: Sequence[str] = ("url",)

    def __init__(
        self,
        *,
        url: str | None = None,
        poll_interval: float = 5.0,
        request_timeout: float | None = None,
        max_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.url = url
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes

    def execute(self, context: Context) -> None:
        urls, root = watched_urls(self.url or setting("crawl_url")), storage_root()
        variable = None if self.url else "crawl_url"
        queue = setting("crawl_notification_queue")
        if queue and len(urls) > 1:
            raise ConfigurationError(
                f"crawl_notification_queue is set ({queue}) but crawl_url lists {len(urls)} sources: "
                "notifications feed one s3:// drop folder; name only that folder, or empty the queue"
            )
        pollers = [self._poller(url, root, queue, variable if len(urls) == 1 else None) for url in urls]
        if len(pollers) == 1:
            trigger = pollers[0]
        else:
            trigger = SourcesTrigger(
                watches=[poller.serialize() for poller in pollers],
                source_variable=variable,
                poll_interval=self.poll_interval,
            )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def _poller(self, url: str, root: str, queue: str, variable: str | None) -> BaseTrigger:
        """The trigger that watches the one source ``url``."""
        common = {
            "url": url,
            "storage_root": root,
            "poll_interval": self.poll_interval,
            "max_bytes": self.max_bytes or setting("crawl_max_bytes"),
            "source_variable": variable,
            "alert_after": setting("source_alert_after_seconds"),
            "max_backoff": setting("source_max_backoff_seconds"),
            "outage": source_health.outage(root, url),
        }
        if common["outage"]:
            self.log.warning("%s; waiting for it to answer again", source_health.describe(common["outage"]))
        if queue:
            s3_events.check_source(url, queue)
            return NotifiedFilesTrigger(
                **common, full_listing_every=setting("crawl_full_listing_seconds"), queue_url=queue
            )
        if is_folder(url):
            return NewFilesTrigger(**common, full_listing_every=setting("crawl_full_listing_seconds"))
        return NewDataTrigger(
            **common,
            known_fingerprint=ledger.source_fingerprint(root, url),
            request_timeout=self.request_timeout or setting("crawl_timeout_seconds"),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if failing := event.get("source_failing"):
            source_health.record_outage(storage_root(), failing)
            raise SourceUnavailableError(source_health.describe(failing))
        if recovered := event.get("recovered"):
            source_health.end_outage(storage_root(), event["url"])
            self.log.info(
                "%s answers again; the outage since %s is over", event["url"], recovered.get("since")
            )
        if moved := event.get("source_changed"):
            self.log.info(
                "The source changed from %s to %s; nothing to land from the old one", event["url"], moved
            )
        else:
            self.log.info("%s new item(s) at %s", len(event["items"]), event["url"])
        return event


def watched_arrival() -> XComArg:
    """The AssetWatcher option's replacement for :class:`NewDataSensor` (``PIPELINE_ARRIVAL=watcher``):
    tasks that read the events of the ``source`` asset that started the run (``SourceWatcher``'s
    payloads) into one arrival for the landing task (``include.arrivals.from_events``), and keep the
    sensor's outage rules: an outage reported by an event is recorded and fails
    ``report_source_failure`` (with :class:`SourceUnavailableError`, so the failure mail goes out once),
    a recovery ends it (the arrival's ``recovered`` makes the "recovered" mail). Call inside the
    ``@dag`` function; returns the arrival."""
    from airflow.sdk import task

    @task
    def read_arrival(*, triggering_asset_events=None, run_id=None) -> dict[str, Any]:
        """Every new item the watcher's events name, once, minus what the ledger says was received."""
        from include.arrivals import from_events, keep_health

        payloads = [
            event.extra["payload"]
            for events in (triggering_asset_events or {}).values()
            for event in events
            if event.extra.get("from_trigger") and isinstance(event.extra.get("payload"), dict)
        ]
        root = storage_root()
        arrival = from_events(root, payloads, run_id=run_id)
        keep_health(root, arrival)
        log.info("%s event(s); %s new item(s) to land", len(payloads), len(arrival["items"]))
        return arrival

    @task(retries=0)
    def report_source_failure(arrival: dict[str, Any]) -> None:
        """Fail, naming the source, when an event of this run reported an outage."""
        if failing := arrival.get("source_failing"):
            raise SourceUnavailableError(source_health.describe(failing))

    arrival = read_arrival()
    report_source_failure(arrival)
    return arrival
