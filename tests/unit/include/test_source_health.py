"""The rules for a failing source: the backoff schedule, what it costs over a day, the outage record."""

from __future__ import annotations

from pathlib import Path

import pytest

from include import source_health


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 1), (1, 2), (2, 4), (5, 32), (6, 60), (7, 60), (10_000, 60)],
)
def test_backoff_doubles_from_the_interval_up_to_the_cap(failures, wait):
    assert source_health.backoff(1, failures, 60) == wait


def test_a_cap_below_the_interval_never_polls_faster_than_the_interval():
    assert source_health.backoff(5, 3, 1) == 5


def failed_polls(duration: float, interval: float, cap: float) -> int:
    """How many polls fail (and log one warning each) in an outage of ``duration`` seconds on the
    backoff schedule, counting only the waits between them (a poll itself is assumed instant)."""
    polls, elapsed = 0, 0.0
    while elapsed <= duration:
        polls += 1
        elapsed += source_health.backoff(interval, polls, cap)
    return polls


def test_a_day_long_outage_logs_about_one_warning_per_cap():
    # ingest polls every second: 86,400 warnings a day without backoff.
    # polls at 0, 2, 6, 14, 30, 62 s, then every 60 s: 6 + (86,400 - 62) // 60.
    assert failed_polls(86_400, 1, 60) == 1444


def test_an_outage_is_recorded_until_it_ends(tmp_path: Path):
    root, url = str(tmp_path / "data"), "http://source.test/iris.csv"
    failing = {"url": url, "since": "2026-01-01T00:00:00+00:00", "failures": 12, "last_error": "HTTP 500"}
    assert source_health.outage(root, url) is None

    source_health.record_outage(root, failing)

    assert source_health.outage(root, url) == {
        **failing,
        "alerted_at": source_health.outage(root, url)["alerted_at"],
    }
    assert source_health.outage(root, "http://source.test/other.csv") is None
    source_health.end_outage(root, url)
    assert source_health.outage(root, url) is None
    source_health.end_outage(root, url)  # ending it twice (a retried task) is fine


def test_a_torn_record_still_counts_as_an_outage(tmp_path: Path):
    root, url = str(tmp_path / "data"), "http://source.test/iris.csv"
    source_health.record_outage(root, {"url": url, "since": None, "failures": 1, "last_error": "x"})
    [record] = (tmp_path / "data" / "health" / "sources").iterdir()
    record.write_text("{")
    assert source_health.outage(root, url)["last_error"] == "unknown"


def test_describe_names_the_source_the_error_and_since_when():
    text = source_health.describe(
        {
            "url": "http://s/x.csv",
            "since": "2026-01-01T00:00:00+00:00",
            "failures": 3,
            "last_error": "HTTP 500",
        }
    )
    assert text == (
        "Source http://s/x.csv has failed since 2026-01-01T00:00:00+00:00 (3 polls in a row); "
        "last error: HTTP 500"
    )
