from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from include import metrics
from include.config import DatasetSchema
from include.errors import PermanentError
from include.features import to_features
from include.preprocessing import MAX_CATEGORIES, MISSING_CATEGORY
from include.training import (
    MODEL_TYPES,
    TrainingConfig,
    build_model,
    evaluate,
    resolve_config,
    train_and_evaluate,
)


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

    estimator = result.model[-1]
    assert (estimator.n_estimators, estimator.max_depth, estimator.random_state) == (7, 2, 3)
    assert result.params == {"n_estimators": 7, "max_depth": 2}


def test_params_of_linear_reach_the_classifier_in_the_pipeline(features, schema):
    result = train_and_evaluate(features, schema, "linear", {"C": 0.5})

    assert result.model[-1].C == 0.5


def test_evaluate_reproduces_the_reported_metrics(features, schema):
    result = train_and_evaluate(features, schema, "gradient_boosting", {"max_iter": 20})

    assert evaluate(result.model, result.holdout, schema) == result.metrics


def test_f1_macro_is_the_unweighted_mean_of_each_class_f1(features, schema):
    """An imbalanced hold-out (5/3/2) where accuracy (= micro F1) is 0.7, weighted F1 0.7048, and
    macro F1, by hand: setosa P 4/5 R 4/5 F1 4/5; versicolor P 2/4 R 2/3 F1 4/7; virginica P 1/1 R 1/2
    F1 2/3; their mean is 214/315 = 0.6794. Balanced accuracy is the mean recall: (4/5 + 2/3 + 1/2) / 3
    = 0.6556. No ROC AUC: it is given for two classes only."""
    truth = {"setosa": 5, "versicolor": 3, "virginica": 2}
    holdout = pd.concat(
        [features[features[schema.label] == label].head(rows) for label, rows in truth.items()],
        ignore_index=True,
    )
    predicted = ["setosa"] * 4 + ["versicolor"] * 3 + ["setosa"] + ["virginica", "versicolor"]
    # 1-nearest-neighbour fitted on the hold-out itself predicts exactly the labels it was given.
    model = KNeighborsClassifier(n_neighbors=1).fit(holdout[schema.feature_names], predicted)
    assert model.predict(holdout[schema.feature_names]).tolist() == predicted

    assert evaluate(model, holdout, schema) == {
        "accuracy": 0.7,
        "f1_macro": 0.6794,
        "balanced_accuracy": 0.6556,
    }


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
    "quality_metric": "",
    "training_window_batches": 2,
}
NO_PARAMS = {
    "model_type": None,
    "hyperparameters": None,
    "threshold": None,
    "metric": None,
    "batch_ids": [],
}


def test_without_params_the_settings_decide():
    config = resolve_config(NO_PARAMS, SETTINGS.__getitem__, "classification")

    assert config == TrainingConfig(
        model_type="random_forest",
        hyperparameters={"n_estimators": 7},
        metric=metrics.metric("accuracy"),
        threshold=0.8,
        batch_ids=[],
        window=2,
    )


def test_params_win_over_settings():
    params = {
        "model_type": "gradient_boosting",
        "hyperparameters": {"max_iter": 3},
        "threshold": 0.95,
        "metric": "f1_macro",
        "batch_ids": ["20261121T161500000000Z-aaaaaaaa"],
    }

    config = resolve_config(params, {**SETTINGS, "quality_metric": "accuracy"}.__getitem__, "classification")

    assert (config.model_type, config.hyperparameters, config.threshold, config.metric) == (
        "gradient_boosting",
        {"max_iter": 3},
        0.95,
        metrics.metric("f1_macro"),
    )
    assert config.batch_ids == ["20261121T161500000000Z-aaaaaaaa"]


def test_hyperparameters_follow_the_chosen_model_type():
    assert resolve_config(
        {**NO_PARAMS, "model_type": "gradient_boosting"}, SETTINGS.__getitem__, "classification"
    ).hyperparameters == {"max_depth": 2}
    assert (
        resolve_config(
            {**NO_PARAMS, "model_type": "linear"}, SETTINGS.__getitem__, "classification"
        ).hyperparameters
        == {}
    )


def test_a_threshold_of_zero_is_a_threshold():
    assert resolve_config({**NO_PARAMS, "threshold": 0}, SETTINGS.__getitem__, "regression").threshold == 0.0


def test_an_unknown_model_type_from_the_variable_is_named():
    with pytest.raises(ValueError, match="unknown model type 'xgboost'"):
        resolve_config(NO_PARAMS, {**SETTINGS, "ml_model_type": "xgboost"}.__getitem__, "classification")


def test_the_quality_metric_defaults_by_task_and_follows_the_setting():
    def metric_of(setting: str, task: str) -> str:
        return resolve_config(
            NO_PARAMS, {**SETTINGS, "quality_metric": setting}.__getitem__, task
        ).metric.name

    assert (metric_of("", "classification"), metric_of("", "regression")) == ("accuracy", "r2")
    assert metric_of("rmse", "regression") == "rmse"
    assert (
        resolve_config({**NO_PARAMS, "metric": "mae"}, SETTINGS.__getitem__, "regression").metric.name
        == "mae"
    )


