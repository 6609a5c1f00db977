"""Read what a source offers and land it exactly once as an immutable raw Parquet batch (see ``batches``).

Every item received is recorded in the ledger (``include.ledger``): landed, quarantined (content that is
not a CSV table, kept as received with a reason) or a duplicate of content received before. Landing
records the content as ``landing`` with its batch id first and as landed last, so a landing killed
between writing the Parquet file and recording it is finished by the retry under the same batch id:
no duplicate, no lost batch, and no half-landed batch that later stages could list (a batch counts only
once its manifest exists).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from include import batches, csv_to_parquet, layout, ledger, sources, storage
from include.chunks import DEFAULT, Chunking
from include.csv_to_parquet import BatchFormatError
from include.settings import SETTINGS

DEFAULT_MAX_COLUMNS = SETTINGS["crawl_max_columns"].default


@dataclass(frozen=True)
class Received:
    """Content read from one source item (a URL or a file), kept in the local file ``path`` (never
    whole in memory), with its sha256, its size and the validators it was read under."""

    item: str
    validators: dict[str, Any]
    path: Path
    sha256: str
    size: int


@contextmanager
def receive(source: str, item: dict[str, Any], *, timeout: float, max_bytes: int) -> Iterator[Received]:
    """Read ``item`` (``{"url", "validators"}`` as the trigger announced it) from ``source`` into a local
    temporary file, hashing it as it streams: a file of a drop folder, or the single URL (downloaded
    again: the trigger only hashed it). The file is removed when the block ends, also on an error."""
    with tempfile.TemporaryDirectory(prefix="ingest-") as folder:
        path = Path(folder) / "content"
        with path.open("wb") as sink:
            if sources.is_folder(source):
                sha256, size = sources.copy_file(item["url"], sink, max_bytes=max_bytes)
                validators = item["validators"]
            else:
                fetched = sources.download(item["url"], sink, timeout=timeout, max_bytes=max_bytes)
                sha256, size, validators = fetched.sha256, fetched.size, fetched.validators
        yield Received(item["url"], validators, path, sha256, size)


def land(
    root: str,
    received: Received,
    *,
    run_id: str = "",
    max_columns: int = DEFAULT_MAX_COLUMNS,
    chunking: Chunking = DEFAULT,
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
    outcome = _write_batch(root, batch_id, received, landed_at, max_columns, chunking)
    ledger.record_content(root, sha256, outcome, batch_id=batch_id, item=received.item, **fields)
    return _finish(root, received, outcome, batch_id, run_id)


def _write_batch(
    root: str, batch_id: str, received: Received, landed_at: str, max_columns: int, chunking: Chunking
) -> str:
    """Write the batch (data first, manifest last) unless an earlier attempt finished it; the outcome.
    Content that is not a CSV table leaves no Parquet file: it is kept as received, with its reason."""
    if storage.exists(layout.raw_batch(root, batch_id, ".json")):
        return ledger.LANDED
    if storage.exists(layout.quarantined(root, batch_id, ".json")):
        return ledger.QUARANTINED
    manifest = {
        "batch_id": batch_id,
        "sha256": received.sha256,
        "landed_at": landed_at,
        "source": {"url": received.item, **received.validators, "sha256": received.sha256},
    }
    try:
        columns, rows = csv_to_parquet.write_parquet(
            str(received.path),
            layout.raw_batch(root, batch_id, ".parquet"),
            max_columns=max_columns,
            chunking=chunking,
        )
    except BatchFormatError as exc:
        batches.write_reason(root, batch_id, [batches.CheckFailure("format", None, str(exc))])
        storage.copy_in_atomic(str(received.path), layout.quarantined(root, batch_id, ".csv"))
        storage.write_json_atomic(layout.quarantined(root, batch_id, ".json"), manifest, overwrite=False)
        return ledger.QUARANTINED
    manifest |= {"rows": rows, "columns": columns}
    # Create-only: a landed batch is immutable; a racing writer of the same bytes counts as done.
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
    """Read and land every item of ``arrival`` (the sensor's event: ``{"url", "items"}``, or the watcher's
    events merged by ``include.arrivals.from_events``, whose items name their ``source``), in the order
    given (oldest first). Returns ``{"landed": [manifest], "quarantined": [{"batch_id", "reason_url",
    "failed_checks", "item"}], "duplicates": [...], "valid": [batch_id]}``. A file gone since it was
    listed is left out; any other read error is raised (the retry lands what is left, exactly once)."""
    report: dict[str, list] = {"landed": [], "quarantined": [], "duplicates": [], "valid": []}
    for item in arrival["items"]:
        with ExitStack() as spooled:
            try:
                received = spooled.enter_context(
                    receive(item.get("source") or arrival["url"], item, timeout=timeout, max_bytes=max_bytes)
                )
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
