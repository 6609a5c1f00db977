from __future__ import annotations

import pandas as pd
import pytest

from include.config import DatasetSchema
from include.drift import category_distance, drifted_features, feature_drift


def schema_of(*features: dict) -> DatasetSchema:
    return DatasetSchema.from_dict(
        {"name": "toy", "label": "y", "classes": ["0", "1"], "features": list(features)}
    )


def missing(name: str) -> str:
    return f"{name} (missing)"


def test_identical_data_does_not_drift(iris, schema):
    stats = feature_drift(iris, iris.copy(), schema)

    assert stats == {key: 0.0 for name in schema.feature_names for key in (name, missing(name))}
    assert drifted_features(stats, 0.2) == []


def test_a_shifted_feature_is_detected(iris, schema):
    current = iris.sample(frac=0.5, random_state=0)
    current["petal_length"] += 5

    stats = feature_drift(iris, current, schema)

    assert stats["petal_length"] > 0.9
    assert max(stats[name] for name in schema.feature_names if name != "petal_length") < 0.2
    assert drifted_features(stats, 0.2) == ["petal_length"]


def test_missing_feature_is_refused(iris):
    with pytest.raises(ValueError, match="'colour' is missing from the current data"):
        feature_drift(iris.assign(colour=1.0), iris, schema_of({"name": "colour"}))


def test_drifted_features_are_those_strictly_above_the_threshold():
    assert drifted_features({"a": 0.31, "b": 0.3, "c": 0.05, "d": 0.9}, 0.3) == ["a", "d"]


@pytest.mark.parametrize(
    ("before", "after", "distance"),
    [
        (["a", "b", "a", "b"], ["b", "a"], 0.0),  # the same frequencies
        (["a", "a"], ["b", "c"], 1.0),  # no category in common
        (["a", "a", "b", "b"], ["a", "b", "b", "b"], 0.25),  # a quarter of the rows moved from a to b
        (["a", "b"], ["a", "b", "c", "c"], 0.5),  # a category the reference never saw
    ],
)
def test_categories_drift_by_total_variation_distance(before, after, distance):
    assert category_distance(pd.Series(before), pd.Series(after)) == pytest.approx(distance)


def test_a_category_column_is_compared_by_frequencies_and_missing_values_by_their_rate():
    colour = schema_of({"name": "colour", "dtype": "str", "nullable": True})
    reference = pd.DataFrame({"colour": ["red", "blue"] * 10})
    current = pd.DataFrame({"colour": ["green"] * 5 + [None] * 5})

    stats = feature_drift(reference, current, colour)

    assert stats == {"colour": 1.0, "colour (missing)": 0.5}
    assert drifted_features(stats, 0.3) == ["colour", "colour (missing)"]


def test_a_number_column_whose_gaps_grow_drifts_by_its_missing_rate_alone():
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    current = pd.DataFrame({"x": [1.0, None, 3.0, None, 2.0, 4.0, None, None]})

    stats = feature_drift(reference, current, schema_of({"name": "x", "nullable": True}))

    assert stats == {"x": 0.0, "x (missing)": 0.5}


def test_an_all_missing_column_has_only_its_missing_rate():
    stats = feature_drift(
        pd.DataFrame({"x": [1.0, 2.0]}),
        pd.DataFrame({"x": [None, None]}),
        schema_of({"name": "x", "nullable": True}),
    )

    assert stats == {"x (missing)": 1.0}


def test_datetime_columns_are_not_compared():
    when = schema_of({"name": "when", "dtype": "datetime"}, {"name": "n", "dtype": "int"})
    reference = pd.DataFrame({"when": pd.to_datetime(["2020-01-01"] * 3, utc=True), "n": [1, 2, 3]})
    current = pd.DataFrame({"when": pd.to_datetime(["2026-01-01"] * 3, utc=True), "n": [1, 2, 3]})

    assert feature_drift(reference, current, when) == {"n": 0.0, "n (missing)": 0.0}
