from __future__ import annotations

import hashlib

import pytest

from include import storage
from include.features import to_features
from include.registry import (
    IntegrityError,
    discard_staged,
    list_versions,
    load_holdout,
    load_model,
    load_reference,
    load_staged,
    production_version,
    promote,
    register_candidate,
    stage_result,
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


RUN_ID = "manual__2026-11-21T16:15:00+00:00"


def test_a_staged_result_loads_back_equal(root, result, tmp_path):
    url = stage_result(root, "run-1", result)

    staged = load_staged(root, "run-1")

    assert url.startswith(f"{root}/models/staging/run-1-")
    assert url.endswith(".joblib")
    assert [p.name for p in (tmp_path / "models" / "staging").iterdir()] == [url.rsplit("/", 1)[1]]
    holdout = result.holdout[result.schema.feature_names]
    assert (staged.model.predict_proba(holdout) == result.model.predict_proba(holdout)).all()
    assert staged.metrics == result.metrics
    assert staged.holdout.equals(result.holdout)
    assert staged.train.equals(result.train)
    assert (staged.model_type, staged.params, staged.schema, staged.seed, staged.test_size) == (
        "logistic_regression",
        {"C": 2.0},
        result.schema,
        42,
        0.25,
    )
    # Staging is not registration: nothing is listed as a version or promoted.
    assert list_versions(root) == []
    assert production_version(root) is None


def test_restaging_a_key_replaces_the_earlier_result(root, iris, schema, result):
    stage_result(root, "run-1", result)
    retrained = train_and_evaluate(to_features(iris, schema), schema, "random_forest", {"n_estimators": 5})

    stage_result(root, "run-1", retrained)

    assert load_staged(root, "run-1").model_type == "random_forest"
    assert load_staged(root, "run-1").metrics == retrained.metrics


def test_discard_removes_only_its_key_and_is_idempotent(root, result, tmp_path):
    stage_result(root, "run-1", result)
    stage_result(root, "run-2", result)

    discard_staged(root, "run-1")
    discard_staged(root, "run-1")
    discard_staged(root, "never-staged")

    assert [p.name for p in (tmp_path / "models" / "staging").iterdir()] == [
        stage_result(root, "run-2", result).rsplit("/", 1)[1]
    ]
    with pytest.raises(FileNotFoundError):
        load_staged(root, "run-1")
    assert load_staged(root, "run-2").metrics == result.metrics


def test_loading_an_unknown_key_names_it(root, result):
    stage_result(root, "run-1", result)

    with pytest.raises(FileNotFoundError, match="no staged training result 'run-9'"):
        load_staged(root, "run-9")


def test_keys_that_read_alike_do_not_share_a_file(root, iris, schema, result):
    stage_result(root, "a/b", result)
    retrained = train_and_evaluate(to_features(iris, schema), schema, "random_forest", {"n_estimators": 5})
    stage_result(root, "a_b", retrained)

    assert load_staged(root, "a/b").model_type == "logistic_regression"
    assert load_staged(root, "a_b").model_type == "random_forest"


@pytest.mark.parametrize("key", [RUN_ID, "../../escape", "a/b/c", "/abs"])
def test_a_key_with_slashes_stays_under_staging(root, result, tmp_path, key):
    url = stage_result(root, key, result)

    name = url.removeprefix(f"{root}/models/staging/")
    assert "/" not in name
    assert name.endswith(".joblib")
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == [
        f"models/staging/{name}"
    ]
    assert load_staged(root, key).metrics == result.metrics

    discard_staged(root, key)

    assert list((tmp_path / "models" / "staging").iterdir()) == []
