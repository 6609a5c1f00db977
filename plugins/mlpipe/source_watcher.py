"""The AssetWatcher option's trigger: the source polled on the triggerer without any run waiting.

With ``PIPELINE_ARRIVAL=watcher`` the ``source`` asset (``mlpipe.assets``) has an ``AssetWatcher`` whose
trigger is :class:`SourceWatcher`. The triggerer runs it for as long as ``ingest`` is unpaused; each
event it yields becomes an asset event on ``source`` (extra ``{"from_trigger": true, "payload": ...}``)
and starts an ``ingest`` run, which lands what the events list (``include.arrivals.from_events``).

Trigger kwargs are fixed when the DAG file is parsed, and the ``crawl_url`` Variable must not be read
then: the kwargs name the Variable and the storage root, and the trigger reads the Variable (and the
other ``crawl_*`` / ``source_*`` settings) on the triggerer, through the triggerer's supervisor, when
it starts, when ``crawl_url`` changes and every ``refresh_every`` seconds. It polls with the sensor's
own triggers (:class:`~mlpipe.triggers.NewDataTrigger`, :class:`~mlpipe.triggers.NewFilesTrigger`):
same conditional GETs, folder watermark, settling, ledger checks, backoff and outage detection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from include import ledger, source_health, sources
from mlpipe.triggers import NewDataTrigger, NewFilesTrigger

SETTINGS_READ = (
    "crawl_max_bytes",
    "crawl_timeout_seconds",
    "crawl_full_listing_seconds",
    "source_alert_after_seconds",
    "source_max_backoff_seconds",
)
# A setting that cannot be read (a Variable with a bad value) is retried this often, and logged.
SETTINGS_RETRY_SECONDS = 30.0


class _Announcing:
    """Leaves out of a poll what the watcher announced already, so the poller keeps polling (and
    logging) only for what is new; ``announced`` is the watcher's set of item keys."""

    announced: set[str]

    async def _poll(self) -> list[dict[str, Any]]:
        items = await super()._poll()  # type: ignore[misc]
        return [i for i in items if ledger.item_key(i["url"], i["validators"]) not in self.announced]


class _AnnouncingFiles(_Announcing, NewFilesTrigger):
    pass


class _AnnouncingUrl(_Announcing, NewDataTrigger):
    pass


