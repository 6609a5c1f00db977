"""The quality metrics, per task: their names, which direction is better, and how each is computed.

This module imports no data library at import time, so the deploy stage and the threshold branch can
ask which direction a metric goes without paying for scikit-learn; :func:`score` imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

METRIC_DIGITS = 4
DEFAULT_METRIC = MappingProxyType({"classification": "accuracy", "regression": "r2"})


@dataclass(frozen=True)
class Metric:
    """One metric: the task it scores, its name in words, and whether a higher value is better."""

    name: str
    task: str
    title: str
    higher_is_better: bool

    def passes(self, value: float, threshold: float) -> bool:
        """Whether ``value`` clears the quality bar ``threshold`` (reaching it counts as clearing)."""
        return value >= threshold if self.higher_is_better else value <= threshold

    def at_least_as_good(self, value: float, other: float, margin: float) -> bool:
        """Whether ``value`` is no worse than ``other`` by more than ``margin``."""
        return value >= other - margin if self.higher_is_better else value <= other + margin

    def verdict(self, value: float, threshold: float) -> str:
        """The comparison in words, for logs and mails: "RMSE 12.3 is above the limit 10"."""
        if self.passes(value, threshold):
            relation = "reaches" if value == threshold else "is better than"
        else:
            relation = "is below" if self.higher_is_better else "is above"
        bar = "minimum" if self.higher_is_better else "limit"
        return f"{self.title} {value} {relation} the {bar} {threshold}"


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        metric.name: metric
        for metric in (
            Metric("accuracy", "classification", "accuracy", True),
            Metric("f1_macro", "classification", "macro F1", True),
            Metric("balanced_accuracy", "classification", "balanced accuracy", True),
            Metric("roc_auc", "classification", "ROC AUC", True),  # two classes only
            Metric("rmse", "regression", "RMSE", False),
            Metric("mae", "regression", "MAE", False),
            Metric("r2", "regression", "R²", True),
        )
    }
)


def metric(name: str) -> Metric:
    """The metric called ``name``; ``ValueError`` lists the known ones."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of: {', '.join(METRICS)}")
    return METRICS[name]


def quality_metric(name: str, task: str) -> Metric:
    """The metric a ``task`` model is gated on: ``name``, or the task's default when ``name`` is empty.
    ``ValueError`` when the metric belongs to the other task."""
    chosen = metric(name or DEFAULT_METRIC[task])
    if chosen.task != task:
        others = ", ".join(m.name for m in METRICS.values() if m.task == task)
        raise ValueError(
            f"metric {chosen.name!r} scores {chosen.task}, but the schema's task is {task}; "
            f"choose one of: {others}"
        )
    return chosen


def score(
    task: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    probabilities: np.ndarray | None = None,
    classes: list[str] | None = None,
) -> dict[str, float]:
    """Every metric of ``task`` for ``predicted`` against ``truth``. ROC AUC is given for two classes
    when ``probabilities`` (columns in the order of ``classes``) are known and both classes occur."""
    from sklearn import metrics as sk

    if task == "regression":
        values = {
            "rmse": sk.root_mean_squared_error(truth, predicted),
            "mae": sk.mean_absolute_error(truth, predicted),
            "r2": sk.r2_score(truth, predicted) if len(truth) > 1 else float("nan"),
        }
    else:
        values = {
            "accuracy": sk.accuracy_score(truth, predicted),
            "f1_macro": sk.f1_score(truth, predicted, average="macro", zero_division=0),
            "balanced_accuracy": sk.balanced_accuracy_score(truth, predicted),
        }
        if probabilities is not None and classes is not None and len(classes) == 2 and len(set(truth)) == 2:
            values["roc_auc"] = sk.roc_auc_score(truth == classes[1], probabilities[:, 1])
    return {name: round(float(value), METRIC_DIGITS) for name, value in values.items()}
