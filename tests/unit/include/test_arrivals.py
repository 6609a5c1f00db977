"""The AssetWatcher option's rules: which way ingest waits (PIPELINE_ARRIVAL), and one arrival from the
watcher's events a run consumed, against a real ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from include import ledger, source_health
from include.arrivals import ArrivalModeError, arrival_mode, from_events, keep_health

DROP = "file:///srv/drop/"


def item(name: str, size: int = 4) -> dict:
    return {"url": f"{DROP}{name}", "validators": {"size": size, "mtime": 1000.0}}


@pytest.fixture
def root(tmp_path: Path) -> str:
    return (tmp_path / "data").as_uri()


def received(root: str, entry: dict, run_id: str) -> None:
    ledger.record_item(
        root,
        entry["url"],
        entry["validators"],
        sha256="0" * 64,
        outcome="landed",
        batch_id="b",
        run_id=run_id,
    )


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "sensor"), ("", "sensor"), ("watcher", "watcher"), (" Sensor ", "sensor")]
)
def test_arrival_mode_defaults_to_the_sensor(monkeypatch, value, mode):
    if value is None:
        monkeypatch.delenv("PIPELINE_ARRIVAL", raising=False)
    else:
        monkeypatch.setenv("PIPELINE_ARRIVAL", value)
    assert arrival_mode() == mode


def test_an_unknown_arrival_mode_is_refused_naming_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("PIPELINE_ARRIVAL", "watchers")
    with pytest.raises(ArrivalModeError, match=r"PIPELINE_ARRIVAL='watchers' is not one of sensor, watcher"):
        arrival_mode()


def test_several_events_make_one_arrival_each_item_once_oldest_first(root):
    payloads = [
        {"url": DROP, "items": [item("a.csv"), item("b.csv")]},
        {"url": DROP, "items": [item("b.csv"), item("c.csv")]},  # b announced again after a refresh
    ]
    arrival = from_events(root, payloads, run_id="r1")
    assert [i["url"] for i in arrival["items"]] == [f"{DROP}a.csv", f"{DROP}b.csv", f"{DROP}c.csv"]
    assert {i["source"] for i in arrival["items"]} == {DROP}
    assert arrival["url"] == DROP
    assert arrival["health"] == {}
    assert "source_failing" not in arrival
    assert "recovered" not in arrival


def test_what_another_run_received_is_left_out_so_an_event_may_land_nothing(root):
    received(root, item("a.csv"), run_id="r1")
    assert from_events(root, [{"url": DROP, "items": [item("a.csv")]}], run_id="r2")["items"] == []


def test_a_retry_keeps_what_its_own_run_received_so_it_still_announces_it(root):
    received(root, item("a.csv"), run_id="r1")
    arrival = from_events(root, [{"url": DROP, "items": [item("a.csv"), item("b.csv")]}], run_id="r1")
    assert [i["url"] for i in arrival["items"]] == [f"{DROP}a.csv", f"{DROP}b.csv"]


def test_another_version_of_a_received_file_is_new(root):
    received(root, item("a.csv"), run_id="r1")
    arrival = from_events(root, [{"url": DROP, "items": [item("a.csv", size=9)]}], run_id="r2")
    assert [i["validators"]["size"] for i in arrival["items"]] == [9]


def test_items_keep_the_source_they_were_seen_at_when_crawl_url_changed_between_events(root):
    other = "http://127.0.0.1:8000/iris.csv"
    url_item = {"url": other, "validators": {"etag": '"x"'}, "sha256": "ab" * 32, "bytes": 10}
    arrival = from_events(
        root, [{"url": DROP, "items": [item("a.csv")]}, {"url": other, "items": [url_item]}], run_id="r"
    )
    assert [i["source"] for i in arrival["items"]] == [DROP, other]
    assert arrival["url"] == other


def test_an_outage_and_its_recovery_are_both_kept_and_the_newest_says_whether_it_is_down(root):
    failing = {"url": DROP, "since": "2026-12-01T00:00:00+00:00", "failures": 9, "last_error": "refused"}
    down = from_events(root, [{"url": DROP, "items": [], "source_failing": failing}], run_id="r")
    assert down["source_failing"] == failing
    assert down["health"] == {DROP: failing}

    both = from_events(
        root,
        [
            {"url": DROP, "items": [], "source_failing": failing},
            {"url": DROP, "items": [item("a.csv")], "recovered": failing},
        ],
        run_id="r",
    )
    assert both["source_failing"] == both["recovered"] == failing
    assert both["health"] == {DROP: None}
    assert len(both["items"]) == 1


def test_no_events_no_items(root):
    assert from_events(root, [], run_id="manual") == {"url": None, "items": [], "health": {}}


def test_an_outage_still_on_is_recorded_and_one_that_ended_is_forgotten(root):
    failing = {"url": DROP, "since": "2026-12-01T00:00:00+00:00", "failures": 9, "last_error": "refused"}
    keep_health(root, from_events(root, [{"url": DROP, "items": [], "source_failing": failing}], run_id="r"))
    assert source_health.outage(root, DROP)["last_error"] == "refused"

    keep_health(root, from_events(root, [{"url": DROP, "items": [], "recovered": failing}], run_id="r2"))
    assert source_health.outage(root, DROP) is None


def test_an_outage_reported_and_ended_before_its_run_leaves_no_record(root):
    failing = {"url": DROP, "since": "2026-12-01T00:00:00+00:00", "failures": 9, "last_error": "refused"}
    payloads = [
        {"url": DROP, "items": [], "source_failing": failing},
        {"url": DROP, "items": [], "recovered": failing},
    ]
    keep_health(root, from_events(root, payloads, run_id="r"))
    assert source_health.outage(root, DROP) is None


def test_each_source_keeps_its_own_health(root):
    """Several sources: one down, another recovering in a later event; each is kept as it is, and the
    recovery names its own source."""
    other = "http://example.test/data.csv"
    failing = {"url": DROP, "since": "2026-12-01T00:00:00+00:00", "failures": 9, "last_error": "refused"}
    earlier = {"url": other, "since": "2026-11-30T00:00:00+00:00", "failures": 3, "last_error": "HTTP 500"}
    source_health.record_outage(root, earlier)
    arrival = from_events(
        root,
        [
            {"url": DROP, "items": [], "source_failing": failing},
            {"url": other, "items": [], "recovered": earlier},
        ],
        run_id="r",
    )
    assert arrival["health"] == {DROP: failing, other: None}
    assert arrival["recovered"]["url"] == other
    keep_health(root, arrival)
    assert source_health.outage(root, DROP)["last_error"] == "refused"
    assert source_health.outage(root, other) is None
