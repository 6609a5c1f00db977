"""Content in hand, as ingest would have received it from a source: a local file with its sha256."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from include.ingest import Received


def received(folder: Path, content: bytes, item: str, validators: dict[str, Any] | None = None) -> Received:
    """``content`` read from the source item ``item`` under ``validators``, kept in a new file in
    ``folder`` (outside the storage root), as :func:`include.ingest.receive` keeps it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / uuid.uuid4().hex
    path.write_bytes(content)
    return Received(item, validators or {}, path, hashlib.sha256(content).hexdigest(), len(content))
