"""Raw and quarantined batches on storage: the layout, listing, reading and quarantining.

A landed batch is ``raw/batches/<batch_id>.parquet`` plus its manifest ``<batch_id>.json`` (written
second: a batch without a manifest is incomplete and ignored). A rejected batch lives in
``quarantine/`` as its data, its manifest and ``<batch_id>.reason.json`` naming the failed checks.
Batch ids start with the UTC landing time, so they sort in landing order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from include import storage

REASON_SUFFIX = ".reason.json"


@dataclass(frozen=True)
class CheckFailure:
    """One failed check on a batch: which rule, on which column, and what was found."""

    check: str
    column: str | None
    message: str


def raw_url(root: str, name: str = "") -> str:
    return storage.join(root, "raw", "batches", name) if name else storage.join(root, "raw", "batches")


def quarantine_url(root: str, name: str = "") -> str:
    return storage.join(root, "quarantine", name) if name else storage.join(root, "quarantine")


def list_raw_batches(root: str) -> list[str]:
    """Ids of the landed batches, oldest first; a batch counts once both its data and manifest exist."""
    folder = raw_url(root)
    data = {name.removesuffix(".parquet") for name in storage.list_names(folder, ".parquet")}
    manifests = {name.removesuffix(".json") for name in storage.list_names(folder, ".json")}
    return sorted(data & manifests)


def load_raw_batch(root: str, batch_id: str) -> pd.DataFrame:
    """The raw batch as landed, untouched, so validation sees exactly what arrived."""
    return storage.read_parquet(_existing(raw_url(root, f"{batch_id}.parquet"), batch_id))


def raw_manifest(root: str, batch_id: str) -> dict:
    """The manifest written when the batch landed (rows, sha256, landed_at, source)."""
    return storage.read_json(_existing(raw_url(root, f"{batch_id}.json"), batch_id))


def seen_manifests(root: str) -> list[dict]:
    """Manifests of every batch ever received, landed or quarantined, oldest first."""
    manifests = []
    for folder in (raw_url(root), quarantine_url(root)):
        for name in storage.list_names(folder, ".json"):
            if not name.endswith(REASON_SUFFIX):
                manifests.append(storage.read_json(storage.join(folder, name)))
    return sorted(manifests, key=lambda manifest: manifest["batch_id"])


def last_seen(root: str) -> dict | None:
    """The manifest of the newest batch received (landed or quarantined), or None before the first."""
    manifests = seen_manifests(root)
    return manifests[-1] if manifests else None


def write_reason(root: str, batch_id: str, failures: list[CheckFailure]) -> str:
    """Write the machine-readable reason a batch was rejected; return its URL."""
    url = quarantine_url(root, f"{batch_id}{REASON_SUFFIX}")
    storage.write_json_atomic(
        url,
        {
            "batch_id": batch_id,
            "failed_checks": [asdict(failure) for failure in failures],
            "quarantined_at": datetime.now(UTC).isoformat(),
        },
    )
    return url


def quarantine_batch(root: str, batch_id: str, failures: list[CheckFailure]) -> str:
    """Move a failed batch out of ``raw/`` next to a reason file; return the reason file's URL.

    The reason is written first and the manifest moved last, so an interrupted run leaves nothing in
    quarantine without its reason, and a retry finishes the move instead of failing on the moved files.
    """
    data_url = raw_url(root, f"{batch_id}.parquet")
    if not storage.exists(data_url) and not storage.exists(quarantine_url(root, f"{batch_id}.parquet")):
        raise FileNotFoundError(
            f"batch {batch_id!r} is neither in raw/batches nor in quarantine under {root}"
        )
    reason_url = write_reason(root, batch_id, failures)
    for suffix in (".parquet", ".json"):
        if storage.exists(url := raw_url(root, f"{batch_id}{suffix}")):
            storage.move(url, quarantine_url(root, f"{batch_id}{suffix}"))
    return reason_url


def quarantine_reason(root: str, batch_id: str) -> dict:
    return storage.read_json(_existing(quarantine_url(root, f"{batch_id}{REASON_SUFFIX}"), batch_id))


def _existing(url: str, batch_id: str) -> str:
    if not storage.exists(url):
        raise FileNotFoundError(f"batch {batch_id!r} not found: {url} does not exist")
    return url


def landed_between(root: str, start: datetime | None, end: datetime | None) -> list[str]:
    """Ids of the landed batches with ``start <= landed_at < end`` (an open end where None)."""
    selected = []
    for batch_id in list_raw_batches(root):
        landed_at = datetime.fromisoformat(raw_manifest(root, batch_id)["landed_at"])
        if (start is None or landed_at >= start) and (end is None or landed_at < end):
            selected.append(batch_id)
    return selected


def landed_on_days(root: str, first: str | None, last: str | None) -> list[str]:
    """Ids of the batches landed from day ``first`` through day ``last`` (ISO dates, UTC, inclusive)."""
    start = datetime.fromisoformat(first).replace(tzinfo=UTC) if first else None
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1) if last else None
    return landed_between(root, start, end)
