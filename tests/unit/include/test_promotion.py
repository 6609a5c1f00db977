"""Champion/challenger as a plain function, and against a real registry."""

from __future__ import annotations

import pytest

from include import promotion, registry

CANDIDATE = {
    "version": "20261122T030501123456Z-cccccccc",
    "metric": "accuracy",
    "metrics": {"accuracy": 0.9, "f1_macro": 0.5},
}
CHAMPION = "20261121T030501123456Z-aaaaaaaa"


def test_the_first_candidate_is_promoted():
    decision = promotion.decide(CANDIDATE, None, None, margin=0.0)

    assert decision["promote"] is True
    assert decision["reason"] == "no model in production yet"


@pytest.mark.parametrize(
    ("champion_score", "margin", "promote"),
    [
        (0.9, 0.0, True),  # a tie: the candidate saw newer data
        (0.9001, 0.0, False),  # slightly worse
        (0.85, 0.0, True),  # better
        (0.92, 0.02, True),  # worse, but within the margin
        (0.93, 0.02, False),  # worse than the margin allows
    ],
    ids=["tie", "slightly-worse", "better", "within-margin", "beyond-margin"],
)
def test_the_candidate_must_reach_the_champion_less_the_margin(champion_score, margin, promote):
    scores = {"accuracy": champion_score, "f1_macro": 0.99}

    decision = promotion.decide(CANDIDATE, CHAMPION, scores, margin)

    assert decision["promote"] is promote
    assert (decision["champion"], decision["champion_score"]) == (CHAMPION, champion_score)
    assert f"candidate accuracy 0.9 vs production {champion_score}" in decision["reason"]


def test_the_metric_compared_is_the_one_the_candidate_was_gated_on():
    candidate = {**CANDIDATE, "metric": "f1_macro"}

    assert promotion.decide(candidate, CHAMPION, {"accuracy": 0.1, "f1_macro": 0.6}, 0.0)["promote"] is False


def test_a_version_asked_for_by_hand_is_promoted_as_is():
    decision = promotion.requested(CHAMPION, CANDIDATE["version"])

    assert (decision["version"], decision["promote"], decision["reason"]) == (
        CHAMPION,
        True,
        "requested by hand",
    )


@pytest.mark.parametrize("version", ["../../../../etc", "/etc", "latest"])
def test_a_hostile_version_is_refused(version):
    with pytest.raises(ValueError, match="invalid model version"):
        promotion.requested(version, None)


def test_the_newest_of_several_queued_candidates_is_decided_on():
    events = [{"version": "20261122T030501123456Z-aaaaaaaa"}, {"version": "20261122T030502123456Z-bbbbbbbb"}]

    assert promotion.newest_candidate(events) == events[1]
    with pytest.raises(ValueError, match="no model_candidate event"):
        promotion.newest_candidate([])


def test_against_the_registry_both_are_scored_on_the_candidates_holdout(root, schema, register_model):
    champion = register_model(params={"C": 2.0})
    registry.set_production(root, champion["version"])
    candidate = register_model("random_forest", {"n_estimators": 5})

    decision = promotion.compare_with_production(root, schema, candidate, margin=0.0)

    expected = registry.load_model(root, champion["version"]).score(
        *(lambda h: (h[schema.feature_names], h[schema.label]))(
            registry.load_holdout(root, candidate["version"])
        )
    )
    assert decision["champion"] == champion["version"]
    assert decision["champion_score"] == pytest.approx(expected, abs=1e-4)
    assert decision["promote"] is (candidate["metrics"]["accuracy"] >= decision["champion_score"])
