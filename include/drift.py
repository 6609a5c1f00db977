"""Feature drift: how far new data has moved from the data the production model was trained on.

Every statistic lies in [0, 1] whatever the feature's units or kind, so one threshold
(``monitor_drift_threshold``) fits every feature:

- numbers (also ``int`` and ``bool`` as 0/1): the two-sample Kolmogorov-Smirnov statistic, the largest
  gap between the two empirical distribution functions. It needs no binning or distribution
  assumptions (unlike PSI or a t-test) and sees shifts in location, spread and shape alike. The
  statistic is used rather than the p-value because the p-value measures sample size as much as change:
  with thousands of rows it flags harmless wiggles, with a few dozen it misses real shifts.
- categories (``str``): the total variation distance between the category frequencies, half the sum of
  the absolute differences: the share of rows that would have to change category to turn one
  distribution into the other. PSI and chi-square are unbounded and blow up on a category one side
  never saw, so they would need a threshold of their own; this one shares the KS scale.
- missing values, for every column: the absolute change in the fraction of missing values, reported as
  ``"<column> (missing)"``.

``datetime`` columns are not compared: new data is newer by nature.
"""

from __future__ import annotations

import pandas as pd
from scipy.stats import ks_2samp

from include.config import DatasetSchema

MISSING_SUFFIX = " (missing)"


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, schema: DatasetSchema) -> dict[str, float]:
    """The drift statistic of each feature of ``schema``, reference vs current (see the module's doc),
    and of each feature's fraction of missing values."""
    stats = {}
    for spec in schema.features:
        if spec.dtype == "datetime":
            continue
        for name, frame in (("reference", reference), ("current", current)):
            if spec.name not in frame.columns:
                raise ValueError(f"feature {spec.name!r} is missing from the {name} data")
        before, after = reference[spec.name], current[spec.name]
        if before.notna().any() and after.notna().any():
            if spec.dtype == "str":
                stats[spec.name] = category_distance(before.dropna(), after.dropna())
            else:
                stats[spec.name] = float(
                    ks_2samp(before.dropna().astype(float), after.dropna().astype(float)).statistic
                )
        stats[spec.name + MISSING_SUFFIX] = round(
            abs(float(before.isna().mean()) - float(after.isna().mean())), 6
        )
    return stats


def category_distance(reference: pd.Series, current: pd.Series) -> float:
    """The total variation distance between the category frequencies of two samples, in [0, 1]."""
    before = reference.astype(str).value_counts(normalize=True)
    after = current.astype(str).value_counts(normalize=True)
    both = before.index.union(after.index)
    return float(0.5 * (before.reindex(both, fill_value=0) - after.reindex(both, fill_value=0)).abs().sum())


def drifted_features(stats: dict[str, float], threshold: float) -> list[str]:
    """The features whose statistic exceeds ``threshold``, in the order of ``stats``."""
    return [feature for feature, statistic in stats.items() if statistic > threshold]
