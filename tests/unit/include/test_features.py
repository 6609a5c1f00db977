from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from include import layout, storage
from include.config import DatasetSchema
from include.errors import PermanentError
from include.features import (
    build_features,
    feature_schema_fingerprint,
    list_feature_batches,
    load_features,
    to_features,
    training_batches,
    write_features,
)

B1 = "20261121T161500000000Z-b1b1b1b1"
B2 = "20261121T161600000000Z-b2b2b2b2"
NOPE = "20261121T161700000000Z-00000000"


def test_to_features_keeps_schema_columns_in_order_with_declared_types(iris, schema):
    raw = iris.iloc[::-1][["species", "petal_width", "sepal_width", "petal_length", "sepal_length"]]
    raw = raw.assign(petal_width=raw["petal_width"].astype(object), comment="ignored")
    raw.index = raw.index + 1000

    features = to_features(raw, schema)

    assert features.columns.tolist() == schema.columns
    assert features.index.tolist() == list(range(len(iris)))
    assert all(features[name].dtype == "float64" for name in schema.feature_names)
    assert pd.api.types.is_string_dtype(features["species"])
    assert features.iloc[0].tolist() == iris.iloc[-1][schema.columns].tolist()


def toy(*features: dict, **keys) -> DatasetSchema:
    return DatasetSchema.from_dict(
        {"name": "toy", "label": "y", "classes": ["0", "1"], "features": list(features), **keys}
    )


def test_to_features_casts_int_and_str_features():
    schema = toy({"name": "n", "dtype": "int"}, {"name": "s", "dtype": "str"})

    features = to_features(pd.DataFrame({"y": [0, 1], "s": ["a", "b"], "n": [1.0, 2.0]}), schema)

    assert features.dtypes.astype(str).tolist() == ["Int64", "str", "str"]
    assert features["n"].tolist() == [1, 2]
    assert features["y"].tolist() == ["0", "1"]


def test_to_features_keeps_missing_values_missing_for_int_str_and_bool():
    schema = toy(
        {"name": "n", "dtype": "int", "nullable": True},
        {"name": "code", "dtype": "str", "nullable": True},
        {"name": "b", "dtype": "bool", "nullable": True},
    )
    # As a CSV lands: an int column with a gap is floats, and so is a code column of numbers.
    raw = pd.DataFrame(
        {"n": [1.0, None, 3.0], "code": [7.0, 12.0, None], "b": ["True", "false", None], "y": [0, 1, 0]}
    )

    features = to_features(raw, schema)

    assert features["n"].isna().tolist() == [False, True, False]
    assert features["n"].dropna().tolist() == [1, 3]
    assert features["code"].isna().tolist() == [False, False, True]
    assert features["code"].dropna().tolist() == ["7", "12"]
    assert features["b"].isna().tolist() == [False, False, True]
    assert features["b"].dropna().tolist() == [True, False]


def test_to_features_parses_datetimes_as_utc_and_a_regression_label_as_numbers():
    schema = DatasetSchema.from_dict(
        {
            "name": "toy",
            "task": "regression",
            "label": "price",
            "features": [{"name": "at", "dtype": "datetime"}],
        }
    )
    raw = pd.DataFrame({"at": ["2026-11-21T16:15:00+02:00", "2026-01-02"], "price": [3, 4.5]})

    features = to_features(raw, schema)

    assert features["at"].tolist() == [
        pd.Timestamp("2026-11-21T14:15:00Z"),
        pd.Timestamp("2026-01-02T00:00:00Z"),
    ]
    assert features["price"].dtype == "float64"
    assert features["price"].tolist() == [3.0, 4.5]


def test_write_features_returns_the_hash_of_the_stored_bytes_and_marks_the_schema(root, iris, schema):
    info = write_features(root, B1, [to_features(iris, schema)], schema)

    stored = storage.read_bytes(layout.join(root, "features", f"{B1}.parquet"))
    assert info == {
        "batch_id": B1,
        "rows": len(iris),
        "sha256": hashlib.sha256(stored).hexdigest(),
        "schema_fingerprint": schema.fingerprint,
    }
    assert feature_schema_fingerprint(root, B1) == schema.fingerprint


