from __future__ import annotations

import pandas as pd
import pytest

from include import layout, storage
from include.batches import CheckFailure, list_raw_batches, load_raw_batch, quarantine_batch, raw_manifest
from include.config import DatasetSchema, FeatureSpec
from include.validation import validate_batch

BATCH = "20261121T161500000000Z-1a2b3c4d"


def _failures(root, land, df, schema) -> list[CheckFailure]:
    land(BATCH, df)
    return validate_batch(load_raw_batch(root, BATCH), schema)


def test_valid_batch_passes(root, land, iris, schema):
    assert _failures(root, land, iris, schema) == []


def test_empty(root, land, iris, schema):
    failures = _failures(root, land, iris.iloc[0:0], schema)

    assert failures == [CheckFailure("empty", None, "batch has no rows")]


def test_required_columns(root, land, iris, schema):
    failures = _failures(root, land, iris.rename(columns={"petal_width": "petal_widht"}), schema)

    assert [(f.check, f.column) for f in failures] == [("required_columns", "petal_width")]
    assert "'petal_width'" in failures[0].message


def test_dtype(root, land, iris, schema):
    iris["sepal_length"] = iris["sepal_length"].astype(object)
    iris.loc[[4, 9], "sepal_length"] = "n/a-cm"

    failures = _failures(root, land, iris, schema)

    assert [(f.check, f.column) for f in failures] == [("dtype", "sepal_length")]
    assert "2 row(s)" in failures[0].message
    assert "'n/a-cm'" in failures[0].message


def test_nulls(root, land, iris, schema):
    iris.loc[[3, 7, 11], "petal_length"] = None

    failures = _failures(root, land, iris, schema)

    assert [(f.check, f.column) for f in failures] == [("nulls", "petal_length")]
    assert "3 null value(s)" in failures[0].message
    assert "row 3" in failures[0].message


def test_range(root, land, iris, schema):
    iris.loc[5, "sepal_width"] = 99.5

    failures = _failures(root, land, iris, schema)

    assert [(f.check, f.column) for f in failures] == [("range", "sepal_width")]
    assert "1 value(s) outside [0.0, 15.0]" in failures[0].message
    assert "99.5" in failures[0].message


def test_labels(root, land, iris, schema):
    iris.loc[[0, 1], "species"] = "daisy"

    failures = _failures(root, land, iris, schema)

    assert [(f.check, f.column) for f in failures] == [("labels", "species")]
    assert "2 value(s)" in failures[0].message
    assert "'daisy'" in failures[0].message


def test_duplicates(root, land, iris, schema):
    failures = _failures(root, land, pd.concat([iris, iris.iloc[[8]]], ignore_index=True), schema)

    assert [(f.check, f.column) for f in failures] == [("duplicates", None)]
    assert "1 fully duplicated row(s)" in failures[0].message
    assert f"row {len(iris)}" in failures[0].message


@pytest.mark.parametrize(
    ("values", "dtype", "valid"),
    [
        ([1, 2, 3], "int", True),
        ([1.0, 2.0, 3.0], "int", True),
        ([1.0, 2.5, 3.0], "int", False),
        ([1, 2, 3], "float", True),
        (["a", "b", "c"], "str", True),
        ([1, 2, 3], "str", False),
    ],
)
def test_dtype_by_declared_type(values, dtype, valid):
    schema = DatasetSchema("toy", (FeatureSpec("x", dtype),), "y", ("0", "1"))
    df = pd.DataFrame({"x": values, "y": [0, 1, 1]})

    assert (validate_batch(df, schema) == []) is valid


def test_numeric_label_is_judged_after_str_conversion():
    schema = DatasetSchema("toy", (FeatureSpec("x"),), "y", ("0", "1"))

    assert validate_batch(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), schema) == []
    failures = validate_batch(pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]}), schema)
    assert [(f.check, f.column) for f in failures] == [("dtype", "y")]


def test_quarantine_moves_the_batch_and_records_why(root, land, iris, schema):
    iris.loc[0, "species"] = "daisy"
    land(BATCH, iris)
    manifest = raw_manifest(root, BATCH)
    failures = validate_batch(load_raw_batch(root, BATCH), schema)

    reason_url = quarantine_batch(root, BATCH, failures)

    assert list_raw_batches(root) == []
    assert storage.list_names(layout.join(root, "raw", "batches")) == []
    assert storage.list_names(layout.join(root, "quarantine")) == [
        f"{BATCH}.json",
        f"{BATCH}.parquet",
        f"{BATCH}.reason.json",
    ]
    assert storage.read_json(layout.join(root, "quarantine", f"{BATCH}.json")) == manifest
    reason = storage.read_json(reason_url)
    assert reason["batch_id"] == BATCH
    assert reason["failed_checks"] == [
        {"check": "labels", "column": "species", "message": failures[0].message}
    ]
    assert reason["quarantined_at"].startswith("20")


def test_quarantine_of_an_unknown_batch_fails(root):
    with pytest.raises(FileNotFoundError, match=BATCH):
        quarantine_batch(root, BATCH, [])


def test_list_raw_batches_needs_data_and_manifest(root, land, iris):
    land("20261121T161600000000Z-bbbbbbbb", iris)
    land("20261121T161500000000Z-aaaaaaaa", iris)
    storage.write_parquet_atomic(
        iris, layout.join(root, "raw", "batches", "20261121T161700000000Z-no-manifest.parquet")
    )

    assert list_raw_batches(root) == ["20261121T161500000000Z-aaaaaaaa", "20261121T161600000000Z-bbbbbbbb"]


def test_unknown_batch_is_a_clear_error(root):
    with pytest.raises(FileNotFoundError, match=BATCH):
        load_raw_batch(root, BATCH)
    with pytest.raises(FileNotFoundError, match=BATCH):
        raw_manifest(root, BATCH)
