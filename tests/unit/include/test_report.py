"""The report of a registered version, read for its content: the numbers it shows must be the model's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from include import layout, metrics, registry, report, storage
from include.config import DatasetSchema
from include.features import to_features
from tests.models import register_model

PNG = b"\x89PNG\r\n\x1a\n"
PARAMS = {"random_forest": {"n_estimators": 50}, "linear": {"C": 1.0}}
BATCHES = ("20261121T161500000000Z-aaaaaaaa", "20261121T161600000000Z-bbbbbbbb")


def synthetic(task: str, rows: int = 400, seed: int = 7) -> tuple[DatasetSchema, pd.DataFrame]:
    """Three numbers and a category; only ``decisive`` decides the label (a class, or a number)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "decisive": rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "other": rng.uniform(0, 10, size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
        }
    )
    frame.loc[::10, "noise"] = np.nan  # missing values, to be counted in the report
    features = [
        {"name": "decisive", "dtype": "float"},
        {"name": "noise", "dtype": "float", "nullable": True},
        {"name": "other", "dtype": "float"},
        {"name": "colour", "dtype": "str"},
    ]
    if task == "classification":
        frame["label"] = np.where(frame["decisive"] > 0, "yes", "no")
        raw = {"name": "synthetic", "label": "label", "classes": ["no", "yes"], "features": features}
    else:
        frame["label"] = 3 * frame["decisive"] + rng.normal(scale=0.1, size=rows)
        raw = {"name": "synthetic", "task": "regression", "label": "label", "features": features}
    schema = DatasetSchema.from_dict(raw)
    return schema, to_features(frame, schema)


def registered(root: str, task: str, model_type: str = "random_forest", **kw) -> tuple[DatasetSchema, dict]:
    schema, frame = synthetic(task, **kw)
    metric = "accuracy" if task == "classification" else "r2"
    metadata = register_model(
        root, frame, schema, model_type, PARAMS[model_type], metric=metric, threshold=0.8, batch_ids=BATCHES
    )
    return schema, metadata


