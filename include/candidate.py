"""Train a candidate on the chosen feature batches and stage it for the quality bar."""

from __future__ import annotations

from datetime import datetime

from include import backtest, features, registry
from include.config import DatasetSchema, load_schema
from include.errors import NothingToDo, PermanentError
from include.training import TrainingConfig, train_and_evaluate


def train_candidate(root: str, config: TrainingConfig, as_of: datetime | None = None) -> dict:
    """Train ``config``'s model on its feature batches, score it, stage it (dropping staged candidates
    a killed run left long ago); return the staged metadata (its future version, metrics, the metric
    and threshold it is judged by and whether it passed, the batches it saw, the schema's
    fingerprint). With ``as_of`` it is a backtest: trained on the batches landed by then
    (``include.backtest``) and marked so; ``NothingToDo`` when none had."""
    schema = load_schema()
    batch_ids = features.training_batches(root, config.batch_ids, config.window, schema, as_of=as_of)
    frame, batch_ids, feature_hash = features.load_features(root, batch_ids)
    result = train_and_evaluate(frame, schema, config.model_type, config.hyperparameters)
    staged = registry.stage_candidate(
        root,
        result,
        threshold=config.threshold,
        metric=config.metric,
        batch_ids=batch_ids,
        feature_hash=feature_hash,
        as_of=as_of,
    )
    registry.discard_older_staged(root, staged["version"])
    if as_of is None:
        backtest.record_training(root, batch_ids, staged["version"])
    return staged


def check_timetable_work(root: str, schema: DatasetSchema, tick: datetime) -> str:
    """The newest feature batch of ``schema`` landed by ``tick`` (the run's logical date) when it is
    newer than every batch trained on so far (a timetable run then trains); ``NothingToDo`` saying why
    otherwise. Batches landed after the tick belong to the runs their ``features`` events start: the
    run the scheduler creates for the latest tick when the DAG first appears never races them."""
    try:
        [newest] = features.training_batches(root, [], 1, schema, as_of=tick)
    except (NothingToDo, PermanentError):
        newest = None
    done = backtest.trained_through(root)
    if not backtest.has_new_features(newest, done):
        raise NothingToDo(
            f"no feature batch of schema {schema.name!r} landed by {tick.isoformat()} is newer than {done} "
            "(the newest trained on)"
            if newest
            else f"no feature batch of schema {schema.name!r} landed by {tick.isoformat()}"
        )
    return newest
