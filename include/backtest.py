"""Runs of ``train_validate`` by kind: what a backtest trains on, and whether a timetable run has work.

``train_validate`` runs when ``features`` are published (and by hand) as it always has; its daily
timetable adds two kinds of run:

- a **timetable run** trains only when a feature batch of the current schema landed by the run's tick
  (its logical date) is newer than the newest batch any earlier training used
  (``models/last_training.json``); otherwise it does nothing. Batches landed after the tick are left
  to the runs their own ``features`` events start.
- a **backfill run** is a *backtest as of its logical date* (the timetable has no data interval: the
  logical date is the moment the run stands for, 04:00 UTC of its day). It trains on the feature
  batches whose batch had landed at or before that moment (a batch id starts with its landing time,
  the ``landed_at`` of its manifest), the newest ``training_window_batches`` of them of the current
  schema, as a run at that moment would have; the result is registered marked ``backtest`` with its
  ``as_of`` and is never promoted.

Landing time, not the feature file's write time, decides: it is fixed when the batch lands, whereas
a re-run of ``etl`` rewrites the feature file. A batch that landed just before the cut counts even if
its features were written a moment after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from include import layout, storage

BACKFILL = "backfill"  # Airflow's DagRunType values
SCHEDULED = "scheduled"


def run_kind(run_type: object) -> str:
    """``"backtest"`` for a backfill run, ``"timetable"`` for a scheduled one, else ``"reaction"`` (an
    asset-triggered or manual run). ``run_type`` is a ``DagRunType`` or its value."""
    value = str(getattr(run_type, "value", run_type))
    return {BACKFILL: "backtest", SCHEDULED: "timetable"}.get(value, "reaction")


def landed_by(batch_ids: Iterable[str], cut: datetime) -> list[str]:
    """The ids among ``batch_ids`` of the batches landed at or before ``cut`` (an aware datetime),
    oldest first."""
    if cut.tzinfo is None:
        raise ValueError(f"the cut {cut} has no time zone")
    return sorted(batch_id for batch_id in set(batch_ids) if layout.id_time(batch_id) <= cut)


def has_new_features(newest: str | None, trained_through: str | None) -> bool:
    """Whether a timetable run has work: a feature batch (``newest``, of the current schema; ``None``:
    none) newer than the newest batch any training has used (``trained_through``; ``None``: none)."""
    return newest is not None and (trained_through is None or newest > trained_through)


def trained_through(root: str) -> str | None:
    """The newest feature batch a (non-backtest) training has used, or ``None`` before the first."""
    url = layout.last_training(root)
    return storage.read_json(url)["newest_batch_id"] if storage.exists(url) else None


def record_training(root: str, batch_ids: Iterable[str], version: str) -> None:
    """Note that the candidate ``version`` was trained on ``batch_ids``: the record only moves forward
    (a manual run on older batches leaves it), so it names the newest batch ever trained on."""
    newest = max(batch_ids)
    earlier = trained_through(root)
    if earlier is not None and earlier >= newest:
        return
    storage.write_json_atomic(
        layout.last_training(root),
        {"newest_batch_id": newest, "version": version, "recorded_at": datetime.now(UTC).isoformat()},
    )
