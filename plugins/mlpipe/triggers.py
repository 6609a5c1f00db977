"""Triggers that wait, on the triggerer, for data not yet received: at a single URL or in a drop folder.

Both poll asynchronously (HTTP with httpx, listings and the ledger with fsspec in a thread), so a waiting
sensor holds no worker slot. Both fire with ``{"url", "items": [{"url", "validators", ...}]}``, the items
still to be received. With ``source_variable`` set, both also fire (with no items and ``source_changed``)
once that Variable names another source, so a new ``crawl_url`` takes effect at the next poll instead of
when the old source next changes.

A poll that raises anything is a failure: logged, counted, and followed by a longer wait
(``include.source_health.backoff``: doubling up to ``max_backoff``). After ``alert_after`` seconds of
failures in a row the trigger fires with ``source_failing`` (``{"url", "since", "failures",
"last_error"}``) and no items, unless ``outage`` says the outage was already reported; then the first
poll that answers fires with ``recovered`` (the outage) and whatever items it found.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from include import ledger, source_health, sources
from include.folder_watch import FolderWatch
from include.settings import SETTINGS

MAX_FILES_PER_EVENT = 100


class _SourceTrigger(BaseTrigger):
    """What both triggers share: the source, the ledger, the poll loop and the source-change check."""

    def __init__(
        self,
        *,
        url: str,
        storage_root: str | None = None,
        poll_interval: float = 5.0,
        max_bytes: int = SETTINGS["crawl_max_bytes"].default,
        source_variable: str | None = None,
        alert_after: float = SETTINGS["source_alert_after_seconds"].default,
        max_backoff: float = SETTINGS["source_max_backoff_seconds"].default,
        outage: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.storage_root = storage_root
        self.poll_interval = poll_interval
        self.max_bytes = max_bytes
        self.source_variable = source_variable
        self.alert_after = alert_after
        self.max_backoff = max_backoff
        self.outage = outage
        self.polls = 0
        self.failures = 0  # failed polls in a row
        self._failing_since: tuple[float, str] | None = None  # (monotonic, ISO time) of the first
        self._last_error = ""

    def _kwargs(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_root": self.storage_root,
            "poll_interval": self.poll_interval,
            "max_bytes": self.max_bytes,
            "source_variable": self.source_variable,
            "alert_after": self.alert_after,
            "max_backoff": self.max_backoff,
            "outage": self.outage,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self._kwargs()

    @abstractmethod
    async def _poll(self) -> list[dict[str, Any]]:
        """The items at the source not received yet (an empty list when there are none)."""

    async def _moved_to(self) -> str | None:
        """The source ``source_variable`` names now, if it is not ``url`` any more."""
        if not self.source_variable:
            return None
        from airflow.sdk import Variable

        try:
            current = await asyncio.to_thread(Variable.get, self.source_variable, None)
        except Exception as exc:  # the check is a convenience: never let it stop the watching
            self.log.warning("Could not read Variable %s: %r", self.source_variable, exc)
            return None
        return current if current and current != self.url else None

    def _failed(self, exc: Exception) -> None:
        """Count and log a failed poll."""
        self.failures += 1
        if self._failing_since is None:
            self._failing_since = (time.monotonic(), _now())
        expected = isinstance(exc, sources.DownloadError | OSError)
        self._last_error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        wait = source_health.backoff(self.poll_interval, self.failures, self.max_backoff)
        self.log.log(
            logging.WARNING if expected else logging.ERROR,
            "Polling %s failed (%s in a row, since %s): %s; next poll in %.1f s",
            self.url,
            self.failures,
            self._since(),
            self._last_error,
            wait,
            exc_info=not expected,  # an unexpected error shows its traceback
        )

    def _since(self) -> str | None:
        if self.outage:
            return self.outage.get("since")
        return self._failing_since[1] if self._failing_since else None

    def _failing(self) -> dict[str, Any] | None:
        """What to report if the source has now failed for ``alert_after`` seconds in a row and no
        outage was reported yet."""
        if self.outage or self._failing_since is None:
            return None
        if time.monotonic() - self._failing_since[0] < self.alert_after:
            return None
        return {
            "url": self.url,
            "since": self._since(),
            "failures": self.failures,
            "last_error": self._last_error,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("Watching %s for data not yet received", self.url)
        while True:
            if moved := await self._moved_to():
                self.log.info("%s now names %s instead of %s", self.source_variable, moved, self.url)
                yield TriggerEvent({"url": self.url, "items": [], "source_changed": moved})
                return
            self.polls += 1
            try:
                items = await self._poll()
            except Exception as exc:  # anything a poll raises is a failure, never the end of the watch
                self._failed(exc)
                if failing := self._failing():
                    self.log.error("%s; reporting it", source_health.describe(failing))
                    yield TriggerEvent({"url": self.url, "items": [], "source_failing": failing})
                    return
                await asyncio.sleep(
                    source_health.backoff(self.poll_interval, self.failures, self.max_backoff)
                )
                continue
            if self.failures:
                self.log.info("%s answers again after %s failed polls", self.url, self.failures)
                self.failures, self._failing_since = 0, None
            if self.outage:
                self.log.info("%s has recovered from the outage reported since %s", self.url, self._since())
                yield TriggerEvent({"url": self.url, "items": items, "recovered": self.outage})
                return
            if items:
                self.log.info("New at %s: %s", self.url, [item["url"] for item in items])
                yield TriggerEvent({"url": self.url, "items": items})
                return
            await asyncio.sleep(self.poll_interval)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class NewDataTrigger(_SourceTrigger):
    """
    Poll the single URL ``url`` and fire once it serves content not received before.

    Each poll is a conditional GET (``If-None-Match`` / ``If-Modified-Since`` from ``known_fingerprint``),
    so a server that keeps ETags or Last-Modified answers ``304`` and sends no body. A ``200`` body is
    hashed as it streams (the whole exchange within ``request_timeout``, at most ``max_bytes``, redirects
    only to the same scheme and host). Content equal to the fingerprint's sha256, or received before
    according to the ledger under ``storage_root`` (any earlier version: content reverted to A after B),
    does not fire; a reverted version is recorded there as a duplicate and its validators are used for
    the next polls, so it is not downloaded again. HTTP errors and timeouts are logged and polling goes on.

    :param url: the source to watch.
    :param known_fingerprint: ``{"etag", "last_modified", "sha256"}`` last seen at ``url``, or None.
    :param storage_root: where the ledger is; None: compare with ``known_fingerprint`` only.
    :param poll_interval: seconds between polls.
    :param request_timeout: seconds one poll may take in all.
    :param max_bytes: a larger body is not downloaded or hashed.
    :param source_variable: a Variable naming the source; fire with ``source_changed`` when it changes.
    """

    def __init__(
        self,
        *,
        known_fingerprint: dict[str, Any] | None = None,
        request_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.known_fingerprint = dict(known_fingerprint or {})
        self.request_timeout = request_timeout

    def _kwargs(self) -> dict[str, Any]:
        return {
            **super()._kwargs(),
            "known_fingerprint": self.known_fingerprint,
            "request_timeout": self.request_timeout,
        }

    def _conditional_headers(self) -> dict[str, str]:
        headers = {}
        if etag := self.known_fingerprint.get("etag"):
            headers["If-None-Match"] = etag
        if last_modified := self.known_fingerprint.get("last_modified"):
            headers["If-Modified-Since"] = last_modified
        return headers

    async def _poll(self) -> list[dict[str, Any]]:
        fetched = await sources.fetch_within(
            self.url,
            timeout=self.request_timeout,
            max_bytes=self.max_bytes,
            headers=self._conditional_headers(),
        )
        if fetched.status == 304 or fetched.sha256 == self.known_fingerprint.get("sha256"):
            return []
        if self.storage_root and await asyncio.to_thread(self._record_if_received, fetched):
            self.log.info("%s serves content received before (%s); not fired", self.url, fetched.sha256)
            self.known_fingerprint = {**fetched.validators, "sha256": fetched.sha256}
            return []
        return [
            {
                "url": self.url,
                "validators": fetched.validators,
                "sha256": fetched.sha256,
                "bytes": fetched.size,
            }
        ]

    def _record_if_received(self, fetched: sources.Fetched) -> bool:
        """If ``fetched`` is content received before, record this version as a duplicate; whether it was."""
        entry = ledger.content(self.storage_root, fetched.sha256)
        if entry is None or entry.get("outcome") not in ledger.RECEIVED:
            return False
        ledger.record_item(
            self.storage_root,
            self.url,
            fetched.validators,
            sha256=fetched.sha256,
            outcome=ledger.DUPLICATE,
            batch_id=entry["batch_id"],
        )
        ledger.remember_source(self.storage_root, self.url, fetched.validators, fetched.sha256)
        return True


class NewFilesTrigger(_SourceTrigger):
    """
    List the drop folder ``url`` (any fsspec URL) and fire with every file not yet received.

    A file is offered once its size and modification time are the same in two listings one poll apart
    (a file still being written changes between them), and only if the ledger under ``storage_root`` has
    no entry for that file with that size and mtime. Names starting with ``.`` or ``_`` are ignored, and
    so are files larger than ``max_bytes`` (logged once). The event lists at most 100 files, oldest first;
    the rest follow in the next run. Listing errors are logged and polling goes on.

    A poll costs what is new, not what the folder holds (:class:`include.folder_watch.FolderWatch`): it
    lists only the files named after the folder's watermark and looks each up in the ledger on its own;
    every ``full_listing_every`` seconds one poll lists the whole folder, for files named before the
    watermark or rewritten in place.

    :param url: the folder or prefix to watch.
    :param storage_root: where the ledger is.
    :param poll_interval: seconds between listings.
    :param max_bytes: larger files are not offered.
    :param source_variable: a Variable naming the source; fire with ``source_changed`` when it changes.
    :param full_listing_every: seconds between two listings of the whole folder.
    """

    def __init__(
        self,
        *,
        full_listing_every: float = SETTINGS["crawl_full_listing_seconds"].default,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.full_listing_every = full_listing_every
        self._watch = FolderWatch(
            self.url, self.storage_root, full_every=full_listing_every, max_bytes=self.max_bytes
        )
        self._previous: dict[str, sources.FileItem] = {}
        self._refused: set[str] = set()

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "full_listing_every": self.full_listing_every}

    async def _poll(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._poll_in_thread)

    def _poll_in_thread(self) -> list[dict[str, Any]]:
        listing = self._watch.listing()
        ready = sources.settled(self._previous, listing)
        self._previous = {item.url: item for item in listing}
        fresh = self._watch.unreceived([item for item in ready if self._within_limit(item)])
        self._watch.advance(listing)
        return [{"url": item.url, "validators": item.validators} for item in fresh[:MAX_FILES_PER_EVENT]]

    def _within_limit(self, item: sources.FileItem) -> bool:
        if item.size <= self.max_bytes:
            return True
        if item.url not in self._refused:
            self._refused.add(item.url)
            self.log.error(
                "%s has %s bytes, over the %s-byte limit; ignored", item.url, item.size, self.max_bytes
            )
        return False
