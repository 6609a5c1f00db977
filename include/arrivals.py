"""How ``ingest`` learns what arrived, and the one rule for the AssetWatcher option (no Airflow imports).

``PIPELINE_ARRIVAL`` chooses, when the dag-processor parses ``dags/ingest.py``, how ingest waits:

- ``sensor`` (the default): ``ingest`` is ``@continuous``; its deferrable sensor hands one trigger
  event (``{"url", "items"}``) to the landing task.
- ``watcher``: an ``AssetWatcher`` on the ``source`` asset runs ``mlpipe.source_watcher.SourceWatcher``
  on the triggerer for as long as ``ingest`` is unpaused; each of its events is an asset event, and
  ``ingest`` is scheduled on that asset. Several events queued before a run are consumed by that one
  run: :func:`from_events` merges them into one arrival, leaving out what the ledger says was received
  by another run, so a file is landed once and an event that finds nothing new lands nothing.
"""

from __future__ import annotations

import os
from typing import Any

from include import ledger, source_health

ARRIVAL_ENV = "PIPELINE_ARRIVAL"
SENSOR, WATCHER = "sensor", "watcher"
MODES = (SENSOR, WATCHER)


class ArrivalModeError(ValueError):
    """``PIPELINE_ARRIVAL`` names no way of waiting for data."""


def arrival_mode() -> str:
    """``sensor`` or ``watcher``, from ``PIPELINE_ARRIVAL`` (unset or empty: ``sensor``)."""
    mode = (os.environ.get(ARRIVAL_ENV) or SENSOR).strip().lower()
    if mode not in MODES:
        raise ArrivalModeError(
            f"{ARRIVAL_ENV}={os.environ.get(ARRIVAL_ENV)!r} is not one of {', '.join(MODES)} "
            f"(unset means {SENSOR})"
        )
    return mode


def from_events(root: str, payloads: list[dict[str, Any]], *, run_id: str) -> dict[str, Any]:
    """One arrival for the landing task from the watcher's event ``payloads`` a run consumed, oldest
    first: ``{"url", "items", "source_failing"?, "recovered"?, "health"}``.

    ``url`` is the newest event's source; each item keeps the source it was seen at (``source``:
    ``crawl_url`` may list several sources, or have changed between two events). An item listed by
    several events is kept once; an item the ledger has an entry for is left out unless this run
    (``run_id``: a retry) recorded it, so the retry still reports what its first try landed.
    ``source_failing`` is the newest outage reported and ``recovered`` the newest recovery (both are
    mailed; each names its source in ``url``); ``health`` says, per source an event spoke of, the outage
    it is still in at the newest of them, or None if it answers again."""
    arrival: dict[str, Any] = {"url": None, "items": [], "health": {}}
    seen: set[str] = set()
    for payload in payloads:
        url = payload["url"]
        arrival["url"] = url
        if failing := payload.get("source_failing"):
            arrival["source_failing"] = arrival["health"][failing["url"]] = failing
        if recovered := payload.get("recovered"):
            arrival["recovered"], arrival["health"][url] = {**recovered, "url": url}, None
        for item in payload.get("items", []):
            key = ledger.item_key(item["url"], item["validators"])
            if key in seen:
                continue
            seen.add(key)
            entry = ledger.item(root, item["url"], item["validators"])
            if entry is None or entry.get("run_id") == run_id:
                arrival["items"].append({**item, "source": url})
    return arrival


def keep_health(root: str, arrival: dict[str, Any]) -> None:
    """Record what ``arrival`` (from :func:`from_events`) says about each source's health, as the
    sensor does: an outage a source is still in is recorded (so it is mailed once, also across
    restarts of the triggerer), one that has ended is forgotten."""
    for url, outage in arrival["health"].items():
        if outage:
            source_health.record_outage(root, outage)
        else:
            source_health.end_outage(root, url)
