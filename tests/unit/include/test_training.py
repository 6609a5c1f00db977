from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from include.features import to_features
from include.training import MODEL_TYPES, TrainingConfig, evaluate, resolve_config, train_and_evaluate


@pytest.fixture
def features(iris, schema):
    return to_features(iris, schema)


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_each_model_type_learns_iris_reproducibly(features, schema, model_type):
    first = train_and_evaluate(features, schema, model_type, {})
    second = train_and_evaluate(features, schema, model_type, {})

    assert first.metrics["accuracy"] > 0.85
    assert first.metrics["f1_macro"] > 0.85
    assert first.metrics == second.metrics
    assert first.holdout.equals(second.holdout)
    predictions = first.model.predict_proba(first.holdout[schema.feature_names])
    assert np.array_equal(predictions, second.model.predict_proba(second.holdout[schema.feature_names]))


def test_split_is_stratified_held_out_and_seeded(features, schema):
    result = train_and_evaluate(features, schema, "linear", {}, test_size=0.2, seed=7)
    other_seed = train_and_evaluate(features, schema, "linear", {}, test_size=0.2, seed=8)

    assert len(result.holdout) + len(result.train) == len(features)
    assert result.holdout[schema.label].value_counts().min() >= 9
    assert result.holdout.merge(result.train, how="inner").empty
    assert not result.holdout.equals(other_seed.holdout)
    assert result.holdout.columns.tolist() == schema.columns


def test_params_reach_the_estimator_and_the_seed_its_random_state(features, schema):
    result = train_and_evaluate(
        features, schema, "random_forest", {"n_estimators": 7, "max_depth": 2}, seed=3
    )

    assert (result.model.n_estimators, result.model.max_depth, result.model.random_state) == (7, 2, 3)
    assert result.params == {"n_estimators": 7, "max_depth": 2}


def test_params_of_linear_reach_the_classifier_in_the_pipeline(features, schema):
    result = train_and_evaluate(features, schema, "linear", {"C": 0.5})

    assert result.model[-1].C == 0.5


def test_evaluate_reproduces_the_reported_metrics(features, schema):
    result = train_and_evaluate(features, schema, "gradient_boosting", {"n_estimators": 20})

    assert evaluate(result.model, result.holdout, schema) == result.metrics


def test_f1_macro_is_the_unweighted_mean_of_each_class_f1(features, schema):
    """An imbalanced hold-out (5/3/2) where accuracy (= micro F1) is 0.7, weighted F1 0.7048, and
    macro F1, by hand: setosa P 4/5 R 4/5 F1 4/5; versicolor P 2/4 R 2/3 F1 4/7; virginica P 1/1 R 1/2
    F1 2/3; their mean is 214/315 = 0.6794."""
    truth = {"setosa": 5, "versicolor": 3, "virginica": 2}
    holdout = pd.concat(
        [features[features[schema.label] == label].head(rows) for label, rows in truth.items()],
        ignore_index=True,
    )
    predicted = ["setosa"] * 4 + ["versicolor"] * 3 + ["setosa"] + ["virginica", "versicolor"]
    # 1-nearest-neighbour fitted on the hold-out itself predicts exactly the labels it was given.
    model = KNeighborsClassifier(n_neighbors=1).fit(holdout[schema.feature_names], predicted)
    assert model.predict(holdout[schema.feature_names]).tolist() == predicted

    assert evaluate(model, holdout, schema) == {"accuracy": 0.7, "f1_macro": 0.6794}


def test_unknown_model_type_names_the_choices(features, schema):
    with pytest.raises(ValueError, match=r"'xgboost'.*gradient_boosting, linear, random_forest"):
        train_and_evaluate(features, schema, "xgboost", {})


def test_unknown_hyperparameter_names_it_and_the_allowed_ones(features, schema):
    with pytest.raises(ValueError, match=r"n_trees.*allowed:.*n_estimators"):
        train_and_evaluate(features, schema, "random_forest", {"n_trees": 10})


def test_invalid_hyperparameter_value_is_a_value_error(features, schema):
    with pytest.raises(ValueError, match="n_estimators"):
        train_and_evaluate(features, schema, "random_forest", {"n_estimators": -1})


def test_too_few_rows_per_class(features, schema):
    one_virginica = features.groupby(schema.label).head(5).iloc[:11]

    with pytest.raises(ValueError, match=r"too few rows per class.*'virginica' has 1 row"):
        train_and_evaluate(one_virginica, schema, "random_forest", {})


def test_too_few_rows_for_both_sides_of_the_split(features, schema):
    two_each = features.groupby(schema.label).head(2)

    with pytest.raises(ValueError, match=r"too few rows per class.*split 4/2"):
        train_and_evaluate(two_each, schema, "random_forest", {})


SETTINGS = {
    "ml_model_type": "random_forest",
    "ml_hyperparameters": {"random_forest": {"n_estimators": 7}, "gradient_boosting": {"max_depth": 2}},
    "accuracy_threshold": 0.8,
    "training_window_batches": 2,
}
NO_PARAMS = {
    "model_type": None,
    "hyperparameters": None,
    "threshold": None,
    "metric": "accuracy",
    "batch_ids": [],
}


def test_without_params_the_settings_decide():
    config = resolve_config(NO_PARAMS, SETTINGS.__getitem__)

    assert config == TrainingConfig(
        model_type="random_forest",
        hyperparameters={"n_estimators": 7},
        metric="accuracy",
        threshold=0.8,
        batch_ids=[],
        window=2,
    )


def test_params_win_over_settings():
    params = {
        "model_type": "gradient_boosting",
        "hyperparameters": {"n_estimators": 3},
        "threshold": 0.95,
        "metric": "f1_macro",
        "batch_ids": ["20261121T161500000000Z-aaaaaaaa"],
    }

    config = resolve_config(params, SETTINGS.__getitem__)

    assert (config.model_type, config.hyperparameters, config.threshold, config.metric) == (
        "gradient_boosting",
        {"n_estimators": 3},
        0.95,
        "f1_macro",
    )
    assert config.batch_ids == ["20261121T161500000000Z-aaaaaaaa"]


def test_hyperparameters_follow_the_chosen_model_type():
    assert resolve_config(
        {**NO_PARAMS, "model_type": "gradient_boosting"}, SETTINGS.__getitem__
    ).hyperparameters == {"max_depth": 2}
    assert resolve_config({**NO_PARAMS, "model_type": "linear"}, SETTINGS.__getitem__).hyperparameters == {}


def test_a_threshold_of_zero_is_a_threshold():
    assert resolve_config({**NO_PARAMS, "threshold": 0}, SETTINGS.__getitem__).threshold == 0.0


def test_an_unknown_model_type_from_the_variable_is_named():
    with pytest.raises(ValueError, match="unknown model type 'xgboost'"):
        resolve_config(NO_PARAMS, {**SETTINGS, "ml_model_type": "xgboost"}.__getitem__)
