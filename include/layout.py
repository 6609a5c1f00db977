"""Where everything lives under the storage root: the one place that turns ids into URLs.

::

    raw/batches/<batch_id>.parquet        a landed batch, immutable
    raw/batches/<batch_id>.json           its manifest, written second (a batch without one is incomplete)
    quarantine/<batch_id>.{parquet,csv}   a rejected batch as received
    quarantine/<batch_id>.json            its manifest
    quarantine/<batch_id>.reason.json     why it was rejected
    features/<batch_id>.parquet           features of a validated batch
    models/versions/<version>/            model.joblib, holdout.parquet, reference.parquet, metadata.json
    models/staging/<key>/                 a trained candidate waiting for the quality bar
    models/production.json                the production pointer
    models/promotion.json                 a promotion not yet confirmed by the model server
    models/last_training.json             the newest feature batch a (non-backtest) training has used
    models/kept_out/<version>.json        a candidate the chain will not promote, and why
    monitor/<checked_at>.{json,html}      health reports
    monitor/drift/<batch_id>.{json,html}  drift of a batch on arrival, against production's training data
    health/stale_data.json                a stretch of stale data while it lasts (include.staleness)
    health/sources/<sha256>.json          a source's outage while it lasts (include.source_health)
    ledger/content/<sha256>.json          what became of each content received (landing, landed, quarantined)
    ledger/items/<key>.json               each source item seen (URL or file + validators) and its outcome
    ledger/sources/<key>.json             the newest validators seen at a single-URL source

Batch ids and model versions have one format, ``<UTC time>-<8 hex digits of a sha256>``
(``20261122T030501123456Z-1a2b3c4d``): they sort by time and cannot name anything outside their folder.
Every URL built from an id checks it first, so an id that came from a user (a DAG param) cannot reach
outside the storage root. Nothing here touches storage.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from include.errors import BadRequestError

# Also a JSON Schema pattern for the DAG params. "(?!\n)": Python's `$` (jsonschema validates with
# `re.search`) also matches before a trailing newline; JavaScript's (the UI's form) never does.
ID_PATTERN = r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}$(?!\n)"
_ID = re.compile(ID_PATTERN)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
REASON_SUFFIX = ".reason.json"


class InvalidIdError(BadRequestError):
    """A batch id or model version that does not have the one allowed format."""


def make_id(at: datetime, sha256: str) -> str:
    """The id of something created at ``at`` (UTC) whose content has the hex digest ``sha256``."""
    return check_id(f"{at:%Y%m%dT%H%M%S%fZ}-{sha256[:8]}", "id")


def id_time(value: str) -> datetime:
    """The UTC time an id was made at (a batch id's: when the batch landed)."""
    return datetime.strptime(check_id(value, "id")[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def is_id(value: object) -> bool:
    """Whether ``value`` is an id of the one strict format."""
    return isinstance(value, str) and bool(_ID.fullmatch(value))


def check_id(value: object, what: str) -> str:
    """``value`` if it is a well-formed id; otherwise ``InvalidIdError`` naming ``what`` and the format."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidIdError(
            f"invalid {what} {value!r}: expected <UTC time>-<8 hex digits>, "
            "e.g. 20261122T030501123456Z-1a2b3c4d"
        )
    return value


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *parts])


def raw_batches(root: str) -> str:
    return join(root, "raw", "batches")


def raw_batch(root: str, batch_id: str, suffix: str) -> str:
    """``raw/batches/<batch_id><suffix>``, e.g. suffix ``.parquet`` or ``.json``."""
    return join(raw_batches(root), check_id(batch_id, "batch id") + suffix)


def quarantine(root: str) -> str:
    return join(root, "quarantine")


def quarantined(root: str, batch_id: str, suffix: str) -> str:
    """``quarantine/<batch_id><suffix>``: ``.parquet``/``.csv`` data, ``.json`` manifest, or the reason."""
    return join(quarantine(root), check_id(batch_id, "batch id") + suffix)


def features(root: str) -> str:
    return join(root, "features")


def feature_batch(root: str, batch_id: str) -> str:
    return join(features(root), check_id(batch_id, "batch id") + ".parquet")


def model_versions(root: str) -> str:
    return join(root, "models", "versions")


def model_version(root: str, version: str, name: str = "") -> str:
    """``models/versions/<version>/`` or, with ``name``, a file in it."""
    folder = join(model_versions(root), check_id(version, "model version"))
    return join(folder, name) if name else folder


def staging(root: str, key: str, name: str = "") -> str:
    """``models/staging/<key>/``: a candidate kept between training and registration (key = its version)."""
    folder = join(root, "models", "staging", check_id(key, "staging key"))
    return join(folder, name) if name else folder


def production_pointer(root: str) -> str:
    return join(root, "models", "production.json")


def pending_promotion(root: str) -> str:
    """Where a promotion keeps the pointer to restore until the model server has confirmed it."""
    return join(root, "models", "promotion.json")


def kept_out_records(root: str) -> str:
    return join(root, "models", "kept_out")


def kept_out(root: str, version: str) -> str:
    """Why the candidate ``version`` will not be promoted by the chain that trained it."""
    return join(kept_out_records(root), check_id(version, "model version") + ".json")


def last_training(root: str) -> str:
    """Where ``train_validate`` keeps the newest feature batch it has trained on (include.backtest)."""
    return join(root, "models", "last_training.json")


STAMP_PATTERN = r"^[0-9]{8}T[0-9]{12}Z$"


def monitor_report(root: str, stamp: str, suffix: str = ".json") -> str:
    """``monitor/<stamp><suffix>``: a health report (``.json``) or its page (``.html``)."""
    if not re.fullmatch(STAMP_PATTERN, stamp):
        raise InvalidIdError(f"invalid monitor report stamp {stamp!r}: expected e.g. 20261122T030501123456Z")
    return join(root, "monitor", f"{stamp}{suffix}")


def drift_record(root: str, batch_id: str, suffix: str = ".json") -> str:
    """``monitor/drift/<batch_id><suffix>``: a batch's drift on arrival (``.json``) or its page."""
    return join(root, "monitor", "drift", check_id(batch_id, "batch id") + suffix)


def source_outage(root: str, url_sha256: str) -> str:
    """Where ``ingest`` keeps a failing source's outage while it lasts, by the sha256 of its URL."""
    return join(root, "health", "sources", f"{url_sha256}.json")


def stale_data(root: str) -> str:
    """Where ``monitor`` keeps a stretch of stale data (no new batch for too long) while it lasts."""
    return join(root, "health", "stale_data.json")


def ledger(root: str, kind: str, key: str = "") -> str:
    """``ledger/<kind>/`` (``content``, ``items`` or ``sources``) or, with ``key`` (a sha256), its entry."""
    if kind not in ("content", "items", "sources"):
        raise ValueError(f"no ledger section {kind!r}")
    folder = join(root, "ledger", kind)
    if not key:
        return folder
    if not _SHA256.fullmatch(key):
        raise InvalidIdError(f"invalid ledger key {key!r}: expected 64 hex digits")
    return join(folder, f"{key}.json")
