"""A dataset schema inferred from a sample table, with the reason for each decision, for a person to review.

The rules lean towards a schema that also accepts the next batch of the same data: numeric ranges are
widened beyond what the sample shows, a closed set of categories is proposed only when every value was
seen more than once, and a column with gaps may have up to about twice as many in a batch. Columns that
look like row ids are left out (the pipeline ignores columns a schema does not name), so that neither a
model learns from them nor a range check rejects the next, higher id.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

import pandas as pd

from include.config import DatasetSchema

TASKS = ("classification", "regression")
RANGE_MARGIN = 0.10  # of the observed span, on each side
MAX_INTEGER_CLASSES = 20  # an integer label with more distinct values is taken for a quantity
MAX_CATEGORIES = 20
CATEGORY_SHARE = 0.05  # more distinct values than this share of the rows: a closed set only if each repeats
DATETIME_SHARE = 0.95
NULL_STEP = 0.05
MIN_ROWS_FOR_UNIQUE_ID = 20  # in fewer rows, every value differing says little about a column
ID_NAME = re.compile(r"(.+[_ -])?id", re.IGNORECASE)
SHOWN_VALUES = 8


class SchemaInferenceError(ValueError):
    """The sample cannot give a schema; the message says what is wrong and what to do."""


def infer_schema(
    frame: pd.DataFrame, label: str, task: str | None = None, name: str | None = None
) -> tuple[DatasetSchema, list[str]]:
    """The schema of ``frame`` (a sample read with ``pandas.read_csv``) predicting ``label``, and one
    line per decision saying what was decided and why: the task, the label, then each other column."""
    if label not in frame.columns:
        raise SchemaInferenceError(_not_a_column(label, list(frame.columns)))
    if frame.empty:
        raise SchemaInferenceError(
            "the sample has no rows: give a CSV with a header line and rows of data (a few hundred rows "
            "show the ranges, categories and gaps best)"
        )
    values = frame[label]
    if values.isna().all():
        raise SchemaInferenceError(
            f"the label column {label!r} has no values in the sample: fill it in, or choose another --label"
        )
    task, task_reason = _task(values, task)
    raw: dict[str, Any] = {"name": name or "dataset", "task": task, "label": label}
    reasons = [f"task: {task} ({task_reason})"]
    if task == "classification":
        raw["classes"], reason = _classes(values)
    else:
        (raw["label_min"], raw["label_max"]), reason = _range(values.dropna(), integer=_is_integral(values))
    reasons.append(f"label {label!r}: {reason}{_missing_labels(values)}")

    features = []
    for column in frame.columns:
        if column == label:
            continue
        spec, reason = _feature(str(column), frame[column])
        reasons.append(f"{column}: {reason}")
        if spec is not None:
            features.append(spec)
    if not features:
        raise SchemaInferenceError(
            "no column is left to learn from (each is the label, looks like an id or is empty): give a "
            "sample with at least one feature column"
        )
    raw["features"] = features
    return DatasetSchema.from_dict(raw), reasons


def _not_a_column(label: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(label, [str(c) for c in columns], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"the label {label!r} is not a column of the sample{hint}: pass one of {columns} as the label"


def _task(values: pd.Series, given: str | None) -> tuple[str, str]:
    """The task and why: as given, else what the label's values suggest."""
    textual = _is_text(values) or _is_bool(values)
    if given is not None:
        if given not in TASKS:
            raise SchemaInferenceError(f"task {given!r} is not one of {list(TASKS)}: pass one of them")
        if given == "regression" and textual:
            raise SchemaInferenceError(
                f"the label {values.name!r} is not numeric, and regression predicts a number: pass "
                "--task classification, or choose a numeric label"
            )
        return given, "as given"
    distinct = values.nunique()
    if textual:
        return "classification", f"the label {values.name!r} is not numeric: {distinct} distinct values"
    if _is_integral(values) and distinct <= MAX_INTEGER_CLASSES:
        return "classification", (
            f"the label {values.name!r} holds {distinct} distinct whole numbers, and up to "
            f"{MAX_INTEGER_CLASSES} are taken for classes; pass --task regression if they are a quantity"
        )
    return "regression", (
        f"the label {values.name!r} is a number with {distinct} distinct values; pass --task "
        "classification if they are classes"
    )


