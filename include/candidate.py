"""Train a candidate on the chosen feature batches and stage it for the quality bar."""

from __future__ import annotations

from include import features, registry
from include.config import load_schema
from include.training import TrainingConfig, train_and_evaluate


def train_candidate(root: str, config: TrainingConfig) -> dict:
    """Train ``config``'s model on its feature batches, score it, stage it (dropping any older staged
    candidate a killed run left); return the staged metadata (its future version, metrics, the metric
    and threshold it is judged by and whether it passed, the batches it saw, the schema's
    fingerprint)."""
    schema = load_schema()
    batch_ids = features.training_batches(root, config.batch_ids, config.window, schema)
    frame, batch_ids, feature_hash = features.load_features(root, batch_ids)
    result = train_and_evaluate(frame, schema, config.model_type, config.hyperparameters)
    staged = registry.stage_candidate(
        root,
        result,
        threshold=config.threshold,
        metric=config.metric,
        batch_ids=batch_ids,
        feature_hash=feature_hash,
    )
    registry.discard_older_staged(root, staged["version"])
    return staged
