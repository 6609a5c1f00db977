"""The batch publisher: what each kind of batch holds, and that a reader never sees half a file."""

from __future__ import annotations

import io
from collections import Counter

import pandas as pd
import pytest

from scripts.publish import FILE_NAME, KINDS, iris_frame, make_batch, publish

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
FEATURES = COLUMNS[:4]
SPECIES = {"setosa", "versicolor", "virginica"}


def test_iris_frame_has_the_pipeline_columns_and_no_duplicates():
    frame = iris_frame()

    assert list(frame.columns) == COLUMNS
    assert len(frame) == 149  # sklearn's Iris repeats one flower
    assert not frame.duplicated().any()
    assert set(frame["species"]) == SPECIES


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_the_iris_columns_and_the_rows_asked_for(kind):
    batch = make_batch(kind, rows=40, seed=7)

    assert list(batch.columns) == COLUMNS
    assert len(batch) == 40
    assert batch.index.equals(pd.RangeIndex(40))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_bytes_other_seed_other_content(kind):
    def csv(seed: int) -> bytes:
        return make_batch(kind, rows=120, seed=seed).to_csv(index=False).encode()

    assert csv(1) == csv(1)
    assert csv(1) != csv(2)


def test_good_batch_is_new_measurements_of_distinct_iris_rows():
    batch = make_batch("good", rows=120, seed=3)

    assert not batch.duplicated().any()
    assert batch.notna().all().all()
    assert set(batch["species"]) <= SPECIES
    assert len(batch.merge(iris_frame(), how="inner")) < 10, "rows should carry measurement noise"
    measured = batch.columns.drop("species")
    assert (batch[measured] > 0).all().all()
    nearest = [
        (iris_frame()[measured] - row).abs().max(axis=1).min() for _, row in batch[measured].iterrows()
    ]
    assert max(nearest) < 0.5, "every row should stay close to a real Iris flower"


def test_rows_beyond_the_data_set_give_all_of_it():
    assert len(make_batch("good", rows=1000, seed=3)) == 149


def test_bad_batch_is_spoiled_three_ways():
    batch = make_batch("bad", rows=120, seed=3)

    petal_length = pd.to_numeric(batch["petal_length"], errors="coerce")
    not_numeric = batch.loc[petal_length.isna(), "petal_length"]
    assert list(not_numeric) == ["abc"]
    assert (batch["sepal_width"] < 0).sum() == 1
    assert set(batch["species"]) - SPECIES == {"unicorn"}
    assert (batch["species"] == "unicorn").sum() == 1
    assert len(batch) == 120


@pytest.mark.parametrize("rows", [0, 1, 2])
def test_bad_batch_too_small_to_hold_its_spoils_is_refused(rows):
    """``.loc`` assignments past the end would append rows, so asking for 2 rows would give 3."""
    with pytest.raises(ValueError, match="rows"):
        make_batch("bad", rows=rows, seed=3)


def test_shuffled_labels_keep_the_features_and_the_label_counts():
    good = make_batch("good", rows=120, seed=5)
    shuffled = make_batch("shuffled-labels", rows=120, seed=5)

    pd.testing.assert_frame_equal(shuffled[FEATURES], good[FEATURES])
    assert Counter(shuffled["species"]) == Counter(good["species"])
    assert (shuffled["species"] != good["species"]).mean() > 0.3


def test_drifted_petals_move_both_petal_measurements_only():
    good = make_batch("good", rows=120, seed=5)
    drifted = make_batch("drifted-petals", rows=120, seed=5)

    moved = ["petal_length", "petal_width"]
    pd.testing.assert_frame_equal(drifted[moved] - 1.5, good[moved], atol=1e-9)
    pd.testing.assert_frame_equal(drifted.drop(columns=moved), good.drop(columns=moved))


def test_unknown_kind_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown batch kind 'ugly'; expected one of \('good', 'bad'"):
        make_batch("ugly", rows=10, seed=1)


def test_publish_writes_the_batch_as_csv(tmp_path):
    path = publish(tmp_path / "source", kind="good", rows=30, seed=11)

    assert path == tmp_path / "source" / FILE_NAME
    assert path.read_bytes() == make_batch("good", 30, 11).to_csv(index=False).encode()
    pd.testing.assert_frame_equal(pd.read_csv(path), make_batch("good", 30, 11))


def test_publish_without_a_seed_changes_the_content(tmp_path):
    first = publish(tmp_path, rows=50).read_bytes()
    second = publish(tmp_path, rows=50).read_bytes()

    assert first != second


def test_publish_replaces_the_file_atomically(tmp_path):
    path = publish(tmp_path, rows=120, seed=1)
    old = path.read_bytes()

    with path.open("rb") as reader:
        reader.read(10)  # a crawler half way through the old batch
        new_path = publish(tmp_path, rows=120, seed=2)
        rest = reader.read()

    assert old[:10] + rest == old, "an open reader must keep reading the whole old batch"
    assert new_path == path
    assert path.read_bytes() != old
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]


def test_failed_publish_leaves_the_previous_batch(tmp_path):
    path = publish(tmp_path, rows=20, seed=1)
    before = path.read_bytes()

    with pytest.raises(ValueError, match="unknown batch kind"):
        publish(tmp_path, kind="ugly", seed=2)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]


def test_bad_batch_as_the_pipeline_reads_it():
    batch = make_batch("bad", rows=20, seed=4)

    read_back = pd.read_csv(io.StringIO(batch.to_csv(index=False)))

    assert not pd.api.types.is_numeric_dtype(read_back["petal_length"]), "the dtype check must see text"
    assert (read_back["sepal_width"] < 0).sum() == 1
    assert "unicorn" in set(read_back["species"])


def test_drop_writes_a_new_file_each_time_that_a_folder_source_offers(tmp_path):
    from include.sources import list_folder

    first = publish(tmp_path, rows=10, seed=1, drop=True)
    second = publish(tmp_path, rows=10, seed=1, drop=True)

    assert first != second
    assert first.read_bytes() == second.read_bytes()
    assert first.name.startswith("iris-")
    assert first.suffix == ".csv"
    assert sorted(item.url for item in list_folder(tmp_path.as_uri())) == sorted(
        [first.as_uri(), second.as_uri()]
    )
