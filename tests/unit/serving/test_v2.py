"""The Open Inference Protocol (KServe V2) of a real ``python -m serving`` process, called by Triton's own
HTTP client (``tritonclient.http``) as a user of Triton, KServe or MLServer would, in JSON and in the
binary tensor data extension the client uses by default."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from include import onnx_model, registry
from include.features import to_features
from tests import models
from tests.unit.serving.conftest import model_servers

SAMPLE = [0, 50, 100]  # one flower of each species


@pytest.fixture(scope="module")
def served(
    tmp_path_factory, iris_once, schema
) -> Iterator[tuple[httpx.Client, triton.InferenceServerClient, str]]:
    """One server for the module (a start costs 5-15 s): every test here only reads from it."""
    root = tmp_path_factory.mktemp("v2-root").as_uri()
    version = models.register_model(root, to_features(iris_once.copy(), schema), schema)["version"]
    registry.set_production(root, version)
    with model_servers(root) as server:
        client = server("--workers", "1")
        with triton.InferenceServerClient(url=str(client.base_url).removeprefix("http://")) as v2:
            yield client, v2, version


def tensors(iris, schema, index: list[int], binary: bool) -> list[triton.InferInput]:
    inputs = []
    for name in schema.feature_names:
        values = iris[name].to_numpy(np.float64)[index]
        tensor = triton.InferInput(name, [len(index)], "FP64")
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def labels(result: triton.InferResult) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]


def test_ready_and_the_metadata_describe_the_schema_and_the_version(served, schema):
    _, v2, version = served
    assert v2.is_server_live()
    assert v2.is_server_ready()
    assert v2.is_model_ready("iris")
    metadata = v2.get_model_metadata("iris")
    assert metadata["versions"] == [version]
    assert metadata["platform"] == "onnxruntime"
    assert metadata["inputs"] == [
        {"name": n, "datatype": "FP64", "shape": [-1]} for n in schema.feature_names
    ]
    assert [output["name"] for output in metadata["outputs"]] == ["label", "probabilities"]
    assert metadata["parameters"]["classes"] == list(schema.classes)
    assert not v2.is_model_ready("wine")


@pytest.mark.parametrize("binary", [True, False], ids=["binary tensors", "JSON tensors"])
def test_infer_answers_as_predict_does(served, iris, schema, binary):
    client, v2, version = served
    index = list(range(0, 150, 7))

    result = v2.infer("iris", tensors(iris, schema, index, binary))

    rows = iris.iloc[index][schema.feature_names].to_dict("records")
    expected = client.post("/predict", json={"rows": rows}).json()
    assert result.get_response()["model_version"] == version
    assert labels(result) == expected["predictions"]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(index), len(schema.classes))
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=onnx_model.TOLERANCE)
    assert labels(result)[:1] == [iris["species"][index[0]]]


def test_outputs_can_be_picked_and_a_version_named(served, iris, schema):
    _, v2, version = served
    only = [triton.InferRequestedOutput("label", binary_data=False)]
    result = v2.infer("iris", tensors(iris, schema, SAMPLE, False), outputs=only, model_version=version)
    assert labels(result) == ["setosa", "versicolor", "virginica"]
    assert result.as_numpy("probabilities") is None

    with pytest.raises(InferenceServerException, match="is not served"):
        v2.infer(
            "iris", tensors(iris, schema, SAMPLE, False), model_version="20260101T000000000000Z-00000000"
        )
    with pytest.raises(InferenceServerException, match="no model 'wine'"):
        v2.infer("wine", tensors(iris, schema, SAMPLE, False))


def test_tensors_are_checked_against_the_schema(served, iris, schema):
    client, v2, _ = served
    inputs = tensors(iris, schema, SAMPLE, False)
    text = triton.InferInput("petal_width", [3], "BYTES")
    text.set_data_from_numpy(np.array(["0.2", "1.3", "2.5"], dtype=object), binary_data=False)
    with pytest.raises(InferenceServerException, match="'petal_width' \\(float\\) must be FP64"):
        v2.infer("iris", [*inputs[:3], text])
    with pytest.raises(InferenceServerException, match="missing: petal_width"):
        v2.infer("iris", inputs[:3])

    def infer(body: dict) -> httpx.Response:
        return client.post("/v2/models/iris/infer", json=body)

    # The rows go through /predict's row model: a column that may not miss values may not be null.
    values = {name: [1.0, 2.0] for name in schema.feature_names}
    values["sepal_length"] = [1.0, None]
    body = {
        "inputs": [{"name": n, "shape": [2, 1], "datatype": "FP64", "data": v} for n, v in values.items()]
    }
    refused = infer(body)
    assert refused.status_code == 400
    assert "rows.1.sepal_length" in refused.json()["error"]

    nested = {
        "id": "r1",
        "inputs": [
            {"name": n, "shape": [2, 1], "datatype": "FP32", "data": [[v], [v]]}
            for n, v in zip(schema.feature_names, [5.1, 3.5, 1.4, 0.2], strict=True)
        ],
    }
    answer = infer(nested).json()
    assert answer["id"] == "r1"
    assert answer["outputs"][0] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["setosa"] * 2,
    }
    assert infer({"inputs": "x"}).status_code == 400
    assert client.get("/v2/health/ready").json() == {"ready": True}
