"""Train a configured model type on the features and score it on a held-out split.

Every model type works for both tasks (``classification``, ``regression``): its estimator sits behind
the preprocessing of ``include.preprocessing`` in one ``Pipeline``, so categories, dates and missing
values are handled inside the model. The split is seeded (and stratified for classes), and the seed
reaches every estimator that takes one, so the same features, model type, params and seed give the
same model and the same metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from include import metrics, preprocessing
from include.config import DatasetSchema
from include.errors import ConfigurationError, PermanentError


@dataclass(frozen=True)
class ModelType:
    """How a model type is built for each task, and which preprocessing its estimator needs."""

    classifier: Callable[[], BaseEstimator]
    regressor: Callable[[], BaseEstimator]
    scale: bool = False  # standardise numbers (linear models)
    native_categories: bool = False  # the estimator takes gaps and category codes itself

    def estimator(self, task: str) -> BaseEstimator:
        return self.classifier() if task == "classification" else self.regressor()


MODEL_TYPES: Mapping[str, ModelType] = MappingProxyType(
    {
        "random_forest": ModelType(RandomForestClassifier, RandomForestRegressor),
        "linear": ModelType(lambda: LogisticRegression(max_iter=1000), Ridge, scale=True),
        "gradient_boosting": ModelType(
            HistGradientBoostingClassifier, HistGradientBoostingRegressor, native_categories=True
        ),
    }
)


@dataclass(frozen=True)
class TrainingResult:
    """A fitted model, its hold-out metrics, the two splits, and what produced them."""

    model: BaseEstimator
    metrics: dict[str, float]
    holdout: pd.DataFrame
    train: pd.DataFrame
    model_type: str
    params: dict[str, Any]
    schema: DatasetSchema
    seed: int
    test_size: float


@dataclass(frozen=True)
class TrainingConfig:
    """What one ``train_validate`` run trains and the bar it must clear."""

    model_type: str
    hyperparameters: dict[str, Any]
    metric: metrics.Metric
    threshold: float
    batch_ids: list[str]  # requested by hand; empty: the newest ``window`` feature batches
    window: int


def resolve_config(params: Mapping[str, Any], setting: Callable[[str], Any], task: str) -> TrainingConfig:
    """The run's training config for a ``task`` schema: each ``train_validate`` param given for the run
    wins over its setting (``setting(name)`` reads one, e.g. from an Airflow Variable). The
    hyperparameters default to the chosen model type's entry in ``ml_hyperparameters``, not another
    type's; the metric to the ``quality_metric`` setting, else the task's default."""
    model_type = params.get("model_type") or setting("ml_model_type")
    _check_model_type(model_type)
    hyperparameters = params.get("hyperparameters")
    if hyperparameters is None:
        hyperparameters = setting("ml_hyperparameters").get(model_type, {})
    threshold = params.get("threshold")
    try:
        metric = metrics.quality_metric(params.get("metric") or setting("quality_metric"), task)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return TrainingConfig(
        model_type=model_type,
        hyperparameters=dict(hyperparameters),
        metric=metric,
        threshold=float(setting("accuracy_threshold") if threshold is None else threshold),
        batch_ids=list(params.get("batch_ids") or []),
        window=setting("training_window_batches"),
    )


def _check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ConfigurationError(
            f"unknown model type {model_type!r}; choose one of: {', '.join(sorted(MODEL_TYPES))}"
        )


def build_model(schema: DatasetSchema, model_type: str, params: dict[str, Any], seed: int) -> Pipeline:
    """An unfitted model of ``model_type`` for ``schema``'s task, with ``params`` set on its estimator
    behind the preprocessing; ``ConfigurationError`` names a hyperparameter that is not allowed."""
    _check_model_type(model_type)
    kind = MODEL_TYPES[model_type]
    estimator = kind.estimator(schema.task)
    allowed = estimator.get_params(deep=False)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"invalid hyperparameter(s) {', '.join(unknown)} for model type {model_type!r} "
            f"({schema.task}); allowed: {', '.join(sorted(allowed))}"
        )
    seeded = {"random_state": seed} if "random_state" in allowed else {}
    native = {"categorical_features": preprocessing.category_mask(schema)} if kind.native_categories else {}
    estimator.set_params(**{**seeded, **native, **params})
    steps = preprocessing.preprocessor(schema, scale=kind.scale, native_categories=kind.native_categories)
    return Pipeline([*steps.steps, ("estimator", estimator)])


def train_and_evaluate(
    features_df: pd.DataFrame,
    schema: DatasetSchema,
    model_type: str,
    params: dict[str, Any],
    *,
    test_size: float = 0.25,
    seed: int = 42,
) -> TrainingResult:
    """Fit ``model_type`` on a seeded split of ``features_df`` (stratified by class) and score it on
    the rest."""
    model = build_model(schema, model_type, params, seed)
    train, holdout = _split(features_df[schema.columns], schema, test_size, seed)
    try:
        model.fit(train[schema.feature_names], train[schema.label])
    except ValueError as exc:
        raise ConfigurationError(f"{model_type} could not be fitted with {params}: {exc}") from exc
    return TrainingResult(
        model=model,
        metrics=evaluate(model, holdout, schema),
        holdout=holdout,
        train=train,
        model_type=model_type,
        params=dict(params),
        schema=schema,
        seed=seed,
        test_size=test_size,
    )


def evaluate(model: BaseEstimator, holdout_df: pd.DataFrame, schema: DatasetSchema) -> dict[str, float]:
    """Every metric of the schema's task on ``holdout_df``: the same numbers for a candidate and the
    champion."""
    rows = holdout_df[schema.feature_names]
    predicted = model.predict(rows)
    if not schema.is_classification:
        return metrics.score("regression", holdout_df[schema.label].astype(float).to_numpy(), predicted)
    classes = [str(c) for c in model.classes_]
    probabilities = model.predict_proba(rows) if hasattr(model, "predict_proba") else None
    truth = holdout_df[schema.label].astype(str).to_numpy()
    return metrics.score("classification", truth, predicted.astype(str), probabilities, classes)


def _split(
    df: pd.DataFrame, schema: DatasetSchema, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split like ``train_test_split`` does, but say in our terms why the data cannot be split."""
    if not 0 < test_size < 1:
        raise ConfigurationError(f"test_size must lie strictly between 0 and 1, got {test_size}")
    n_test = math.ceil(test_size * len(df))
    stratify = None
    if schema.is_classification:
        label = schema.label
        counts = df[label].value_counts()
        if len(counts) < 2:
            raise PermanentError(
                f"need at least two classes to train; the features only hold {counts.index.tolist()}"
            )
        if counts.min() < 2:
            raise PermanentError(
                f"too few rows per class for a stratified split: class {counts.idxmin()!r} has "
                f"{counts.min()} row(s); every class needs at least 2"
            )
        if min(n_test, len(df) - n_test) < len(counts):
            raise PermanentError(
                f"too few rows per class for a stratified split: {len(df)} rows split "
                f"{len(df) - n_test}/{n_test} cannot give both sides a row of each of the "
                f"{len(counts)} classes"
            )
        stratify = df[label]
    elif min(n_test, len(df) - n_test) < 2:
        raise PermanentError(
            f"too few rows to train and score a regression: {len(df)} rows split "
            f"{len(df) - n_test}/{n_test}; each side needs at least 2"
        )
    train, holdout = train_test_split(df, test_size=test_size, stratify=stratify, random_state=seed)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
