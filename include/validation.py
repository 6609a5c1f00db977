"""Fail-fast validation of raw batches (quarantine is in ``batches``).

A batch is judged by named rules (``empty``, ``required_columns``, ``dtype``, ``nulls``, ``range``,
``labels``, ``duplicates``). Each failure names its rule and column, how many rows offend and an example,
so the alert alone tells a person what to fix at the source. A rule that cannot judge a column (it is
missing, or its values have the wrong type) skips it rather than piling up follow-on failures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.batches import CheckFailure, load_raw_batch, quarantine_batch
from include.config import DatasetSchema, FeatureSpec

EXAMPLE_CHARS = 80  # an example value in a message is cut here: the message goes into e-mails and JSON


def validate_batch(df: pd.DataFrame, schema: DatasetSchema) -> list[CheckFailure]:
    """Every rule ``df`` breaks against ``schema``; an empty list means the batch is valid."""
    failures = _check_required_columns(df, schema)
    if df.empty:
        return [CheckFailure("empty", None, "batch has no rows"), *failures]
    present = [column for column in schema.columns if column in df.columns]
    type_failures = _check_dtypes(df, schema, present)
    mistyped = {failure.column for failure in type_failures}
    typed = [column for column in present if column not in mistyped]
    return [
        *failures,
        *type_failures,
        *_check_nulls(df, present),
        *_check_ranges(df, schema, typed),
        *_check_labels(df, schema, typed),
        *_check_duplicates(df),
    ]


def _check_required_columns(df: pd.DataFrame, schema: DatasetSchema) -> list[CheckFailure]:
    return [
        CheckFailure("required_columns", column, f"required column {column!r} is missing")
        for column in schema.columns
        if column not in df.columns
    ]


def _check_dtypes(df: pd.DataFrame, schema: DatasetSchema, present: list[str]) -> list[CheckFailure]:
    failures = []
    specs = {spec.name: spec for spec in schema.features}
    for column in present:
        series = df[column]
        if column == schema.label:
            bad = _label_type_mismatch(series, schema.classes)
            expected = f"one of the classes {list(schema.classes)}"
        else:
            bad = _feature_type_mismatch(series, specs[column])
            expected = specs[column].dtype
        if bad.any():
            failures.append(
                CheckFailure(
                    "dtype",
                    column,
                    f"column {column!r} has dtype {series.dtype}, expected {expected}: "
                    f"{int(bad.sum())} row(s) do not fit, e.g. {_example(series[bad])}",
                )
            )
    return failures


def _feature_type_mismatch(series: pd.Series, spec: FeatureSpec) -> pd.Series:
    """A mask of the non-null values that do not fit ``spec.dtype``.

    When the column's dtype is wrong but every value would parse (numbers stored as text, say), all its
    values are marked: the batch is still malformed, and the count then says how much of it.
    """
    present = series.notna()
    if spec.dtype == "str":
        return _nothing(series) if _is_textual(series) else present
    if pd.api.types.is_bool_dtype(series):
        return present
    numeric = pd.api.types.is_numeric_dtype(series)
    parsed = series if numeric else pd.to_numeric(series, errors="coerce")
    bad = present & parsed.isna()
    if spec.dtype == "int":
        bad |= present & parsed.notna() & (parsed % 1 != 0)
    if not bad.any() and not numeric:
        return present
    return bad


def _label_type_mismatch(series: pd.Series, classes: tuple[str, ...]) -> pd.Series:
    """Text labels are judged by the ``labels`` rule; other types fail here unless they read as a class."""
    if _is_textual(series):
        return _nothing(series)
    return series.notna() & ~series.astype(str).isin(classes)


def _is_textual(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def _nothing(series: pd.Series) -> pd.Series:
    return pd.Series(False, index=series.index)


def _check_nulls(df: pd.DataFrame, present: list[str]) -> list[CheckFailure]:
    failures = []
    for column in present:
        nulls = df[column].isna()
        if nulls.any():
            failures.append(
                CheckFailure(
                    "nulls",
                    column,
                    f"column {column!r} has {int(nulls.sum())} null value(s), e.g. at row {nulls.idxmax()}",
                )
            )
    return failures


def _check_ranges(df: pd.DataFrame, schema: DatasetSchema, typed: list[str]) -> list[CheckFailure]:
    failures = []
    for spec in schema.features:
        if spec.name not in typed or spec.dtype == "str" or (spec.min is None and spec.max is None):
            continue
        values = df[spec.name]
        low = -np.inf if spec.min is None else spec.min
        high = np.inf if spec.max is None else spec.max
        outside = (values < low) | (values > high)
        if outside.any():
            failures.append(
                CheckFailure(
                    "range",
                    spec.name,
                    f"column {spec.name!r} has {int(outside.sum())} value(s) outside "
                    f"[{spec.min}, {spec.max}], e.g. {_example(values[outside])}",
                )
            )
    return failures


def _check_labels(df: pd.DataFrame, schema: DatasetSchema, typed: list[str]) -> list[CheckFailure]:
    if schema.label not in typed:
        return []
    labels = df[schema.label]
    unknown = labels.notna() & ~labels.astype(str).isin(schema.classes)
    if not unknown.any():
        return []
    return [
        CheckFailure(
            "labels",
            schema.label,
            f"column {schema.label!r} has {int(unknown.sum())} value(s) not in {list(schema.classes)}, "
            f"e.g. {_example(labels[unknown])}",
        )
    ]


def _check_duplicates(df: pd.DataFrame) -> list[CheckFailure]:
    duplicated = df.duplicated()
    if not duplicated.any():
        return []
    first = duplicated.idxmax()
    return [
        CheckFailure(
            "duplicates",
            None,
            f"batch has {int(duplicated.sum())} fully duplicated row(s), "
            f"e.g. row {first}: {_bounded(repr(df.loc[first].to_dict()))}",
        )
    ]


def _example(values: pd.Series) -> str:
    value = values.iloc[0]
    return _bounded(repr(value.item() if isinstance(value, np.generic) else value))


def _bounded(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else f"{text[:EXAMPLE_CHARS]}..."


def validate_and_quarantine(root: str, batch_ids: list[str], schema: DatasetSchema) -> dict:
    """Validate each raw batch; move each bad one to quarantine with its reason. The report lists the
    ``valid`` batch ids and the ``quarantined`` ones with their reason file and failed checks."""
    report: dict = {"valid": [], "quarantined": []}
    for batch_id in batch_ids:
        failures = validate_batch(load_raw_batch(root, batch_id), schema)
        if not failures:
            report["valid"].append(batch_id)
            continue
        reason_url = quarantine_batch(root, batch_id, failures)
        report["quarantined"].append(
            {"batch_id": batch_id, "reason_url": reason_url, "failed_checks": [vars(f) for f in failures]}
        )
    return report
