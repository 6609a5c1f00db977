"""Champion/challenger: whether a model candidate replaces the production model.

The candidate was scored on its own held-out split when it was trained. The production model (the
champion) is scored on that same split, so both numbers come from the same rows, and the candidate is
promoted when ``candidate >= champion - margin`` on the metric the candidate was gated on. A tie
promotes the candidate: it was trained on newer data.
"""

from __future__ import annotations

from include import registry
from include.config import DatasetSchema
from include.layout import check_id
from include.training import evaluate


def decide(candidate: dict, champion: str | None, champion_scores: dict | None, margin: float) -> dict:
    """The decision on ``candidate`` (its registry metadata) against ``champion``'s scores on the
    candidate's held-out data (``None`` before the first promotion)."""
    metric = candidate["metric"]
    score = candidate["metrics"][metric]
    decision = {"version": candidate["version"], "metric": metric, "candidate_score": score}
    if champion is None:
        return decision | {"promote": True, "champion": None, "reason": "no model in production yet"}
    champion_score = champion_scores[metric]
    return decision | {
        "promote": score >= champion_score - margin,
        "champion": champion,
        "champion_score": champion_score,
        "reason": f"candidate {metric} {score} vs production {champion_score} "
        f"on the candidate's held-out data (margin {margin})",
    }


def requested(version: str, champion: str | None) -> dict:
    """The decision for a version a person asked for by hand: promoted as is (a rollback if older)."""
    return {
        "version": check_id(version, "model version"),
        "promote": True,
        "champion": champion,
        "reason": "requested by hand",
    }


def compare_with_production(root: str, schema: DatasetSchema, candidate: dict, margin: float) -> dict:
    """Score the production model on ``candidate``'s held-out data and :func:`decide`."""
    champion = registry.production_version(root)
    scores = None
    if champion is not None:
        scores = evaluate(
            registry.load_model(root, champion), registry.load_holdout(root, candidate["version"]), schema
        )
    return decide(candidate, champion, scores, margin)


def newest_candidate(events: list[dict]) -> dict:
    """The newest candidate among the ``model_candidate`` events of a run (several may queue up)."""
    if not events:
        raise ValueError("no model_candidate event triggered this run, and no version was given")
    return max(events, key=lambda extra: extra["version"])
