"""Where the data lives and what it looks like, from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.config import DatasetSchema, load_schema, storage_root

IRIS = json.loads((Path(__file__).resolve().parents[3] / "include" / "schemas" / "iris.json").read_text())


def test_the_default_schema_is_iris(monkeypatch):
    monkeypatch.delenv("PIPELINE_SCHEMA", raising=False)

    schema = load_schema()

    assert (schema.name, schema.label) == ("iris", "species")
    assert schema.columns == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]


def test_pipeline_schema_names_another_dataset(monkeypatch, tmp_path):
    path = tmp_path / "wine.json"
    path.write_text(
        json.dumps(
            {
                "name": "wine",
                "label": "quality",
                "classes": [3, 4],
                "features": [{"name": "alcohol", "min": 0, "max": 20}, {"name": "region", "dtype": "str"}],
            }
        )
    )
    monkeypatch.setenv("PIPELINE_SCHEMA", str(path))

    schema = load_schema()

    assert (schema.name, schema.feature_names, schema.classes) == ("wine", ["alcohol", "region"], ("3", "4"))
    assert [f.dtype for f in schema.features] == ["float", "str"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": None}, "missing key"),
        ({"features": []}, "has no features"),
        ({"features": [{"name": "x", "dtype": "decimal"}]}, "dtype 'decimal'"),
        ({"features": [{"name": "x", "unit": "cm"}]}, "only the keys"),
        ({"features": [{"dtype": "float"}]}, "must be an object with a name"),
        ({"classes": ["only"]}, "at least two label classes"),
    ],
)
def test_a_broken_schema_names_what_is_wrong(change, message):
    raw = {key: value for key, value in {**IRIS, **change}.items() if value is not None}

    with pytest.raises(ValueError, match=message):
        DatasetSchema.from_dict(raw)


def test_storage_root_is_a_url_without_a_trailing_slash(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", "s3://bucket/prefix/")
    assert storage_root() == "s3://bucket/prefix"

    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", str(tmp_path / "data"))
    assert storage_root() == (tmp_path / "data").as_uri()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", "relative/data")
    assert storage_root() == (tmp_path / "relative" / "data").as_uri()
