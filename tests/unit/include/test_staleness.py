"""Stale data is mailed once when it starts and once when it ends, whatever the number of hourly runs
in between; other failed checks are mailed every time."""

from __future__ import annotations

from include import layout, storage
from include.staleness import stale_data_news, summary, worth_a_mail


def report(at: str, *, fresh: bool, drift_ok: bool = True) -> dict:
    return {
        "version": "v1",
        "checked_at": at,
        "checks": [
            {"name": "freshness", "ok": fresh, "detail": "newest batch ... landed 30.0 h ago (maximum 24 h)"},
            {"name": "drift", "ok": drift_ok, "detail": "..."},
        ],
    }


def run(root: str, at: str, **kw) -> dict:
    checked = report(at, **kw)
    return checked | stale_data_news(root, checked)


def test_a_stretch_of_stale_data_is_mailed_when_it_starts_and_when_it_ends(root):
    hours = [run(root, f"2026-12-02T0{h}:00:00+00:00", fresh=False) for h in range(4)]
    ended = run(root, "2026-12-02T05:00:00+00:00", fresh=True)
    later = run(root, "2026-12-02T06:00:00+00:00", fresh=True)

    assert [r["stale_data"] for r in [*hours, ended, later]] == [
        "started", "ongoing", "ongoing", "ongoing", "ended", None,
    ]  # fmt: skip
    assert [worth_a_mail(r) for r in [*hours, ended, later]] == [True, False, False, False, True, False]
    assert summary(hours[0]) == "no new data (stale data started)"
    assert summary(ended) == "new data again (stale since 2026-12-02T00:00:00+00:00)"
    assert not storage.exists(layout.stale_data(root))


def test_other_failed_checks_are_mailed_every_run_while_data_is_stale(root):
    run(root, "2026-12-02T00:00:00+00:00", fresh=False)
    drifted = run(root, "2026-12-02T01:00:00+00:00", fresh=False, drift_ok=False)

    assert drifted["stale_data"] == "ongoing"
    assert worth_a_mail(drifted)
    assert summary(drifted) == "drift failed"


def test_the_stretch_survives_a_restart_in_storage(root):
    run(root, "2026-12-02T00:00:00+00:00", fresh=False)

    assert storage.read_json(layout.stale_data(root))["since"] == "2026-12-02T00:00:00+00:00"
    assert run(root, "2026-12-02T01:00:00+00:00", fresh=False)["stale_since"] == "2026-12-02T00:00:00+00:00"


def test_nothing_in_production_is_no_news(root):
    nothing = {"version": None, "checked_at": "2026-12-02T00:00:00+00:00", "checks": []}

    assert stale_data_news(root, nothing) == {"stale_data": None, "stale_since": None}
