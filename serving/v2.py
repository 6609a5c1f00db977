"""The Open Inference Protocol ("V2" REST of KServe, Triton and MLServer) over the production model,
so that clients of those servers (``tritonclient.http``, KServe's SDK, plain HTTP) can call this one.

    GET  /v2                               server metadata
    GET  /v2/health/live, /v2/health/ready 200 {"live"|"ready": true}; ready: a model is loaded (else 503)
    GET  /v2/models/{name}                 the model's metadata: versions, platform, inputs, outputs
    GET  /v2/models/{name}/ready           200 when loaded
    POST /v2/models/{name}/infer           (also .../versions/{version}/infer) typed tensors in and out

``name`` is the dataset schema's name (``iris``). One input tensor per feature column, named after it,
of shape ``[N]`` or ``[N, 1]`` and the datatype of its dtype: ``FP64`` (any FP or INT type is taken)
for float, ``INT64`` (any INT or UINT type) for int, ``BOOL`` for bool, ``BYTES`` (UTF-8 text) for str
and for datetime (ISO 8601). The N rows are then validated by the same strict row model as
``/predict`` (ranges, categories, which columns may be null), so no request reaches the model
unchecked. Outputs: ``label`` (``BYTES``, shape ``[N]``) and ``probabilities`` (``FP64``, ``[N, C]``, the
classes in the model metadata's ``parameters.classes`` order) for classification, ``prediction``
(``FP64``, ``[N]``) for regression; a request's ``outputs`` picks among them.

Tensor data comes as JSON (``data``: a flat or nested list) or in the binary tensor data extension
(Triton's: the JSON header's length in ``Inference-Header-Content-Length``, each input's bytes after it
in order, sized by ``parameters.binary_data_size``), which ``tritonclient.http`` uses by default.
Answers are JSON. Errors answer ``{"error": "..."}``: 400 for a bad request, 404 for another model or
version, 503 before a model is loaded.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.config import DatasetSchema
from serving.predicting import json_response, predict_columns, summary_of
from serving.production import LoadedModel, ProductionModel

DATATYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "str": "BYTES", "datetime": "BYTES"}
_INTEGERS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
ACCEPTED = {
    "float": {"FP16", "FP32", "FP64", *_INTEGERS},
    "int": _INTEGERS,
    "bool": {"BOOL"},
    "str": {"BYTES"},
    "datetime": {"BYTES"},
}
_NUMPY = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
BINARY_HEADER = "inference-header-content-length"


class InferInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = Field(None, description="Row-major values; absent when sent as binary data.")


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """An inference request of the Open Inference Protocol: one tensor per feature column."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferInput]
    outputs: list[RequestedOutput] | None = None


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def _flat(data: list[Any]) -> list[Any]:
    if not any(isinstance(value, list) for value in data):
        return data
    return [item for value in data for item in (_flat(value) if isinstance(value, list) else [value])]


def _binary_values(raw: bytes, datatype: str) -> list[Any]:
    if datatype == "BYTES":
        values, offset = [], 0
        while offset < len(raw):
            (size,) = struct.unpack_from("<I", raw, offset)
            values.append(raw[offset + 4 : offset + 4 + size].decode())
            offset += 4 + size
        return values
    if datatype not in _NUMPY:
        raise _bad(f"unsupported datatype {datatype}")
    return np.frombuffer(raw, dtype=np.dtype(_NUMPY[datatype]).newbyteorder("<")).tolist()


def parse_request(body: bytes, header_length: str | None) -> tuple[InferRequest, dict[str, list[Any]]]:
    """The request and each input's values, flat, from JSON or the binary tensor data extension."""
    try:
        size = int(header_length) if header_length is not None else len(body)
        request = InferRequest.model_validate_json(body[:size])
    except ValueError as exc:  # ValidationError is one too
        message = summary_of(exc.errors())[0] if isinstance(exc, ValidationError) else str(exc)
        raise _bad(f"not an inference request: {message}") from None
    offset, values = size, {}
    for tensor in request.inputs:
        binary = (tensor.parameters or {}).get("binary_data_size")
        if binary is not None:
            raw = body[offset : offset + int(binary)]
            offset += int(binary)
            if len(raw) != int(binary):
                raise _bad(f"input {tensor.name!r}: {binary} bytes of binary data announced, {len(raw)} sent")
            values[tensor.name] = _binary_values(raw, tensor.datatype)
        elif tensor.data is None:
            raise _bad(f"input {tensor.name!r} has no data")
        else:
            values[tensor.name] = _flat(tensor.data)
    return request, values


