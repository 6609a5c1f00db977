"""The production model as one server process holds it, kept in step with the production pointer.

Every worker process follows ``models/production.json`` on its own: before answering, it compares the
pointer file's signature (inode, mtime, size, ETag: one ``stat`` on a local disk) with the one it last
acted on, and loads the named version when the pointer changed. Workers therefore need no messages from
each other: once the pointer names a version, the next request to any worker is answered by it.
``POST /reload`` makes the worker that receives it load now and say which version it serves, which is
how ``deploy`` confirms a promotion, and retries a version whose loading failed before.

A version that fails to load (no pointer, a missing or tampered file) leaves the model already loaded
in place; the failure is kept in ``error`` for ``/health``.

A version predicts with its ONNX twin (``include.onnx_model``) when registration made one, else with
the scikit-learn model; the log says which, and why when it is scikit-learn.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from include import layout, registry, storage
from include.onnx_model import OnnxModel

log = logging.getLogger("serving")

# The fields of an fsspec ``info()`` that change when a file is replaced: local disks give inode and
# mtime, object stores an ETag and a LastModified.
_SIGNATURE_KEYS = ("ino", "mtime", "LastModified", "ETag", "size")
_NEVER_CHECKED = ("never checked",)


class ReloadError(RuntimeError):
    """The version the pointer names could not be loaded; the previous model keeps serving."""


class Predictor(Protocol):
    runtime: str  # "onnxruntime" or "scikit-learn"
    thread_safe: bool

    def predict(self, columns: Mapping[str, Sequence[Any]]) -> tuple[list, list[list[float]] | None]: ...


class SklearnPredictor:
    """The scikit-learn model itself, one call at a time per process."""

    runtime = "scikit-learn"
    thread_safe = False

    def __init__(self, model: Any, classes: tuple[str, ...], is_classification: bool) -> None:
        self.model = model
        self.classes = classes
        self.is_classification = is_classification
        # One prediction at a time: scikit-learn's handling of warning filters is not thread-safe, and
        # FastAPI runs it on a thread pool; concurrent random-forest predictions left the filters empty
        # and logged a UserWarning per request (bench/serving.py, 23,389 in one run). The model's work
        # holds the GIL for most of its time either way.
        self._lock = threading.Lock()

    def predict(self, columns: Mapping[str, Sequence[Any]]) -> tuple[list, list[list[float]] | None]:
        import pandas as pd

        # The model's own first step types each column (include.preprocessing), as in training.
        frame = pd.DataFrame(columns)
        with self._lock:
            if not self.is_classification:
                return [float(p) for p in self.model.predict(frame)], None
            if hasattr(self.model, "predict_proba"):
                probabilities = self.model.predict_proba(frame)
                return [self.classes[i] for i in probabilities.argmax(axis=1)], probabilities.tolist()
            return [str(p) for p in self.model.predict(frame)], None


@dataclass(frozen=True)
class LoadedModel:
    """A fitted model of one registered version, with what the API says about it."""

    version: str
    model: Any
    classes: tuple[str, ...]
    metadata: dict
    predictor: Predictor
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def load(root: str, version: str, onnx: bool = True) -> LoadedModel:
    """Load ``version`` from the registry, which checks each file's sha256 before reading it; predict
    with its ONNX twin when it has one and ``onnx`` is on."""
    model = registry.load_model(root, version)
    metadata = registry.version_metadata(root, version)
    classes = tuple(str(c) for c in getattr(model, "classes_", ()))  # a regressor has none
    schema = model.steps[0][1].schema  # TableColumns: the schema the model was trained on
    predictor: Predictor = SklearnPredictor(model, classes, schema.is_classification)
    data, why = registry.load_onnx(root, version) if onnx else (None, "ONNX is turned off")
    if data is not None:
        try:
            predictor = OnnxModel(data, schema)
        except Exception as exc:  # an ONNX Runtime that cannot load it: scikit-learn still can
            why = f"ONNX Runtime could not load the twin: {exc}"
    log.info("version %s predicts with %s (%s)", version, predictor.runtime, why)
    return LoadedModel(version, model, classes, metadata, predictor)


class ProductionModel:
    """The model ``models/production.json`` under ``root`` names, loaded in this process.

    With ``schema_fingerprint``, a version trained on another dataset schema is refused like a broken
    one: it could not read the rows this server's request model accepts.

    ``check_every`` (seconds) spaces out the pointer checks; 0 checks on every request, which costs a
    ``stat`` on a local disk but a request on object storage, where a second or so is the better trade.
    """

    def __init__(
        self, root: str, check_every: float = 0.0, onnx: bool = True, schema_fingerprint: str | None = None
    ) -> None:
        self.root = root
        self.check_every = check_every
        self.onnx = onnx
        self.schema_fingerprint = schema_fingerprint
        self.loaded: LoadedModel | None = None
        self.error: str | None = None
        self._fs, self._pointer = storage.filesystem(layout.production_pointer(root))
        self._lock = threading.Lock()
        self._seen: tuple | None = _NEVER_CHECKED
        self._checked_at = -math.inf

    def current(self) -> LoadedModel | None:
        """The model to answer with: the pointer's version, or the last one that loaded."""
        now = time.monotonic()
        if now - self._checked_at >= self.check_every:
            self._checked_at = now
            signature = self._signature()
            if signature != self._seen:
                with self._lock:
                    if signature != self._seen:
                        self._seen = signature
                        with suppress(ReloadError):  # logged; the model that loaded keeps serving
                            self._follow()
        return self.loaded

    def reload(self) -> LoadedModel:
        """Load the version the pointer names now; on failure keep the current model and raise."""
        with self._lock:
            self._seen = self._signature()
            return self._follow()

    def _signature(self) -> tuple | None:
        try:
            info = self._fs.info(self._pointer)
        except FileNotFoundError:
            return None
        return tuple(info.get(key) for key in _SIGNATURE_KEYS)

    def _follow(self) -> LoadedModel:
        try:
            version = registry.production_version(self.root)
            if version is None:
                raise LookupError(f"no model in production under {self.root}")
            if self.loaded is None or self.loaded.version != version:
                loaded = load(self.root, version, self.onnx)
                trained_on = loaded.metadata.get("schema_fingerprint")
                if self.schema_fingerprint and trained_on != self.schema_fingerprint:
                    raise ValueError(
                        f"model version {version} was trained on dataset schema {trained_on}, not on "
                        f"this server's {self.schema_fingerprint} (PIPELINE_SCHEMA): it cannot read the "
                        "rows this server accepts; the first model of this schema to be promoted loads"
                    )
                self.loaded = loaded
                log.info("serving model version %s", version)
        # Unpickling can fail in many ways (a truncated file, a missing class); each one must leave the
        # model that was serving in place.
        except Exception as exc:
            self.error = str(exc)
            log.error("keeping %s: %s", self.loaded and self.loaded.version, exc)
            raise ReloadError(str(exc)) from exc
        self.error = None
        return self.loaded
