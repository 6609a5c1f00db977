"""Champion/challenger as a plain function, and against a real registry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from include import layout, promotion, registry, storage
from include.errors import BadRequestError
from include.registry import IntegrityError

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


RMSE_CANDIDATE = {**CANDIDATE, "metric": "rmse", "metrics": {"rmse": 10.0, "mae": 8.0, "r2": 0.5}}


@pytest.mark.parametrize(
    ("champion_rmse", "margin", "promote"),
    [
        (10.0, 0.0, True),  # a tie
        (9.99, 0.0, False),  # the champion's error is lower
        (12.0, 0.0, True),  # the candidate's error is lower
        (9.5, 0.5, True),  # a higher error, but within the margin
        (9.4, 0.5, False),  # higher than the margin allows
    ],
    ids=["tie", "slightly-worse", "better", "within-margin", "beyond-margin"],
)
def test_a_lower_is_better_metric_promotes_the_lower_error_within_the_margin(champion_rmse, margin, promote):
    decision = promotion.decide(RMSE_CANDIDATE, CHAMPION, {"rmse": champion_rmse, "r2": 0.0}, margin)

    assert decision["promote"] is promote
    assert decision["reason"] == (
        f"candidate RMSE 10.0 vs production {champion_rmse} on the candidate's held-out data "
        f"(lower is better, margin {margin})"
    )


def test_a_champion_of_another_schema_is_replaced_and_the_reason_says_so():
    candidate = {**RMSE_CANDIDATE, "schema_fingerprint": "1111111111111111"}

    same = promotion.replaces_other_schema(candidate, CHAMPION, "1111111111111111")
    other = promotion.replaces_other_schema(candidate, CHAMPION, "2222222222222222")
    unrecorded = promotion.replaces_other_schema(candidate, CHAMPION, None)

    assert same is None
    assert other == {
        "version": candidate["version"],
        "metric": "rmse",
        "candidate_score": 10.0,
        "promote": True,
        "champion": CHAMPION,
        "reason": f"production model {CHAMPION} was trained on another dataset schema (2222222222222222, "
        "the candidate's is 1111111111111111) and cannot be scored on the candidate's data, so the "
        "candidate replaces it",
    }
    assert unrecorded["promote"] is True
    assert "another dataset schema (unrecorded, " in unrecorded["reason"]


def test_a_version_asked_for_by_hand_is_promoted_as_is(root, register_model):
    older, newer = register_model()["version"], register_model()["version"]
    registry.set_production(root, newer)

    decision = promotion.requested(root, older)

    assert decision == {"version": older, "promote": True, "champion": newer, "reason": "requested by hand"}


def test_a_backtest_asked_for_by_hand_is_refused_and_production_kept(root, register_model, tmp_path):
    production = register_model()["version"]
    registry.set_production(root, production)
    pointer = (tmp_path / "models" / "production.json").read_bytes()
    backtest = register_model(as_of=datetime(2026, 11, 20, 4, tzinfo=UTC))["version"]

    with pytest.raises(
        BadRequestError, match=rf"'{backtest}' is a backtest as of 2026-11-20T04:00:00\+00:00"
    ):
        promotion.requested(root, backtest)

    assert (tmp_path / "models" / "production.json").read_bytes() == pointer


@pytest.mark.parametrize(
    "version", ["../../../../etc", "/etc", "latest", CHAMPION + "\n", CHAMPION + "/../../x"]
)
def test_a_hostile_version_is_refused(root, version):
    with pytest.raises(ValueError, match="invalid model version"):
        promotion.requested(root, version)


def test_an_unknown_version_is_refused_before_anything_is_touched(root, tmp_path):
    with pytest.raises(BadRequestError, match=f"model version '{CHAMPION}' not found"):
        promotion.requested(root, CHAMPION)
    assert list(tmp_path.iterdir()) == []


def test_the_newest_of_several_queued_candidates_is_decided_on():
    events = [{"version": "20261122T030501123456Z-aaaaaaaa"}, {"version": "20261122T030502123456Z-bbbbbbbb"}]

    assert promotion.newest_candidate(events) == events[1]
    with pytest.raises(ValueError, match="no model_candidate event"):
        promotion.newest_candidate([])


OLDER, NEWER = "20261122T030501123456Z-aaaaaaaa", "20261122T030502123456Z-bbbbbbbb"


def test_a_run_that_keeps_its_candidate_out_leaves_out_every_candidate_it_took():
    older, newer = {"version": OLDER}, {"version": NEWER}
    decision = {"version": NEWER, "promote": False, "reason": "candidate accuracy 0.5 vs production 0.9"}

    assert promotion.not_promoted([older, newer], decision) == [
        (older, f"superseded by {NEWER}, a newer candidate"),
        (newer, "candidate accuracy 0.5 vs production 0.9"),
    ]


def test_a_run_that_promotes_its_candidate_leaves_out_only_the_older_ones():
    older, newer = {"version": OLDER}, {"version": NEWER}
    decision = {"version": NEWER, "promote": True, "reason": "no model in production yet"}

    assert promotion.not_promoted([older, newer], decision) == [
        (older, f"superseded by {NEWER}, a newer candidate")
    ]
    assert (
        promotion.not_promoted([], {"version": OLDER, "promote": True, "reason": "requested by hand"}) == []
    )


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


class FakeServer:
    """A model server that serves what the pointer names on reload, unless told to fail or lie."""

    def __init__(self, root: str, *, fail: int = 0, serves: str | None = None):
        self.root, self.fail, self.serves, self.calls = root, fail, serves, 0

    def reload(self) -> str:
        self.calls += 1
        if self.calls <= self.fail:
            raise ConnectionError("connection refused")
        return self.serves or registry.production_version(self.root)


def pointer_bytes(root: str) -> bytes | None:
    url = layout.production_pointer(root)
    return storage.read_bytes(url) if storage.exists(url) else None


@pytest.fixture
def in_production(root, register_model) -> tuple[str, str]:
    """A version in production and a newer registered candidate."""
    old, new = register_model()["version"], register_model()["version"]
    registry.set_production(root, old)
    return old, new


def test_a_confirmed_promotion_moves_the_pointer_and_returns_the_event(root, in_production):
    old, new = in_production
    server = FakeServer(root)

    event = promotion.promote_and_confirm(root, new, "better", server.reload)

    assert (event["version"], event["previous_version"], event["reason"]) == (new, old, "better")
    assert registry.production_version(root) == new
    assert server.calls == 1
    assert not storage.exists(layout.pending_promotion(root))


@pytest.mark.parametrize(
    ("server", "error"),
    [
        (lambda root: FakeServer(root, fail=99), ConnectionError),
        (lambda root: FakeServer(root, serves=CHAMPION), promotion.ServingError),
    ],
    ids=["server-down", "serves-another-version"],
)
def test_an_unconfirmed_promotion_restores_the_pointer_exactly_and_raises(root, in_production, server, error):
    _, new = in_production
    before = pointer_bytes(root)
    server = server(root)

    with pytest.raises(error):
        promotion.promote_and_confirm(root, new, "better", server.reload)

    assert pointer_bytes(root) == before
    assert server.calls == 2  # the confirmation, then the reload of the restored pointer
    assert not storage.exists(layout.pending_promotion(root))


def test_an_unconfirmed_first_promotion_leaves_no_pointer(root, register_model):
    version = register_model()["version"]

    with pytest.raises(ConnectionError):
        promotion.promote_and_confirm(root, version, "first", FakeServer(root, fail=99).reload)

    assert registry.production_version(root) is None
    assert not storage.exists(layout.pending_promotion(root))


def test_a_tampered_candidate_is_not_promoted(root, in_production, tamper):
    _, new = in_production
    before = pointer_bytes(root)
    tamper(layout.model_version(root, new, "model.joblib"))

    with pytest.raises(IntegrityError):
        promotion.promote_and_confirm(root, new, "better", FakeServer(root).reload)

    assert pointer_bytes(root) == before


def test_a_retry_after_a_failed_attempt_promotes(root, in_production):
    old, new = in_production
    server = FakeServer(root, fail=2)  # down for the first attempt's confirmation and its best-effort reload
    with pytest.raises(ConnectionError):
        promotion.promote_and_confirm(root, new, "better", server.reload)

    event = promotion.promote_and_confirm(root, new, "better", server.reload)

    assert (event["version"], event["previous_version"]) == (new, old)
    assert registry.production_version(root) == new


def leave_a_killed_attempt(root: str, models: Path, version: str) -> None:
    """Leave what an attempt SIGKILLed while waiting for the reload leaves: its journal and the moved
    pointer. A kill runs no cleanup, so copy both at that moment and put them back afterwards."""
    left = {}

    def reload() -> str:
        if not left:  # the confirmation; the reload after the cleanup would not happen either
            left.update({path.name: path.read_bytes() for path in models.glob("*.json")})
        raise ConnectionError("killed")

    with pytest.raises(ConnectionError):
        promotion.promote_and_confirm(root, version, "killed", reload)
    for name, data in left.items():
        (models / name).write_bytes(data)


@pytest.mark.parametrize("retry_confirms", [True, False], ids=["retry-confirms", "retry-fails-too"])
def test_a_retry_after_a_killed_attempt_restores_what_was_really_served(
    root, tmp_path, in_production, retry_confirms
):
    old, new = in_production
    before = pointer_bytes(root)
    leave_a_killed_attempt(root, tmp_path / "models", new)
    assert registry.production_version(root) == new  # unconfirmed, with the journal beside it

    if retry_confirms:
        event = promotion.promote_and_confirm(root, new, "better", FakeServer(root).reload)
        assert (event["version"], event["previous_version"]) == (new, old)
    else:
        with pytest.raises(ConnectionError):
            promotion.promote_and_confirm(root, new, "better", FakeServer(root, fail=99).reload)
        assert pointer_bytes(root) == before  # not the pointer the killed attempt left
    assert not storage.exists(layout.pending_promotion(root))
