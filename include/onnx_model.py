"""A registered model's ONNX twin: the same predictions from ONNX Runtime at a small part of the cost.

scikit-learn spends milliseconds on a single-row ``predict`` of the default 100-tree forest, most of it
per call (input checks, one Python call per tree), not arithmetic; ONNX Runtime runs the same fitted
steps in one native call of about 0.1 ms (bench/serving.py measures both servers). The model server
uses the twin when registration made one, and the scikit-learn model otherwise.

``TableColumns``, the model's first step, has no skl2onnx converter. It learns nothing: it types the
schema's columns (numbers to floats, booleans to 0/1, dates to calendar parts, text kept as text). It is
therefore run in Python here (:meth:`OnnxModel.inputs`, on the plain column lists the server already
has, without pandas), and only the fitted steps after it are converted, one ONNX input per column it
produces. A converter of our own would have had to express date parsing in ONNX operators, for no gain.
The same goes for putting ``MISSING_CATEGORY`` in place of missing text (skl2onnx converts that
imputer only for text markers of a missing value, not for ``NaN``).

:func:`export` converts at registration and keeps the twin only if it gives the same predictions as
the scikit-learn model on the held-out rows (the same class for every row and probabilities within
``TOLERANCE``, or numbers within it for regression); otherwise it says why, and the version is served
by scikit-learn. Inputs are float32 (ONNX Runtime's ``Imputer`` has no float64 kernel), which the
check covers.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from include.config import DatasetSchema
from include.preprocessing import CALENDAR_PARTS, MISSING_CATEGORY

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

TOLERANCE = 1e-4
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}
_PROBABILITIES = "probabilities"


@dataclass(frozen=True)
class Export:
    """The converted model (``None`` when there is none) and what the check found."""

    onnx: bytes | None
    reason: str | None  # why there is no twin
    checked_rows: int = 0
    max_difference: float | None = None


def export(model: Pipeline, schema: DatasetSchema, holdout: pd.DataFrame) -> Export:
    """Convert ``model`` (a ``Pipeline`` whose first step is ``TableColumns``) and check it against
    the scikit-learn model on ``holdout``; a model that cannot be converted, or answers differently,
    gives an ``Export`` without ONNX and the reason."""
    try:
        data = _convert(model, schema)
        twin = OnnxModel(data, schema)
    except Exception as exc:  # skl2onnx raises many kinds for an estimator or option it lacks
        return _without(f"cannot be converted to ONNX: {type(exc).__name__}: {_first_line(exc)}")
    rows = holdout[schema.feature_names]
    columns = {name: rows[name].tolist() for name in schema.feature_names}
    try:
        predicted, probabilities = twin.predict(columns)
    except Exception as exc:  # e.g. a category the converted encoder does not take
        return _without(
            f"the ONNX model fails on the held-out rows: {type(exc).__name__}: {_first_line(exc)}"
        )
    if schema.is_classification:
        expected = [str(p) for p in model.predict(rows)]
        differ = sum(a != b for a, b in zip(predicted, expected, strict=True))
        difference = 0.0
        if probabilities is not None and hasattr(model, "predict_proba"):
            difference = float(np.abs(np.asarray(probabilities) - model.predict_proba(rows)).max(initial=0))
    else:
        expected_numbers = model.predict(rows).astype("float64")
        gaps = np.abs(np.asarray(predicted, dtype="float64") - expected_numbers)
        allowed = TOLERANCE * np.maximum(1.0, np.abs(expected_numbers))
        differ = int((gaps > allowed).sum())
        difference = float(gaps.max(initial=0))
    if differ or (schema.is_classification and difference > TOLERANCE):
        return _without(
            f"the ONNX model differs from scikit-learn on {differ} of {len(rows)} held-out rows "
            f"(largest difference {difference:.3g})"
        )
    return Export(data, None, len(rows), round(difference, 9))


def _without(reason: str) -> Export:
    log.warning("no ONNX twin, scikit-learn will serve this model: %s", reason)
    return Export(None, reason)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _convert(model: Pipeline, schema: DatasetSchema) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.pipeline import Pipeline

    table = model.steps[0][1]
    rest = Pipeline(copy.deepcopy(model.steps[1:]))
    _drop_text_imputers(rest.steps[0][1])
    types = [(name, FloatTensorType([None, 1])) for name in table.numeric_columns()]
    types += [(name, StringTensorType([None, 1])) for name in table.category_columns()]
    estimator = rest.steps[-1][1]
    options = {id(estimator): {"zipmap": False}} if schema.is_classification else None
    converted = convert_sklearn(rest, initial_types=types, options=options, target_opset=dict(ONNX_OPSET))
    return converted.SerializeToString()


def _drop_text_imputers(columns: Any) -> None:
    """Take the imputer of missing text out of ``columns`` (a fitted ``ColumnTransformer``, changed in
    place): skl2onnx converts it only for missing values that are text, and :meth:`OnnxModel.inputs`
    has already put ``MISSING_CATEGORY`` where it would."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    for i, (name, step, selected) in enumerate(getattr(columns, "transformers_", [])):
        if isinstance(step, Pipeline) and isinstance(step.steps[0][1], SimpleImputer):
            imputer = step.steps[0][1]
            if imputer.strategy == "constant" and imputer.fill_value == MISSING_CATEGORY:
                columns.transformers_[i] = (name, Pipeline(step.steps[1:]), selected)


