"""Stale data, told once: "no new batch for N hours" is mailed when it starts and when it ends.

``monitor`` runs hourly, and its freshness check fails every hour while no batch arrives. A mail each
hour teaches people to ignore the mails, so the start of a stretch of stale data is recorded under
the storage root (``health/stale_data.json``) and the runs in between mail only if another check
fails. The record survives restarts and is the only state: removing it by hand mails the stretch
again at the next run, nothing worse.
"""

from __future__ import annotations

from include import layout, storage

STARTED, ONGOING, ENDED = "started", "ongoing", "ended"


def stale_data_news(root: str, report: dict) -> dict:
    """What ``report`` (from ``include.monitoring.health_report``) says of stale data, recorded:
    ``{"stale_data": None | "started" | "ongoing" | "ended", "stale_since": checked_at of the run that
    found it first, or None}``."""
    freshness = next((check for check in report["checks"] if check["name"] == "freshness"), None)
    url = layout.stale_data(root)
    recorded = storage.read_json(url) if storage.exists(url) else None
    if freshness is None:  # nothing in production yet: nothing is watched
        return {"stale_data": None, "stale_since": None}
    if not freshness["ok"]:
        if recorded is None:
            storage.write_json_atomic(url, {"since": report["checked_at"], "detail": freshness["detail"]})
            return {"stale_data": STARTED, "stale_since": report["checked_at"]}
        return {"stale_data": ONGOING, "stale_since": recorded["since"]}
    if recorded is not None:
        storage.remove(url)
        return {"stale_data": ENDED, "stale_since": recorded["since"]}
    return {"stale_data": None, "stale_since": None}


def worth_a_mail(report: dict) -> bool:
    """A check other than freshness failed, or stale data started or ended."""
    others = [c for c in report["checks"] if not c["ok"] and c["name"] != "freshness"]
    return bool(others) or report["stale_data"] in (STARTED, ENDED)


def summary(report: dict) -> str:
    """The alert's subject after the version: what failed, and the news about stale data."""
    failed = [c["name"] for c in report["checks"] if not c["ok"] and c["name"] != "freshness"]
    news = {
        STARTED: "no new data (stale data started)",
        ENDED: f"new data again (stale since {report['stale_since']})",
    }.get(report["stale_data"])
    parts = ([f"{', '.join(failed)} failed"] if failed else []) + ([news] if news else [])
    return "; ".join(parts)
