"""The model server over a real file registry: real sockets, real HTTP, real (and tampered) model files."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest

from include import registry, storage
from include.config import DatasetSchema
from serving.server import ModelServer

# One flower of each species: Iris rows 0, 50 and 100 are setosa, versicolor and virginica.
SAMPLE = [0, 50, 100]


@pytest.fixture
def register(register_model: Callable[..., dict]) -> Callable[[], str]:
    """Register a model trained on Iris as a new version and return the version id."""
    return lambda: register_model()["version"]


@pytest.fixture
def serve(root: str, schema: DatasetSchema) -> Iterator[Callable[[], httpx.Client]]:
    """Start a real server on port 0 and return an HTTP client for it; every server is stopped after."""
    servers: list[ModelServer] = []
    clients: list[httpx.Client] = []

    def serve() -> httpx.Client:
        server = ModelServer(root, schema, port=0)
        servers.append(server)
        server.start()
        client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5.0)
        clients.append(client)
        return client

    yield serve
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def rows(iris: pd.DataFrame, schema: DatasetSchema, index: list[int] | None = None) -> list[dict]:
    frame = iris if index is None else iris.iloc[index]
    return frame[schema.feature_names].to_dict("records")


def model_file(tmp_path: Path, version: str) -> Path:
    return tmp_path / "models" / "versions" / version / "model.joblib"


def test_without_a_production_model_it_serves_nothing_and_says_why(serve, root, iris, schema):
    client = serve()

    health = client.get("/health")
    assert health.status_code == 200
    assert health.headers["content-type"] == "application/json"
    assert health.json() == {"version": None, "loaded_at": None}

    predict = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)})
    assert predict.status_code == 409
    assert predict.json() == {"error": "no model loaded yet", "version": None, "loaded_at": None}

    reload = client.post("/reload")
    assert reload.status_code == 409
    assert "no model in production" in reload.json()["error"]
    assert root in reload.json()["error"]
    assert reload.json()["version"] is None
    assert client.get("/health").json()["version"] is None


def test_serves_the_promoted_version(serve, register, root, iris, schema):
    version = register()
    registry.set_production(root, version)
    client = serve()

    health = client.get("/health").json()
    assert health["version"] == version
    assert datetime.fromisoformat(health["loaded_at"]).tzinfo is not None

    response = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)})
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == version
    assert body["predictions"] == ["setosa", "versicolor", "virginica"]

    everything = client.post("/predict", json={"rows": rows(iris, schema)}).json()
    assert len(everything["predictions"]) == len(iris)
    assert set(everything["predictions"]) <= set(schema.classes)
    expected = registry.load_model(root, version).predict(iris[schema.feature_names])
    assert everything["predictions"] == [str(p) for p in expected]


def test_reload_switches_to_the_newly_promoted_version(serve, register, root, iris, schema):
    first = register()
    registry.set_production(root, first)
    client = serve()
    first_loaded_at = client.get("/health").json()["loaded_at"]

    second = register()
    assert second != first
    registry.set_production(root, second)
    # Until told to reload, the server keeps the version it loaded.
    assert client.get("/health").json()["version"] == first

    reload = client.post("/reload")
    assert reload.status_code == 200
    assert reload.json()["version"] == second
    health = client.get("/health").json()
    assert health == reload.json()
    assert datetime.fromisoformat(health["loaded_at"]) >= datetime.fromisoformat(first_loaded_at)
    predict = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)}).json()
    assert predict == {"version": second, "predictions": ["setosa", "versicolor", "virginica"]}


def test_a_tampered_model_is_refused_and_the_previous_one_keeps_serving(
    serve, register, root, tmp_path, iris, schema
):
    first = register()
    registry.set_production(root, first)
    client = serve()
    before = client.get("/health").json()

    second = register()
    registry.set_production(root, second)
    path = model_file(tmp_path, second)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))

    reload = client.post("/reload")
    assert reload.status_code == 409
    body = reload.json()
    assert "integrity check" in body["error"]
    assert second in body["error"]
    assert body["version"] == first

    assert client.get("/health").json() == before
    predict = client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)})
    assert predict.status_code == 200
    assert predict.json() == {"version": first, "predictions": ["setosa", "versicolor", "virginica"]}


def test_bad_requests_are_answered_with_400(serve, register, root, iris, schema):
    registry.set_production(root, register())
    client = serve()

    incomplete = [{k: v for k, v in row.items() if k != "petal_width"} for row in rows(iris, schema, SAMPLE)]
    missing = client.post("/predict", json={"rows": incomplete})
    assert missing.status_code == 400
    assert "petal_width" in missing.json()["error"]
    assert "sepal_length" not in missing.json()["error"]

    malformed = client.post("/predict", content=b'{"rows": [', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]

    not_a_number = rows(iris, schema, [0])
    not_a_number[0]["sepal_length"] = "long"
    wrong_type = client.post("/predict", json={"rows": not_a_number})
    assert wrong_type.status_code == 400
    assert "long" in wrong_type.json()["error"]

    # The server is still answering after all that.
    assert client.post("/predict", json={"rows": rows(iris, schema, SAMPLE)}).status_code == 200


def test_a_json_body_that_is_not_an_object_is_a_bad_request(serve, register, root):
    """A JSON array or string is a bad request that gets an answer, not a dropped connection."""
    registry.set_production(root, register())
    client = serve()

    for body in (b"[]", b'"rows"'):
        response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
        assert response.json()["error"]


def test_starts_without_a_model_when_production_is_tampered_and_recovers_on_reload(serve, register, root):
    version = register()
    registry.set_production(root, version)
    model_file = Path(storage.filesystem(f"{root}/models/versions/{version}/model.joblib")[1])
    original = model_file.read_bytes()
    model_file.write_bytes(original[:-8] + bytes(8))

    client = serve()
    assert client.get("/health").json()["version"] is None

    model_file.write_bytes(original)
    assert client.post("/reload").json()["version"] == version


def test_unknown_paths_are_404(serve):
    client = serve()

    for method, path in (("GET", "/nowhere"), ("POST", "/nowhere"), ("GET", "/predict"), ("POST", "/health")):
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": f"no such path {path}"}


def test_stop_without_start_returns(root, schema):
    """``server.shutdown()`` waits for a ``serve_forever`` loop to end; a server never started must not
    block in ``stop()`` but just release its port."""
    server = ModelServer(root, schema, port=0)
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=0.5)
    hung = stopper.is_alive()
    if hung:  # release the stuck stop(): a serve_forever that sees the pending shutdown exits at once
        server.thread.start()
        stopper.join(timeout=5.0)
    assert not hung, "ModelServer.stop() blocks when the server was never started"
