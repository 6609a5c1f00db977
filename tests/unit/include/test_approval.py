"""Approval before promotion: when a person is asked, what they see, and what their answer leaves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include import approval, layout, storage
from include.errors import ConfigurationError

VERSION = "20261122T030501123456Z-cccccccc"
CHAMPION = "20261121T030501123456Z-aaaaaaaa"
DECISION = {
    "version": VERSION,
    "metric": "accuracy",
    "candidate_score": 0.97,
    "promote": True,
    "champion": CHAMPION,
    "champion_score": 0.93,
    "reason": "candidate accuracy 0.97 vs production 0.93 on the candidate's held-out data",
}
REPORT = f"http://models.example:8500/models/{VERSION}/report"
AT = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("promote", "by_hand", "required", "asks"),
    [
        (True, False, True, True),
        (True, False, False, False),  # the default: promoted without asking
        (True, True, True, False),  # a version asked for by hand (a rollback) is a person's decision
        (False, False, True, False),  # kept out: nothing to approve
    ],
    ids=["required", "not-required", "by-hand", "kept-out"],
)
def test_only_a_candidate_to_promote_waits_and_only_when_required(promote, by_hand, required, asks):
    decision = DECISION | {"promote": promote}

    assert approval.asks_approval(decision, by_hand=by_hand, required=required) is asks


def test_the_request_names_the_version_its_score_against_production_and_the_report():
    asked = approval.request(DECISION, REPORT, 24.0)

    assert asked["subject"] == f"Promote {VERSION}?"
    assert f"accuracy: candidate **0.97**, production ({CHAMPION}) **0.93**" in asked["body"]
    assert f"[{REPORT}]({REPORT})" in asked["body"]
    assert "within 24 h" in asked["body"]


def test_the_first_candidate_is_asked_about_without_a_production_score():
    first = {k: v for k, v in DECISION.items() if k != "champion_score"} | {"champion": None}

    body = approval.request(first, REPORT, 1.5)["body"]

    assert "accuracy: candidate **0.97**\n" in body
    assert "Production now: none" in body
    assert "within 1.5 h" in body


def answer(chosen: str, user: dict | None, comment: str = "") -> dict:
    return {
        "chosen_options": [chosen],
        "params_input": {"comment": comment},
        "responded_at": AT,
        "responded_by_user": user,
    }


@pytest.mark.parametrize(
    ("chosen", "user", "outcome", "who"),
    [
        ("Approve", {"id": "alice", "name": "Alice"}, "approved", "Alice"),
        ("Reject", {"id": "bob", "name": "Bob"}, "rejected", "Bob"),
        ("Reject", None, "timed out", None),  # the scheduler answers the default, as nobody
    ],
)
def test_an_answer_is_kept_with_who_when_what_and_why(chosen, user, outcome, who):
    record = approval.answer_record(DECISION, answer(chosen, user, " too soon \n"), report_url=REPORT)

    assert record["answer"] == outcome
    assert record["responded_by"] == who
    assert record["responded_at"] == "2026-12-02T05:00:00+00:00"
    assert record["comment"] == "too soon"
    assert (record["version"], record["production"], record["report_url"]) == (VERSION, CHAMPION, REPORT)


@pytest.mark.parametrize(
    ("chosen", "user", "refusal"),
    [
        ("Approve", {"id": "alice", "name": "Alice"}, None),
        ("Reject", {"id": "bob", "name": "Bob"}, "not approved: rejected by Bob"),
        ("Reject", None, "not approved: timed out"),
    ],
)
def test_a_rejection_or_no_answer_says_why_production_stays(chosen, user, refusal):
    record = approval.answer_record(DECISION, answer(chosen, user), report_url=REPORT)

    assert approval.refusal(record) == refusal


def test_an_answer_that_is_neither_approve_nor_reject_is_refused():
    with pytest.raises(ValueError, match="not 'Maybe'"):
        approval.answer_record(DECISION, answer("Maybe", None), report_url=REPORT)


def test_the_answer_is_stored_beside_its_version(root: str):
    record = approval.answer_record(
        DECISION, answer("Reject", {"id": "bob", "name": "Bob"}), report_url=REPORT
    )

    url = approval.record(root, record)

    assert url == layout.model_version(root, VERSION, "approval.json")
    assert storage.read_json(url) == record == approval.recorded(root, VERSION)
    assert approval.recorded(root, CHAMPION) is None


@pytest.mark.parametrize("hours", [0, -1.0, float("nan")])
def test_a_timeout_that_cannot_bound_the_wait_names_the_setting(hours):
    with pytest.raises(ConfigurationError, match="approval_timeout_hours"):
        approval.check_timeout_hours(hours)
