"""The model server's FastAPI application.

    GET  /health    liveness and the version served: {"status", "version", "loaded_at", "error"}
    GET  /version   the served version's metadata (type, sha256, metrics); 503 before the first one
    POST /predict   {"rows": [{feature: value, ...}, ...]} -> {"version", "classes", "predictions",
                    "probabilities"}: classes and their probabilities, or numbers for regression;
                    422 naming the field for a missing, extra or mistyped one
    POST /reload    load the version models/production.json names now (token required)
    GET  /report    the production version's report (HTML with its plots embedded)
    GET  /models/{version}/report   a registered version's report; 404 until train_validate wrote it
    GET  /drift/{batch_id}/report    a batch's drift on arrival against production's training data
    GET  /monitor/{checked_at}/report   a monitor run's report
    GET  /docs      the OpenAPI documentation (/openapi.json)

Errors answer ``{"error": "..."}`` (a 422 adds ``detail``, one entry per bad field). Bodies larger than
``max_body_bytes`` get a 413 before they are parsed; more than ``max_rows`` rows a 422.
"""

import base64
import binascii
import os
import secrets
import threading
from dataclasses import dataclass

import pandas as pd
from fastapi import FastAPI, Header, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from include import layout, registry, storage
from include.config import DatasetSchema, load_schema, storage_root
from include.report import REPORT_FILE
from serving.production import LoadedModel, ProductionModel, ReloadError
from serving.schemas import Health, Prediction, Version, request_model

# A 422 lists at most this many bad fields; a thousand rows missing one column need not list them all.
MAX_ERRORS_LISTED = 20


