"""Fixtures shared by the unit tests: the Iris data as the publisher makes it, the default schema, and
a throwaway storage root."""

from __future__ import annotations

import pandas as pd
import pytest

from include.config import DatasetSchema, load_schema
from scripts.publish import iris_frame


@pytest.fixture(scope="session")
def schema() -> DatasetSchema:
    return load_schema()


@pytest.fixture(scope="session")
def iris_once() -> pd.DataFrame:
    """Iris without its one repeated flower (rows 101 and 142), which `duplicates` would rightly reject."""
    return iris_frame()


@pytest.fixture
def iris(iris_once: pd.DataFrame) -> pd.DataFrame:
    return iris_once.copy()


@pytest.fixture
def root(tmp_path) -> str:
    return tmp_path.as_uri()
