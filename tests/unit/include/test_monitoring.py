"""Health checks of the production model on a real storage root: all passing, and each one failing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from include import features, layout, storage
from include.features import to_features
from include.monitoring import health_report, write_report
from include.registry import set_production

OLDER = "20261121T161500000000Z-aaaaaaaa"
NEWER = "20261121T161600000000Z-bbbbbbbb"
LANDED = datetime(2026, 11, 21, 16, 15, tzinfo=UTC)  # the landed_at the `land` fixture writes
MAX_AGE = timedelta(hours=24)
LIMITS = {"max_batch_age": MAX_AGE, "drift_threshold": 0.3, "threshold": 0.8}
ALL_CHECKS = ["freshness", "integrity", "drift", "quality"]


@pytest.fixture
def production(root, register_model) -> str:
    """A model trained on the Iris features, registered and promoted; returns its version."""
    version = register_model(params={}, batch_ids=[OLDER])["version"]
    set_production(root, version)
    return version


@pytest.fixture
def monitored(production, root, land, iris, schema) -> str:
    """The production model plus one landed batch and its features: healthy an hour after LANDED."""
    land(OLDER, iris)
    features.write_features(root, OLDER, [to_features(iris, schema)], schema)
    return production


def run_checks(root: str, schema, now: datetime = LANDED + timedelta(hours=1)) -> dict:
    return health_report(root, schema, now=now, **LIMITS)


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def failed(report: dict) -> list[str]:
    return [check["name"] for check in report["checks"] if not check["ok"]]


def set_landed_at(root: str, batch_id: str, landed_at: datetime) -> None:
    url = layout.raw_batch(root, batch_id, ".json")
    storage.write_json_atomic(url, {**storage.read_json(url), "landed_at": landed_at.isoformat()})


def accuracy_in(detail: str) -> float:
    return float(
        re.match(
            r"accuracy ([0-9.]+) (is better than|reaches|is below) the minimum 0.8 on batch ", detail
        ).group(1)
    )


def test_nothing_in_production_is_healthy_with_no_checks(root, land, iris, schema, register_model):
    land(OLDER, iris)
    register_model()
    now = LANDED + timedelta(days=30)  # a stale batch does not matter while nothing is served

    report = run_checks(root, schema, now=now)

    assert report == {
        "version": None,
        "checked_at": now.isoformat(),
        "checks": [],
        "healthy": True,
        "note": "no model in production yet",
    }


def test_a_healthy_production_model(monitored, root, schema):
    set_landed_at(root, OLDER, datetime.now(UTC) - timedelta(minutes=5))
    before = datetime.now(UTC)

    report = health_report(root, schema, **LIMITS)  # no `now`: checked against the clock

    assert before <= datetime.fromisoformat(report["checked_at"]) <= datetime.now(UTC)
    assert report["version"] == monitored
    assert report["healthy"] is True
    assert "note" not in report
    assert [check["name"] for check in report["checks"]] == ALL_CHECKS
    assert failed(report) == []
    checks = by_name(report)
    assert checks["freshness"]["detail"] == f"newest batch {OLDER} landed 0.1 h ago (maximum 24 h)"
    assert checks["integrity"]["detail"] == f"model.joblib of {monitored} matches its sha256"
    # The model was trained on the batch it is checked on: a drift in it was measured on arrival.
    assert checks["drift"]["detail"].startswith(
        "production was trained on this batch: drift on its arrival is in drift_absorbed; "
        f"drift statistic per feature on batch {OLDER}"
    )
    assert all(f"{name}=" in checks["drift"]["detail"] for name in schema.feature_names)
    assert "drifted" not in checks["drift"]["detail"]
    assert "(missing)" not in checks["drift"]["detail"]  # shown only for a column whose gaps changed
    assert accuracy_in(checks["quality"]["detail"]) >= 0.9
    assert re.fullmatch(
        rf"accuracy [0-9.]+ is better than the minimum 0.8 on batch {OLDER}", checks["quality"]["detail"]
    )


def test_a_stale_newest_batch_fails_freshness(monitored, root, schema):
    at_the_limit = run_checks(root, schema, now=LANDED + MAX_AGE)
    report = run_checks(root, schema, now=LANDED + MAX_AGE + timedelta(hours=1))

    assert at_the_limit["healthy"] is True
    assert report["healthy"] is False
    assert failed(report) == ["freshness"]
    assert by_name(report)["freshness"]["detail"] == f"newest batch {OLDER} landed 25.0 h ago (maximum 24 h)"


def test_freshness_looks_at_the_newest_batch_only(monitored, root, land, iris, schema):
    set_landed_at(root, OLDER, LANDED - timedelta(days=10))
    land(NEWER, iris)

    report = run_checks(root, schema)

    assert report["healthy"] is True
    assert by_name(report)["freshness"]["detail"].startswith(f"newest batch {NEWER} landed 1.0 h ago")


@pytest.mark.parametrize("damage", ["tampered", "deleted"])
def test_a_damaged_model_fails_integrity_and_is_not_scored(monitored, root, schema, tmp_path, damage):
    model_file = tmp_path / "models" / "versions" / monitored / "model.joblib"
    if damage == "tampered":
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model_file.write_bytes(bytes(data))
    else:
        model_file.unlink()

    report = run_checks(root, schema)

    assert report["healthy"] is False
    assert [check["name"] for check in report["checks"]] == ["freshness", "integrity", "drift"]
    assert failed(report) == ["integrity"]
    detail = by_name(report)["integrity"]["detail"]
    if damage == "tampered":
        assert detail.startswith(f"model version '{monitored}' failed its integrity check")
    else:
        assert detail.startswith("[Errno 2] No such file or directory")
        assert detail.endswith(f"{monitored}/model.joblib'")


def test_a_drifted_newest_batch_fails_drift_naming_the_feature(monitored, root, iris, schema):
    shifted = to_features(iris, schema)
    shifted["petal_length"] += 5
    features.write_features(root, NEWER, [shifted], schema)

    report = run_checks(root, schema)

    assert report["healthy"] is False
    checks = by_name(report)
    # A 5 cm shift also wrecks the predictions, so accuracy (scored on the same batch) fails with drift.
    assert failed(report) == ["drift", "quality"]
    detail = checks["drift"]["detail"]
    assert detail.startswith(f"drift statistic per feature on batch {NEWER} vs training data (threshold 0.3)")
    assert detail.endswith("; drifted: petal_length")
    assert float(re.search(r"petal_length=([0-9.]+)", detail).group(1)) > 0.9
    assert re.fullmatch(
        rf"accuracy [0-9.]+ is below the minimum 0.8 on batch {NEWER}", checks["quality"]["detail"]
    )


def test_shuffled_labels_fail_quality(monitored, root, iris, schema):
    shuffled = to_features(iris, schema)
    shuffled["species"] = shuffled["species"].sample(frac=1, random_state=0).to_numpy()
    features.write_features(root, NEWER, [shuffled], schema)

    report = run_checks(root, schema)

    assert report["healthy"] is False
    assert [check["name"] for check in report["checks"]] == ALL_CHECKS
    assert failed(report) == ["quality"]
    detail = by_name(report)["quality"]["detail"]
    assert accuracy_in(detail) < 0.5
    assert detail.endswith(f"is below the minimum 0.8 on batch {NEWER}")


def test_no_feature_batch_fails_newest_batch(production, root, land, iris, schema):
    land(OLDER, iris)

    report = run_checks(root, schema)

    assert report["healthy"] is False
    assert [check["name"] for check in report["checks"]] == ["freshness", "integrity", "newest_batch"]
    assert failed(report) == ["newest_batch"]
    assert by_name(report)["newest_batch"]["detail"] == "no validated batch to check the model against"


def test_no_raw_batch_fails_freshness(production, root, iris, schema):
    features.write_features(root, OLDER, [to_features(iris, schema)], schema)

    report = run_checks(root, schema)

    assert report["healthy"] is False
    assert [check["name"] for check in report["checks"]] == ALL_CHECKS
    assert failed(report) == ["freshness"]
    assert by_name(report)["freshness"]["detail"] == "no raw batch has landed"


def test_write_report_keeps_one_json_per_check_time(monitored, root, schema, tmp_path):
    first = run_checks(root, schema, now=datetime(2026, 11, 21, 17, 15, 0, 123456, tzinfo=UTC))
    second = run_checks(root, schema, now=datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    first_url, second_url = write_report(root, first), write_report(root, second)

    assert first_url == f"{root}/monitor/20261121T171500123456Z.json"
    assert second_url == f"{root}/monitor/20261123T090000000000Z.json"
    assert storage.read_json(first_url) == first
    assert storage.read_json(second_url) == second
    assert (first["healthy"], second["healthy"]) == (True, False)
    assert sorted(p.name for p in (tmp_path / "monitor").iterdir()) == [
        "20261121T171500123456Z.json",
        "20261123T090000000000Z.json",
    ]


def test_report_names_are_utc_whatever_the_offset_of_checked_at(root, schema):
    # 18:15 at UTC+2 is 16:15 UTC; the trailing "Z" promises UTC, and names must sort by real time.
    now = datetime(2026, 11, 21, 18, 15, tzinfo=timezone(timedelta(hours=2)))

    url = write_report(root, run_checks(root, schema, now=now))

    assert url == f"{root}/monitor/20261121T161500000000Z.json"