@dataclass(frozen=True)
class Settings:
    """What a server process needs; :meth:`from_env` is how ``python -m serving`` passes it to every
    uvicorn worker."""

    root: str
    schema: DatasetSchema
    token: str | None = None
    max_rows: int = 1000
    max_body_bytes: int = 1_048_576
    pointer_check_seconds: float = 0.0

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            root=storage_root(),
            schema=load_schema(),
            token=env.get("MODEL_SERVER_TOKEN") or None,
            max_rows=int(env.get("MODEL_SERVER_MAX_ROWS", cls.max_rows)),
            max_body_bytes=int(env.get("MODEL_SERVER_MAX_BODY_BYTES", cls.max_body_bytes)),
            pointer_check_seconds=float(env.get("MODEL_SERVER_POINTER_CHECK_SECONDS", 0.0)),
        )


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes with a 413: a declared Content-Length at once, a chunked
    body as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse({"error": BodyTooLarge(self.limit).detail}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


def _given_token(authorization: str) -> str:
    """The token in an ``Authorization`` header: a Bearer token, or the password of HTTP Basic (what
    Airflow's HttpHook sends from a connection's login and password)."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credentials, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for ``settings`` (default: from the environment); it loads the production
    model at once, so a new worker serves what the pointer names from its first request."""
    settings = settings or Settings.from_env()
    schema = settings.schema
    production = ProductionModel(settings.root, settings.pointer_check_seconds)
    production.current()
    predict_request = request_model(schema, settings.max_rows)
    predicting = threading.Lock()

    app = FastAPI(
        title="Model server",
        summary=f"Predictions of the production {schema.name} model.",
        description=__doc__,
        version="1",
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.state.production = production

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        listed = errors[:MAX_ERRORS_LISTED]
        summary = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg']}" for e in listed)
        if len(errors) > len(listed):
            summary += f"; and {len(errors) - len(listed)} more"
        return JSONResponse({"error": summary, "detail": listed}, status_code=422)

    def serving() -> LoadedModel:
        loaded = production.current()
        if loaded is None:
            raise HTTPException(503, f"no model loaded: {production.error or 'none in production yet'}")
        return loaded

    @app.get("/health")
    def health() -> Health:
        loaded = production.current()
        return Health(
            status="ok" if loaded else "no model",
            version=loaded and loaded.version,
            loaded_at=loaded and loaded.loaded_at,
            error=production.error,
        )

    @app.get("/version", responses={503: {"description": "No model loaded yet."}})
    def version() -> Version:
        loaded = serving()
        return Version(
            version=loaded.version,
            loaded_at=loaded.loaded_at,
            **{key: loaded.metadata[key] for key in ("model_type", "model_sha256", "created_at", "metrics")},
        )

    @app.post(
        "/predict",
        responses={
            413: {"description": f"The body exceeds {settings.max_body_bytes} bytes."},
            503: {"description": "No model loaded yet."},
        },
    )
    # No ``from __future__ import annotations`` in this module: FastAPI reads this annotation, a class
    # made at run time, from the function itself.
    def predict(body: predict_request) -> Prediction:  # type: ignore[valid-type]
        loaded = serving()
        names = schema.feature_names
        if not body.rows:
            classes = list(loaded.classes) if schema.is_classification else None
            return Prediction(version=loaded.version, classes=classes, predictions=[], probabilities=[])
        # The model's own first step types each column (include.preprocessing), as in training.
        frame = pd.DataFrame({name: [getattr(row, name) for row in body.rows] for name in names})
        # One prediction at a time per process: scikit-learn's handling of warning filters is not
        # thread-safe, and FastAPI runs this endpoint on a thread pool; concurrent random-forest
        # predictions left the filters empty and logged a UserWarning per request (bench/serving.py,
        # 23,389 in one run). The model's work holds the GIL for most of its time either way.
        with predicting:
            if not schema.is_classification:
                predictions, probabilities = [float(p) for p in loaded.model.predict(frame)], None
            elif hasattr(loaded.model, "predict_proba"):
                probabilities = loaded.model.predict_proba(frame)
                predictions = [loaded.classes[i] for i in probabilities.argmax(axis=1)]
                probabilities = probabilities.tolist()
            else:
                predictions, probabilities = [str(p) for p in loaded.model.predict(frame)], None
        return Prediction(
            version=loaded.version,
            classes=list(loaded.classes) if schema.is_classification else None,
            predictions=predictions,
            probabilities=probabilities,
        )

    @app.post(
        "/reload",
        responses={
            401: {"description": "No token, or the wrong one."},
            403: {"description": "The server was started without a token: reloading is disabled."},
            409: {"description": "The version the pointer names did not load; the old one serves."},
        },
    )
    def reload(authorization: str = Header(default="", description="Bearer <token>, or Basic")) -> Health:
        """Load the version ``models/production.json`` names now. The token is the ``model_server``
        connection's password, as a Bearer token or as the password of HTTP Basic auth."""
        if settings.token is None:
            raise HTTPException(
                403, "reloading is disabled: the server was started without MODEL_SERVER_TOKEN"
            )
        if not secrets.compare_digest(_given_token(authorization).encode(), settings.token.encode()):
            raise HTTPException(401, "a valid token is required", headers={"WWW-Authenticate": "Bearer"})
        try:
            loaded = production.reload()
        except ReloadError as exc:
            current = production.loaded
            raise HTTPException(
                409, f"{exc}; still serving {current.version if current else 'no model'}"
            ) from exc
        return Health(status="ok", version=loaded.version, loaded_at=loaded.loaded_at, error=None)

    def report_page(version: str) -> HTMLResponse:
        url = layout.model_version(settings.root, version, REPORT_FILE)
        if not storage.exists(url):
            if not storage.exists(layout.model_version(settings.root, version, registry.METADATA_FILE)):
                raise HTTPException(404, f"no registered model version {version}")
            raise HTTPException(
                404, f"the report of {version} is not written yet: try again in a few seconds"
            )
        return HTMLResponse(storage.read_bytes(url).decode())

    report_responses = {200: {"content": {"text/html": {}}, "description": "The report page."}}

    @app.get(
        "/models/{version}/report",
        response_class=HTMLResponse,
        responses={
            **report_responses,
            404: {"description": "No such version, or its report is not written yet."},
        },
    )
    def version_report(
        # pydantic-core's regex has no look-ahead; its `$` never accepts a trailing newline anyway.
        version: str = Path(
            pattern=layout.ID_PATTERN.removesuffix("(?!\\n)"), description="A model version."
        ),
    ) -> HTMLResponse:
        """A registered version's report: the verdict, the metrics against the champion, errors by
        class or residuals, permutation importance, the training data, parameters, lineage and quality
        over time, every plot embedded (nothing else is loaded)."""
        return report_page(version)

    @app.get(
        "/report",
        response_class=HTMLResponse,
        responses={**report_responses, 404: {"description": "No model in production, or no report yet."}},
    )
    def production_report() -> HTMLResponse:
        """The report of the version the production pointer names now."""
        version = registry.production_version(settings.root)
        if version is None:
            raise HTTPException(404, "no model in production yet")
        return report_page(version)

    def stored_page(url: str, what: str) -> HTMLResponse:
        if not storage.exists(url):
            raise HTTPException(404, f"no {what}")
        return HTMLResponse(storage.read_bytes(url).decode())

    @app.get(
        "/drift/{batch_id}/report",
        response_class=HTMLResponse,
        responses={**report_responses, 404: {"description": "No drift was measured for this batch."}},
    )
    def drift_report(
        batch_id: str = Path(pattern=layout.ID_PATTERN.removesuffix("(?!\\n)"), description="A batch id."),
    ) -> HTMLResponse:
        """The drift of a batch on arrival (etl's check_drift): per feature the production model's
        training data and the batch's distribution, and the drift statistic."""
        return stored_page(
            layout.drift_record(settings.root, batch_id, ".html"), f"drift report of {batch_id}"
        )

    @app.get(
        "/monitor/{checked_at}/report",
        response_class=HTMLResponse,
        responses={**report_responses, 404: {"description": "No monitor run at that time."}},
    )
    def monitor_report(
        checked_at: str = Path(pattern=layout.STAMP_PATTERN, description="e.g. 20261122T030501123456Z"),
    ) -> HTMLResponse:
        """A monitor run's report: its checks, the distributions per feature, quality over time."""
        return stored_page(
            layout.monitor_report(settings.root, checked_at, ".html"), f"monitor report {checked_at}"
        )

    return app