class OnnxModel:
    """A converted model in an ONNX Runtime session; :meth:`predict` may be called from many threads
    at once (a session's ``run`` is thread-safe and releases the GIL)."""

    runtime = "onnxruntime"
    thread_safe = True

    def __init__(self, data: bytes, schema: DatasetSchema) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread per call: the server runs calls side by side; a pool per call would only add
        # hand-offs for inputs of a few rows.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.schema = schema
        outputs = [output.name for output in self.session.get_outputs()]
        self._outputs = outputs[:2] if schema.is_classification else outputs[:1]

    def inputs(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
        """What ``TableColumns`` makes of ``columns`` (feature -> values), as the ONNX inputs."""
        feed: dict[str, np.ndarray] = {}
        for spec in self.schema.features:
            values = columns[spec.name]
            if spec.dtype == "datetime":
                parts = _calendar_parts(values)
                for part in CALENDAR_PARTS:
                    feed[f"{spec.name}_{part}"] = parts[part]
            elif spec.dtype == "str":
                text = [MISSING_CATEGORY if _missing(v) else str(v) for v in values]
                feed[spec.name] = np.array(text, dtype=object).reshape(-1, 1)
            else:
                numbers = [np.nan if _missing(v) else float(v) for v in values]
                feed[spec.name] = np.array(numbers, dtype=np.float32).reshape(-1, 1)
        return feed

    def predict(self, columns: Mapping[str, Sequence[Any]]) -> tuple[list, list[list[float]] | None]:
        """Per row: the class (text) and each class's probability, or the number for regression."""
        results = self.session.run(self._outputs, self.inputs(columns))
        if not self.schema.is_classification:
            return results[0].ravel().astype("float64").tolist(), None
        labels = [str(label) for label in results[0].ravel().tolist()]
        return labels, results[1].astype("float64").tolist() if len(results) > 1 else None


def _missing(value: Any) -> bool:
    return value is None or value != value  # NaN is the one value unequal to itself


def _calendar_parts(values: Sequence[Any]) -> dict[str, np.ndarray]:
    """Year, month, day, weekday and hour in UTC of each value (NaN for a missing or unreadable one),
    as ``pd.to_datetime(..., utc=True)`` reads them in ``TableColumns``."""
    parts = {part: np.full((len(values), 1), np.nan, dtype=np.float32) for part in CALENDAR_PARTS}
    for i, value in enumerate(values):
        moment = _as_utc(value)
        if moment is None:
            continue
        for part, number in zip(
            CALENDAR_PARTS,
            (moment.year, moment.month, moment.day, moment.weekday(), moment.hour),
            strict=True,
        ):
            parts[part][i, 0] = number
    return parts


def _as_utc(value: Any) -> datetime | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
