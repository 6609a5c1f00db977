from __future__ import annotations

import pytest

from include.drift import drifted_features, feature_drift


def test_identical_data_does_not_drift(iris, schema):
    stats = feature_drift(iris, iris.copy(), schema.feature_names)

    assert stats == dict.fromkeys(schema.feature_names, 0.0)
    assert drifted_features(stats, 0.2) == []


def test_a_shifted_feature_is_detected(iris, schema):
    current = iris.sample(frac=0.5, random_state=0)
    current["petal_length"] += 5

    stats = feature_drift(iris, current, schema.feature_names)

    assert stats["petal_length"] > 0.9
    assert max(stats[name] for name in schema.feature_names if name != "petal_length") < 0.2
    assert drifted_features(stats, 0.2) == ["petal_length"]


def test_non_numeric_feature_is_refused(iris):
    with pytest.raises(ValueError, match=r"'species'.*not numeric"):
        feature_drift(iris, iris, ["species"])


def test_missing_feature_is_refused(iris):
    with pytest.raises(ValueError, match="'colour' is missing from the current data"):
        feature_drift(iris.assign(colour=1.0), iris, ["colour"])


def test_drifted_features_are_those_strictly_above_the_threshold():
    assert drifted_features({"a": 0.31, "b": 0.3, "c": 0.05, "d": 0.9}, 0.3) == ["a", "d"]
