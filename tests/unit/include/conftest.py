"""Shared fixtures: the Iris data as a user's batch would carry it, and a throwaway storage root."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable

import pandas as pd
import pytest
from sklearn.datasets import load_iris

from include import storage
from include.config import DEFAULT_SCHEMA_FILE, DatasetSchema

COLUMNS = {
    "sepal length (cm)": "sepal_length",
    "sepal width (cm)": "sepal_width",
    "petal length (cm)": "petal_length",
    "petal width (cm)": "petal_width",
}


@pytest.fixture(scope="session")
def _iris() -> pd.DataFrame:
    bunch = load_iris(as_frame=True)
    df = bunch.frame.rename(columns=COLUMNS)
    df["species"] = df.pop("target").map(dict(enumerate(bunch.target_names))).astype(str)
    # sklearn's Iris repeats one flower (rows 101 and 142); the `duplicates` rule would rightly reject it.
    return df.drop_duplicates().reset_index(drop=True)


@pytest.fixture
def iris(_iris: pd.DataFrame) -> pd.DataFrame:
    return _iris.copy()


@pytest.fixture
def schema() -> DatasetSchema:
    return DatasetSchema.from_dict(json.loads(DEFAULT_SCHEMA_FILE.read_text()))


@pytest.fixture
def root(tmp_path) -> str:
    return tmp_path.as_uri()


@pytest.fixture
def land(root: str) -> Callable[[str, pd.DataFrame], None]:
    """Land ``df`` as a raw batch the way ingest does: through CSV, so pandas infers the column types."""

    def land(batch_id: str, df: pd.DataFrame) -> None:
        inferred = pd.read_csv(io.StringIO(df.to_csv(index=False)))
        data = storage.write_parquet_atomic(
            inferred, storage.join(root, "raw", "batches", f"{batch_id}.parquet")
        )
        manifest = {
            "batch_id": batch_id,
            "rows": len(inferred),
            "sha256": hashlib.sha256(data).hexdigest(),
            "landed_at": "2026-11-21T16:15:00+00:00",
            "source": {"url": "http://localhost/iris.csv"},
        }
        storage.write_json_atomic(storage.join(root, "raw", "batches", f"{batch_id}.json"), manifest)

    return land
