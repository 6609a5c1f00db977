"""Read what a source offers and land it exactly once as an immutable raw Parquet batch (see ``batches``).

Every item received is recorded in the ledger (``include.ledger``): landed, quarantined (content that is
not a CSV table, kept as received with a reason) or a duplicate of content received before. Landing
records the content as ``landing`` with its batch id first and as landed last, so a landing killed
between writing the Parquet file and recording it is finished by the retry under the same batch id:
no duplicate, no lost batch, and no half-landed batch that later stages could list (a batch counts only
once its manifest exists).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from include import batches, layout, ledger, sources, storage
from include.settings import SETTINGS

DEFAULT_MAX_COLUMNS = SETTINGS["crawl_max_columns"].default


class BatchFormatError(ValueError):
    """The content is not a CSV table with at least one row."""


@dataclass(frozen=True)
class Received:
    """Content read from one source item (a URL or a file) with the validators it was read under."""

    item: str
    validators: dict[str, Any]
    content: bytes
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.content).hexdigest())


def read_item(source: str, item: dict[str, Any], *, timeout: float, max_bytes: int) -> Received:
    """Read ``item`` (``{"url", "validators"}`` as the trigger announced it) from ``source``: a file of a
    drop folder, or the single URL (downloaded again: the trigger only hashed it)."""
    if sources.is_folder(source):
        return Received(item["url"], item["validators"], sources.read_file(item["url"], max_bytes=max_bytes))
    fetched = sources.download(item["url"], timeout=timeout, max_bytes=max_bytes)
    return Received(item["url"], fetched.validators, fetched.content)


def _header_width(content: bytes) -> int:
    end = content.find(b"\n")
    header = content if end < 0 else content[:end]
    return len(next(csv.reader([header.decode("utf-8", "replace")]), []))


def parse_csv(content: bytes, max_columns: int = DEFAULT_MAX_COLUMNS) -> pd.DataFrame:
    """Read CSV content with pandas' own type inference; validation of the values is ETL's job. A header
    wider than ``max_columns`` is refused before pandas reads anything."""
    if (width := _header_width(content)) > max_columns:
        raise BatchFormatError(f"CSV header has {width} columns, more than the limit of {max_columns}")
    try:
        frame = pd.read_csv(io.BytesIO(content))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BatchFormatError(f"content is not a readable CSV table: {exc}") from exc
    if frame.empty:
        raise BatchFormatError("CSV has a header but no rows")
    if not frame.index.equals(pd.RangeIndex(len(frame))):  # pandas made the surplus fields an index
        raise BatchFormatError("some rows have more fields than the header")
    return frame


def land(
    root: str,
    received: Received,
    *,
    run_id: str = "",
    max_columns: int = DEFAULT_MAX_COLUMNS,
    now: datetime | None = None,
) -> dict:
    """Land ``received`` once and return what became of it: ``{"outcome", "batch_id", "sha256", "item"}``
    plus ``manifest`` (landed) or ``failed_checks`` and ``reason_url`` (quarantined).

    Content received before is recorded as a ``duplicate`` item and writes nothing else, unless the same
    run (``run_id``) landed this same item before: that is a retry, and it reports the batch again so the
    retry still announces it.
    """
    sha256 = received.sha256
    item_key = ledger.item_key(received.item, received.validators)
    entry = ledger.content(root, sha256)
    if entry and entry.get("outcome") in ledger.RECEIVED:
        if run_id and (entry.get("run_id"), entry.get("item_key")) == (run_id, item_key):
            return _report(root, entry["outcome"], entry["batch_id"], received)
        return _finish(root, received, ledger.DUPLICATE, entry["batch_id"], run_id)
    if entry and entry.get("outcome") == ledger.LANDING:  # an earlier attempt died half-way: finish it
        batch_id, landed_at = entry["batch_id"], entry["landed_at"]
    else:
        at = now or datetime.now(UTC)
        batch_id, landed_at = layout.make_id(at, sha256), at.isoformat()
    fields = {"landed_at": landed_at, "run_id": run_id, "item_key": item_key}
    ledger.record_content(root, sha256, ledger.LANDING, batch_id=batch_id, item=received.item, **fields)
    outcome = _write_batch(root, batch_id, received, landed_at, max_columns)
    ledger.record_content(root, sha256, outcome, batch_id=batch_id, item=received.item, **fields)
    return _finish(root, received, outcome, batch_id, run_id)


def _write_batch(root: str, batch_id: str, received: Received, landed_at: str, max_columns: int) -> str:
    """Write the batch (data first, manifest last) unless an earlier attempt finished it; the outcome."""
    manifest = {
        "batch_id": batch_id,
        "sha256": received.sha256,
        "landed_at": landed_at,
        "source": {"url": received.item, **received.validators, "sha256": received.sha256},
    }
    try:
        frame = parse_csv(received.content, max_columns)
    except BatchFormatError as exc:
        if not storage.exists(layout.quarantined(root, batch_id, ".json")):
            batches.write_reason(root, batch_id, [batches.CheckFailure("format", None, str(exc))])
            storage.write_bytes_atomic(layout.quarantined(root, batch_id, ".csv"), received.content)
            storage.write_json_atomic(layout.quarantined(root, batch_id, ".json"), manifest, overwrite=False)
        return ledger.QUARANTINED
    if not storage.exists(layout.raw_batch(root, batch_id, ".json")):
        manifest |= {"rows": len(frame), "columns": list(map(str, frame.columns))}
        storage.write_parquet_atomic(frame, layout.raw_batch(root, batch_id, ".parquet"))
        # Create-only: a landed batch is immutable; a retry writes the same bytes, anything else fails.
        storage.write_json_atomic(layout.raw_batch(root, batch_id, ".json"), manifest, overwrite=False)
    return ledger.LANDED


def _finish(root: str, received: Received, outcome: str, batch_id: str, run_id: str) -> dict:
    """Record the item's outcome (last: an item not recorded is offered again) and report it."""
    ledger.record_item(
        root,
        received.item,
        received.validators,
        sha256=received.sha256,
        outcome=outcome,
        batch_id=batch_id,
        run_id=run_id,
    )
    if not sources.is_folder(received.item):
        ledger.remember_source(root, received.item, received.validators, received.sha256)
    return _report(root, outcome, batch_id, received)