class SourceWatcher(BaseEventTrigger):
    """
    Watch the source the Variable ``source_variable`` names and fire once per new item, for ever.

    Unlike the sensor's triggers, it does not end at its first event: it keeps polling, and remembers
    what it announced, so an item is announced once while its ``ingest`` run lands it (the run then
    records it in the ledger, and polls stop offering it). What it announced is forgotten every
    ``refresh_every`` seconds, when the settings are read again: an item whose landing failed for good
    is announced again then, and one a run is still landing starts one more run that lands nothing.
    A new ``crawl_url`` is watched from the next poll, without an event.

    Events: ``{"url", "items"}`` for new items; ``{"url", "items": [], "source_failing"}`` once a source
    has failed for ``source_alert_after_seconds`` (once per outage: an outage recorded under the
    storage root, by the run that reported it, is not reported again, also after a restart);
    ``{"url", "items", "recovered"}`` at the first poll that answers after an outage.

    :param storage_root: where the ledger and the outage records are.
    :param source_variable: the Variable naming the source (an http(s) URL or a drop folder).
    :param poll_interval: seconds between polls.
    :param refresh_every: seconds between two readings of the settings (and of what was announced).
    """

    def __init__(
        self,
        *,
        storage_root: str,
        source_variable: str = "crawl_url",
        poll_interval: float = 1.0,
        refresh_every: float = 300.0,
    ) -> None:
        super().__init__()
        self.storage_root = storage_root
        self.source_variable = source_variable
        self.poll_interval = poll_interval
        self.refresh_every = refresh_every
        self.watching: NewDataTrigger | NewFilesTrigger | None = None
        self._announced: set[str] = set()
        self._earlier_polls = 0  # made by the pollers replaced at a refresh or a new crawl_url

    @property
    def polls(self) -> int:
        """Polls made since the watch started."""
        return self._earlier_polls + (self.watching.polls if self.watching else 0)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "storage_root": self.storage_root,
                "source_variable": self.source_variable,
                "poll_interval": self.poll_interval,
                "refresh_every": self.refresh_every,
            },
        )

    def _settings(self) -> dict[str, Any]:
        """The source and the settings it is polled with (blocking: Variables through the supervisor)."""
        from mlpipe.settings import setting

        return {"url": setting(self.source_variable), **{name: setting(name) for name in SETTINGS_READ}}

    async def _watch(self) -> NewDataTrigger | NewFilesTrigger:
        """A poller of the current source with the current settings, carrying over the outage being
        reported from the one it replaces when the source is the same."""
        while True:
            try:
                values = await asyncio.to_thread(self._settings)
                break
            except Exception as exc:  # a bad Variable must not end the watch: it is fixed in the UI
                self.log.error("Cannot read the settings (%s); retrying in %s s", exc, SETTINGS_RETRY_SECONDS)
                await asyncio.sleep(SETTINGS_RETRY_SECONDS)
        url, root, previous = values["url"], self.storage_root, self.watching
        if previous is not None and previous.url == url:
            outage = previous.outage
        else:
            outage = await asyncio.to_thread(source_health.outage, root, url)
        common = {
            "url": url,
            "storage_root": root,
            "poll_interval": self.poll_interval,
            "max_bytes": values["crawl_max_bytes"],
            "source_variable": self.source_variable,
            "alert_after": values["source_alert_after_seconds"],
            "max_backoff": values["source_max_backoff_seconds"],
            "outage": outage,
        }
        if sources.is_folder(url):
            watching = _AnnouncingFiles(**common, full_listing_every=values["crawl_full_listing_seconds"])
        else:
            watching = _AnnouncingUrl(
                **common,
                known_fingerprint=await asyncio.to_thread(ledger.source_fingerprint, root, url),
                request_timeout=values["crawl_timeout_seconds"],
            )
        watching.announced = self._announced
        return watching

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            self._announced = set()
            self._earlier_polls = self.polls
            self.watching = await self._watch()
            self.log.info(
                "Watching %s (the Variable %s) for data not yet received",
                self.watching.url,
                self.source_variable,
            )
            refresh_at = time.monotonic() + self.refresh_every
            while (left := refresh_at - time.monotonic()) > 0:
                try:
                    async with asyncio.timeout(left):
                        payload = await self._next_payload()
                except TimeoutError:  # nothing new until the refresh: read the settings again
                    break
                if payload.get("source_changed"):
                    self.log.info("%s now names %s", self.source_variable, payload["source_changed"])
                    break
                if event := self._announce(payload):
                    yield event
                # The poller fired right after a poll: wait as it would have before the next one.
                failures = self.watching.failures if payload.get("source_failing") else 0
                await asyncio.sleep(
                    source_health.backoff(self.poll_interval, failures, self.watching.max_backoff)
                )

    async def _next_payload(self) -> dict[str, Any]:
        """The next event of the current poller: its loop (polls, backoff, outage) runs until it fires."""
        generator = self.watching.run()
        try:
            event = await anext(generator)
        finally:
            await generator.aclose()
        return event.payload

    def _announce(self, payload: dict[str, Any]) -> TriggerEvent | None:
        """The event to fire for ``payload`` (None if it lists only items announced already), and the
        poller's state moved past it: the outage being reported, the fingerprint last announced."""
        watching = self.watching
        if failing := payload.get("source_failing"):
            watching.outage = failing
            return TriggerEvent(payload)
        if payload.get("recovered"):
            watching.outage = None
        fresh = [
            i for i in payload["items"] if ledger.item_key(i["url"], i["validators"]) not in self._announced
        ]
        payload = {**payload, "items": fresh}
        if isinstance(watching, NewDataTrigger) and fresh:
            # Conditional GETs from now on: the content is announced, and its run records it.
            watching.known_fingerprint = {**fresh[-1]["validators"], "sha256": fresh[-1]["sha256"]}
        if not fresh and not payload.get("recovered"):
            return None
        self._announced |= {ledger.item_key(i["url"], i["validators"]) for i in fresh}
        return TriggerEvent(payload)
