"""Where the data lives and what it looks like, from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.config import DatasetSchema, SchemaError, load_schema, load_schema_file, storage_root

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


def broken(change: dict) -> str:
    """The load error of the Iris schema with ``change`` applied (a ``None`` value removes the key)."""
    raw = {key: value for key, value in {**IRIS, **change}.items() if value is not None}
    with pytest.raises(SchemaError) as error:
        DatasetSchema.from_dict(raw)
    return str(error.value)


REGRESSION = {"task": "regression", "classes": None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": None}, "label: is required"),
        ({"features": []}, "features: is empty; list at least one input column"),
        ({"features": [{"name": "x", "dtype": "decimal"}]}, "features.0.dtype: Input should be 'float'"),
        ({"features": [{"name": "x", "unit": "cm"}]}, "features.0.unit: is not a key of the schema format"),
        ({"unit": "cm"}, "unit: is not a key of the schema format"),
        ({"features": [{"dtype": "float"}]}, "features.0.name: is required"),
        ({"classes": ["only"]}, 'classes: a classification schema needs "classes": at least two'),
        ({"classes": None}, 'classes: a classification schema needs "classes"'),
        ({"task": "regression"}, 'classes: "classes" apply to "task": "classification" only; remove them'),
        ({**REGRESSION, "label_min": 5, "label_max": 1}, "label_max: label_min 5.0 is above label_max 1.0"),
        ({"label_max": 1}, 'label_max: label_max applies to "task": "regression" only'),
        (
            {"features": [{"name": "x"}, {"name": "n", "dtype": "int", "categories": ["a"]}]},
            'features.1.categories: categories apply to str columns only; set "dtype": "str"',
        ),
        (
            {"features": [{"name": "c", "dtype": "str", "categories": ["a", "a"]}]},
            "features.0.categories: categories repeat a value",
        ),
        ({"features": [{"name": "x", "min": 3, "max": 1}]}, "features.0.max: min 3.0 is above max 1.0; swap"),
        (
            {"features": [{"name": "s", "dtype": "str", "max": 1}]},
            "features.0.max: max applies to float and int",
        ),
        (
            {"features": [{"name": "x", "nullable": True, "max_null_fraction": 0.1}]},
            'features.0.max_null_fraction: give either "nullable": true or "max_null_fraction", not both',
        ),
        (
            {"features": [{"name": "x", "max_null_fraction": 1.5}]},
            "features.0.max_null_fraction: Input should",
        ),
        (
            {"features": [{"name": "x"}, {"name": "x"}]},
            "features: feature(s) ['x'] are listed more than once",
        ),
        ({"features": [{"name": "species"}]}, "features: the label 'species' is also listed as a feature"),
    ],
)
def test_a_broken_schema_names_the_key_path_and_the_fix(change, message):
    assert f"  - {message}" in broken(change)


def test_every_broken_key_is_named_at_once():
    message = broken({"task": "regression", "features": [{"name": "x", "dtype": "bool", "min": 0}]})

    assert message.splitlines()[1:] == [
        '  - classes: "classes" apply to "task": "classification" only; remove them',
        "  - features.0.min: min applies to float and int columns only; remove it or set dtype",
    ]


def test_a_format_1_file_reads_as_classification_with_every_value_required():
    schema = DatasetSchema.from_dict(IRIS)

    assert (schema.task, schema.is_classification) == ("classification", True)
    assert {spec.null_limit for spec in schema.features} == {0.0}


def test_number_classes_become_text_and_a_regression_schema_takes_a_label_range():
    classes = DatasetSchema.from_dict({**IRIS, "classes": [0, 1, 2.5]}).classes
    regression = DatasetSchema.from_dict({**IRIS, **REGRESSION, "label_min": 0, "label_max": 9})

    assert classes == ("0", "1", "2.5")
    assert (regression.task, regression.classes, regression.label_min, regression.label_max) == (
        "regression",
        None,
        0.0,
        9.0,
    )


@pytest.mark.parametrize(
    ("spec", "limit"),
    [({}, 0.0), ({"nullable": True}, 1.0), ({"max_null_fraction": 0.25}, 0.25), ({"nullable": False}, 0.0)],
)
def test_null_limit_of_a_feature(spec, limit):
    schema = DatasetSchema.from_dict({**IRIS, "features": [{"name": "x", **spec}]})

    assert schema.feature("x").null_limit == limit


def test_the_fingerprint_follows_the_rules_not_the_json_schema_reference():
    base = DatasetSchema.from_dict(IRIS).fingerprint
    wider = {**IRIS, "features": [{**IRIS["features"][0], "max": 20.0}, *IRIS["features"][1:]]}

    assert DatasetSchema.from_dict({**IRIS, "$schema": "../dataset-schema.json"}).fingerprint == base
    assert DatasetSchema.from_dict(wider).fingerprint != base
    assert DatasetSchema.from_dict({**IRIS, "classes": ["setosa", "versicolor"]}).fingerprint != base
    assert len(base) == 16


def test_a_schema_file_that_is_not_json_or_not_there_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SchemaError, match=r"bad.json is not JSON"):
        load_schema_file(tmp_path / "bad.json")
    with pytest.raises(SchemaError, match=r"none.json does not exist"):
        load_schema_file(tmp_path / "none.json")


def test_storage_root_is_a_url_without_a_trailing_slash(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", "s3://bucket/prefix/")
    assert storage_root() == "s3://bucket/prefix"

    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", str(tmp_path / "data"))
    assert storage_root() == (tmp_path / "data").as_uri()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPELINE_STORAGE_ROOT", "relative/data")
    assert storage_root() == (tmp_path / "relative" / "data").as_uri()
