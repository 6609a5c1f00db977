from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from include import layout, storage
from include.config import DatasetSchema, FeatureSpec
from include.features import (
    build_features,
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


def test_to_features_casts_int_and_str_features():
    schema = DatasetSchema("toy", (FeatureSpec("n", "int"), FeatureSpec("s", "str")), "y", ("0", "1"))

    features = to_features(pd.DataFrame({"y": [0, 1], "s": ["a", "b"], "n": [1.0, 2.0]}), schema)

    assert features.dtypes.astype(str).tolist() == ["int64", "str", "str"]
    assert features["y"].tolist() == ["0", "1"]


def test_write_features_returns_the_hash_of_the_stored_bytes(root, iris, schema):
    info = write_features(root, B1, [to_features(iris, schema)])

    stored = storage.read_bytes(layout.join(root, "features", f"{B1}.parquet"))
    assert info == {"batch_id": B1, "rows": len(iris), "sha256": hashlib.sha256(stored).hexdigest()}


def test_load_features_concatenates_batches_with_a_stable_hash(root, iris, schema):
    features = to_features(iris, schema)
    write_features(root, B2, [features.iloc[100:]])
    write_features(root, B1, [features.iloc[:100]])

    df, ids, feature_hash = load_features(root)

    assert ids == [B1, B2] == list_feature_batches(root)
    pd.testing.assert_frame_equal(df, features)
    assert load_features(root, [B2, B1])[2] == feature_hash
    assert load_features(root, [B1])[2] != feature_hash

    write_features(root, B2, [features.iloc[101:]])
    assert load_features(root)[2] != feature_hash


def test_load_features_without_batches_is_a_clear_error(root):
    with pytest.raises(ValueError, match="no feature batches"):
        load_features(root)


def test_load_features_of_an_unknown_batch_names_it(root, iris, schema):
    write_features(root, B1, [to_features(iris, schema)])

    with pytest.raises(FileNotFoundError, match=NOPE):
        load_features(root, [B1, NOPE])


def test_training_batches_are_the_requested_ones_or_the_newest_window(root, iris, schema):
    for batch_id in (NOPE, B1, B2):
        write_features(root, batch_id, [to_features(iris, schema)])

    assert training_batches(root, [], 1) == [NOPE]
    assert training_batches(root, [], 2) == [B2, NOPE]
    assert training_batches(root, [], 10) == [B1, B2, NOPE]
    assert training_batches(root, [B2, B1, B2], 1) == [B1, B2]
    with pytest.raises(ValueError, match="at least 1"):
        training_batches(root, [], 0)
    with pytest.raises(ValueError, match="invalid batch id"):
        training_batches(root, ["../b1"], 1)


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