def _report(root: str, outcome: str, batch_id: str, received: Received) -> dict:
    report = {"outcome": outcome, "batch_id": batch_id, "sha256": received.sha256, "item": received.item}
    if outcome == ledger.DUPLICATE:
        return report
    if outcome == ledger.LANDED:
        return report | {"manifest": batches.raw_manifest(root, batch_id)}
    reason_url = layout.quarantined(root, batch_id, layout.REASON_SUFFIX)
    return report | {
        "reason_url": reason_url,
        "failed_checks": storage.read_json(reason_url)["failed_checks"],
    }


def land_arrival(
    root: str,
    arrival: dict[str, Any],
    *,
    run_id: str,
    timeout: float,
    max_bytes: int,
    max_columns: int = DEFAULT_MAX_COLUMNS,
) -> dict[str, list]:
    """Read and land every item of ``arrival`` (the sensor's event: ``{"url", "items"}``), in the order
    given (oldest first). Returns ``{"landed": [manifest], "quarantined": [{"batch_id", "reason_url",
    "failed_checks", "item"}], "duplicates": [...], "valid": [batch_id]}``. A file gone since it was
    listed is left out; any other read error is raised (the retry lands what is left, exactly once)."""
    report: dict[str, list] = {"landed": [], "quarantined": [], "duplicates": [], "valid": []}
    for item in arrival["items"]:
        try:
            received = read_item(arrival["url"], item, timeout=timeout, max_bytes=max_bytes)
        except FileNotFoundError:
            continue
        outcome = land(root, received, run_id=run_id, max_columns=max_columns)
        if outcome["outcome"] == ledger.LANDED:
            report["landed"].append(outcome["manifest"])
            report["valid"].append(outcome["batch_id"])
        elif outcome["outcome"] == ledger.QUARANTINED:
            report["quarantined"].append(outcome)
        else:
            report["duplicates"].append(outcome)
    return report


def announcement(landed: list[dict]) -> dict:
    """The ``raw_batches`` event metadata for the manifests ``landed`` by one run: one event lists them
    all (Airflow 3.3 links only the first of several events one task emits to the consumer's run)."""
    return {
        "batch_ids": [manifest["batch_id"] for manifest in landed],
        "rows": sum(manifest["rows"] for manifest in landed),
        "batches": [
            {key: manifest[key] for key in ("batch_id", "rows", "sha256", "source")} for manifest in landed
        ],
    }


def known_fingerprint(root: str, source_url: str) -> dict | None:
    """What a single-URL watcher sends in its conditional GETs: the validators last seen at
    ``source_url`` (None for a drop folder, or before anything was seen there)."""
    return None if sources.is_folder(source_url) else ledger.source_fingerprint(root, source_url)
