"""A trigger that waits, on the triggerer, until the content at a URL differs from a known fingerprint."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent


class NewDataTrigger(BaseTrigger):
    """
    Poll ``url`` asynchronously and fire once its content differs from ``known_fingerprint``.

    The poll is a conditional GET (``If-None-Match`` / ``If-Modified-Since`` from the fingerprint), so a
    server that keeps ETags or Last-Modified answers ``304`` and sends no body. Any ``200`` body is
    hashed and compared with the fingerprint's sha256, so a server without validators, or one that
    changes its ETag without changing the content, never fires twice for the same content. HTTP
    errors, timeouts and oversized bodies are logged and polling goes on.

    :param url: the source to watch.
    :param known_fingerprint: ``{"etag", "last_modified", "sha256"}`` of the content already landed,
        or None to fire on the first readable content.
    :param poll_interval: seconds between polls.
    :param request_timeout: seconds one request may take.
    :param max_bytes: a larger body is not downloaded or hashed.
    """

    def __init__(
        self,
        *,
        url: str,
        known_fingerprint: dict[str, Any] | None = None,
        poll_interval: float = 5.0,
        request_timeout: float = 10.0,
        max_bytes: int = 50_000_000,
    ) -> None:
        super().__init__()
        self.url = url
        self.known_fingerprint = dict(known_fingerprint or {})
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "url": self.url,
                "known_fingerprint": self.known_fingerprint,
                "poll_interval": self.poll_interval,
                "request_timeout": self.request_timeout,
                "max_bytes": self.max_bytes,
            },
        )

    def _conditional_headers(self) -> dict[str, str]:
        headers = {}
        if etag := self.known_fingerprint.get("etag"):
            headers["If-None-Match"] = etag
        if last_modified := self.known_fingerprint.get("last_modified"):
            headers["If-Modified-Since"] = last_modified
        return headers

    async def _poll(self, client: httpx.AsyncClient) -> dict[str, Any] | None:
        """One conditional GET; the new fingerprint if the content changed, else None."""
        async with client.stream("GET", self.url, headers=self._conditional_headers()) as response:
            if response.status_code == 304:
                return None
            if response.status_code != 200:
                self.log.warning("GET %s answered HTTP %s; polling on", self.url, response.status_code)
                return None
            digest = hashlib.sha256()
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    self.log.error("GET %s: body exceeds %s bytes; polling on", self.url, self.max_bytes)
                    return None
                digest.update(chunk)
            sha256 = digest.hexdigest()
            if sha256 == self.known_fingerprint.get("sha256"):
                return None
            return {
                "etag": response.headers.get("etag"),
                "last_modified": response.headers.get("last-modified"),
                "sha256": sha256,
                "bytes": size,
            }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("Watching %s for content other than %s", self.url, self.known_fingerprint)
        async with httpx.AsyncClient(timeout=self.request_timeout, follow_redirects=True) as client:
            while True:
                try:
                    fingerprint = await self._poll(client)
                except httpx.HTTPError as exc:
                    self.log.warning("GET %s failed: %r; polling on", self.url, exc)
                    fingerprint = None
                if fingerprint is not None:
                    self.log.info("New content at %s: %s", self.url, fingerprint)
                    yield TriggerEvent({"url": self.url, "fingerprint": fingerprint})
                    return
                await asyncio.sleep(self.poll_interval)
