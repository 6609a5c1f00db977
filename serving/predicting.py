"""What the model server's endpoints share: validating a body, predicting, answering in JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from serving.production import LoadedModel

# A 422 lists at most this many bad fields; a thousand rows missing one column need not list them all.
MAX_ERRORS_LISTED = 20


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def validated(model: type[BaseModel], data: bytes | object) -> BaseModel:
    """``data`` (JSON bytes, or what JSON decodes to) as ``model``; a 422 naming each bad field, as
    FastAPI's own body validation says it."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def predict_columns(
    loaded: LoadedModel, columns: dict[str, Sequence[Any]]
) -> tuple[list, list[list[float]] | None]:
    """The predictions for ``columns`` (feature -> values): on the event loop for a predictor that is
    thread-safe and fast (ONNX Runtime: ~0.1 ms a call for a few rows), on the thread pool otherwise."""
    if loaded.predictor.thread_safe:
        return loaded.predictor.predict(columns)
    return await run_in_threadpool(loaded.predictor.predict, columns)


def summary_of(errors: Sequence[dict]) -> tuple[str, list[dict]]:
    """One line naming the first ``MAX_ERRORS_LISTED`` bad fields, and those errors."""
    listed = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors[:MAX_ERRORS_LISTED]]
    summary = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg']}" for e in listed)
    if len(errors) > len(listed):
        summary += f"; and {len(errors) - len(listed)} more"
    return summary, listed
