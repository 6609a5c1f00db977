"""The API's request and response models, built from the dataset schema at start-up.

A row has exactly the schema's feature columns, each with its declared type and nothing else, so
another dataset's schema (``PIPELINE_SCHEMA``) gives another API without a code change. Types are
strict: ``"5.1"`` is not a float and ``5.0`` is not an int (an int is a float); a ``datetime`` is ISO
8601 text; a ``str`` column with ``categories`` is an enum of them. A column the schema lets miss
values (``nullable`` or ``max_null_fraction``) is optional and may be ``null``; the model imputes it.
Each feature's range is documented, not enforced: the etl stage guards training data, and an input out
of range is drift for ``monitor`` to see rather than a request to refuse. A category the model never
saw is accepted for open text (the model encodes it as unknown).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, create_model

from include.config import DatasetSchema, FeatureSpec

_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool, "datetime": datetime}


def _feature_field(spec: FeatureSpec) -> tuple[object, object]:
    bounds = [f"{sign} {value}" for sign, value in ((">=", spec.min), ("<=", spec.max)) if value is not None]
    expected = " and ".join(bounds)
    description = f"{spec.dtype}" + (f", expected {expected}" if expected else "")
    options = {"allow_inf_nan": False} if spec.dtype == "float" else {}
    kind: object = Annotated[_TYPES[spec.dtype], Strict()]
    if spec.categories:
        kind = Literal[spec.categories]
    elif spec.dtype == "datetime":
        kind = datetime  # ISO 8601 text in JSON, which strict mode would refuse
    if spec.null_limit > 0:
        return kind | None, Field(None, description=f"{description}; may be null or left out", **options)
    return kind, Field(description=description, **options)


def request_model(schema: DatasetSchema, max_rows: int) -> type[BaseModel]:
    """``{"rows": [{feature: value, ...}, ...]}`` with at most ``max_rows`` rows, for ``schema``."""
    row = create_model(
        f"{schema.name.title()}Row",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"One {schema.name} example: every feature, nothing else.",
        **{spec.name: _feature_field(spec) for spec in schema.features},
    )
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[row], Field(max_length=max_rows, description=f"At most {max_rows} rows.")),
    )


class Prediction(BaseModel):
    version: str = Field(description="The model version that answered.")
    classes: list[str] | None = Field(
        description="The label's classes, in the order of the probabilities; null for regression."
    )
    predictions: list[str] | list[float] = Field(
        description="One prediction per row: a class (classification) or a number (regression)."
    )
    probabilities: list[list[float]] | None = Field(
        description="One list per row: the probability of each class; null for regression or a "
        "classifier without probabilities."
    )


class Health(BaseModel):
    status: str = Field(description='"ok", or "no model" before the first promotion loads.')
    version: str | None
    loaded_at: str | None
    error: str | None = Field(description="Why the version the pointer names could not be loaded.")


class Version(BaseModel):
    version: str
    loaded_at: str
    runtime: str = Field(description='What predicts: "onnxruntime" (the ONNX twin) or "scikit-learn".')
    model_type: str
    model_sha256: str
    created_at: str
    metrics: dict[str, float]
