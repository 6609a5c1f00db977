"""Raw and quarantined batches on storage: the layout, listing, reading and quarantining.

A landed batch is its data plus its manifest (written second: a batch without a manifest is
incomplete and ignored). A rejected batch lives in quarantine as its data, its manifest and a reason
file naming the failed checks (paths in ``include.layout``). Batch ids start with the UTC landing
time, so they sort in landing order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from include import layout, storage
from include.layout import REASON_SUFFIX


@dataclass(frozen=True)
class CheckFailure:
    """One failed check on a batch: which rule, on which column, and what was found."""

    check: str
    column: str | None
    message: str


def list_raw_batches(root: str) -> list[str]:
    """Ids of the landed batches, oldest first; a batch counts once both its data and manifest exist."""
    folder = layout.raw_batches(root)
    data = {name.removesuffix(".parquet") for name in storage.list_names(folder, ".parquet")}
    manifests = {name.removesuffix(".json") for name in storage.list_names(folder, ".json")}
    return sorted(batch_id for batch_id in data & manifests if _is_id(batch_id))


def raw_batch_data(root: str, batch_id: str) -> str:
    """The URL of the raw batch's Parquet file as landed (validation reads exactly what arrived);
    FileNotFoundError naming the batch if it is not there."""
    return _existing(layout.raw_batch(root, batch_id, ".parquet"), batch_id)


def raw_manifest(root: str, batch_id: str) -> dict:
    """The manifest written when the batch landed (rows, sha256, landed_at, source)."""
    return storage.read_json(_existing(layout.raw_batch(root, batch_id, ".json"), batch_id))


def seen_manifests(root: str) -> list[dict]:
    """Manifests of every batch ever received, landed or quarantined, oldest first."""
    manifests = []
    for folder in (layout.raw_batches(root), layout.quarantine(root)):
        for name in storage.list_names(folder, ".json"):
            if not name.endswith(REASON_SUFFIX):
                manifests.append(storage.read_json(layout.join(folder, name)))
    return sorted(manifests, key=lambda manifest: manifest["batch_id"])


def write_reason(root: str, batch_id: str, failures: list[CheckFailure]) -> str:
    """Write the machine-readable reason a batch was rejected; return its URL."""
    url = layout.quarantined(root, batch_id, REASON_SUFFIX)
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
    data_url = layout.raw_batch(root, batch_id, ".parquet")
    if not storage.exists(data_url) and not storage.exists(layout.quarantined(root, batch_id, ".parquet")):
        raise FileNotFoundError(
            f"batch {batch_id!r} is neither in raw/batches nor in quarantine under {root}"
        )
    reason_url = write_reason(root, batch_id, failures)
    for suffix in (".parquet", ".json"):
        if storage.exists(url := layout.raw_batch(root, batch_id, suffix)):
            storage.move(url, layout.quarantined(root, batch_id, suffix))
    return reason_url


def _is_id(name: str) -> bool:
    try:
        layout.check_id(name, "batch id")
    except layout.InvalidIdError:
        return False
    return True


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


def select_batches(
    root: str,
    *,
    requested: list[str],
    landed_from: str | None,
    landed_to: str | None,
    announced: list[dict],
    interval: tuple[datetime, datetime] | None,
) -> list[str]:
    """The batches an ``etl`` run covers, in landing order: the ids ``requested`` by hand, else those
    landed in the ``landed_from``/``landed_to`` day range, else those ``announced`` by the triggering
    ``raw_batches`` events (their metadata), else those landed in the run's data ``interval``."""
    if requested:
        return sorted(layout.check_id(batch_id, "batch id") for batch_id in set(requested))
    if landed_from or landed_to:
        return landed_on_days(root, landed_from, landed_to)
    ids = {
        batch_id
        for extra in announced
        for batch_id in extra.get("batch_ids") or ([extra["batch_id"]] if "batch_id" in extra else [])
    }
    if ids:
        return sorted(layout.check_id(batch_id, "batch id") for batch_id in ids)
    if interval is not None:
        return landed_between(root, *interval)
    return []
