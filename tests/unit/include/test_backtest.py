"""Runs of train_validate by kind: a backtest's batches as of its logical date, a timetable run's work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include import backtest, layout, metrics, registry, storage
from include.candidate import check_timetable_work, train_candidate
from include.errors import BadRequestError, NothingToDo
from include.features import to_features, training_batches, write_features
from include.training import TrainingConfig

DAY1 = "20261120T101500000000Z-aaaaaaaa"  # landed 2026-11-20 10:15 UTC
DAY2 = "20261121T090000000000Z-bbbbbbbb"
DAY2_LATE = "20261121T230000000000Z-cccccccc"
DAY3 = "20261122T040000000000Z-dddddddd"  # landed exactly at the 04:00 cut of 2026-11-22


def at(day: int, hour: int = 4) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("run_type", "kind"),
    [
        ("backfill", "backtest"),
        ("scheduled", "timetable"),
        ("asset_triggered", "reaction"),
        ("manual", "reaction"),
    ],
)
def test_the_run_type_decides_the_kind_of_run(run_type, kind):
    assert backtest.run_kind(run_type) == kind


def test_a_dag_run_type_enum_is_read_by_its_value():
    from airflow.utils.types import DagRunType

    assert backtest.run_kind(DagRunType.BACKFILL_JOB) == "backtest"
    assert backtest.run_kind(DagRunType.SCHEDULED) == "timetable"


def test_landed_by_takes_the_batches_landed_at_or_before_the_cut():
    ids = [DAY3, DAY1, DAY2_LATE, DAY2]

    assert backtest.landed_by(ids, at(20)) == []
    assert backtest.landed_by(ids, at(21)) == [DAY1]
    assert backtest.landed_by(ids, at(22)) == [DAY1, DAY2, DAY2_LATE, DAY3]  # at the cut: in
    assert backtest.landed_by(ids, at(22) - timedelta(microseconds=1)) == [DAY1, DAY2, DAY2_LATE]


def test_a_cut_without_a_time_zone_is_refused():
    with pytest.raises(ValueError, match="has no time zone"):
        backtest.landed_by([DAY1], datetime(2026, 11, 22))


@pytest.mark.parametrize(
    ("newest", "trained_through", "work"),
    [(None, None, False), (None, DAY1, False), (DAY1, None, True), (DAY1, DAY1, False), (DAY2, DAY1, True)],
    ids=["no-features", "no-features-trained-before", "never-trained", "nothing-new", "a-newer-batch"],
)
def test_a_timetable_run_has_work_only_with_a_batch_newer_than_the_last_training(
    newest, trained_through, work
):
    assert backtest.has_new_features(newest, trained_through) is work


def test_the_training_record_only_moves_forward(root):
    assert backtest.trained_through(root) is None

    backtest.record_training(root, [DAY1, DAY2], "20261121T090100000000Z-11111111")
    backtest.record_training(root, [DAY1], "20261121T090200000000Z-22222222")  # a manual run on older data

    assert backtest.trained_through(root) == DAY2
    assert storage.read_json(layout.last_training(root))["version"] == "20261121T090100000000Z-11111111"


@pytest.fixture
def landed(root, iris, schema) -> list[str]:
    ids = [DAY1, DAY2, DAY2_LATE, DAY3]
    for batch_id in ids:
        write_features(root, batch_id, [to_features(iris, schema)], schema)
    return ids


def test_a_backtest_window_is_the_newest_batches_landed_by_its_cut(root, schema, landed):
    assert training_batches(root, [], 2, schema, as_of=at(22, 3)) == [DAY2, DAY2_LATE]
    assert training_batches(root, [], 10, schema, as_of=at(21)) == [DAY1]
    assert training_batches(root, [], 1, schema, as_of=at(22)) == [DAY3]
    with pytest.raises(
        NothingToDo, match=r"no feature batch of schema 'iris' .* had landed by 2026-11-20T04:00:00"
    ):
        training_batches(root, [], 1, schema, as_of=at(20))


def test_a_backtest_refuses_chosen_batches(root, schema, landed):
    with pytest.raises(BadRequestError, match="batch_ids cannot be given to a backtest"):
        training_batches(root, [DAY1], 1, schema, as_of=at(22))


def config(window: int = 2, batch_ids: list[str] | None = None) -> TrainingConfig:
    return TrainingConfig(
        model_type="linear",
        hyperparameters={"C": 2.0},
        metric=metrics.metric("accuracy"),
        threshold=0.999,  # a bar nothing passes: a backtest is staged all the same
        batch_ids=batch_ids or [],
        window=window,
    )


def test_a_backtest_trains_as_of_its_cut_and_leaves_the_training_record_alone(root, landed):
    staged = train_candidate(root, config(), as_of=at(22, 3))

    assert staged["batch_ids"] == [DAY2, DAY2_LATE]
    assert (staged["backtest"], staged["as_of"]) == (True, "2026-11-22T03:00:00+00:00")
    assert "below" in staged["verdict"]
    assert backtest.trained_through(root) is None
    metadata = registry.register(root, staged["version"])
    assert (metadata["backtest"], metadata["batch_ids"]) == (True, [DAY2, DAY2_LATE])


def test_a_timetable_run_trains_once_per_new_batch_landed_by_its_tick(root, schema, iris, landed):
    assert check_timetable_work(root, schema, at(23)) == DAY3  # never trained

    staged = train_candidate(root, config())

    assert (staged["backtest"], staged["batch_ids"]) == (False, [DAY2_LATE, DAY3])
    assert backtest.trained_through(root) == DAY3
    with pytest.raises(
        NothingToDo, match=f"no feature batch of schema 'iris' landed by .* is newer than {DAY3}"
    ):
        check_timetable_work(root, schema, at(23))
    newer = "20261123T010000000000Z-eeeeeeee"
    write_features(root, newer, [to_features(iris, schema)], schema)
    assert check_timetable_work(root, schema, at(23)) == newer


def test_a_timetable_run_leaves_batches_landed_after_its_tick_to_their_own_runs(root, schema, landed):
    # The stack's first run stands for a tick before the batches a test (or a user) then publishes.
    assert check_timetable_work(root, schema, at(22)) == DAY3  # landed exactly at the tick: counts
    with pytest.raises(NothingToDo, match="no feature batch of schema 'iris' landed by 2026-11-20T04:00"):
        check_timetable_work(root, schema, at(20))


def test_a_timetable_run_without_features_has_nothing_to_do(root, schema):
    with pytest.raises(NothingToDo, match="no feature batch of schema 'iris' landed by"):
        check_timetable_work(root, schema, at(23))
