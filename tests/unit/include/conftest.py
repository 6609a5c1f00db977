"""Landing a batch the way ingest does (the Iris data, schema and root come from tests/unit/conftest.py)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import pandas as pd
import pytest

from include import layout, storage


@pytest.fixture
def land(root: str) -> Callable[[str, pd.DataFrame], None]:
    """Land ``df`` as a raw batch the way ingest does: through CSV, so pandas infers the column types."""

    def land(batch_id: str, df: pd.DataFrame) -> None:
        inferred = pd.read_csv(io.StringIO(df.to_csv(index=False)))
        data = storage.write_parquet_atomic(
            inferred, layout.join(root, "raw", "batches", f"{batch_id}.parquet")
        )
        manifest = {
            "batch_id": batch_id,
            "rows": len(inferred),
            "sha256": hashlib.sha256(data).hexdigest(),
            "landed_at": "2026-11-21T16:15:00+00:00",
            "source": {"url": "http://localhost/iris.csv"},
        }
        storage.write_json_atomic(layout.join(root, "raw", "batches", f"{batch_id}.json"), manifest)

    return land


@pytest.fixture
def quarantine_reason(root: str) -> Callable[[str], dict]:
    """Read the reason file of a quarantined batch."""
    return lambda batch_id: storage.read_json(layout.quarantined(root, batch_id, layout.REASON_SUFFIX))
