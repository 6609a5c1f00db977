"""What a model does to a table before its estimator sees it: types, dates, gaps and categories.

All of it lives inside the fitted model (a scikit-learn ``Pipeline``), so it is fitted on the training
split only, saved with the model, and applied the same way when ``monitor``, ``deploy`` or the model
server call ``predict``:

- ``datetime`` columns become their calendar parts (year, month, day, weekday, hour);
- ``bool`` columns become 0/1 numbers; numbers stay numbers;
- missing numbers are imputed with the training median, plus a "was missing" indicator column, for
  models that need complete inputs; gradient boosting takes them as they are (it learns where missing
  values go);
- text columns are categories: missing becomes a category of its own, and the ``MAX_CATEGORIES - 1``
  most frequent categories are kept with the rest grouped as "infrequent" (a high-cardinality column
  cannot blow up the model). One-hot encoding for random forests and linear models, ordinal codes with
  native categorical splits for gradient boosting. A category never seen in training is encoded as
  all zeros (one-hot) or as missing (ordinal) at predict time instead of failing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from include.config import DatasetSchema

CALENDAR_PARTS = ("year", "month", "day", "weekday", "hour")
MAX_CATEGORIES = 30
MISSING_CATEGORY = "(missing)"


class TableColumns(BaseEstimator, TransformerMixin):
    """The schema's features as model inputs: numbers as floats (dates as calendar parts, booleans as
    0/1) and categories as text with ``NaN`` for missing; nothing is learned here."""

    def __init__(self, schema: DatasetSchema) -> None:
        self.schema = schema

    def fit(self, frame: pd.DataFrame, y: object = None) -> TableColumns:
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns: dict[str, pd.Series] = {}
        for spec in self.schema.features:
            values = frame[spec.name]
            if spec.dtype == "datetime":
                moments = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
                for part in CALENDAR_PARTS:
                    attribute = "day_of_week" if part == "weekday" else part
                    columns[f"{spec.name}_{part}"] = getattr(moments.dt, attribute).astype("float64")
            elif spec.dtype == "str":
                text = values.astype(object)
                columns[spec.name] = text.where(values.notna(), np.nan)
            else:
                columns[spec.name] = pd.to_numeric(values, errors="coerce").astype("float64")
        return pd.DataFrame(columns, index=frame.index)

    def numeric_columns(self) -> list[str]:
        names = []
        for spec in self.schema.features:
            if spec.dtype == "datetime":
                names += [f"{spec.name}_{part}" for part in CALENDAR_PARTS]
            elif spec.dtype != "str":
                names.append(spec.name)
        return names

    def category_columns(self) -> list[str]:
        return [spec.name for spec in self.schema.features if spec.dtype == "str"]


def preprocessor(schema: DatasetSchema, *, scale: bool, native_categories: bool) -> Pipeline:
    """The preprocessing steps for ``schema``'s features. ``scale`` standardises numbers (linear
    models); ``native_categories`` keeps gaps and gives categories ordinal codes for an estimator that
    handles both itself (see :func:`category_mask`)."""
    table = TableColumns(schema)
    numeric, categorical = table.numeric_columns(), table.category_columns()
    if native_categories:
        numbers = "passthrough"
        categories = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=MAX_CATEGORIES,
        )
    else:
        # keep_empty_features: a column with no value in training still gets its column, so the
        # model's inputs never depend on which values a training window happened to hold.
        steps = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
        numbers = make_pipeline(*steps, *([StandardScaler()] if scale else []))
        categories = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
            OneHotEncoder(
                handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False
            ),
        )
    columns = ColumnTransformer(
        [("numbers", numbers, numeric), ("categories", categories, categorical)],
        verbose_feature_names_out=False,
    )
    return Pipeline([("table", table), ("columns", columns)])


def category_mask(schema: DatasetSchema) -> list[bool]:
    """Which of the native preprocessor's output columns are categories (numbers come first)."""
    table = TableColumns(schema)
    return [False] * len(table.numeric_columns()) + [True] * len(table.category_columns())
