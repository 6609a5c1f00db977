"""Drift measured when data arrives, against production's training data, and what monitor makes of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include import features, layout, registry, storage
from include.features import to_features
from include.monitoring import arrival_drift, health_report, model_before, monitor_history, write_report
from tests import models

OLD = "20261121T161500000000Z-aaaaaaaa"
NEW = "20261121T161600000000Z-bbbbbbbb"
THRESHOLD = 0.3


@pytest.fixture
def production(root, register_model, iris, schema) -> str:
    """A model trained on batch OLD (the Iris data), in production."""
    features.write_features(root, OLD, [to_features(iris, schema)], schema)
    version = register_model(params={}, batch_ids=[OLD])["version"]
    registry.set_production(root, version)
    return version


def shifted_petals(iris, schema):
    frame = to_features(iris, schema)
    frame["petal_length"] += 1.5
    frame["petal_width"] += 1.5
    return frame


def test_a_batch_with_shifted_petals_has_drifted_from_productions_training_data(
    root, production, iris, schema
):
    features.write_features(root, NEW, [shifted_petals(iris, schema)], schema)

    record = arrival_drift(root, schema, [NEW], THRESHOLD)

    assert record["version"] == production
    assert record["drifted"] == ["petal_length", "petal_width"]
    assert record["stats"]["petal_length"] > 0.3
    assert record["stats"]["sepal_length"] < 0.1  # the reference is the training split: close, not equal
    assert record["metric"] == "accuracy"
    assert record["score"] < 0.8  # the old model does badly on the moved petals
    assert record["absorbed_by"] is None
    assert storage.read_json(layout.drift_record(root, NEW)) == {
        k: v for k, v in record.items() if k != "report"
    }
    page = storage.read_bytes(record["report"]).decode()
    assert "petal_length: " in page or "petal_length" in page
    assert page.count("<td>drifted</td>") == 2
    assert 'src="data:image/png;base64,' in page


def test_an_unchanged_batch_has_not_drifted(root, production, iris, schema):
    features.write_features(root, NEW, [to_features(iris.sample(frac=1, random_state=1), schema)], schema)

    assert arrival_drift(root, schema, [NEW], THRESHOLD)["drifted"] == []


def test_nothing_in_production_is_nothing_to_compare_with(root, iris, schema):
    features.write_features(root, NEW, [to_features(iris, schema)], schema)

    record = arrival_drift(root, schema, [NEW], THRESHOLD)

    assert record["version"] is None
    assert record["drifted"] == []


def test_a_model_already_retrained_on_the_batch_is_not_the_reference(
    root, production, register_model, iris, schema
):
    features.write_features(root, NEW, [shifted_petals(iris, schema)], schema)
    retrained = register_model(params={}, batch_ids=[NEW])["version"]
    registry.set_production(root, retrained)

    assert model_before(root, [NEW]) == production
    record = arrival_drift(root, schema, [NEW], THRESHOLD)
    assert record["drifted"] == ["petal_length", "petal_width"]
    assert record["version"] == production
    assert record["absorbed_by"] == {
        "version": retrained,
        "score": registry.version_metadata(root, retrained)["metrics"]["accuracy"],
    }
    assert "Already absorbed by retraining" in storage.read_bytes(record["report"]).decode()


def test_monitor_reports_a_drift_absorbed_by_retraining_as_information(root, production, land, iris, schema):
    land(NEW, iris)
    shifted = shifted_petals(iris, schema)
    features.write_features(root, NEW, [shifted], schema)
    arrival_drift(root, schema, [NEW], THRESHOLD)
    retrained = models.register_model(root, shifted, schema, batch_ids=[NEW])
    registry.set_production(root, retrained["version"])

    report = health_report(
        root,
        schema,
        max_batch_age=timedelta(hours=24),
        drift_threshold=THRESHOLD,
        threshold=0.8,
        now=datetime(2026, 11, 21, 17, tzinfo=UTC),
    )

    [absorbed] = [check for check in report["checks"] if check["name"] == "drift_absorbed"]
    assert absorbed["ok"] is True
    assert f"from the training data of {production} (petal_length, petal_width)" in absorbed["detail"]
    assert (
        f"the retrained {retrained['version']} scores {retrained['metrics']['accuracy']}"
        in absorbed["detail"]
    )
    url = write_report(root, report, schema)
    page = storage.read_bytes(url.removesuffix(".json") + ".html").decode()
    assert "drift_absorbed" in page
    assert "Quality over time" in page
    assert "Drift per feature" in page
    [live] = monitor_history(root, "accuracy")
    assert live == {
        "checked_at": report["checked_at"],
        "value": report["quality"]["value"],
        "version": retrained["version"],
    }
