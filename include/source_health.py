"""How a failing source is watched and reported (no pandas: the triggerer imports it).

A poll that fails (an HTTP error, a timeout, a listing refused, any exception) is a failure; the
trigger waits :func:`backoff` seconds before the next one, doubling from the poll interval up to a
cap, so a long outage costs one request and one log line per cap. Once the source has failed for the
setting ``source_alert_after_seconds`` in a row, ingest records an **outage** under the storage root
(``health/sources/<sha256 of the URL>.json``) and fails its sensor, which mails once; every later
ingest run reads the record and does not alert again, and the first poll that answers ends the outage
(a "recovered" mail). The record is what makes "once per outage" hold across runs and restarts.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from include import layout, storage


def backoff(poll_interval: float, failures: int, cap: float) -> float:
    """Seconds to wait after ``failures`` failed polls in a row: the poll interval while the source
    answers, then twice the interval per failure, at most ``cap`` (never less than the interval)."""
    if failures <= 0:
        return poll_interval
    return min(max(cap, poll_interval), poll_interval * 2 ** min(failures, 64))


def _url(root: str, url: str) -> str:
    return layout.source_outage(root, hashlib.sha256(url.encode()).hexdigest())


def outage(root: str, url: str) -> dict[str, Any] | None:
    """The outage recorded for the source ``url`` (``{"url", "since", "failures", "last_error",
    "alerted_at"}``), or None while it answers."""
    try:
        record = storage.read_json(_url(root, url))
    except FileNotFoundError:
        return None
    except ValueError:  # a torn record: the outage was recorded, its details are lost
        return {"url": url, "since": None, "failures": None, "last_error": "unknown", "alerted_at": None}
    return record if isinstance(record, dict) else None


def record_outage(root: str, failing: dict[str, Any]) -> dict[str, Any]:
    """Record that the source ``failing["url"]`` is down (``failing`` as the trigger reports it:
    ``{"url", "since", "failures", "last_error"}``); the record."""
    record = {**failing, "alerted_at": datetime.now(UTC).isoformat()}
    storage.write_json_atomic(_url(root, failing["url"]), record)
    return record


def end_outage(root: str, url: str) -> None:
    """Forget the outage of ``url`` (nothing to do if none is recorded)."""
    storage.remove(_url(root, url))


def describe(failing: dict[str, Any]) -> str:
    """One line for a person: which source, since when, how many polls failed, the last error."""
    return (
        f"Source {failing['url']} has failed since {failing.get('since') or 'an unknown time'} "
        f"({failing.get('failures') or 'several'} polls in a row); last error: {failing.get('last_error')}"
    )
