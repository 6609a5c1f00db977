"""Feature drift: how far new data has moved from the data the production model was trained on."""

from __future__ import annotations

import pandas as pd
from scipy.stats import ks_2samp


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str]) -> dict[str, float]:
    """The two-sample Kolmogorov-Smirnov statistic of each numeric feature, reference vs current.

    The statistic is the largest gap between the two empirical distribution functions. It needs no
    binning or distribution assumptions (unlike PSI or a t-test), it sees shifts in location, spread and
    shape alike, and it always lies in [0, 1] whatever the feature's units, so one threshold fits every
    feature. The statistic is used rather than the p-value because the p-value measures sample size as
    much as change: with thousands of rows it flags harmless wiggles, with a few dozen it misses real
    shifts. Nulls are left out; they are the validation stage's business.
    """
    stats = {}
    for feature in features:
        for name, frame in (("reference", reference), ("current", current)):
            if feature not in frame.columns:
                raise ValueError(f"feature {feature!r} is missing from the {name} data")
            if not pd.api.types.is_numeric_dtype(frame[feature]) or pd.api.types.is_bool_dtype(
                frame[feature]
            ):
                raise ValueError(
                    f"feature {feature!r} in the {name} data is {frame[feature].dtype}, not numeric"
                )
            if frame[feature].notna().sum() == 0:
                raise ValueError(f"feature {feature!r} has no values in the {name} data")
        result = ks_2samp(reference[feature].dropna(), current[feature].dropna())
        stats[feature] = float(result.statistic)
    return stats


def drifted_features(stats: dict[str, float], threshold: float) -> list[str]:
    """The features whose statistic exceeds ``threshold``, in the order of ``stats``."""
    return [feature for feature, statistic in stats.items() if statistic > threshold]