def _classes(values: pd.Series) -> tuple[list[str], str]:
    """The label's classes as the pipeline compares them (each value as text), numbers in numeric order."""
    present = values.dropna()
    if _is_integral(values):
        # pandas reads whole numbers with a gap as floats; a complete batch reads them as integers.
        ordered = [str(int(v)) for v in sorted(present.unique())]
    elif _is_text(values):
        ordered = sorted(present.astype(str).unique())
    else:
        ordered = [str(v) for v in sorted(present.unique())]
    if len(ordered) < 2:
        raise SchemaInferenceError(
            f"the label {values.name!r} has one value only ({ordered[0]!r}) in the sample, and a classifier "
            "needs at least two classes: give a sample with rows of each class (or --task regression for a "
            "number)"
        )
    return ordered, f"classes {_show(ordered)}: every value the sample holds"


def _missing_labels(values: pd.Series) -> str:
    missing = int(values.isna().sum())
    if not missing:
        return ""
    return (
        f"; {missing} of {len(values)} rows have no label, and the label may never be missing: validation "
        f"would quarantine them (fill in or drop those {missing} rows)"
    )


def _feature(name: str, values: pd.Series) -> tuple[dict[str, Any] | None, str]:
    """The feature spec for one column (None: left out) and why."""
    present = values.dropna()
    if present.empty:
        return None, "left out: every value is missing in the sample, so nothing can be inferred about it"
    dtype, dtype_reason = _dtype(values, present)
    id_reason = _id_reason(name, values, dtype)
    if id_reason:
        return None, (
            f"left out: {id_reason}; the schema ignores columns it does not name (add it to features if a "
            "model should learn from it)"
        )
    spec: dict[str, Any] = {"name": name, "dtype": dtype}
    details = [dtype_reason] if dtype_reason else []
    if dtype in ("int", "float"):
        (spec["min"], spec["max"]), reason = _range(present, integer=dtype == "int")
        details.append(reason)
    elif dtype == "str":
        categories, reason = _categories(present)
        if categories:
            spec["categories"] = categories
        details.append(reason)
    null_limit, reason = _null_limit(values)
    if null_limit is not None:
        spec.update({"nullable": True} if null_limit >= 1 else {"max_null_fraction": null_limit})
    details.append(reason)
    return spec, f"{dtype}; " + "; ".join(details)


def _dtype(values: pd.Series, present: pd.Series) -> tuple[str, str]:
    """The schema dtype of a column, and a note when it is not plain from the values."""
    if _is_bool(values):
        return "bool", ""
    if pd.api.types.is_integer_dtype(values):
        return "int", ""
    if pd.api.types.is_numeric_dtype(values):
        if _is_integral(values):
            return "int", "whole numbers (read as decimals only because of the gaps)"
        return "float", ""
    text = present.astype(str)
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    except (ValueError, OverflowError):
        parsed = pd.Series(pd.NaT, index=text.index)
    unparsed = int(parsed.isna().sum())
    if unparsed <= (1 - DATETIME_SHARE) * len(text):
        note = f"{unparsed} of {len(text)} values are not ISO dates" if unparsed else ""
        return "datetime", note or "ISO 8601 dates"
    return "str", ""


def _id_reason(name: str, values: pd.Series, dtype: str) -> str:
    """Why the column looks like a row id, or "" when it does not."""
    if ID_NAME.fullmatch(name):
        return "named like an id"
    unique = values.notna().all() and values.is_unique
    if unique and dtype in ("str", "int") and len(values) >= MIN_ROWS_FOR_UNIQUE_ID:
        kind = "text" if dtype == "str" else "integer"
        return f"every one of the {len(values)} rows holds a different {kind}, as ids do"
    return ""


