"""The storage layout: where each thing lives, and the one id format that keeps it inside the root."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pytest

from include import layout

ROOT = "file:///srv/data"
BATCH = "20261122T030501123456Z-1a2b3c4d"


def test_every_path_is_under_the_root():
    assert layout.raw_batch(ROOT, BATCH, ".parquet") == f"{ROOT}/raw/batches/{BATCH}.parquet"
    assert layout.quarantined(ROOT, BATCH, ".reason.json") == f"{ROOT}/quarantine/{BATCH}.reason.json"
    assert layout.feature_batch(ROOT, BATCH) == f"{ROOT}/features/{BATCH}.parquet"
    assert layout.model_version(ROOT, BATCH) == f"{ROOT}/models/versions/{BATCH}"
    assert layout.model_version(ROOT, BATCH, "model.joblib") == f"{ROOT}/models/versions/{BATCH}/model.joblib"
    assert layout.staging(ROOT, BATCH, "metadata.json") == f"{ROOT}/models/staging/{BATCH}/metadata.json"
    assert layout.production_pointer(ROOT) == f"{ROOT}/models/production.json"
    assert layout.join(f"{ROOT}/", "a", "b") == f"{ROOT}/a/b"


def test_make_id_is_the_utc_time_and_the_hash_prefix():
    at = datetime(2026, 11, 22, 3, 5, 1, 123456, tzinfo=UTC)

    assert layout.make_id(at, "1a2b3c4d" + "0" * 56) == BATCH
    assert layout.make_id(at, "f" * 64) < layout.make_id(at.replace(second=2), "0" * 64)


@pytest.mark.parametrize(
    "hostile",
    [
        "../../../planted",
        "/etc/passwd",
        f"{BATCH}/../../x",
        f"../{BATCH}",
        f"{BATCH}\n",
        "20261122T030501Z-1a2b3c4d",  # no microseconds
        "20261122T030501123456Z-1A2B3C4D",  # upper-case hex
        "",
        None,
        ["a"],
    ],
)
def test_a_malformed_id_never_becomes_a_path(hostile):
    for build in (
        lambda: layout.raw_batch(ROOT, hostile, ".parquet"),
        lambda: layout.quarantined(ROOT, hostile, ".json"),
        lambda: layout.feature_batch(ROOT, hostile),
        lambda: layout.model_version(ROOT, hostile, "model.joblib"),
        lambda: layout.staging(ROOT, hostile),
    ):
        with pytest.raises(layout.InvalidIdError, match="expected <UTC time>-<8 hex digits>"):
            build()


def test_the_param_pattern_refuses_what_the_layout_refuses():
    """DAG params use ID_PATTERN as a JSON Schema pattern; jsonschema matches it with `re.search`."""
    validator = jsonschema.Draft202012Validator({"type": "string", "pattern": layout.ID_PATTERN})

    assert validator.is_valid(BATCH)
    for hostile in ("../../../planted", f"{BATCH}\n", f"x{BATCH}", f"{BATCH}x"):
        assert not validator.is_valid(hostile), hostile


def test_an_id_tells_when_it_was_made():
    made = datetime(2026, 11, 22, 3, 5, 1, 123456, tzinfo=UTC)
    assert layout.id_time(layout.make_id(made, "1a2b3c4d" * 8)) == made
    with pytest.raises(layout.InvalidIdError):
        layout.id_time("latest")
