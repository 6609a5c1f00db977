"""The ledger of what arrived at the sources, under the storage root (``ledger/``, see ``include.layout``).

One small JSON file per entry, named by a sha256 and written atomically, so the triggerer and the
workers never lose each other's entries (nothing is read, changed and rewritten as a whole):

- ``content/<sha256>``: what became of a content: ``landing`` (its batch id chosen, the batch not yet
  complete), ``landed`` or ``quarantined``, with the batch id, the source item, its validators, when and
  by which run. Written ``landing`` first, so a landing killed half-way is finished by the retry under
  the same batch id.
- ``items/<key>``: one version of one source item (the URL or file, plus its ETag / Last-Modified or
  size / mtime) and its outcome, including ``duplicate``. The folder trigger skips files it lists here;
  an item is recorded last, so one whose landing did not finish is offered again.
- ``sources/<key>``: the newest validators seen at a single URL, for conditional GETs; for a drop
  folder, its watermark (``include.folder_watch``): where its next listing may start.

A torn entry (unreadable JSON) is treated as missing and rewritten; a torn content entry is first
rebuilt from the batch manifests, which are the truth about what landed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from include import layout, storage

LANDING, LANDED, QUARANTINED, DUPLICATE = "landing", "landed", "quarantined", "duplicate"
RECEIVED = (LANDED, QUARANTINED)


def key(*parts: Any) -> str:
    """A stable sha256 of JSON-able ``parts``: the name of an item or source entry."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def item_key(item: str, validators: dict[str, Any]) -> str:
    return key(item, validators)


def _read(url: str) -> dict | None:
    """The entry at ``url``: None if missing, ``{}`` if torn."""
    try:
        entry = storage.read_json(url)
    except FileNotFoundError:
        return None
    except ValueError:  # a torn or foreign file (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return {}
    return entry if isinstance(entry, dict) else {}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def content(root: str, sha256: str) -> dict | None:
    """The content entry of ``sha256``, or None if that content was never received. A torn entry is
    rebuilt from the manifest of the batch that holds the content, if there is one."""
    entry = _read(layout.ledger(root, "content", sha256))
    if entry != {}:
        return entry
    for folder, outcome in ((layout.raw_batches(root), LANDED), (layout.quarantine(root), QUARANTINED)):
        for name in storage.list_names(folder, f"-{sha256[:8]}.json"):
            manifest = storage.read_json(layout.join(folder, name))
            if manifest.get("sha256") == sha256:
                return {"sha256": sha256, "outcome": outcome, "batch_id": manifest["batch_id"]}
    return None


def record_content(root: str, sha256: str, outcome: str, *, batch_id: str, item: str, **fields: Any) -> dict:
    """Write the content entry of ``sha256`` (replacing an earlier state of the same content)."""
    entry = {"sha256": sha256, "outcome": outcome, "batch_id": batch_id, "item": item, "at": _now(), **fields}
    storage.write_json_atomic(layout.ledger(root, "content", sha256), entry)
    return entry


def received_items(root: str) -> set[str]:
    """Keys of every source item version recorded (landed, quarantined or duplicate)."""
    return {name.removesuffix(".json") for name in storage.list_names(layout.ledger(root, "items"), ".json")}


def record_item(
    root: str,
    item: str,
    validators: dict[str, Any],
    *,
    sha256: str,
    outcome: str,
    batch_id: str | None,
    **fields,
) -> dict:
    """Record that ``item`` (with ``validators``) was received and what became of it."""
    entry = {
        "item": item,
        "validators": validators,
        "sha256": sha256,
        "outcome": outcome,
        "batch_id": batch_id,
        "at": _now(),
        **fields,
    }
    storage.write_json_atomic(layout.ledger(root, "items", item_key(item, validators)), entry)
    return entry


def item(root: str, item: str, validators: dict[str, Any]) -> dict | None:
    """The entry of one item version, or None (also when torn: it is then received again)."""
    return _read(layout.ledger(root, "items", item_key(item, validators))) or None


def remember_source(root: str, url: str, validators: dict[str, Any], sha256: str) -> None:
    """Keep the newest validators seen at the single-URL source ``url`` (last writer wins: it only
    saves a download)."""
    storage.write_json_atomic(
        layout.ledger(root, "sources", key(url)), {"url": url, **validators, "sha256": sha256, "at": _now()}
    )


def source_fingerprint(root: str, url: str) -> dict | None:
    """``{"etag", "last_modified", "sha256"}`` last seen at ``url``, or None."""
    entry = _read(layout.ledger(root, "sources", key(url)))
    return {k: entry.get(k) for k in ("etag", "last_modified", "sha256")} if entry else None


def folder_mark(root: str, url: str) -> dict | None:
    """The watermark last saved for the drop folder ``url`` (``{"after", "full_listing_at"}``), or None
    (also when torn: the next poll lists the whole folder and saves it again)."""
    entry = _read(layout.ledger(root, "sources", key("folder", url)))
    return entry or None


def save_folder_mark(root: str, url: str, after: str, full_listing_at: float) -> None:
    """Save the drop folder ``url``'s watermark (last writer wins: every value written is safe)."""
    storage.write_json_atomic(
        layout.ledger(root, "sources", key("folder", url)),
        {"url": url, "after": after, "full_listing_at": full_listing_at, "at": _now()},
    )