def _range(present: pd.Series, *, integer: bool) -> tuple[tuple[float, float], str]:
    """Bounds around the values seen: widened by ``RANGE_MARGIN`` of the span on each side and rounded
    outwards to a round number, so that the next batch of the same data fits."""
    finite = present[present.abs() != math.inf]  # pandas reads "inf" as a number; it bounds nothing
    low, high = float(finite.min()), float(finite.max())
    span = high - low
    margin = span * RANGE_MARGIN if span else max(abs(high) * RANGE_MARGIN, 1.0)
    step = 10.0 ** math.floor(math.log10(margin))
    if integer:
        step = max(step, 1.0)
    digits = max(0, -math.floor(math.log10(step)))
    # Rounded before floor/ceil: (0.4 + 0.04) / 0.01 is 44.00000000000001 in floating point.
    lower = round(math.floor(round((low - margin) / step, 9)) * step, digits)
    upper = round(math.ceil(round((high + margin) / step, 9)) * step, digits)
    seen = f"seen {_number(low)} to {_number(high)}"
    how = f"widened by {RANGE_MARGIN:.0%} of the span each side, rounded out" if span else "one value seen"
    reason = f"{_number(lower)} to {_number(upper)} ({seen}, {how}"
    if low >= 0 > lower:
        lower = 0.0
        reason = f"0 to {_number(upper)} ({seen}, {how}; not below 0, as no value seen is negative"
    return (lower, upper), reason + ")"


def _categories(present: pd.Series) -> tuple[list[str] | None, str]:
    """A closed set of categories when the sample likely shows them all, else None (open text)."""
    counts = present.astype(str).value_counts()
    distinct, rare = len(counts), int((counts < 2).sum())
    if (distinct <= MAX_CATEGORIES and not rare) or distinct <= CATEGORY_SHARE * len(present):
        why = (
            "each seen at least twice"
            if not rare
            else f"few for {len(present)} values ({CATEGORY_SHARE:.0%} at most)"
        )
        return sorted(counts.index), (
            f"categories {_show(sorted(counts.index))}: {distinct} distinct values, {why}; a closed set, "
            "so a batch with another value is quarantined (remove categories to accept any text)"
        )
    return None, (
        f"open text: {distinct} distinct values in {len(present)}, {rare} seen once (a closed set needs at "
        f"most {MAX_CATEGORIES} values each seen twice, or at most {CATEGORY_SHARE:.0%} of the rows)"
    )


def _null_limit(values: pd.Series) -> tuple[float | None, str]:
    """The largest acceptable share of missing values (None: none may be missing) and why."""
    missing = int(values.isna().sum())
    if not missing:
        return None, "required: no value is missing in the sample"
    seen = missing / len(values)
    # Rounded before ceil: 2 * 0.05 / 0.05 is 2.0000000000000004 in floating point.
    limit = min(1.0, math.ceil(round(2 * seen / NULL_STEP, 9)) * NULL_STEP)
    limit = round(limit, 2)
    allowed = "any number missing" if limit >= 1 else f"up to {limit:.0%} missing"
    return limit, (
        f"{allowed}: {missing} of {len(values)} values ({seen:.1%}) missing in the sample, twice that "
        f"rounded up to a multiple of {NULL_STEP:.0%}"
    )


def _is_bool(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return True
    present = values.dropna()
    # A column of True/False with gaps is read as objects.
    return (
        not present.empty
        and pd.api.types.is_object_dtype(values)
        and all(isinstance(v, bool) for v in present)
    )


def _is_text(values: pd.Series) -> bool:
    return not _is_bool(values) and not pd.api.types.is_numeric_dtype(values)


def _is_integral(values: pd.Series) -> bool:
    """Whole numbers that a batch without gaps reads as integers: pandas reads them as floats when
    there is a gap, while a float column without one had decimal points in the file."""
    if _is_bool(values) or not pd.api.types.is_numeric_dtype(values):
        return False
    if pd.api.types.is_integer_dtype(values):
        return True
    present = values.dropna()
    return len(present) < len(values) and bool((present % 1 == 0).all())


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.6g}"


def _show(values: list[str]) -> str:
    shown = ", ".join(values[:SHOWN_VALUES])
    more = f", ... ({len(values) - SHOWN_VALUES} more)" if len(values) > SHOWN_VALUES else ""
    return f"[{shown}{more}]"
