"""Champion/challenger: whether a model candidate replaces the production model, and the promotion.

The candidate was scored on its own held-out split when it was trained. The production model (the
champion) is scored on that same split, so both numbers come from the same rows, and the candidate is
promoted when it is no worse than the champion by more than the margin on the metric the candidate was
gated on, in that metric's direction (``candidate >= champion - margin`` for accuracy,
``candidate <= champion + margin`` for RMSE). A tie promotes the candidate: it was trained on newer
data. A champion trained on another dataset schema cannot read the candidate's data: it is replaced
rather than compared, and the reason says so.

A promotion is confirmed by the serving side or undone (:func:`promote_and_confirm`), so the pointer,
the ``production_model`` event and the model server name the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress

from include import layout, registry, storage
from include.config import DatasetSchema
from include.errors import BadRequestError
from include.layout import check_id
from include.metrics import metric


class ServingError(RuntimeError):
    """The model server did not confirm that it serves the version just promoted."""


def decide(candidate: dict, champion: str | None, champion_scores: dict | None, margin: float) -> dict:
    """The decision on ``candidate`` (its registry metadata) against ``champion``'s scores on the
    candidate's held-out data (``None`` before the first promotion)."""
    chosen = metric(candidate["metric"])
    score = candidate["metrics"][chosen.name]
    decision = {"version": candidate["version"], "metric": chosen.name, "candidate_score": score}
    if champion is None:
        return decision | {"promote": True, "champion": None, "reason": "no model in production yet"}
    champion_score = champion_scores[chosen.name]
    better = "higher" if chosen.higher_is_better else "lower"
    return decision | {
        "promote": chosen.at_least_as_good(score, champion_score, margin),
        "champion": champion,
        "champion_score": champion_score,
        "reason": f"candidate {chosen.title} {score} vs production {champion_score} "
        f"on the candidate's held-out data ({better} is better, margin {margin})",
    }


def replaces_other_schema(candidate: dict, champion: str, champion_fingerprint: str | None) -> dict | None:
    """The decision when the champion was trained on another dataset schema than ``candidate``: it
    cannot be scored on the candidate's data, so the candidate replaces it. ``None`` when they share
    the schema and are to be compared."""
    if champion_fingerprint == candidate["schema_fingerprint"]:
        return None
    return {
        "version": candidate["version"],
        "metric": candidate["metric"],
        "candidate_score": candidate["metrics"][candidate["metric"]],
        "promote": True,
        "champion": champion,
        "reason": f"production model {champion} was trained on another dataset schema "
        f"({champion_fingerprint or 'unrecorded'}, the candidate's is {candidate['schema_fingerprint']}) "
        "and cannot be scored on the candidate's data, so the candidate replaces it",
    }


def requested(root: str, version: str) -> dict:
    """The decision for a version a person asked for by hand: promoted as is (a rollback if older).
    A malformed or unknown version, or a backtest, is refused here, before anything is touched."""
    try:
        metadata = registry.version_metadata(root, check_id(version, "model version"))
    except FileNotFoundError as exc:  # asked for by hand: no retry makes it exist
        raise BadRequestError(f"no model version {version!r} to promote: {exc}") from exc
    if metadata.get("backtest"):
        raise BadRequestError(
            f"model version {version!r} is a backtest as of {metadata.get('as_of')}: it shows the quality "
            "a training then would have had and is never promoted; give a version train_validate "
            "registered as a candidate"
        )
    return {
        "version": version,
        "promote": True,
        "champion": registry.production_version(root),
        "reason": "requested by hand",
    }


def compare_with_production(root: str, schema: DatasetSchema, candidate: dict, margin: float) -> dict:
    """Score the production model on ``candidate``'s held-out data and :func:`decide`."""
    champion = registry.production_version(root)
    scores = None
    if champion is not None:
        fingerprint = registry.version_metadata(root, champion).get("schema_fingerprint")
        if (replaced := replaces_other_schema(candidate, champion, fingerprint)) is not None:
            return replaced
        from include.training import evaluate  # scikit-learn: only when there is a champion to score

        scores = evaluate(
            registry.load_model(root, champion), registry.load_holdout(root, candidate["version"]), schema
        )
    return decide(candidate, champion, scores, margin)


def newest_candidate(events: list[dict]) -> dict:
    """The newest candidate among the ``model_candidate`` events of a run (several may queue up)."""
    if not events:
        raise BadRequestError("no model_candidate event triggered this run, and no version was given")
    return max(events, key=lambda extra: extra["version"])


def not_promoted(candidates: list[dict], decision: dict) -> list[tuple[dict, str]]:
    """The candidates of a deploy run (their ``model_candidate`` events) that ``decision`` leaves out
    of production, each with why: the one decided on unless it is promoted, and every other, which a
    newer candidate of the same run superseded."""
    left_out = []
    for candidate in candidates:
        if candidate["version"] != decision["version"]:
            left_out.append((candidate, f"superseded by {decision['version']}, a newer candidate"))
        elif not decision["promote"]:
            left_out.append((candidate, decision["reason"]))
    return left_out


def promote_and_confirm(root: str, version: str, reason: str, reload: Callable[[], str]) -> dict:
    """Point production at ``version``, have the serving side load it, and return the
    ``production_model`` event; or, when anything fails, put the previous pointer back and raise.

    ``reload`` asks the model server to load what the pointer names and returns the version it then
    serves. Between moving the pointer and that answer (the reload's duration) the pointer names a
    model the server has not confirmed; if the answer is an error or another version, the pointer is
    restored byte for byte and the server is asked to reload it (best effort).

    Safe to retry, even after a process killed half-way: the pointer to restore is written to
    ``models/promotion.json`` before the pointer moves and removed once the promotion is confirmed or
    undone. An attempt that finds it first puts that pointer back (undoing the unconfirmed attempt that
    left it), so ``previous_version`` and any later rollback name a model that was really served.
    """
    journal = layout.pending_promotion(root)
    if storage.exists(journal):
        restore = storage.read_json(journal)["restore"]
        _write_pointer_text(root, restore)
    else:
        restore = _pointer_text(root)
        storage.write_json_atomic(journal, {"version": version, "restore": restore})
    try:
        event = registry.production_event(root, version, reason)
        served = reload()
        if served != version:
            raise ServingError(f"the model server serves {served!r} after the reload, not {version!r}")
    except BaseException:
        _write_pointer_text(root, restore)
        with suppress(Exception):
            reload()
        storage.remove(journal)
        raise
    storage.remove(journal)
    return event


def _pointer_text(root: str) -> str | None:
    url = layout.production_pointer(root)
    return storage.read_bytes(url).decode() if storage.exists(url) else None


def _write_pointer_text(root: str, text: str | None) -> None:
    url = layout.production_pointer(root)
    if text is None:
        storage.remove(url)
    else:
        storage.write_bytes_atomic(url, text.encode())