def test_load_features_concatenates_batches_with_a_stable_hash(root, iris, schema):
    features = to_features(iris, schema)
    write_features(root, B2, [features.iloc[100:]], schema)
    write_features(root, B1, [features.iloc[:100]], schema)

    df, ids, feature_hash = load_features(root)

    assert ids == [B1, B2] == list_feature_batches(root)
    pd.testing.assert_frame_equal(df, features)
    assert load_features(root, [B2, B1])[2] == feature_hash
    assert load_features(root, [B1])[2] != feature_hash

    write_features(root, B2, [features.iloc[101:]], schema)
    assert load_features(root)[2] != feature_hash


def test_load_features_without_batches_is_a_clear_error(root):
    with pytest.raises(ValueError, match="no feature batches"):
        load_features(root)


def test_load_features_of_an_unknown_batch_names_it(root, iris, schema):
    write_features(root, B1, [to_features(iris, schema)], schema)

    with pytest.raises(FileNotFoundError, match=NOPE):
        load_features(root, [B1, NOPE])


def test_training_batches_are_the_requested_ones_or_the_newest_window(root, iris, schema):
    for batch_id in (NOPE, B1, B2):
        write_features(root, batch_id, [to_features(iris, schema)], schema)

    assert training_batches(root, [], 1, schema) == [NOPE]
    assert training_batches(root, [], 2, schema) == [B2, NOPE]
    assert training_batches(root, [], 10, schema) == [B1, B2, NOPE]
    assert training_batches(root, [B2, B1, B2], 1, schema) == [B1, B2]
    with pytest.raises(PermanentError, match="at least 1"):
        training_batches(root, [], 0, schema)
    with pytest.raises(ValueError, match="invalid batch id"):
        training_batches(root, ["../b1"], 1, schema)


@pytest.fixture
def other_schema(schema) -> DatasetSchema:
    """The Iris schema with one rule changed: a different fingerprint."""
    return DatasetSchema.from_dict({**schema.model_dump(exclude={"json_schema_ref"}), "name": "iris-v2"})


def test_the_window_stops_at_a_batch_of_another_schema(root, iris, schema, other_schema):
    write_features(root, B1, [to_features(iris, schema)], schema)
    write_features(root, B2, [to_features(iris, other_schema)], other_schema)
    write_features(root, NOPE, [to_features(iris, other_schema)], other_schema)

    assert training_batches(root, [], 10, other_schema) == [B2, NOPE]
    with pytest.raises(
        PermanentError, match=rf"no feature batch .* current schema 'iris' \({schema.fingerprint}\)"
    ):
        training_batches(root, [], 10, schema)


def test_a_requested_batch_of_another_schema_is_refused(root, iris, schema, other_schema):
    write_features(root, B1, [to_features(iris, schema)], schema)
    write_features(root, B2, [to_features(iris, other_schema)], other_schema)

    assert training_batches(root, [B1], 1, schema) == [B1]
    with pytest.raises(PermanentError, match=rf"feature batch\(es\) {B2} were built with another schema"):
        training_batches(root, [B1, B2], 1, schema)


def test_a_retried_build_rewrites_the_same_bytes_and_reports_the_same_hashes(
    root, tmp_path, land, iris, schema
):
    land(B1, iris)
    land(B2, iris.iloc[:50])
    first = build_features(root, [B1, B2], schema)
    stored = {p.name: p.read_bytes() for p in (tmp_path / "features").iterdir()}

    assert build_features(root, [B1, B2], schema) == first

    assert {p.name: p.read_bytes() for p in (tmp_path / "features").iterdir()} == stored


def test_a_build_killed_half_way_is_finished_by_the_retry(root, tmp_path, land, iris, schema):
    land(B1, iris)
    land(B2, iris.iloc[:50])
    expected = build_features(root, [B1, B2], schema)
    # What a build killed while writing B2 leaves: B1 done, B2 only as a temporary file.
    (tmp_path / "features" / f"{B2}.parquet").unlink()
    (tmp_path / "features" / ".tmp-0123abcd").write_bytes(b"PAR1 half")

    assert list_feature_batches(root) == [B1]
    assert build_features(root, [B1, B2], schema) == expected
    assert list_feature_batches(root) == [B1, B2]
