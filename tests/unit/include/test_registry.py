"""The model registry on a real local root: staging, idempotent registration, the production pointer."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest

from include import layout, metrics, onnx_model, registry, storage
from include.errors import PermanentError
from include.features import to_features
from include.registry import IntegrityError
from include.training import TrainingResult, train_and_evaluate
from tests.snapshots import files

BATCHES = ["20261121T161600000000Z-bbbbbbbb", "20261121T161500000000Z-aaaaaaaa"]


@pytest.fixture
def result(iris, schema) -> TrainingResult:
    return train_and_evaluate(to_features(iris, schema), schema, "linear", {"C": 2.0})


def stage(root: str, result: TrainingResult, **kw) -> dict:
    accuracy = metrics.metric("accuracy")
    return registry.stage_candidate(
        root, result, threshold=0.8, metric=accuracy, batch_ids=BATCHES, feature_hash="f" * 64, **kw
    )


def test_a_staged_candidate_becomes_a_complete_version(root, result, tmp_path):
    staged = stage(root, result)
    version = staged["version"]
    assert not (tmp_path / "models" / "versions").exists()  # staging is not registration

    metadata = registry.register(root, version)

    assert metadata == staged == registry.version_metadata(root, version)
    assert sorted(files(tmp_path / "models" / "versions" / version)) == [
        "holdout.parquet",
        "metadata.json",
        "model.joblib",
        "model.onnx",
        "reference.parquet",
    ]
    assert version == layout.check_id(version, "version")
    assert version.endswith("-" + metadata["model_sha256"][:8])
    assert {key: metadata[key] for key in ("model_type", "params", "metric", "threshold", "schema")} == {
        "model_type": "linear",
        "params": {"C": 2.0},
        "metric": "accuracy",
        "threshold": 0.8,
        "schema": "iris",
    }
    assert metadata["metrics"] == result.metrics
    assert {key: metadata[key] for key in ("task", "higher_is_better", "schema_fingerprint")} == {
        "task": "classification",
        "higher_is_better": True,
        "schema_fingerprint": result.schema.fingerprint,
    }
    assert metadata["verdict"] == f"accuracy {result.metrics['accuracy']} is better than the minimum 0.8"
    assert metadata["batch_ids"] == sorted(BATCHES)
    assert set(metadata["libraries"]) == {"python", "sklearn", "pandas", "pyarrow", "joblib", "numpy"}
    assert registry.load_holdout(root, version).equals(result.holdout)
    assert registry.load_reference(root, version).equals(result.train[result.schema.feature_names])
    holdout = result.holdout[result.schema.feature_names]
    model = registry.load_model(root, version)
    assert (model.predict_proba(holdout) == result.model.predict_proba(holdout)).all()


def test_a_retried_registration_gives_the_same_single_version(root, result, tmp_path):
    version = stage(root, result)["version"]
    first = registry.register(root, version)
    registered = files(tmp_path / "models" / "versions")

    assert registry.register(root, version) == first  # retried before the staged copy was dropped
    registry.discard_staged(root, version)
    assert registry.register(root, version) == first  # retried after it

    assert files(tmp_path / "models" / "versions") == registered
    assert list((tmp_path / "models" / "versions").iterdir()) == [tmp_path / "models" / "versions" / version]


def test_a_registration_killed_half_way_is_finished_by_the_retry(root, result, tmp_path):
    version = stage(root, result)["version"]
    # What a registration killed after copying the model and before metadata.json leaves behind.
    storage.write_bytes_atomic(
        layout.model_version(root, version, "model.joblib"),
        storage.read_bytes(layout.staging(root, version, "model.joblib")),
    )
    with pytest.raises(FileNotFoundError, match="incomplete"):
        registry.version_metadata(root, version)

    metadata = registry.register(root, version)

    assert registry.version_metadata(root, version) == metadata
    assert len(files(tmp_path / "models" / "versions" / version)) == 5


def test_a_tampered_staged_model_is_not_registered(root, result, tmp_path, tamper):
    version = stage(root, result)["version"]
    tamper(layout.staging(root, version, "model.joblib"))

    with pytest.raises(IntegrityError, match=version):
        registry.register(root, version)

    assert not (tmp_path / "models" / "versions").exists()


def test_registering_an_unknown_candidate_names_it(root):
    missing = "20261121T161500000000Z-00000000"
    with pytest.raises(FileNotFoundError, match=f"no staged candidate '{missing}'"):
        registry.register(root, missing)


def test_two_trainings_are_two_versions_and_overwrite_nothing(root, result, tmp_path):
    first = registry.register(root, stage(root, result)["version"])["version"]
    before = files(tmp_path / "models" / "versions" / first)

    second = registry.register(root, stage(root, result)["version"])["version"]

    assert first != second
    assert files(tmp_path / "models" / "versions" / first) == before


def test_a_metric_not_computed_is_refused_before_anything_is_written(root, result, tmp_path):
    # ROC AUC is computed for two classes only; Iris has three.
    with pytest.raises(
        PermanentError, match=r"'roc_auc' was not computed; available: accuracy, balanced_accuracy"
    ):
        registry.stage_candidate(
            root, result, threshold=0.8, metric=metrics.metric("roc_auc"), batch_ids=[], feature_hash=""
        )
    assert files(tmp_path) == {}


def test_discard_removes_only_its_own_candidate_and_is_idempotent(root, result, tmp_path):
    kept, dropped = stage(root, result)["version"], stage(root, result)["version"]

    registry.discard_staged(root, dropped)
    registry.discard_staged(root, dropped)

    assert [p.name for p in (tmp_path / "models" / "staging").iterdir()] == [kept]


def test_the_next_training_drops_only_the_staged_candidates_left_an_hour_before_its_own(
    root, result, tmp_path
):
    now = datetime.now(UTC)
    left_behind = [stage(root, result, now=now - timedelta(hours=h))["version"] for h in (3, 1)]
    # Staged minutes before: a backtest of the same backfill, or the pipeline's own run, still deciding.
    beside = stage(root, result, now=now - timedelta(minutes=59))["version"]
    running = stage(root, result, now=now)["version"]
    (tmp_path / "models" / "staging" / "notes").mkdir()  # not a candidate: left alone

    assert registry.discard_older_staged(root, running) == left_behind

    kept = sorted(p.name for p in (tmp_path / "models" / "staging").iterdir())
    assert kept == sorted([beside, running, "notes"])
    assert registry.discard_older_staged(root, running) == []


def test_a_backtest_is_staged_and_registered_marked_with_its_as_of(root, result):
    as_of = datetime(2026, 11, 20, 4, tzinfo=UTC)

    backtest = registry.register(root, stage(root, result, as_of=as_of)["version"])
    candidate = registry.register(root, stage(root, result)["version"])

    assert (backtest["backtest"], backtest["as_of"]) == (True, "2026-11-20T04:00:00+00:00")
    assert (candidate["backtest"], candidate["as_of"]) == (False, None)


def test_set_production_and_roll_back(root, register_model, tmp_path):
    old, new = register_model()["version"], register_model()["version"]
    assert registry.production_version(root) is None

    assert registry.set_production(root, old)["previous_version"] is None
    pointer = registry.set_production(root, new)
    assert (pointer["version"], pointer["previous_version"]) == (new, old)
    assert registry.set_production(root, new) == pointer  # a retry keeps the real previous version
    assert storage.read_json(layout.production_pointer(root)) == pointer

    rollback = registry.set_production(root, old)

    assert (rollback["version"], rollback["previous_version"]) == (old, new)
    assert registry.production_version(root) == old
    assert sorted(p.name for p in (tmp_path / "models" / "versions").iterdir()) == sorted([old, new])


@pytest.mark.parametrize(
    ("trained_on", "as_new"),
    [
        (BATCHES, True),  # a model of them
        (["20261121T150000000000Z-dddddddd", "20261121T170000000000Z-eeeeeeee"], True),  # of newer data
        ([BATCHES[1], "20261121T150000000000Z-dddddddd"], False),  # of some of them and older data
        ([], False),
    ],
)
def test_drift_on_arrival_waits_for_a_model_of_data_as_new_as_its_batches(trained_on, as_new):
    assert registry.as_new_as({"batch_ids": trained_on}, BATCHES) is as_new


def test_off_path_work_waits_until_its_model_is_promoted(root, register_model):
    version = register_model(batch_ids=BATCHES)["version"]
    threading.Timer(0.5, registry.set_production, args=(root, version)).start()

    # Far beyond the promotion: only the promotion can end this wait with "promoted".
    outcome = registry.await_decision(
        root, lambda model: model["version"] == version, timeout=60, not_before=version, interval=0.1
    )

    assert outcome == "promoted"


def test_off_path_work_stops_waiting_once_a_model_of_its_batches_is_kept_out(root):
    newest = max(BATCHES)
    version = "20261121T170000000000Z-cccccccc"  # trained after the batches
    threading.Timer(0.5, registry.record_kept_out, args=(root, version, BATCHES, "below the bar")).start()

    outcome = registry.await_decision(
        root, lambda model: registry.as_new_as(model, BATCHES), timeout=60, not_before=newest, interval=0.1
    )

    assert outcome == "kept out"
    record = storage.read_json(layout.kept_out(root, version))
    assert record == {"version": version, "batch_ids": sorted(BATCHES), "reason": "below the bar"}


def test_a_wait_ends_on_nothing_but_its_own_models_decision(root, register_model):
    newest = max(BATCHES)
    earlier = ["20261121T150000000000Z-dddddddd"]
    registry.set_production(root, register_model(batch_ids=earlier)["version"])  # not of these batches
    registry.record_kept_out(root, "20261121T170000000000Z-eeeeeeee", earlier, "not better")
    # Read only from versions created after the batches, which a model of them is.
    registry.record_kept_out(root, "20261121T160000000000Z-ffffffff", [newest], "not better")

    outcome = registry.await_decision(
        root, lambda model: registry.as_new_as(model, BATCHES), timeout=0.3, not_before=newest, interval=0.1
    )

    assert outcome is None


def test_the_production_event_names_the_pointer_the_model_and_the_reason(root, register_model):
    metadata = register_model()

    event = registry.production_event(root, metadata["version"], "no model in production yet")

    assert event == {
        **storage.read_json(layout.production_pointer(root)),
        "model_type": "linear",
        "metrics": metadata["metrics"],
        "reason": "no model in production yet",
    }


def test_the_candidate_event_carries_what_deploy_decides_on(register_model):
    metadata = register_model()

    event = registry.candidate_event(metadata)

    assert {
        "version",
        "metric",
        "metrics",
        "higher_is_better",
        "verdict",
        "model_sha256",
        "schema_fingerprint",
        "batch_ids",
    } <= set(event)
    assert all(event[key] == metadata[key] for key in event)
    assert "libraries" not in event


def test_a_tampered_model_is_neither_loaded_nor_promoted(root, register_model, tamper):
    good = register_model()["version"]
    registry.set_production(root, good)
    bad = register_model()["version"]
    data = tamper(layout.model_version(root, bad, "model.joblib"))
    recorded, actual = registry.version_metadata(root, bad)["model_sha256"], hashlib.sha256(data).hexdigest()

    with pytest.raises(IntegrityError, match=f"'{bad}'.*{actual}.*{recorded}"):
        registry.load_model(root, bad)
    with pytest.raises(IntegrityError):
        registry.set_production(root, bad)
    assert registry.production_version(root) == good


def test_an_incomplete_version_is_neither_loaded_nor_promoted(root, register_model):
    register_model()
    interrupted = "20991231T235959999999Z-deadbeef"
    storage.write_bytes_atomic(layout.model_version(root, interrupted, "model.joblib"), b"partial")

    with pytest.raises(FileNotFoundError, match=interrupted):
        registry.load_model(root, interrupted)
    with pytest.raises(FileNotFoundError, match=interrupted):
        registry.set_production(root, interrupted)
    assert registry.production_version(root) is None


def test_the_onnx_twin_is_checked_on_the_held_out_rows_and_by_its_hash(root, result, tmp_path):
    version = stage(root, result)["version"]
    metadata = registry.register(root, version)

    onnx = metadata["onnx"]
    assert onnx["file"] == "model.onnx"
    assert onnx["checked_rows"] == len(result.holdout)
    assert onnx["max_difference"] <= onnx_model.TOLERANCE
    data, why = registry.load_onnx(root, version)
    twin = onnx_model.OnnxModel(data, result.schema)
    holdout = result.holdout[result.schema.feature_names]
    labels, _ = twin.predict({name: holdout[name].tolist() for name in result.schema.feature_names})
    assert labels == list(result.model.predict(holdout))
    assert "checked on the held-out rows" in why

    path = tmp_path / "models" / "versions" / version / "model.onnx"
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match=r"model\.onnx has sha256"):
        registry.load_onnx(root, version)


def test_a_model_without_a_converter_is_registered_without_a_twin_and_says_why(root, result, monkeypatch):
    def no_converter(model, schema):
        raise RuntimeError("Unable to find a shape calculator for type 'Mystery'")

    monkeypatch.setattr(onnx_model, "_convert", no_converter)
    version = stage(root, result)["version"]
    metadata = registry.register(root, version)

    reason = "cannot be converted to ONNX: RuntimeError: Unable to find a shape calculator for type 'Mystery'"
    assert metadata["onnx"] == {"file": None, "reason": reason}
    assert registry.load_onnx(root, version) == (None, reason)
