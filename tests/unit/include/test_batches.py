"""The raw/quarantine layout on a real local storage root: listing, reading and quarantining batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from include import batches, layout, storage
from include.batches import CheckFailure

FIRST = "20261121T161500000000Z-aaaaaaaa"
SECOND = "20261121T161600000000Z-bbbbbbbb"
THIRD = "20261121T161700000000Z-cccccccc"
FAILURES = [
    CheckFailure("nulls", "petal_length", "column 'petal_length' has 1 null value(s), e.g. at row 0"),
    CheckFailure("empty", None, "batch has no rows"),
]


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_empty_root_has_no_batches(root):
    assert batches.list_raw_batches(root) == []
    assert batches.seen_manifests(root) == []


def test_landed_batches_are_listed_oldest_first_and_read_back(root, land, iris):
    land(SECOND, iris.iloc[:10])
    land(FIRST, iris)

    assert batches.list_raw_batches(root) == [FIRST, SECOND]
    pd.testing.assert_frame_equal(storage.read_parquet(batches.raw_batch_data(root, FIRST)), iris)
    manifest = batches.raw_manifest(root, SECOND)
    assert (manifest["batch_id"], manifest["rows"]) == (SECOND, 10)


def test_a_batch_without_its_manifest_is_incomplete_and_ignored(root, land, iris, tmp_path):
    land(FIRST, iris)
    # What a crash between the Parquet write and the manifest write leaves behind.
    storage.write_parquet_atomic(iris, layout.raw_batch(root, SECOND, ".parquet"))
    (tmp_path / "raw" / "batches" / ".tmp-0123").write_bytes(b"partial")

    assert batches.list_raw_batches(root) == [FIRST]
    assert [m["batch_id"] for m in batches.seen_manifests(root)] == [FIRST]


@pytest.mark.parametrize(
    "read",
    [batches.raw_batch_data, batches.raw_manifest],
    ids=["raw_batch_data", "raw_manifest"],
)
def test_unknown_batch_id_is_named(root, land, iris, read):
    land(FIRST, iris)

    with pytest.raises(FileNotFoundError, match="batch '20261121T999999000000Z-deadbeef' not found"):
        read(root, "20261121T999999000000Z-deadbeef")


def test_quarantining_an_unknown_batch_writes_nothing(root, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"batch '{FIRST}' is neither in raw/batches nor"):
        batches.quarantine_batch(root, FIRST, FAILURES)

    assert files(tmp_path) == []


def test_quarantine_moves_data_and_manifest_next_to_the_reason(root, land, iris, tmp_path, quarantine_reason):
    land(FIRST, iris)
    land(SECOND, iris.iloc[:5])
    data = (tmp_path / "raw" / "batches" / f"{FIRST}.parquet").read_bytes()

    reason_url = batches.quarantine_batch(root, FIRST, FAILURES)

    assert reason_url == layout.quarantined(root, FIRST, ".reason.json")
    assert batches.list_raw_batches(root) == [SECOND]
    assert files(tmp_path / "quarantine") == [f"{FIRST}.json", f"{FIRST}.parquet", f"{FIRST}.reason.json"]
    assert (tmp_path / "quarantine" / f"{FIRST}.parquet").read_bytes() == data
    reason = quarantine_reason(FIRST)
    assert reason["batch_id"] == FIRST
    assert reason["failed_checks"] == [
        {
            "check": "nulls",
            "column": "petal_length",
            "message": "column 'petal_length' has 1 null value(s), e.g. at row 0",
        },
        {"check": "empty", "column": None, "message": "batch has no rows"},
    ]
    assert datetime.fromisoformat(reason["quarantined_at"]).utcoffset().total_seconds() == 0
    with pytest.raises(FileNotFoundError, match=FIRST):
        batches.raw_batch_data(root, FIRST)


def test_quarantined_batches_are_still_seen(root, land, iris):
    land(FIRST, iris)
    land(SECOND, iris)
    land(THIRD, iris)
    batches.quarantine_batch(root, THIRD, FAILURES)
    batches.quarantine_batch(root, FIRST, FAILURES)

    assert [m["batch_id"] for m in batches.seen_manifests(root)] == [FIRST, SECOND, THIRD]
    assert batches.list_raw_batches(root) == [SECOND]


def test_interrupted_quarantine_is_finished_by_a_retry(root, land, iris, tmp_path, quarantine_reason):
    land(FIRST, iris)
    # An earlier attempt moved the data and died before moving the manifest.
    storage.move(layout.raw_batch(root, FIRST, ".parquet"), layout.quarantined(root, FIRST, ".parquet"))
    assert batches.list_raw_batches(root) == []

    batches.quarantine_batch(root, FIRST, FAILURES[:1])

    assert files(tmp_path) == [
        f"quarantine/{FIRST}.json",
        f"quarantine/{FIRST}.parquet",
        f"quarantine/{FIRST}.reason.json",
    ]
    assert [f["check"] for f in quarantine_reason(FIRST)["failed_checks"]] == ["nulls"]
    assert [m["batch_id"] for m in batches.seen_manifests(root)] == [FIRST]


def test_write_reason_overwrites_an_earlier_reason(root, quarantine_reason):
    batches.write_reason(root, FIRST, FAILURES)
    batches.write_reason(root, FIRST, [CheckFailure("format", None, "not a CSV")])

    assert quarantine_reason(FIRST)["failed_checks"] == [
        {"check": "format", "column": None, "message": "not a CSV"}
    ]


AT = {
    FIRST: datetime(2026, 11, 21, 16, 15, tzinfo=UTC),
    SECOND: datetime(2026, 11, 21, 16, 16, tzinfo=UTC),
    THIRD: datetime(2026, 11, 21, 16, 17, tzinfo=UTC),
}


@pytest.fixture
def landed(root, land, iris) -> dict[str, datetime]:
    """Three landed batches whose manifests say they landed a minute apart."""
    for batch_id, landed_at in AT.items():
        land(batch_id, iris.iloc[:5])
        url = layout.raw_batch(root, batch_id, ".json")
        storage.write_json_atomic(url, {**storage.read_json(url), "landed_at": landed_at.isoformat()})
    return AT


def test_landed_between_on_an_empty_root(root):
    assert batches.landed_between(root, None, None) == []


def test_landed_between_includes_its_start_and_excludes_its_end(root, landed):
    assert batches.landed_between(root, AT[SECOND], AT[THIRD]) == [SECOND]
    assert batches.landed_between(root, AT[SECOND] + timedelta(microseconds=1), AT[THIRD]) == []
    assert batches.landed_between(root, AT[SECOND], AT[THIRD] + timedelta(microseconds=1)) == [SECOND, THIRD]
    assert batches.landed_between(root, AT[SECOND], AT[SECOND]) == []


def test_landed_between_with_open_ends(root, landed):
    assert batches.landed_between(root, None, None) == [FIRST, SECOND, THIRD]
    assert batches.landed_between(root, None, AT[SECOND]) == [FIRST]
    assert batches.landed_between(root, AT[SECOND], None) == [SECOND, THIRD]
    assert batches.landed_between(root, AT[THIRD] + timedelta(seconds=1), None) == []


def test_landed_between_compares_instants_not_clock_readings(root, landed):
    plus_two = timezone(timedelta(hours=2))

    assert batches.landed_between(root, AT[SECOND].astimezone(plus_two), None) == [SECOND, THIRD]


def test_landed_between_reads_landed_at_from_the_manifest(root, landed):
    # The id says 16:15, but the manifest is what records when the batch landed.
    url = layout.raw_batch(root, FIRST, ".json")
    late = datetime(2026, 11, 22, tzinfo=UTC)
    storage.write_json_atomic(url, {**storage.read_json(url), "landed_at": late.isoformat()})

    assert batches.landed_between(root, None, AT[THIRD]) == [SECOND]
    assert batches.landed_between(root, late, None) == [FIRST]


def test_landed_between_ignores_quarantined_and_incomplete_batches(root, landed, iris):
    batches.quarantine_batch(root, SECOND, FAILURES)
    storage.write_parquet_atomic(iris, layout.raw_batch(root, "20261121T161630000000Z-dddddddd", ".parquet"))

    assert batches.landed_between(root, None, None) == [FIRST, THIRD]
    assert batches.landed_between(root, AT[SECOND], AT[THIRD]) == []


def test_landed_on_days_takes_whole_utc_days_inclusive(root, landed):
    url = layout.raw_batch(root, THIRD, ".json")
    storage.write_json_atomic(url, {**storage.read_json(url), "landed_at": "2026-11-22T23:59:59+00:00"})

    assert batches.landed_on_days(root, "2026-11-21", "2026-11-21") == [FIRST, SECOND]
    assert batches.landed_on_days(root, "2026-11-22", None) == [THIRD]
    assert batches.landed_on_days(root, None, "2026-11-22") == [FIRST, SECOND, THIRD]
    assert batches.landed_on_days(root, "2026-11-23", None) == []


def select(root, **overrides) -> list[str]:
    args = {"requested": [], "landed_from": None, "landed_to": None, "announced": [], "interval": None}
    return batches.select_batches(root, **{**args, **overrides})


def test_select_batches_by_hand_wins(root, landed):
    assert select(root, requested=[THIRD, FIRST, THIRD], announced=[{"batch_id": SECOND}]) == [FIRST, THIRD]


def test_select_batches_by_landing_day(root, landed):
    assert select(root, landed_from="2026-11-21", announced=[{"batch_id": SECOND}]) == [FIRST, SECOND, THIRD]


def test_select_batches_reads_every_triggering_event(root, landed):
    announced = [{"batch_ids": [THIRD, FIRST]}, {"batch_ids": [THIRD]}, {"note": "no id"}]

    assert select(root, announced=announced, interval=(AT[SECOND], AT[THIRD])) == [FIRST, THIRD]


def test_select_batches_reads_events_published_before_they_listed_batches(root, landed):
    assert select(root, announced=[{"batch_id": SECOND}, {"batch_ids": [FIRST]}]) == [FIRST, SECOND]


def test_select_batches_of_a_scheduled_run_takes_its_interval(root, landed):
    assert select(root, interval=(AT[SECOND], AT[THIRD])) == [SECOND]
    assert select(root) == []


@pytest.mark.parametrize("hostile", ["../../../planted", "/tmp/x", f"{FIRST}/../x"])
def test_select_batches_refuses_a_hostile_id(root, landed, hostile):
    with pytest.raises(ValueError, match="invalid batch id"):
        select(root, requested=[hostile])
    with pytest.raises(ValueError, match="invalid batch id"):
        select(root, announced=[{"batch_ids": [hostile]}])
