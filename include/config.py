"""Where the pipeline keeps its data, and what the data looks like.

Both come from the environment so that every Airflow component (and a test) sees the same values:

- ``PIPELINE_STORAGE_ROOT``: an fsspec URL (``file:///...``, ``s3://bucket/prefix``); default ``<repo>/data``.
- ``PIPELINE_SCHEMA``: a path to a dataset schema JSON file; default the bundled Iris schema.

A dataset schema names the columns a model learns from and the one it predicts. Its format is the
pydantic model :class:`DatasetSchema` (``include/schemas/dataset-schema.json`` is its JSON Schema, for
editors; docs/own-data.md explains every key). Format 2 added ``task``, the ``bool`` and ``datetime``
dtypes, ``categories``, ``nullable``/``max_null_fraction`` and the regression label's range; a format-1
file (no ``task``, every value required) reads the same under format 2.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_SCHEMA_FILE = SCHEMAS_DIR / "iris.json"
SCHEMA_JSON_SCHEMA_FILE = SCHEMAS_DIR / "dataset-schema.json"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"  # e-mail bodies (Jinja, rendered by Airflow)

Dtype = Literal["float", "int", "str", "bool", "datetime"]
Task = Literal["classification", "regression"]
NUMERIC_DTYPES = ("float", "int")
# How a bool column's values may be written (any case); anything else is not a bool.
TRUE_TEXTS = frozenset({"true", "1"})
BOOL_TEXTS = TRUE_TEXTS | {"false", "0"}


def storage_root() -> str:
    """The storage root URL, without a trailing slash."""
    root = os.environ.get("PIPELINE_STORAGE_ROOT") or (REPO_ROOT / "data").as_uri()
    if "://" not in root:
        root = Path(root).resolve().as_uri()
    return root.rstrip("/")


class SchemaError(ValueError):
    """A dataset schema file that cannot be used; the message names each key path and its fix."""


class FeatureSpec(BaseModel):
    """One input column: its dtype, the values it may take, and how many may be missing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The column's name in the CSV header.")
    dtype: Dtype = Field(
        "float",
        description="float, int, str (text or categories), bool, or datetime (ISO 8601 text; its "
        "calendar parts become features inside the model).",
    )
    min: float | None = Field(None, description="Lowest allowed value (float and int columns).")
    max: float | None = Field(None, description="Highest allowed value (float and int columns).")
    categories: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description="For str columns: the closed set of allowed values. Omit for open text, whose "
        "unseen values the model tolerates.",
    )
    nullable: bool = Field(False, description="Any number of missing values is acceptable.")
    max_null_fraction: float | None = Field(
        None, ge=0, le=1, description="At most this fraction of a batch's values may be missing."
    )

    # Field validators rather than one model validator: an error then names its key's path
    # (``features.1.categories``), not only the column's. Fields are validated in declaration order, so
    # ``info.data`` holds the earlier ones (without those that failed: their own error is reported).
    @field_validator("min", "max", "categories")
    @classmethod
    def _fits_dtype(cls, value: object, info: ValidationInfo) -> object:
        dtype = info.data.get("dtype")
        if value is None or dtype is None:
            return value
        if info.field_name == "categories":
            if dtype != "str":
                raise ValueError('categories apply to str columns only; set "dtype": "str" or remove them')
            if len(set(value)) != len(value):
                raise ValueError("categories repeat a value; list each once")
        elif dtype not in NUMERIC_DTYPES:
            raise ValueError(
                f"{info.field_name} applies to float and int columns only; remove it or set dtype"
            )
        elif info.field_name == "max" and info.data.get("min") is not None and info.data["min"] > value:
            raise ValueError(f"min {info.data['min']} is above max {value}; swap them")
        return value

    @field_validator("max_null_fraction")
    @classmethod
    def _one_null_limit(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("nullable"):
            raise ValueError('give either "nullable": true or "max_null_fraction", not both')
        return value

    @property
    def null_limit(self) -> float:
        """The largest acceptable fraction of missing values in a batch."""
        if self.nullable:
            return 1.0
        return self.max_null_fraction or 0.0


class DatasetSchema(BaseModel):
    """The columns a batch must have: the features, and the label with its classes or range."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    json_schema_ref: str | None = Field(
        None, alias="$schema", description="Optional: the path of dataset-schema.json, for editors."
    )
    name: str = Field(min_length=1, description="The dataset's name: it names the API's row type.")
    task: Task = Field(
        "classification", description="classification (a class per row) or regression (a number)."
    )
    label: str = Field(min_length=1, description="The column to predict; it may never be missing.")
    classes: tuple[str, ...] | None = Field(
        None,
        validate_default=True,  # so that a classification schema without classes is told so
        description="classification: the label's classes (at least two).",
    )
    label_min: float | None = Field(None, description="regression: the lowest allowed label value.")
    label_max: float | None = Field(None, description="regression: the highest allowed label value.")
    features: tuple[FeatureSpec, ...] = Field(
        description="The input columns (at least one); columns the schema does not name are ignored."
    )

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_as_text(cls, value: object) -> object:
        # Labels are compared as text: a class written 1 is the label "1".
        if isinstance(value, list | tuple):
            return [
                str(item) if isinstance(item, int | float) and not isinstance(item, bool) else item
                for item in value
            ]
        return value

    @field_validator("classes")
    @classmethod
    def _classes_fit_task(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        task = info.data.get("task")
        if task == "classification" and (value is None or len(set(value)) < 2):
            raise ValueError('a classification schema needs "classes": at least two distinct label values')
        if task == "regression" and value is not None:
            raise ValueError('"classes" apply to "task": "classification" only; remove them')
        return value

    @field_validator("label_min", "label_max")
    @classmethod
    def _range_fits_task(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None:
            return value
        if info.data.get("task") == "classification":
            raise ValueError(f'{info.field_name} applies to "task": "regression" only; remove it')
        low = info.data.get("label_min")
        if info.field_name == "label_max" and low is not None and low > value:
            raise ValueError(f"label_min {low} is above label_max {value}; swap them")
        return value

    @field_validator("features")
    @classmethod
    def _distinct_features(
        cls, value: tuple[FeatureSpec, ...], info: ValidationInfo
    ) -> tuple[FeatureSpec, ...]:
        if not value:
            raise ValueError("is empty; list at least one input column")
        names = [spec.name for spec in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"feature(s) {repeated} are listed more than once; list each column once")
        if info.data.get("label") in names:
            raise ValueError(
                f"the label {info.data['label']!r} is also listed as a feature; remove it from features"
            )
        return value

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[str]:
        return [*self.feature_names, self.label]

    def feature(self, name: str) -> FeatureSpec:
        return next(spec for spec in self.features if spec.name == name)

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    @property
    def fingerprint(self) -> str:
        """A short hash of everything that decides which data a model can read (not the file's layout
        or the name of its JSON Schema): batches and models of two schemas never mix."""
        content = self.model_dump(mode="json", exclude={"json_schema_ref"})
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, raw: object) -> DatasetSchema:
        """Build a schema from its JSON form; ``SchemaError`` names every key path that is wrong."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SchemaError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a key of the schema format; see docs/own-data.md for the keys"
        elif error["type"] == "missing":
            message = "is required"
        lines.append(f"{path}: {message}")
    return "dataset schema is not valid:\n" + "\n".join(f"  - {line}" for line in lines)


def schema_json_schema() -> dict:
    """The JSON Schema of a dataset schema file (kept in ``include/schemas/dataset-schema.json``)."""
    return DatasetSchema.model_json_schema(by_alias=True)


def load_schema_file(path: Path) -> DatasetSchema:
    """The dataset schema in the JSON file ``path``; ``SchemaError`` names the file and what is wrong."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise SchemaError(f"dataset schema file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(f"dataset schema file {path} is not JSON: {exc}") from None
    try:
        return DatasetSchema.from_dict(raw)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None


def load_schema() -> DatasetSchema:
    """The dataset schema named by ``PIPELINE_SCHEMA``, or the bundled Iris schema."""
    return load_schema_file(Path(os.environ.get("PIPELINE_SCHEMA") or DEFAULT_SCHEMA_FILE))