def router(schema: DatasetSchema, production: ProductionModel, predict_request: type[BaseModel]) -> APIRouter:
    """The V2 endpoints for ``schema``'s model, validating rows with ``predict_request``."""
    api = APIRouter(prefix="/v2", tags=["Open Inference Protocol (V2)"])
    features = {spec.name: spec for spec in schema.features}
    outputs = (
        [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, -1]},
        ]
        if schema.is_classification
        else [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    )

    def served(name: str, version: str | None = None) -> LoadedModel:
        if name != schema.name:
            raise HTTPException(404, f"no model {name!r}; this server serves {schema.name!r}")
        loaded = production.current()
        if loaded is None:
            raise HTTPException(503, f"no model loaded: {production.error or 'none in production yet'}")
        if version is not None and version != loaded.version:
            raise HTTPException(404, f"model {name!r} version {version!r} is not served; {loaded.version} is")
        return loaded

    @api.get("", summary="Server metadata")
    def server_metadata() -> dict[str, Any]:
        return {"name": "model-server", "version": "1", "extensions": ["binary_tensor_data"]}

    @api.get("/health/live", summary="Server liveness")
    def live() -> dict[str, bool]:
        return {"live": True}

    @api.get("/health/ready", summary="Server readiness: a model is loaded")
    def ready() -> Response:
        loaded = production.current() is not None
        return json_response({"ready": loaded}, 200 if loaded else 503)

    @api.get("/models/{name}", summary="Model metadata")
    def model_metadata(name: str) -> dict[str, Any]:
        loaded = served(name)
        return {
            "name": schema.name,
            "versions": [loaded.version],
            "platform": loaded.predictor.runtime,
            "inputs": [
                {"name": spec.name, "datatype": DATATYPES[spec.dtype], "shape": [-1]}
                for spec in schema.features
            ],
            "outputs": outputs,
            "parameters": {"task": schema.task, "classes": list(loaded.classes)},
        }

    @api.get("/models/{name}/ready", summary="Model readiness")
    def model_ready(name: str) -> dict[str, Any]:
        served(name)
        return {"name": name, "ready": True}

    async def infer(name: str, version: str | None, request: Request) -> Response:
        body = await request.body()
        parsed, values = parse_request(body, request.headers.get(BINARY_HEADER))
        loaded = served(name, version)
        columns = _columns(parsed, values, features)
        rows_count = len(next(iter(columns.values()))) if columns else 0
        rows = [{n: columns[n][i] for n in columns} for i in range(rows_count)]
        try:
            predict_request.model_validate({"rows": rows})
        except ValidationError as exc:
            raise _bad(summary_of([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])[0]) from None
        predictions, probabilities = await predict_columns(loaded, columns) if rows_count else ([], [])
        answers = _outputs(schema, predictions, probabilities, len(loaded.classes))
        wanted = [output.name for output in parsed.outputs or []]
        unknown = sorted(set(wanted) - {answer["name"] for answer in answers})
        if unknown:
            raise _bad(f"unknown output(s) {', '.join(unknown)}; choose from {[o['name'] for o in outputs]}")
        answer = {
            "model_name": schema.name,
            "model_version": loaded.version,
            "outputs": [a for a in answers if not wanted or a["name"] in wanted],
        }
        if parsed.id is not None:
            answer["id"] = parsed.id
        return Response(orjson.dumps(answer), media_type="application/json")

    infer_doc = {
        "summary": "Inference",
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}},
            }
        },
        "responses": {
            400: {"description": "A bad request"},
            404: {"description": "Another model or version"},
        },
    }

    @api.post("/models/{name}/infer", **infer_doc)
    async def model_infer(name: str, request: Request) -> Response:
        return await infer(name, None, request)

    @api.post("/models/{name}/versions/{version}/infer", **infer_doc)
    async def model_version_infer(name: str, version: str, request: Request) -> Response:
        return await infer(name, version, request)

    return api


def _columns(request: InferRequest, values: dict[str, list[Any]], features: dict) -> dict[str, list[Any]]:
    """Each feature's values from its tensor, after checking the tensors' names, types and shapes."""
    names = [tensor.name for tensor in request.inputs]
    missing = [name for name in features if name not in names]
    extra = [name for name in names if name not in features]
    if missing or extra or len(set(names)) != len(names):
        raise _bad(
            "one input tensor per feature is required"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not features: {', '.join(extra)}" if extra else "")
            + ("; repeated names" if len(set(names)) != len(names) else "")
        )
    columns, lengths = {}, set()
    for tensor in request.inputs:
        spec = features[tensor.name]
        if tensor.datatype not in ACCEPTED[spec.dtype]:
            raise _bad(
                f"input {tensor.name!r} ({spec.dtype}) must be {DATATYPES[spec.dtype]}"
                f" (or one of {', '.join(sorted(ACCEPTED[spec.dtype]))}), not {tensor.datatype}"
            )
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise _bad(f"input {tensor.name!r} must have shape [N] or [N, 1], not {tensor.shape}")
        data = values[tensor.name]
        if len(data) != tensor.shape[0]:
            raise _bad(f"input {tensor.name!r}: shape {tensor.shape} but {len(data)} values")
        lengths.add(len(data))
        columns[tensor.name] = data
    if len(lengths) > 1:
        raise _bad(f"every input must have the same number of rows, not {sorted(lengths)}")
    return {name: columns[name] for name in features}


def _outputs(
    schema: DatasetSchema, predictions: list, probabilities: list[list[float]] | None, classes: int
) -> list[dict[str, Any]]:
    rows = len(predictions)
    if not schema.is_classification:
        return [{"name": "prediction", "datatype": "FP64", "shape": [rows], "data": predictions}]
    answers = [{"name": "label", "datatype": "BYTES", "shape": [rows], "data": predictions}]
    if probabilities is not None:
        flat = [p for row in probabilities for p in row]
        answers.append({"name": "probabilities", "datatype": "FP64", "shape": [rows, classes], "data": flat})
    return answers
