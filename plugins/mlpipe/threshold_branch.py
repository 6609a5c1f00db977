"""Branch on whether a model metric clears a quality bar."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def _as_task_ids(task_ids: str | Iterable[str], name: str) -> list[str]:
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    if not ids or not all(isinstance(task_id, str) and task_id for task_id in ids):
        raise ValueError(f"{name} must be a task id or a non-empty list of task ids, got {task_ids!r}")
    return ids


class ThresholdBranchOperator(BaseBranchOperator):
    """
    Follow ``pass_task_ids`` when ``metrics[metric_name]`` clears ``threshold`` (``>=`` when higher is
    better, ``<=`` when lower is, as for an error such as RMSE), else ``fail_task_ids``.

    The other direct downstream tasks are skipped, as with any branch operator.

    :param metrics: Mapping of metric name to value, usually an upstream task's result: an ``XComArg``
        such as ``train.output["metrics"]`` resolves to the dict itself. (templated)
    :param metric_name: Key in ``metrics`` to compare, e.g. ``"accuracy"``. (templated)
    :param threshold: The bar: the lowest passing value, or the highest when lower is better; anything
        ``float()`` accepts, so ``"{{ var.value.accuracy_threshold }}"`` works. (templated)
    :param higher_is_better: Whether a higher metric is better (accuracy, R²) or a lower one (RMSE,
        MAE); a bool, or an ``XComArg`` resolving to one. (templated)
    :param pass_task_ids: Task id(s) or task group id(s) to follow when the metric passes.
    :param fail_task_ids: Task id(s) or task group id(s) to follow when it does not.
    :param bypass: Whether to follow ``bypass_task_ids`` instead, whatever the metric (e.g. a backtest,
        recorded whether or not it passes): a bool, or an ``XComArg`` resolving to one. (templated)
    :param bypass_task_ids: Task id(s) or task group id(s) to follow when ``bypass`` is true.
    """

    template_fields: Sequence[str] = ("metrics", "metric_name", "threshold", "higher_is_better", "bypass")
    ui_color = "#e8d9f5"

    def __init__(
        self,
        *,
        metrics: Mapping[str, Any],
        metric_name: str,
        threshold: float | str,
        higher_is_better: bool | Any = True,
        pass_task_ids: str | Iterable[str],
        fail_task_ids: str | Iterable[str],
        bypass: bool | Any = False,
        bypass_task_ids: str | Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.metric_name = metric_name
        self.threshold = threshold
        self.higher_is_better = higher_is_better
        self.pass_task_ids = _as_task_ids(pass_task_ids, "pass_task_ids")
        self.fail_task_ids = _as_task_ids(fail_task_ids, "fail_task_ids")
        self.bypass = bypass
        self.bypass_task_ids = _as_task_ids(bypass_task_ids, "bypass_task_ids") if bypass_task_ids else []
        if overlap := set(self.pass_task_ids) & set(self.fail_task_ids):
            raise ValueError(f"Task ids {sorted(overlap)} are in both pass_task_ids and fail_task_ids")
        if overlap := set(self.bypass_task_ids) & {*self.pass_task_ids, *self.fail_task_ids}:
            raise ValueError(f"Task ids {sorted(overlap)} are in bypass_task_ids and in another branch")

    def choose_branch(self, context: Context) -> list[str]:
        if not isinstance(self.bypass, bool):
            raise TypeError(f"bypass must be a bool, got {self.bypass!r}")
        if self.bypass:
            if not self.bypass_task_ids:
                raise ValueError("bypass is true but no bypass_task_ids were given")
            self.log.info("Bypassing the threshold: following %s", self.bypass_task_ids)
            return self.bypass_task_ids
        metrics = self.metrics
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"metrics must be a mapping of metric name to value, got {type(metrics).__name__}"
            )
        available = sorted(map(str, metrics))
        if self.metric_name not in metrics:
            raise ValueError(f"Metric {self.metric_name!r} not found in metrics; available: {available}")
        try:
            value = float(metrics[self.metric_name])
        except (TypeError, ValueError):
            raise ValueError(
                f"Metric {self.metric_name!r} has non-numeric value {metrics[self.metric_name]!r}; "
                f"available: {available}"
            ) from None
        try:
            threshold = float(self.threshold)
        except (TypeError, ValueError):
            raise ValueError(
                f"Threshold {self.threshold!r} for metric {self.metric_name!r} is not a number; "
                f"available metrics: {available}"
            ) from None
        if math.isnan(threshold):
            raise ValueError(f"Threshold for metric {self.metric_name!r} is NaN")

        if not isinstance(self.higher_is_better, bool):
            raise TypeError(f"higher_is_better must be a bool, got {self.higher_is_better!r}")
        if self.higher_is_better:
            passed, relation = value >= threshold, (">=" if value >= threshold else "<")
        else:
            passed, relation = value <= threshold, ("<=" if value <= threshold else ">")
        self.log.info(
            "Metric %s = %s %s threshold %s (%s is better): following %s",
            self.metric_name,
            value,
            relation,
            threshold,
            "higher" if self.higher_is_better else "lower",
            self.pass_task_ids if passed else self.fail_task_ids,
        )
        return self.pass_task_ids if passed else self.fail_task_ids
