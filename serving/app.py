"""The model server's FastAPI application.

    GET  /health    liveness and the version served: {"status", "version", "loaded_at", "error"}
    GET  /version   the served version's metadata (type, runtime, sha256, metrics); 503 before the first one
    POST /predict   {"rows": [{feature: value, ...}, ...]} -> {"version", "classes", "predictions",
                    "probabilities"}: classes and their probabilities, or numbers for regression;
                    422 naming the field for a missing, extra or mistyped one. One row or up to
                    ``max_rows`` (a batch) per request.
    POST /reload    load the version models/production.json names now (token required)
    GET  /report    the production version's report (HTML with its plots embedded)
    GET  /models/{version}/report   a registered version's report; 404 until train_validate wrote it
    GET  /drift/{batch_id}/report    a batch's drift on arrival against production's training data
    GET  /monitor/{checked_at}/report   a monitor run's report
    GET  /docs      the OpenAPI documentation (/openapi.json)
    /v2/...         the Open Inference Protocol (KServe V2, as Triton and MLServer serve it): see
                    serving/v2.py

A version predicts with its ONNX twin when it has one (serving/production.py). The body is validated
straight from its bytes by pydantic (the same strict row model), the answer written by orjson, and a
thread-safe predictor (ONNX Runtime) runs on the event loop without a lock; scikit-learn runs on the
thread pool, one call at a time.

Every answer names the worker process that gave it in an ``X-Worker-Pid`` header.

Errors answer ``{"error": "..."}`` (a 422 adds ``detail``, one entry per bad field). Bodies larger than
``max_body_bytes`` get a 413 before they are parsed; more than ``max_rows`` rows a 422.
"""

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from include import layout, registry, storage
from include.config import DatasetSchema, load_schema, storage_root
from include.report import REPORT_FILE
from serving import v2
from serving.predicting import json_response, predict_columns, summary_of, validated
from serving.production import LoadedModel, ProductionModel, ReloadError
from serving.schemas import Health, Prediction, Version, request_model


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
    onnx: bool = True  # predict with a version's ONNX twin when it has one

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
            onnx=env.get("MODEL_SERVER_ONNX", "1") != "0",
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


class WorkerPid:
    """Name the process that answered in an ``X-Worker-Pid`` header: with ``--workers N`` a client (or
    a test) can tell which of the N uvicorn workers served it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-worker-pid", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, named)


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
    production = ProductionModel(
        settings.root, settings.pointer_check_seconds, settings.onnx, schema.fingerprint
    )
    production.current()
    predict_request = request_model(schema, settings.max_rows)

    app = FastAPI(
        title="Model server",
        summary=f"Predictions of the production {schema.name} model.",
        description=__doc__,
        version="1",
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(WorkerPid)
    app.state.production = production

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        summary, listed = summary_of(exc.errors())
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
            runtime=loaded.predictor.runtime,
            **{key: loaded.metadata[key] for key in ("model_type", "model_sha256", "created_at", "metrics")},
        )

    @app.post(
        "/predict",
        response_model=Prediction,
        responses={
            413: {"description": f"The body exceeds {settings.max_body_bytes} bytes."},
            422: {"description": "A missing, extra or mistyped field, or more than max_rows rows."},
            503: {"description": "No model loaded yet."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
            }
        },
    )
    # The body is read here rather than declared as a parameter: pydantic validates the bytes in one
    # pass with the same model (FastAPI would decode the JSON to Python objects first), and the answer
    # is written by orjson; the OpenAPI document still describes both (openapi_extra, ``openapi``).
    async def predict(request: Request) -> Response:
        body = validated(predict_request, await request.body())
        loaded = serving()
        classes = list(loaded.classes) if schema.is_classification else None
        if not body.rows:
            return json_response(
                {"version": loaded.version, "classes": classes, "predictions": [], "probabilities": []}
            )
        columns = {name: [getattr(row, name) for row in body.rows] for name in schema.feature_names}
        predictions, probabilities = await predict_columns(loaded, columns)
        return json_response(
            {
                "version": loaded.version,
                "classes": classes,
                "predictions": predictions,
                "probabilities": probabilities,
            }
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

    app.include_router(v2.router(schema, production, predict_request))
    built_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document plus the request models the endpoints validate themselves."""
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = built_openapi()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (predict_request, v2.InferRequest):
            generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(generated.pop("$defs", {}))
            schemas[model.__name__] = generated
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    return app