def cells(html: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", html)


def test_a_classifier_report_shows_its_confusion_matrix_and_what_decides(root):
    schema, metadata = registered(root, "classification")
    version = metadata["version"]
    model = registry.load_model(root, version)
    holdout = registry.load_holdout(root, version)

    built = report.build_version_report(metadata, model, holdout, schema)

    expected = confusion_matrix(
        holdout["label"].astype(str),
        model.predict(holdout[schema.feature_names]).astype(str),
        labels=["no", "yes"],
    )
    assert built.facts["confusion_matrix"] == expected.tolist()
    assert expected.sum() == len(holdout) == metadata["rows"]["holdout"]
    # The matrix as a table: a row per actual class, its counts per predicted class.
    table = cells(built.html)
    for name, row in zip(["no", "yes"], expected, strict=True):
        start = table.index(name)
        assert table[start : start + 3] == [name, str(row[0]), str(row[1])]
    per_class = built.facts["per_class"]
    assert per_class["yes"]["support"] == (holdout["label"] == "yes").sum()
    assert per_class["yes"]["recall"] == pytest.approx(expected[1, 1] / expected[1].sum())
    # One column decides the label: permutation importance finds it, the others barely matter.
    importances = built.facts["importances"]
    assert importances[0]["feature"] == "decisive"
    assert importances[0]["mean"] > 0.2
    assert all(item["mean"] < 0.05 for item in importances[1:])
    assert {item["feature"] for item in importances} == set(schema.feature_names)  # original columns
    # The verdict in words, the training data in brief, the lineage.
    assert metadata["verdict"] in built.html
    balance = metadata["data_summary"]["class_balance"]
    assert sum(balance.values()) == metadata["rows"]["train"]
    assert set(balance) == {"no", "yes"}
    missing = metadata["data_summary"]["missing"]
    assert set(missing) == {"noise"}
    assert 0 < missing["noise"] < metadata["rows"]["train"] / 5
    for fact in (
        *BATCHES,
        metadata["feature_hash"],
        metadata["model_sha256"],
        metadata["schema_fingerprint"],
    ):
        assert fact in built.html
    assert built.key_plot.startswith(PNG)


def test_a_regressor_report_shows_predictions_against_actual_values(root):
    schema, metadata = registered(root, "regression")
    version = metadata["version"]
    model = registry.load_model(root, version)
    holdout = registry.load_holdout(root, version)

    built = report.build_version_report(metadata, model, holdout, schema)

    residuals = holdout["label"] - model.predict(holdout[schema.feature_names])
    assert built.facts["residuals"]["mean"] == pytest.approx(residuals.mean())
    assert built.facts["residuals"]["max_abs"] == pytest.approx(residuals.abs().max())
    assert "predicted against actual" in built.html
    assert "Errors" in built.html
    assert "confusion_matrix" not in built.facts
    assert built.facts["importances"][0]["feature"] == "decisive"
    target = metadata["data_summary"]["target"]
    assert target["min"] <= target["median"] <= target["max"]
    assert sum(target["histogram"]["counts"]) == metadata["rows"]["train"]
    assert "Target distribution" in built.html
    assert "R²" in built.html


def test_the_written_report_compares_with_the_champion_and_shows_the_history(root):
    schema, first = registered(root, "classification", model_type="linear", seed=1)
    registry.set_production(root, first["version"])
    _, second = registered(root, "classification", seed=2)

    written = report.write_version_report(root, second["version"], schema)

    page = storage.read_bytes(written["report"]).decode()
    assert written["champion"] == first["version"]
    assert f"champion {first['version']}" in page
    assert re.search(r"<td>(better|worse) by [0-9.e-]+</td>|<td>the same</td>", page)
    assert "Quality over time" in page
    assert storage.read_bytes(layout.model_version(root, second["version"], report.KEY_PLOT_FILE)).startswith(
        PNG
    )
    # Self-contained: every image embedded, nothing fetched when the page is opened.
    assert page.count('src="data:image/png;base64,') >= 3
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    history = report.version_history(root, "accuracy")
    assert [item["version"] for item in history] == [first["version"], second["version"]]
    assert [item["production"] for item in history] == [True, False]


def test_a_version_promoted_before_its_report_is_compared_with_the_one_it_replaced(root):
    schema, first = registered(root, "classification", model_type="linear", seed=1)
    registry.set_production(root, first["version"])
    _, second = registered(root, "classification", seed=2)
    registry.set_production(root, second["version"])

    assert report.champion_of(root, second["version"]) == first["version"]
    assert report.write_version_report(root, second["version"], schema)["champion"] == first["version"]


def test_the_first_version_has_no_champion(root, iris, schema):
    metadata = register_model(root, to_features(iris, schema), schema)

    written = report.write_version_report(root, metadata["version"], schema)

    assert written["champion"] is None
    assert "No champion to compare with" in storage.read_bytes(written["report"]).decode()


def test_values_from_the_data_cannot_inject_markup(root):
    schema, frame = synthetic("classification")
    frame["colour"] = frame["colour"].where(frame.index % 2 == 0, "<script>x</script>")
    metadata = register_model(root, frame, schema, "random_forest", {"n_estimators": 10}, batch_ids=BATCHES)
    metadata = {**metadata, "model_type": "<b>forest</b>"}
    holdout = registry.load_holdout(root, metadata["version"])

    page = report.build_version_report(
        metadata, registry.load_model(root, metadata["version"]), holdout, schema
    ).html

    assert "<b>forest</b>" not in page
    assert "&lt;b&gt;forest&lt;/b&gt;" in page


def test_the_report_url_is_on_the_model_server():
    version = "20261121T161500000000Z-aaaaaaaa"
    assert report.report_url("http://models:8500/", version) == f"http://models:8500/models/{version}/report"
    with pytest.raises(layout.InvalidIdError):
        report.report_url("http://models:8500", "../etc")


def test_backtests_are_a_series_of_their_own_at_their_as_of_time(root):
    schema, production = registered(root, "classification", model_type="linear", seed=1)
    registry.set_production(root, production["version"])
    as_of = datetime(2026, 11, 20, 4, tzinfo=UTC)
    older = register_model(root, synthetic("classification", seed=3)[1], schema, as_of=as_of)
    newer = register_model(
        root, synthetic("classification", seed=4)[1], schema, as_of=as_of + timedelta(days=1)
    )

    history = report.version_history(root, "accuracy")

    # Oldest first by the time each stands for: both backtests look back before production was trained.
    assert [(item["version"], item["backtest"], item["production"]) for item in history] == [
        (older["version"], True, False),
        (newer["version"], True, False),
        (production["version"], False, True),
    ]
    series = report.history_series(history)
    assert series["backtests"] == [
        ("2026-11-20T04:00:00+00:00", older["metrics"]["accuracy"]),
        ("2026-11-21T04:00:00+00:00", newer["metrics"]["accuracy"]),
    ]
    assert (
        series["registered"]
        == series["production"]
        == [(production["created_at"], production["metrics"]["accuracy"])]
    )
    assert report.quality_over_time_png(history, metrics.metric("accuracy")).startswith(PNG)


def test_many_backtests_do_not_push_production_versions_out_of_the_history(root):
    schema, production = registered(root, "classification", model_type="linear", seed=1)
    frame = synthetic("classification", seed=3)[1]
    for day in (20, 21, 22):
        register_model(root, frame, schema, as_of=datetime(2026, 11, day, 4, tzinfo=UTC))

    history = report.version_history(root, "accuracy", limit=2)

    assert [item["at"][:10] for item in history if item["backtest"]] == ["2026-11-21", "2026-11-22"]
    assert [item["version"] for item in history if not item["backtest"]] == [production["version"]]


def test_a_backtest_report_says_so_and_has_no_champion(root):
    schema, production = registered(root, "classification", model_type="linear", seed=1)
    registry.set_production(root, production["version"])
    backtest = register_model(
        root,
        synthetic("classification", seed=3)[1],
        schema,
        batch_ids=BATCHES,
        as_of=datetime(2026, 11, 21, 4, tzinfo=UTC),
    )

    written = report.write_version_report(root, backtest["version"], schema)

    page = storage.read_bytes(written["report"]).decode()
    assert written["champion"] is None
    assert (
        "A backtest as of 2026-11-21T04:00:00+00:00: trained on the 2 batch(es) landed by then, as a "
        "training then would have been; registered to show quality over time, never promoted." in page
    )
    assert "a backtest is not compared with today's production model" in page
    assert "backtests are shown apart" in page
    # A version train_validate registered as a candidate says nothing of backtests in its verdict.
    normal = storage.read_bytes(report.write_version_report(root, production["version"], schema)["report"])
    assert "A backtest as of" not in normal.decode()
