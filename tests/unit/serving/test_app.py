"""The model server's API against a real file registry: FastAPI's TestClient on the real application,
real (and tampered) model files."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from include import layout, onnx_model, registry, storage
from include.config import DatasetSchema
from serving.app import Settings, create_app
from serving.production import load

# One flower of each species: Iris rows 0, 50 and 100 are setosa, versicolor and virginica.
SAMPLE = [0, 50, 100]
TOKEN = "s3cret-token"


@pytest.fixture
def register(register_model: Callable[..., dict]) -> Callable[[], str]:
    """Register a model trained on Iris as a new version and return the version id."""
    return lambda: register_model()["version"]


@pytest.fixture
def serve(root: str, schema: DatasetSchema) -> Iterator[Callable[..., TestClient]]:
    """A client of a freshly created application (one server process) with the given settings."""
    clients: list[TestClient] = []

    def serve(**settings) -> TestClient:
        settings = {"root": root, "schema": schema, "token": TOKEN, **settings}
        client = TestClient(create_app(Settings(**settings)))
        clients.append(client)
        return client

    yield serve
    for client in clients:
        client.close()


def rows(iris: pd.DataFrame, schema: DatasetSchema, index: list[int] | None = None) -> list[dict]:
    frame = iris if index is None else iris.iloc[index]
    return frame[schema.feature_names].to_dict("records")


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_without_a_production_model_it_serves_nothing_and_says_why(serve, root, iris, schema):
    client = serve()

    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["version"], body["loaded_at"]) == ("no model", None, None)
    assert "no model in production" in body["error"]

    predict = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)})
    assert predict.status_code == 503
    assert "no model in production" in predict.json()["error"]
    assert client.get("/version").status_code == 503

    reload = client.post("/reload", headers=bearer())
    assert reload.status_code == 409
    assert "no model in production" in reload.json()["error"]
    assert root in reload.json()["error"]
    assert "still serving no model" in reload.json()["error"]


def test_serves_the_promoted_version_with_probabilities(serve, register, root, iris, schema):
    version = register()
    registry.set_production(root, version)
    client = serve()

    health = client.get("/health").json()
    assert (health["status"], health["version"], health["error"]) == ("ok", version, None)
    assert datetime.fromisoformat(health["loaded_at"]).tzinfo is not None

    response = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)})
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == version
    assert body["classes"] == list(schema.classes)
    assert body["predictions"] == ["setosa", "versicolor", "virginica"]
    for predicted, probabilities in zip(body["predictions"], body["probabilities"], strict=True):
        assert sum(probabilities) == pytest.approx(1.0)
        assert body["classes"][probabilities.index(max(probabilities))] == predicted

    everything = client.post("/predict", json={"rows": rows(iris, schema)}).json()
    model = registry.load_model(root, version)
    assert everything["predictions"] == [str(p) for p in model.predict(iris[schema.feature_names])]
    expected = model.predict_proba(iris[schema.feature_names])
    # Served by the ONNX twin, in float32: the tolerance registration checked it to.
    np.testing.assert_allclose(everything["probabilities"], expected, atol=onnx_model.TOLERANCE)

    assert client.post("/predict", json={"rows": []}).json()["predictions"] == []


def test_version_describes_the_served_model(serve, register, root):
    version = register()
    registry.set_production(root, version)
    metadata = registry.version_metadata(root, version)

    answer = serve().get("/version").json()

    assert answer["version"] == version
    assert answer["model_type"] == metadata["model_type"] == "linear"
    assert answer["model_sha256"] == metadata["model_sha256"]
    assert answer["metrics"] == metadata["metrics"]


def test_each_process_follows_the_pointer_and_reload_confirms(serve, register, root, iris, schema):
    """Two applications stand for two worker processes: one is told to reload, both serve the new
    version from their next request on."""
    first = register()
    registry.set_production(root, first)
    told, other = serve(), serve()
    assert told.get("/health").json()["version"] == other.get("/health").json()["version"] == first

    second = register()
    registry.set_production(root, second)
    reload = told.post("/reload", headers=bearer())
    assert reload.status_code == 200
    assert reload.json()["version"] == second

    for client in (told, other):
        predict = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)}).json()
        assert predict["version"] == second
        assert predict["predictions"] == ["setosa", "versicolor", "virginica"]

    registry.set_production(root, first)  # a rollback reaches every process the same way
    assert other.get("/health").json()["version"] == first


def test_pointer_checks_can_be_spaced_out(serve, register, root):
    first = register()
    registry.set_production(root, first)
    client = serve(pointer_check_seconds=3600)
    registry.set_production(root, register())

    assert client.get("/health").json()["version"] == first


def test_reload_requires_the_token(serve, register, root):
    version = register()
    registry.set_production(root, version)
    client = serve()
    basic = base64.b64encode(f"airflow:{TOKEN}".encode()).decode()

    for headers in ({}, bearer("wrong"), {"Authorization": TOKEN}, {"Authorization": "Basic !!"}):
        refused = client.post("/reload", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json() == {"error": "a valid token is required"}
    # Airflow's HttpHook sends the connection's login and password as HTTP Basic auth.
    for headers in (bearer(), {"Authorization": f"Basic {basic}"}):
        assert client.post("/reload", headers=headers).json()["version"] == version

    disabled = serve(token=None).post("/reload", headers=bearer())
    assert disabled.status_code == 403
    assert "MODEL_SERVER_TOKEN" in disabled.json()["error"]


def test_a_tampered_model_is_refused_and_the_previous_one_keeps_serving(
    serve, register, tamper, root, iris, schema, caplog
):
    first = register()
    registry.set_production(root, first)
    client = serve()

    second = register()
    registry.set_production(root, second)
    tamper(layout.model_version(root, second, registry.MODEL_FILE))

    with caplog.at_level(logging.ERROR, logger="serving"):
        reload = client.post("/reload", headers=bearer())
    assert reload.status_code == 409
    # Errors only: after Airflow's logging set-up (another test's), the info lines are captured too.
    [logged] = [r.getMessage() for r in caplog.records if r.name == "serving" and r.levelno >= logging.ERROR]
    assert logged.startswith(f"keeping {first}: model version '{second}' failed its integrity check")
    error = reload.json()["error"]
    assert "integrity check" in error
    assert second in error
    assert f"still serving {first}" in error

    health = client.get("/health").json()
    assert (health["version"], health["status"]) == (first, "ok")
    assert "integrity check" in health["error"]
    predict = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)})
    assert predict.status_code == 200
    assert predict.json()["version"] == first
    # A process started now has nothing it could load, and says so.
    assert serve().get("/health").json()["status"] == "no model"


def test_starts_without_a_model_when_production_is_tampered_and_recovers_on_reload(
    serve, register, tamper, root
):
    version = register()
    registry.set_production(root, version)
    model_url = layout.model_version(root, version, registry.MODEL_FILE)
    tamper(model_url)

    client = serve()
    assert client.get("/health").json()["version"] is None

    tamper(model_url)  # flips the same byte back
    assert client.post("/reload", headers=bearer()).json()["version"] == version


@pytest.fixture
def client(serve, register, root) -> TestClient:
    registry.set_production(root, register())
    return serve(max_rows=10, max_body_bytes=4096)


def test_a_missing_extra_or_mistyped_field_is_a_422_naming_it(client, iris, schema):
    def refused(body: object, *where: object) -> str:
        response = client.post("/predict", json=body)
        assert response.status_code == 422, body
        assert [*where] in [entry["loc"][1:] for entry in response.json()["detail"]]
        return response.json()["error"]

    sample = rows(iris, schema, SAMPLE)
    missing = [dict(row) for row in sample]
    del missing[1]["petal_width"]
    error = refused({"rows": missing}, "rows", 1, "petal_width")
    assert error.startswith("rows.1.petal_width: Field required")

    extra = [{**row, "colour": "blue"} for row in sample]
    assert "rows.0.colour: Extra inputs are not permitted" in refused({"rows": extra}, "rows", 0, "colour")

    for value in ("5.1", "long", True, None):
        mistyped = [dict(row) for row in sample]
        mistyped[2]["sepal_length"] = value
        assert "rows.2.sepal_length" in refused({"rows": mistyped}, "rows", 2, "sepal_length")

    refused({"rows": sample, "model": "mine"}, "model")
    refused({}, "rows")
    refused([])
    # An int is a float; the response is the same as for the float.
    as_ints = [{name: round(value) for name, value in row.items()} for row in sample]
    assert client.post("/predict", json={"rows": as_ints}).status_code == 200


def test_malformed_json_is_a_422(client):
    response = client.post("/predict", content=b'{"rows": [', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["error"]


def test_rows_and_body_size_are_capped(client, iris, schema):
    too_many = client.post("/predict", json={"rows": rows(iris, schema, list(range(11)))})
    assert too_many.status_code == 422
    assert too_many.json()["error"] == "rows: List should have at most 10 items after validation, not 11"

    big = json.dumps({"rows": rows(iris, schema, list(range(10))), "padding": "x" * 5000}).encode()
    declared = client.post("/predict", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json() == {"error": "the request body exceeds 4096 bytes"}

    chunked = client.post(
        "/predict", content=iter([big[:3000], big[3000:]]), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    assert chunked.json() == {"error": "the request body exceeds 4096 bytes"}

    assert client.post("/predict", json={"rows": rows(iris, schema, list(range(10)))}).status_code == 200


def test_many_bad_rows_are_summarised(client):
    response = client.post("/predict", json={"rows": [{}] * 10})
    assert response.status_code == 422
    assert len(response.json()["detail"]) == 20
    assert response.json()["error"].endswith("; and 20 more")


def test_unknown_paths_and_methods_answer_in_the_same_shape(client):
    assert client.get("/nowhere").json() == {"error": "Not Found"}
    assert client.get("/predict").status_code == 405
    assert client.post("/health").json() == {"error": "Method Not Allowed"}


def test_the_openapi_document_describes_the_schema(client, schema):
    document = client.get("/openapi.json").json()
    row = document["components"]["schemas"]["IrisRow"]
    assert row["required"] == schema.feature_names
    assert row["additionalProperties"] is False
    assert row["properties"]["sepal_length"]["type"] == "number"
    assert row["properties"]["sepal_length"]["description"] == "float, expected >= 0.0 and <= 15.0"
    assert {"/predict", "/health", "/version", "/reload"} <= set(document["paths"])
    assert client.get("/docs").status_code == 200


def test_another_datasets_columns_need_no_code_change(root, tmp_path):
    schema = DatasetSchema.from_dict(
        {
            "name": "wine",
            "label": "quality",
            "classes": ["low", "high"],
            "features": [{"name": "alcohol", "dtype": "float"}, {"name": "grape", "dtype": "str"}],
        }
    )
    client = TestClient(create_app(Settings(root=root, schema=schema)))

    document = client.get("/openapi.json").json()
    assert document["components"]["schemas"]["WineRow"]["required"] == ["alcohol", "grape"]
    response = client.post("/predict", json={"rows": [{"alcohol": 12.5, "grape": 3}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "rows", 0, "grape"]
    assert client.post("/predict", json={"rows": [{"alcohol": 12.5, "grape": "syrah"}]}).status_code == 503


def test_a_model_of_another_dataset_schema_is_not_served(serve, register_model, root, iris, schema):
    other = DatasetSchema.from_dict(
        {**schema.model_dump(exclude={"json_schema_ref"}), "name": "iris_in_mm"}
        | {"features": [spec.model_dump() | {"max": 150.0} for spec in schema.features]}
    )
    client = serve(schema=other)
    version = register_model()["version"]  # trained on the Iris schema
    registry.set_production(root, version)

    answer = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)})

    assert answer.status_code == 503
    assert (
        f"model version {version} was trained on dataset schema {schema.fingerprint}"
        in answer.json()["error"]
    )
    assert other.fingerprint in client.get("/health").json()["error"]


def test_scikit_learn_answers_the_same_when_onnx_is_off(serve, register, root, iris, schema):
    registry.set_production(root, register())
    twin, plain = serve(), serve(onnx=False)
    assert twin.get("/version").json()["runtime"] == "onnxruntime"
    assert plain.get("/version").json()["runtime"] == "scikit-learn"

    body = {"rows": rows(iris, schema)}
    by_twin, by_plain = twin.post("/predict", json=body).json(), plain.post("/predict", json=body).json()
    assert by_twin["predictions"] == by_plain["predictions"]
    np.testing.assert_allclose(by_twin["probabilities"], by_plain["probabilities"], atol=onnx_model.TOLERANCE)


def test_the_onnx_predictor_answers_many_threads_at_once_without_a_lock(register, root, iris, schema):
    predictor = load(root, register()).predictor
    assert predictor.thread_safe
    columns = {name: iris[name].tolist() for name in schema.feature_names}
    expected = predictor.predict(columns)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: predictor.predict(columns), range(200)))
    assert all(answer == expected for answer in answers)


def test_reports_are_served_by_version_and_for_production(serve, register, root, schema):
    from include.report import write_version_report

    client = serve()
    assert client.get("/report").json() == {"error": "no model in production yet"}
    first, second = register(), register()
    registry.set_production(root, first)
    assert client.get(f"/models/{second}/report").status_code == 404
    assert "not written yet" in client.get("/report").json()["error"]
    write_version_report(root, first, schema)
    write_version_report(root, second, schema)

    page = client.get(f"/models/{second}/report")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>Model {second}</h1>" in page.text
    assert f"<h1>Model {first}</h1>" in client.get("/report").text
    assert client.get("/models/20261121T161500000000Z-00000000/report").json() == {
        "error": "no registered model version 20261121T161500000000Z-00000000"
    }
    assert client.get("/models/..%2Fproduction/report").status_code in (404, 422)
    assert {"/report", "/models/{version}/report"} <= set(client.get("/openapi.json").json()["paths"])


def test_drift_and_monitor_pages_are_served(serve, root):
    batch_id = "20261121T161500000000Z-aaaaaaaa"
    storage.write_bytes_atomic(layout.drift_record(root, batch_id, ".html"), b"<h1>drift</h1>")
    storage.write_bytes_atomic(
        layout.monitor_report(root, "20261121T171500123456Z", ".html"), b"<h1>monitor</h1>"
    )
    client = serve()

    assert client.get(f"/drift/{batch_id}/report").text == "<h1>drift</h1>"
    assert client.get("/monitor/20261121T171500123456Z/report").text == "<h1>monitor</h1>"
    assert client.get("/drift/20261121T161500000000Z-00000000/report").status_code == 404
    assert client.get("/monitor/latest/report").status_code == 422