def test_a_metric_of_the_other_task_is_a_permanent_error():
    with pytest.raises(
        PermanentError, match=r"'rmse' scores regression, but the schema's task is classification"
    ):
        resolve_config({**NO_PARAMS, "metric": "rmse"}, SETTINGS.__getitem__, "classification")


ROWS = 240


def mixed_schema(task: str, **colour) -> DatasetSchema:
    raw = {
        "name": "shop",
        "task": task,
        "label": "y",
        "features": [
            {"name": "price", "dtype": "float", "nullable": True},
            {"name": "count", "dtype": "int", "nullable": True},
            {"name": "colour", "dtype": "str", "nullable": True, **colour},
            {"name": "sold_at", "dtype": "datetime"},
            {"name": "promo", "dtype": "bool"},
        ],
    }
    return DatasetSchema.from_dict({**raw, "classes": ["cheap", "dear"]} if task == "classification" else raw)


def mixed_table(task: str) -> pd.DataFrame:
    """Numbers and a category, each with gaps, a datetime and a bool; the label follows price, colour
    and promo, so a model that reads them can learn it."""
    rng = np.random.default_rng(0)
    price = rng.uniform(0, 10, ROWS)
    colour = rng.choice(["red", "green", "blue"], ROWS)
    promo = rng.random(ROWS) < 0.5
    value = price + 4 * (colour == "red") + 2 * promo
    raw = pd.DataFrame(
        {
            "price": np.where(np.arange(ROWS) % 10 == 0, np.nan, price),
            "count": pd.array([None if i % 7 == 0 else i % 5 for i in range(ROWS)], dtype="Int64"),
            "colour": [None if i % 11 == 0 else c for i, c in enumerate(colour)],
            "sold_at": [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z" for i in range(ROWS)],
            "promo": promo,
            "y": np.where(value > 7, "dear", "cheap") if task == "classification" else value,
        }
    )
    return to_features(raw, mixed_schema(task))


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_every_model_type_learns_a_mixed_table_for_both_tasks(model_type, task):
    schema = mixed_schema(task)

    result = train_and_evaluate(mixed_table(task), schema, model_type, {})

    if task == "classification":
        assert set(result.metrics) == {"accuracy", "f1_macro", "balanced_accuracy", "roc_auc"}
        assert result.metrics["accuracy"] > 0.75
        assert set(result.model.predict(result.holdout[schema.feature_names])) <= {"cheap", "dear"}
    else:
        assert set(result.metrics) == {"rmse", "mae", "r2"}
        assert result.metrics["r2"] > 0.5
        assert result.model.predict(result.holdout[schema.feature_names]).dtype == np.float64


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_an_unseen_category_and_missing_values_at_predict_time_get_a_prediction(model_type):
    schema = mixed_schema("regression")
    result = train_and_evaluate(mixed_table("regression"), schema, model_type, {})
    rows = result.holdout[schema.feature_names].head(3).copy()
    rows.loc[0, "colour"] = "ultraviolet"
    rows.loc[1, ["price", "count", "colour", "sold_at"]] = [np.nan, pd.NA, None, pd.NaT]
    rows["promo"] = rows["promo"].astype("boolean")
    rows.loc[2, "promo"] = pd.NA

    predicted = result.model.predict(rows)

    assert predicted.shape == (3,)
    assert np.isfinite(predicted).all()


def test_preprocessing_is_fitted_on_the_training_split_only():
    features = mixed_table("regression")
    whole_median = features["price"].median()

    result = train_and_evaluate(features, mixed_schema("regression"), "random_forest", {})

    imputer = result.model.named_steps["columns"].named_transformers_["numbers"][0]
    train_median = result.train["price"].median()
    assert train_median != whole_median  # else the check below could not tell the two apart
    assert imputer.statistics_[0] == train_median
    encoder = result.model.named_steps["columns"].named_transformers_["categories"][-1]
    assert sorted(encoder.categories_[0]) == sorted(set(result.train["colour"].fillna(MISSING_CATEGORY)))


@pytest.mark.parametrize(
    ("task", "allowed", "refused"),
    [("classification", {"C": 0.5}, {"alpha": 2.0}), ("regression", {"alpha": 2.0}, {"C": 0.5})],
)
def test_hyperparameters_are_checked_against_the_tasks_estimator(task, allowed, refused):
    schema = mixed_schema(task)

    model = build_model(schema, "linear", allowed, seed=0)

    assert model[-1].get_params()[next(iter(allowed))] == next(iter(allowed.values()))
    with pytest.raises(
        PermanentError, match=rf"invalid hyperparameter\(s\) {next(iter(refused))} .*\({task}\)"
    ):
        build_model(schema, "linear", refused, seed=0)


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_a_high_cardinality_column_is_capped(model_type):
    features = mixed_table("classification")
    features["colour"] = [f"shade-{i % 300}" for i in range(ROWS)]  # more categories than max_bins allows

    result = train_and_evaluate(features, mixed_schema("classification"), model_type, {})

    columns = result.model.named_steps["columns"]
    encoder = columns.named_transformers_["categories"]
    encoder = encoder[-1] if hasattr(encoder, "steps") else encoder
    assert len(encoder.get_feature_names_out()) <= MAX_CATEGORIES
    assert len(columns.get_feature_names_out()) < 20 + MAX_CATEGORIES
    assert result.metrics["accuracy"] > 0.5
