"""Train a configured model type on the features and score it on a held-out split.

The split is stratified and seeded, and the seed reaches every estimator that takes one, so the same
features, model type, params and seed give the same model and the same metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from include.config import DatasetSchema

METRIC_DIGITS = 4

MODEL_TYPES: Mapping[str, Callable[[], BaseEstimator]] = MappingProxyType(
    {
        "random_forest": RandomForestClassifier,
        "gradient_boosting": GradientBoostingClassifier,
        # Scaling lives inside the model so it is fitted on the training split only.
        "logistic_regression": lambda: Pipeline(
            [("scale", StandardScaler()), ("classifier", LogisticRegression(max_iter=1000))]
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
    metric: str
    threshold: float
    batch_ids: list[str]  # requested by hand; empty: the newest ``window`` feature batches
    window: int


def resolve_config(params: Mapping[str, Any], setting: Callable[[str], Any]) -> TrainingConfig:
    """The run's training config: each ``train_validate`` param given for the run wins over its
    setting (``setting(name)`` reads one, e.g. from an Airflow Variable). The hyperparameters default
    to the chosen model type's entry in ``ml_hyperparameters``, not another type's."""
    model_type = params.get("model_type") or setting("ml_model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unknown model type {model_type!r}; choose one of: {', '.join(sorted(MODEL_TYPES))}"
        )
    hyperparameters = params.get("hyperparameters")
    if hyperparameters is None:
        hyperparameters = setting("ml_hyperparameters").get(model_type, {})
    threshold = params.get("threshold")
    return TrainingConfig(
        model_type=model_type,
        hyperparameters=dict(hyperparameters),
        metric=params.get("metric") or "accuracy",
        threshold=float(setting("accuracy_threshold") if threshold is None else threshold),
        batch_ids=list(params.get("batch_ids") or []),
        window=setting("training_window_batches"),
    )


def build_model(model_type: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    """An unfitted estimator of ``model_type`` with ``params``; ``ValueError`` names what is not allowed."""
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unknown model type {model_type!r}; choose one of: {', '.join(sorted(MODEL_TYPES))}"
        )
    model = MODEL_TYPES[model_type]()
    estimator = model[-1] if isinstance(model, Pipeline) else model
    allowed = estimator.get_params(deep=False)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"invalid hyperparameter(s) {', '.join(unknown)} for model type {model_type!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    seeded = {"random_state": seed} if "random_state" in allowed else {}
    estimator.set_params(**{**seeded, **params})
    return model


def train_and_evaluate(
    features_df: pd.DataFrame,
    schema: DatasetSchema,
    model_type: str,
    params: dict[str, Any],
    *,
    test_size: float = 0.25,
    seed: int = 42,
) -> TrainingResult:
    """Fit ``model_type`` on a stratified split of ``features_df`` and score it on the rest."""
    model = build_model(model_type, params, seed)
    train, holdout = _stratified_split(features_df[schema.columns], schema.label, test_size, seed)
    model.fit(train[schema.feature_names], train[schema.label])
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
    """Accuracy and macro F1 on ``holdout_df``: the same numbers for a candidate and the champion."""
    truth = holdout_df[schema.label].astype(str)
    predicted = model.predict(holdout_df[schema.feature_names])
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), METRIC_DIGITS),
        "f1_macro": round(float(f1_score(truth, predicted, average="macro", zero_division=0)), METRIC_DIGITS),
    }


def _stratified_split(
    df: pd.DataFrame, label: str, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split like ``train_test_split`` does, but say in our terms why the data cannot be split."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must lie strictly between 0 and 1, got {test_size}")
    counts = df[label].value_counts()
    if len(counts) < 2:
        raise ValueError(
            f"need at least two classes to train; the features only hold {counts.index.tolist()}"
        )
    if counts.min() < 2:
        raise ValueError(
            f"too few rows per class for a stratified split: class {counts.idxmin()!r} has "
            f"{counts.min()} row(s); every class needs at least 2"
        )
    n_test = math.ceil(test_size * len(df))
    if min(n_test, len(df) - n_test) < len(counts):
        raise ValueError(
            f"too few rows per class for a stratified split: {len(df)} rows split "
            f"{len(df) - n_test}/{n_test} cannot give both sides a row of each of the {len(counts)} classes"
        )
    train, holdout = train_test_split(df, test_size=test_size, stratify=df[label], random_state=seed)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
