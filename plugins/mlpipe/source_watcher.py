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
from mlpipe.triggers import NewDataTrigger, NewFilesTrigger, first_event

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


_Poller = _AnnouncingFiles | _AnnouncingUrl


class SourceWatcher(BaseEventTrigger):
    """
    Watch the sources the Variable ``source_variable`` names (one, or a JSON list of several: a poller
    each, run side by side by :func:`~mlpipe.triggers.first_event`, the Variable read once per poll
    interval for all of them) and fire once per new item, for ever.

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
    :param source_variable: the Variable naming the sources (http(s) URLs or drop folders).
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
        self.watching: list[_Poller] = []  # a poller per source
        self._announced: set[str] = set()
        self._earlier_polls = 0  # made by the pollers replaced at a refresh or a new crawl_url

    @property
    def polls(self) -> int:
        """Polls made since the watch started, of every source."""
        return self._earlier_polls + sum(poller.polls for poller in self.watching)

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
        """The sources and the settings they are polled with (blocking: Variables through the
        supervisor)."""
        from mlpipe.settings import setting

        return {
            "urls": sources.watched_urls(setting(self.source_variable)),
            **{name: setting(name) for name in SETTINGS_READ},
        }

    async def _watch(self) -> list[_Poller]:
        """A poller of each current source with the current settings, each carrying over the outage
        being reported from the poller it replaces."""
        while True:
            try:
                values = await asyncio.to_thread(self._settings)
                break
            except Exception as exc:  # a bad Variable must not end the watch: it is fixed in the UI
                self.log.error("Cannot read the settings (%s); retrying in %s s", exc, SETTINGS_RETRY_SECONDS)
                await asyncio.sleep(SETTINGS_RETRY_SECONDS)
        previous = {poller.url: poller for poller in self.watching}
        return [await self._poller(url, values, previous.get(url)) for url in values["urls"]]

    async def _poller(self, url: str, values: dict[str, Any], previous: _Poller | None) -> _Poller:
        root = self.storage_root
        outage = previous.outage if previous else await asyncio.to_thread(source_health.outage, root, url)
        common = {
            "url": url,
            "storage_root": root,
            "poll_interval": self.poll_interval,
            "max_bytes": values["crawl_max_bytes"],
            "source_variable": None,  # read once for all the sources, by first_event
            "alert_after": values["source_alert_after_seconds"],
            "max_backoff": values["source_max_backoff_seconds"],
            "outage": outage,
        }
        if sources.is_folder(url):
            poller = _AnnouncingFiles(**common, full_listing_every=values["crawl_full_listing_seconds"])
        else:
            poller = _AnnouncingUrl(
                **common,
                known_fingerprint=await asyncio.to_thread(ledger.source_fingerprint, root, url),
                request_timeout=values["crawl_timeout_seconds"],
            )
        poller.announced = self._announced
        if previous is not None:  # keep its pace: a source backing off is not polled at once
            poller.next_poll_at = previous.next_poll_at
        return poller

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            self._announced = set()
            self._earlier_polls = self.polls
            self.watching = await self._watch()
            self.log.info(
                "Watching %s (the Variable %s) for data not yet received",
                [poller.url for poller in self.watching],
                self.source_variable,
            )
            refresh_at = time.monotonic() + self.refresh_every
            while (left := refresh_at - time.monotonic()) > 0:
                try:
                    async with asyncio.timeout(left):
                        poller, event = await first_event(
                            self.watching,
                            source_variable=self.source_variable,
                            check_every=self.poll_interval,
                        )
                except TimeoutError:  # nothing new until the refresh: read the settings again
                    break
                if poller is None:
                    self.log.info("%s now names %s", self.source_variable, event.payload["source_changed"])
                    break
                if announced := self._announce(poller, event.payload):
                    yield announced

    def _announce(self, poller: _Poller, payload: dict[str, Any]) -> TriggerEvent | None:
        """The event to fire for ``payload`` from ``poller`` (None if it lists only items announced
        already), and the poller's state moved past it: the outage being reported, the fingerprint
        last announced."""
        if failing := payload.get("source_failing"):
            poller.outage = failing
            return TriggerEvent(payload)
        if payload.get("recovered"):
            poller.outage = None
        fresh = [
            i for i in payload["items"] if ledger.item_key(i["url"], i["validators"]) not in self._announced
        ]
        payload = {**payload, "items": fresh}
        if isinstance(poller, NewDataTrigger) and fresh:
            # Conditional GETs from now on: the content is announced, and its run records it.
            poller.known_fingerprint = {**fresh[-1]["validators"], "sha256": fresh[-1]["sha256"]}
        if not fresh and not payload.get("recovered"):
            return None
        self._announced |= {ledger.item_key(i["url"], i["validators"]) for i in fresh}
        return TriggerEvent(payload)
