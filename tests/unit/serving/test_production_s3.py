"""The model registry and a model server process on S3 (moto's server, over HTTP): versions are
registered create-only, the pointer is one object, and a server follows it without being told."""

from __future__ import annotations

import json

import pytest

from include import layout, registry
from serving.production import ProductionModel, ReloadError
from tests.s3 import S3Endpoint


@pytest.fixture
def root(s3_root: str) -> str:
    """Every fixture built on ``root`` (``register_model``) works in the bucket."""
    return s3_root


def test_a_server_follows_a_pointer_another_process_moved_on_s3(
    root, register_model, s3_endpoint: S3Endpoint
):
    first = register_model()["version"]
    second = register_model(params={"C": 0.5})["version"]
    registry.set_production(root, first)
    production = ProductionModel(root)
    assert production.current().version == first

    # deploy's promote runs in another process: one PUT of the pointer, through a client of its own.
    pointer = layout.production_pointer(root).removeprefix("s3://")
    s3_endpoint.filesystem().pipe_file(pointer, json.dumps({"version": second}).encode())

    assert production.current().version == second
    assert production.error is None


def test_a_retried_registration_on_s3_rewrites_nothing(root, register_model, s3_endpoint: S3Endpoint):
    version = register_model()["version"]
    folder = layout.model_version(root, version).removeprefix("s3://")
    fs = s3_endpoint.filesystem()
    before = {path: fs.info(path)["ETag"] for path in fs.find(folder)}

    assert registry.register(root, version) == registry.version_metadata(root, version)

    assert len(before) == 5  # model, ONNX twin, holdout, reference, metadata
    assert {path: fs.info(path)["ETag"] for path in fs.find(folder)} == before


def test_a_tampered_model_on_s3_is_refused_and_the_server_keeps_its_model(
    root, register_model, s3_endpoint: S3Endpoint
):
    first = register_model()["version"]
    second = register_model(params={"C": 0.5})["version"]
    registry.set_production(root, first)
    production = ProductionModel(root)
    production.reload()
    model = layout.model_version(root, second, registry.MODEL_FILE).removeprefix("s3://")
    fs = s3_endpoint.filesystem()
    fs.pipe_file(model, fs.cat_file(model)[:-1] + b"\x00")

    with pytest.raises(registry.IntegrityError, match="failed its integrity check"):
        registry.set_production(root, second)
    fs.pipe_file(
        layout.production_pointer(root).removeprefix("s3://"), json.dumps({"version": second}).encode()
    )
    with pytest.raises(ReloadError, match="failed its integrity check"):
        production.reload()

    assert production.current().version == first
