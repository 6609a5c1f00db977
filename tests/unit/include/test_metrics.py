"""Metrics by task: their direction, the quality bar in words, and what each task is scored on."""

from __future__ import annotations

import numpy as np
import pytest

from include.metrics import METRICS, metric, quality_metric, score


def test_each_metric_has_its_task_and_direction():
    assert {name: (m.task, m.higher_is_better) for name, m in METRICS.items()} == {
        "accuracy": ("classification", True),
        "f1_macro": ("classification", True),
        "balanced_accuracy": ("classification", True),
        "roc_auc": ("classification", True),
        "rmse": ("regression", False),
        "mae": ("regression", False),
        "r2": ("regression", True),
    }


@pytest.mark.parametrize(
    ("name", "value", "passes"),
    [
        ("accuracy", 0.81, True),
        ("accuracy", 0.8, True),
        ("accuracy", 0.79, False),
        ("rmse", 0.79, True),
        ("rmse", 0.8, True),
        ("rmse", 0.81, False),
    ],
)
def test_passes_in_the_metrics_direction_and_reaching_the_bar_passes(name, value, passes):
    assert metric(name).passes(value, 0.8) is passes


@pytest.mark.parametrize(
    ("name", "value", "other", "good"),
    [
        ("accuracy", 0.88, 0.9, True),  # worse, but within the margin
        ("accuracy", 0.87, 0.9, False),
        ("rmse", 12.0, 10.0, True),  # lower is better: worse by the margin exactly
        ("rmse", 12.5, 10.0, False),
        ("rmse", 9.0, 10.0, True),
    ],
)
def test_at_least_as_good_within_a_margin(name, value, other, good):
    margin = 0.02 if name == "accuracy" else 2.0
    assert metric(name).at_least_as_good(value, other, margin) is good


@pytest.mark.parametrize(
    ("name", "value", "threshold", "words"),
    [
        ("rmse", 12.3, 10, "RMSE 12.3 is above the limit 10"),
        ("rmse", 8.0, 10, "RMSE 8.0 is better than the limit 10"),
        ("mae", 10, 10, "MAE 10 reaches the limit 10"),
        ("accuracy", 0.7, 0.8, "accuracy 0.7 is below the minimum 0.8"),
        ("f1_macro", 0.9, 0.8, "macro F1 0.9 is better than the minimum 0.8"),
        ("r2", 0.8, 0.8, "R² 0.8 reaches the minimum 0.8"),
    ],
)
def test_the_verdict_says_it_in_words(name, value, threshold, words):
    assert metric(name).verdict(value, threshold) == words


def test_the_quality_metric_defaults_by_task():
    assert quality_metric("", "classification").name == "accuracy"
    assert quality_metric("", "regression").name == "r2"
    assert quality_metric("mae", "regression").name == "mae"


def test_another_tasks_metric_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"'accuracy' scores classification.*choose one of: rmse, mae, r2"):
        quality_metric("accuracy", "regression")
    with pytest.raises(ValueError, match=r"unknown metric 'auc'; choose one of: accuracy"):
        quality_metric("auc", "classification")


def test_roc_auc_is_given_for_two_classes_only():
    truth = np.array(["a", "b", "a", "b"])
    two = score(
        "classification", truth, truth, np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), ["a", "b"]
    )
    three = score(
        "classification",
        np.array(["a", "b", "c"]),
        np.array(["a", "b", "c"]),
        np.eye(3),
        ["a", "b", "c"],
    )

    assert two["roc_auc"] == 1.0
    assert "roc_auc" not in three
    assert "roc_auc" not in score("classification", truth, truth)  # no probabilities


def test_regression_scores():
    values = score("regression", np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))

    assert values == {"rmse": 1.0, "mae": 0.5, "r2": 0.2}
