"""Triggers that wait, on the triggerer, for data not yet received: at a single URL or in a drop folder
(listed, or watched through its S3 bucket's event notifications).

Both poll asynchronously (HTTP with httpx, listings and the ledger with fsspec in a thread), so a waiting
sensor holds no worker slot. Both fire with ``{"url", "items": [{"url", "validators", ...}]}``, the items
still to be received. With ``source_variable`` set, both also fire (with no items and ``source_changed``)
once that Variable names another source, so a new ``crawl_url`` takes effect at the next poll instead of
when the old source next changes. :class:`SourcesTrigger` watches several sources at once (``crawl_url``
a JSON list), one trigger of the two kinds per source, and fires with the first event of any.

A poll that raises anything is a failure: logged, counted, and followed by a longer wait
(``include.source_health.backoff``: doubling up to ``max_backoff``). After ``alert_after`` seconds of
failures in a row the trigger fires with ``source_failing`` (``{"url", "since", "failures",
"last_error"}``) and no items, unless ``outage`` says the outage was already reported; then the first
poll that answers fires with ``recovered`` (the outage) and whatever items it found.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from include import ledger, s3_events, source_health, sources
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
        self.next_poll_at = 0.0  # monotonic time of the next poll; a new loop over this poller keeps it

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
        """What ``source_variable`` names now, if it is not ``url`` any more."""
        return await _source_moved(self, self.source_variable, [self.url])

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
            # A loop started again (SourcesTrigger, SourceWatcher) keeps the pace of the one before.
            await asyncio.sleep(max(0.0, self.next_poll_at - time.monotonic()))
            if moved := await self._moved_to():
                self.log.info("%s now names %s instead of %s", self.source_variable, moved, self.url)
                yield TriggerEvent({"url": self.url, "items": [], "source_changed": moved})
                return
            self.polls += 1
            try:
                items = await self._poll()
            except Exception as exc:  # anything a poll raises is a failure, never the end of the watch
                self._failed(exc)
                self.next_poll_at = time.monotonic() + source_health.backoff(
                    self.poll_interval, self.failures, self.max_backoff
                )
                if failing := self._failing():
                    self.log.error("%s; reporting it", source_health.describe(failing))
                    yield TriggerEvent({"url": self.url, "items": [], "source_failing": failing})
                    return
                continue
            self.next_poll_at = time.monotonic() + self.poll_interval
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


async def _source_moved(trigger: BaseTrigger, variable: str | None, watched: list[str]) -> str | None:
    """The value of the Variable ``variable`` (None: no check) if it names sources other than
    ``watched``, or names none in a way the next run's sensor fails on, naming the problem; None while
    it names them (or cannot be read: the check is a convenience and never stops the watching)."""
    if not variable:
        return None
    from airflow.sdk import Variable

    try:
        current = await asyncio.to_thread(Variable.get, variable, None)
    except Exception as exc:
        trigger.log.warning("Could not read Variable %s: %r", variable, exc)
        return None
    if not current:
        return None
    try:
        return current if sources.watched_urls(current) != watched else None
    except sources.SourcesError:
        return current


async def first_event(
    pollers: list[_SourceTrigger], *, source_variable: str | None = None, check_every: float = 1.0
) -> tuple[_SourceTrigger | None, TriggerEvent]:
    """Run the loops of ``pollers`` (each watching one source) side by side until one of them fires;
    that poller and its event. The others are stopped: what they had found they find again at their
    next poll (a poller keeps its state and pace between two loops), since only the landing records
    anything. With ``source_variable``, that Variable is also read every ``check_every`` seconds (once
    for all the sources), and once it names other sources the result is ``(None, {"url", "items": [],
    "source_changed"})``."""

    async def next_event(poller: _SourceTrigger) -> TriggerEvent:
        generator = poller.run()
        try:
            return await anext(generator)
        finally:
            await generator.aclose()

    async def changed() -> TriggerEvent:
        urls = [poller.url for poller in pollers]
        while not (moved := await _source_moved(pollers[0], source_variable, urls)):
            await asyncio.sleep(check_every)
        pollers[0].log.info("%s now names %s instead of %s", source_variable, moved, urls)
        url = urls[0] if len(urls) == 1 else json.dumps(urls)
        return TriggerEvent({"url": url, "items": [], "source_changed": moved})

    running = [asyncio.create_task(next_event(poller)) for poller in pollers]
    if source_variable:
        running.append(asyncio.create_task(changed()))
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        index = next(n for n, task in enumerate(running) if task in done)
        return (pollers[index] if index < len(pollers) else None), running[index].result()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


class SourcesTrigger(BaseTrigger):
    """
    Watch several sources at once (``crawl_url`` listing more than one), each with its own trigger
    (``watches``: the serialized :class:`NewDataTrigger` / :class:`NewFilesTrigger` of each source), and
    fire with the first event any of them fires: ``{"url", "items"}`` of that source, or its
    ``source_failing`` / ``recovered``. The others stop; the next ``ingest`` run watches them again, so
    what they had seen is offered then. Each source keeps its own poll interval, backoff, outage and
    ledger checks, and its polls run side by side on the triggerer's event loop, so a slow or failing
    source does not delay the others. The Variable ``source_variable`` is read once per
    ``poll_interval`` for all of them; when it names other sources the trigger fires with no items and
    ``source_changed``.

    :param watches: ``(classpath, kwargs)`` of each source's trigger, as its ``serialize()`` gives it.
    :param source_variable: the Variable naming the sources; None: no check.
    :param poll_interval: seconds between two readings of ``source_variable``.
    """

    def __init__(
        self,
        *,
        watches: list[tuple[str, dict[str, Any]]],
        source_variable: str | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.watches = [(path, dict(kwargs)) for path, kwargs in watches]
        self.source_variable = source_variable
        self.poll_interval = poll_interval
        self.pollers: list[_SourceTrigger] = [_TRIGGERS[path](**kwargs) for path, kwargs in self.watches]

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "watches": self.watches,
                "source_variable": self.source_variable,
                "poll_interval": self.poll_interval,
            },
        )

    @property
    def urls(self) -> list[str]:
        return [poller.url for poller in self.pollers]

    @property
    def polls(self) -> int:
        """Polls made so far, of every source."""
        return sum(poller.polls for poller in self.pollers)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("Watching %s sources for data not yet received: %s", len(self.urls), self.urls)
        _, event = await first_event(
            self.pollers, source_variable=self.source_variable, check_every=self.poll_interval
        )
        yield event


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
        self._client: httpx.AsyncClient | None = None

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # One client for the loop's polls: a new one per poll cost most of a poll's CPU (bench/sources.py).
        async with sources.http_client(self.request_timeout) as self._client:
            async for event in super().run():
                yield event

    async def _poll(self) -> list[dict[str, Any]]:
        fetched = await sources.fetch_within(
            self.url,
            timeout=self.request_timeout,
            max_bytes=self.max_bytes,
            client=self._client,
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


class NotifiedFilesTrigger(NewFilesTrigger):
    """
    Watch the S3 drop folder ``url`` through its bucket's event notifications, which S3 sends to the SQS
    queue ``queue_url``, and fire with every file they name that is not yet received.

    A poll long-polls the queue (up to ``wait_seconds``; it answers as soon as a message arrives) and
    takes the keys from its ``ObjectCreated:*`` records (:func:`include.s3_events.parse`: test events,
    other events and keys not directly in the folder are ignored). Each key is looked up with the
    listing's own request, for the size and mtime the ledger keys items by, and offered only if the
    ledger has no entry for it (a duplicate notification is then nothing new). S3 shows an object only
    once it is whole, so no second look is needed before offering it.

    A message is deleted only once it is handled: every file it names is in the ledger (or gone, or
    over ``max_bytes``), or it is not a notification at all (logged). A message naming a file offered
    stays in the queue, hidden for ``redeliver_after`` seconds: the ``ingest`` run lands the file
    meanwhile, and the next trigger receives the message again, finds the file in the ledger and
    deletes it; if the run died before landing, the file is offered again. A notification that never
    arrives (lost, or the queue purged) is covered by the full listing every ``full_listing_every``
    seconds (:class:`include.folder_watch.FolderWatch`), as for the listing trigger. Landing
    (``include.ingest``) is unchanged, so every file still lands exactly once.

    :param queue_url: the SQS queue the bucket's notifications go to.
    :param wait_seconds: longest wait of one receive (SQS allows up to 20).
    :param redeliver_after: seconds a received message stays hidden before it is received again.
    """

    def __init__(
        self,
        *,
        queue_url: str,
        wait_seconds: int = 20,
        redeliver_after: int = 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.queue_url = queue_url
        self.wait_seconds = wait_seconds
        self.redeliver_after = redeliver_after
        self._bucket, self._prefix = s3_events.folder_of(self.url)
        self._sqs: Any = None

    def _kwargs(self) -> dict[str, Any]:
        return {
            **super()._kwargs(),
            "queue_url": self.queue_url,
            "wait_seconds": self.wait_seconds,
            "redeliver_after": self.redeliver_after,
        }

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        """An SQS client for the polls made within the block (one for the trigger's whole life)."""
        endpoint, region = s3_events.queue_endpoint(self.queue_url)
        async with _aws().create_client("sqs", endpoint_url=endpoint, region_name=region) as sqs:
            self._sqs = sqs
            try:
                yield
            finally:
                self._sqs = None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with self.connected():
            self.log.info("Notifications of %s arrive at %s", self.url, self.queue_url)
            async for event in super().run():
                yield event

    async def _poll(self) -> list[dict[str, Any]]:
        if fresh := await asyncio.to_thread(self._full_listing_if_due):
            return _offered(fresh)
        messages = await self._receive()
        if not messages:
            return []
        found = await asyncio.to_thread(self._unreceived_per_message, messages)
        fresh = sorted(
            {item.url: item for items in found.values() for item in items}.values(),
            key=lambda i: (i.mtime, i.url),
        )[:MAX_FILES_PER_EVENT]
        offered = {item.url for item in fresh}
        handled = [m for m in messages if not found.get(m["MessageId"])]
        later = [
            m for m in messages if found.get(m["MessageId"]) and not offered & _urls(found[m["MessageId"]])
        ]
        await self._delete(handled)
        await self._release(later)
        return _offered(fresh)

    def _full_listing_if_due(self) -> list[sources.FileItem]:
        """If a full listing is due, every file of the folder not yet received (blocking)."""
        if not self._watch.full_listing_due():
            return []
        listing = self._watch.listing()
        fresh = self._watch.unreceived([item for item in listing if self._within_limit(item)])
        self._watch.advance(listing)
        return sorted(fresh, key=lambda i: (i.mtime, i.url))

    async def _receive(self) -> list[dict[str, Any]]:
        """Messages waiting in the queue: a long poll, then more without waiting while there are any."""
        messages: list[dict[str, Any]] = []
        wait = self.wait_seconds
        while len(messages) < MAX_FILES_PER_EVENT:
            answer = await self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.redeliver_after,
            )
            if not answer.get("Messages"):
                break
            messages += answer["Messages"]
            wait = 0
        return messages

    def _unreceived_per_message(self, messages: list[dict[str, Any]]) -> dict[str, list[sources.FileItem]]:
        """The files not yet received that each message names, by message id (blocking)."""
        import fsspec

        fs, _ = fsspec.core.url_to_fs(self.url)
        known: dict[str, sources.FileItem | None] = {}
        found = {}
        for message in messages:
            try:
                notification = s3_events.parse(message["Body"], bucket=self._bucket, prefix=self._prefix)
            except s3_events.NotificationError as exc:
                self.log.error("Message %s in %s deleted: %s", message["MessageId"], self.queue_url, exc)
                continue
            for reason in notification.ignored:
                self.log.info("Notification ignored: %s", reason)
            for name in notification.names:
                if name not in known:
                    known[name] = self._unreceived(fs, name)
            found[message["MessageId"]] = [known[n] for n in notification.names if known[n] is not None]
        return found

    def _unreceived(self, fs: Any, name: str) -> sources.FileItem | None:
        item = s3_events.lookup(fs, self._bucket, self._prefix, name)
        if item is None or not self._within_limit(item):
            return None
        return None if ledger.item(self.storage_root, item.url, item.validators) else item

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            answer = await self._sqs.delete_message_batch(
                QueueUrl=self.queue_url, Entries=_entries(messages[start : start + 10])
            )
            for failure in answer.get("Failed", []):  # it comes back and is deleted then
                self.log.warning("Could not delete a message from %s: %s", self.queue_url, failure)

    async def _release(self, messages: list[dict[str, Any]]) -> None:
        """Make messages whose files did not fit in this event visible again at once, for the next run."""
        for start in range(0, len(messages), 10):
            await self._sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url, Entries=_entries(messages[start : start + 10], VisibilityTimeout=0)
            )


@functools.cache
def _aws() -> Any:
    """One aiobotocore session for the process: a new session loads the service model and resolves the
    credentials again (half a second here, on the triggerer's loop), a warm one makes a client in ms."""
    from aiobotocore.session import get_session

    return get_session()


def _entries(messages: list[dict[str, Any]], **fields: Any) -> list[dict[str, Any]]:
    return [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], **fields} for n, m in enumerate(messages)]


def _urls(items: list[sources.FileItem]) -> set[str]:
    return {item.url for item in items}


def _offered(items: list[sources.FileItem]) -> list[dict[str, Any]]:
    return [{"url": item.url, "validators": item.validators} for item in items[:MAX_FILES_PER_EVENT]]


_TRIGGERS: dict[str, type[_SourceTrigger]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls for cls in (NewDataTrigger, NewFilesTrigger)
}
