from __future__ import annotations

import hashlib

import pytest

from include import storage
from include.features import to_features
from include.registry import (
    IntegrityError,
    list_versions,
    load_holdout,
    load_model,
    load_reference,
    production_version,
    promote,
    register_candidate,
    version_metadata,
)
from include.training import TrainingResult, train_and_evaluate

BATCHES = ["20261121T161600Z-bbbbbbbb", "20261121T161500Z-aaaaaaaa"]


@pytest.fixture
def result(iris, schema) -> TrainingResult:
    return train_and_evaluate(to_features(iris, schema), schema, "logistic_regression", {"C": 2.0})


def _register(root: str, result: TrainingResult) -> dict:
    return register_candidate(
        root, result, threshold=0.8, metric="accuracy", batch_ids=BATCHES, feature_hash="f" * 64
    )


def _files(root: str, version: str) -> dict[str, bytes]:
    folder = storage.join(root, "models", "versions", version)
    return {name: storage.read_bytes(storage.join(folder, name)) for name in storage.list_names(folder)}


def test_register_writes_a_complete_version(root, result):
    metadata = _register(root, result)
    version = metadata["version"]

    assert list_versions(root) == [version]
    assert version_metadata(root, version) == metadata
    assert sorted(_files(root, version)) == [
        "holdout.parquet",
        "metadata.json",
        "model.joblib",
        "reference.parquet",
    ]
    assert version.endswith("-" + metadata["model_sha256"][:8])
    assert len(version.split("-")[0]) == len("20261121T161500123456Z")
    assert {key: metadata[key] for key in ("model_type", "params", "metric", "threshold", "schema")} == {
        "model_type": "logistic_regression",
        "params": {"C": 2.0},
        "metric": "accuracy",
        "threshold": 0.8,
        "schema": "iris",
    }
    assert metadata["metrics"] == result.metrics
    assert metadata["batch_ids"] == sorted(BATCHES)
    assert metadata["feature_hash"] == "f" * 64
    assert set(metadata["libraries"]) == {"python", "sklearn", "pandas", "pyarrow", "joblib", "numpy"}
    assert load_holdout(root, version).equals(result.holdout)
    assert load_reference(root, version).equals(result.train[result.schema.feature_names])
    holdout = result.holdout[result.schema.feature_names]
    assert (load_model(root, version).predict_proba(holdout) == result.model.predict_proba(holdout)).all()


def test_registering_twice_makes_two_versions_and_overwrites_nothing(root, result):
    first = _register(root, result)["version"]
    before = _files(root, first)

    second = _register(root, result)["version"]

    assert first != second
    assert list_versions(root) == [first, second]
    assert _files(root, first) == before


def test_unknown_metric_is_refused(root, result):
    with pytest.raises(ValueError, match="'auc'"):
        register_candidate(root, result, threshold=0.8, metric="auc", batch_ids=[], feature_hash="")


def test_promote_and_roll_back(root, result):
    old = _register(root, result)["version"]
    new = _register(root, result)["version"]
    assert production_version(root) is None

    assert promote(root, old)["previous_version"] is None
    pointer = promote(root, new)
    assert (pointer["version"], pointer["previous_version"]) == (new, old)
    assert promote(root, new) == pointer
    assert storage.read_json(storage.join(root, "models", "production.json")) == pointer
    assert production_version(root) == new

    rollback = promote(root, old)

    assert (rollback["version"], rollback["previous_version"]) == (old, new)
    assert production_version(root) == old
    assert list_versions(root) == [old, new]
    assert storage.list_names(storage.join(root, "models")) == ["production.json", "versions"]


def test_a_tampered_model_is_neither_loaded_nor_promoted(root, result):
    good = _register(root, result)["version"]
    promote(root, good)
    bad = _register(root, result)["version"]
    model_url = storage.join(root, "models", "versions", bad, "model.joblib")
    data = bytearray(storage.read_bytes(model_url))
    data[len(data) // 2] ^= 0xFF
    storage.write_bytes_atomic(model_url, bytes(data))
    recorded, actual = version_metadata(root, bad)["model_sha256"], hashlib.sha256(data).hexdigest()

    with pytest.raises(IntegrityError, match=f"'{bad}'.*{actual}.*{recorded}"):
        load_model(root, bad)
    with pytest.raises(IntegrityError):
        promote(root, bad)
    assert production_version(root) == good


def test_an_incomplete_version_is_ignored(root, result):
    complete = _register(root, result)["version"]
    interrupted = "20991231T235959999999Z-deadbeef"
    storage.write_bytes_atomic(
        storage.join(root, "models", "versions", interrupted, "model.joblib"), b"partial"
    )

    assert list_versions(root) == [complete]
    with pytest.raises(FileNotFoundError, match=interrupted):
        load_model(root, interrupted)
    with pytest.raises(FileNotFoundError, match=interrupted):
        promote(root, interrupted)
    assert production_version(root) is None


def test_no_versions_yet(root):
    assert list_versions(root) == []
    assert production_version(root) is None
