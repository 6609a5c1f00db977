"""Where the pipeline keeps its data, and what the data looks like.

Both come from the environment so that every Airflow component (and a test) sees the same values:

- ``PIPELINE_STORAGE_ROOT``: an fsspec URL (``file:///...``, ``s3://bucket/prefix``); default ``<repo>/data``.
- ``PIPELINE_SCHEMA``: a path to a dataset schema JSON file; default the bundled Iris schema.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "iris.json"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"  # e-mail bodies (Jinja, rendered by Airflow)
DTYPES = ("float", "int", "str")


def storage_root() -> str:
    """The storage root URL, without a trailing slash."""
    root = os.environ.get("PIPELINE_STORAGE_ROOT") or (REPO_ROOT / "data").as_uri()
    if "://" not in root:
        root = Path(root).resolve().as_uri()
    return root.rstrip("/")


@dataclass(frozen=True)
class FeatureSpec:
    """One input column: its dtype and the closed range its values must lie in."""

    name: str
    dtype: str = "float"
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class DatasetSchema:
    """The columns a batch must have: the features and the label with its allowed classes."""

    name: str
    features: tuple[FeatureSpec, ...]
    label: str
    classes: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[str]:
        return [*self.feature_names, self.label]

    @classmethod
    def from_dict(cls, raw: dict) -> DatasetSchema:
        """Build a schema from its JSON form; raise ``ValueError`` naming what is wrong."""
        missing = [key for key in ("name", "features", "label", "classes") if key not in raw]
        if missing:
            raise ValueError(f"dataset schema is missing key(s): {', '.join(missing)}")
        features = tuple(_feature_spec(spec) for spec in raw["features"])
        if not features:
            raise ValueError("dataset schema has no features")
        for spec in features:
            if spec.dtype not in DTYPES:
                raise ValueError(f"feature {spec.name!r} has dtype {spec.dtype!r}; expected one of {DTYPES}")
        if len(raw["classes"]) < 2:
            raise ValueError("dataset schema needs at least two label classes")
        return cls(
            name=raw["name"],
            features=features,
            label=raw["label"],
            classes=tuple(str(c) for c in raw["classes"]),
        )


def _feature_spec(raw: dict) -> FeatureSpec:
    allowed = {"name", "dtype", "min", "max"}
    if not isinstance(raw, dict) or "name" not in raw or set(raw) - allowed:
        raise ValueError(
            f"feature spec {raw!r} must be an object with a name and only the keys {sorted(allowed)}"
        )
    return FeatureSpec(**raw)


def load_schema() -> DatasetSchema:
    """The dataset schema named by ``PIPELINE_SCHEMA``, or the bundled Iris schema."""
    path = Path(os.environ.get("PIPELINE_SCHEMA") or DEFAULT_SCHEMA_FILE)
    return DatasetSchema.from_dict(json.loads(path.read_text()))
