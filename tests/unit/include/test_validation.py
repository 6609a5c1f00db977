from __future__ import annotations

import pandas as pd
import pytest

from include import layout, storage, validation
from include.batches import CheckFailure, list_raw_batches, quarantine_batch, raw_manifest
from include.chunks import Chunking
from include.config import DatasetSchema, FeatureSpec
from include.validation import validate_and_quarantine, validate_chunks, validate_raw_batch

BATCH = "20261121T161500000000Z-1a2b3c4d"
SEVEN_ROWS = Chunking(cells=5 * 7)  # the Iris schema's 5 columns, 7 rows a chunk: 22 chunks of 149 rows


@pytest.fixture(params=[Chunking(), SEVEN_ROWS], ids=["one-chunk", "7-row-chunks"])
def chunking(request) -> Chunking:
    """Every rule test runs on the whole batch as one chunk and across many chunk boundaries: the
    failures (counts, examples, row numbers) must be the same."""
    return request.param


@pytest.fixture
def failures_of(root, land, schema, chunking):
    def failures_of(df: pd.DataFrame) -> list[CheckFailure]:
        land(BATCH, df)
        return validate_raw_batch(root, BATCH, schema, chunking)

    return failures_of


def frame_failures(df: pd.DataFrame, schema: DatasetSchema, rows_per_chunk: int = 0) -> list[CheckFailure]:
    """Validate ``df`` as chunks of ``rows_per_chunk`` rows (0: one chunk)."""
    step = rows_per_chunk or max(1, len(df))
    return validate_chunks(
        list(df.columns), len(df), lambda: (df.iloc[i : i + step] for i in range(0, len(df), step)), schema
    )


def test_valid_batch_passes(failures_of, iris):
    assert failures_of(iris) == []


def test_empty(failures_of, iris):
    failures = failures_of(iris.iloc[0:0])

    assert failures == [CheckFailure("empty", None, "batch has no rows")]


def test_required_columns(failures_of, iris):
    failures = failures_of(iris.rename(columns={"petal_width": "petal_widht"}))

    assert [(f.check, f.column) for f in failures] == [("required_columns", "petal_width")]
    assert "'petal_width'" in failures[0].message


def test_dtype(failures_of, iris):
    iris["sepal_length"] = iris["sepal_length"].astype(object)
    iris.loc[[4, 9], "sepal_length"] = "n/a-cm"

    failures = failures_of(iris)

    assert [(f.check, f.column) for f in failures] == [("dtype", "sepal_length")]
    assert "2 row(s)" in failures[0].message
    assert "'n/a-cm'" in failures[0].message


def test_nulls(failures_of, iris):
    iris.loc[[3, 7, 11], "petal_length"] = None

    failures = failures_of(iris)

    assert [(f.check, f.column) for f in failures] == [("nulls", "petal_length")]
    assert "3 null value(s)" in failures[0].message
    assert "row 3" in failures[0].message


def test_range(failures_of, iris):
    iris.loc[5, "sepal_width"] = 99.5

    failures = failures_of(iris)

    assert [(f.check, f.column) for f in failures] == [("range", "sepal_width")]
    assert "1 value(s) outside [0.0, 15.0]" in failures[0].message
    assert "99.5" in failures[0].message


def test_labels(failures_of, iris):
    iris.loc[[0, 1], "species"] = "daisy"

    failures = failures_of(iris)

    assert [(f.check, f.column) for f in failures] == [("labels", "species")]
    assert "2 value(s)" in failures[0].message
    assert "'daisy'" in failures[0].message


def test_duplicates(failures_of, iris):
    failures = failures_of(pd.concat([iris, iris.iloc[[8]]], ignore_index=True))

    assert [(f.check, f.column) for f in failures] == [("duplicates", None)]
    assert "1 fully duplicated row(s)" in failures[0].message
    assert f"row {len(iris)}" in failures[0].message


@pytest.mark.parametrize(
    ("values", "dtype", "valid"),
    [
        ([1, 2, 3], "int", True),
        ([1.0, 2.0, 3.0], "int", True),
        ([1.0, 2.5, 3.0], "int", False),
        ([1, 2, 3], "float", True),
        (["a", "b", "c"], "str", True),
        ([1, 2, 3], "str", False),
    ],
)
def test_dtype_by_declared_type(values, dtype, valid):
    schema = DatasetSchema("toy", (FeatureSpec("x", dtype),), "y", ("0", "1"))
    df = pd.DataFrame({"x": values, "y": [0, 1, 1]})

    assert (frame_failures(df, schema) == []) is valid


def test_numeric_label_is_judged_after_str_conversion():
    schema = DatasetSchema("toy", (FeatureSpec("x"),), "y", ("0", "1"))

    assert frame_failures(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), schema) == []
    failures = frame_failures(pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]}), schema)
    assert [(f.check, f.column) for f in failures] == [("dtype", "y")]


def test_quarantine_moves_the_batch_and_records_why(root, land, iris, schema):
    iris.loc[0, "species"] = "daisy"
    land(BATCH, iris)
    manifest = raw_manifest(root, BATCH)
    failures = validate_raw_batch(root, BATCH, schema)

    reason_url = quarantine_batch(root, BATCH, failures)

    assert list_raw_batches(root) == []
    assert storage.list_names(layout.join(root, "raw", "batches")) == []
    assert storage.list_names(layout.join(root, "quarantine")) == [
        f"{BATCH}.json",
        f"{BATCH}.parquet",
        f"{BATCH}.reason.json",
    ]
    assert storage.read_json(layout.join(root, "quarantine", f"{BATCH}.json")) == manifest
    reason = storage.read_json(reason_url)
    assert reason["batch_id"] == BATCH
    assert reason["failed_checks"] == [
        {"check": "labels", "column": "species", "message": failures[0].message}
    ]
    assert reason["quarantined_at"].startswith("20")


def test_quarantine_of_an_unknown_batch_fails(root):
    with pytest.raises(FileNotFoundError, match=BATCH):
        quarantine_batch(root, BATCH, [])


def test_list_raw_batches_needs_data_and_manifest(root, land, iris):
    land("20261121T161600000000Z-bbbbbbbb", iris)
    land("20261121T161500000000Z-aaaaaaaa", iris)
    storage.write_parquet_atomic(
        iris, layout.join(root, "raw", "batches", "20261121T161700000000Z-no-manifest.parquet")
    )

    assert list_raw_batches(root) == ["20261121T161500000000Z-aaaaaaaa", "20261121T161600000000Z-bbbbbbbb"]


def test_unknown_batch_is_a_clear_error(root, schema):
    with pytest.raises(FileNotFoundError, match=BATCH):
        validate_raw_batch(root, BATCH, schema)
    with pytest.raises(FileNotFoundError, match=BATCH):
        raw_manifest(root, BATCH)


@pytest.mark.parametrize("rows_per_chunk", [1, 2, 3, 0])
def test_numbers_stored_as_text_count_as_the_whole_column_not_chunk_by_chunk(rows_per_chunk):
    """The dtype rule marks every value of a text column declared numeric only when no value anywhere
    fails to parse; a chunk of parseable text before a bad value must not count."""
    schema = DatasetSchema("toy", (FeatureSpec("x"),), "y", ("0", "1"))
    labels = ["0", "1", "0", "1"]

    one_bad = frame_failures(
        pd.DataFrame({"x": ["1", "2", "oops", "4"], "y": labels}), schema, rows_per_chunk
    )
    all_text = frame_failures(pd.DataFrame({"x": ["1", "2", "3", "4"], "y": labels}), schema, rows_per_chunk)

    assert [f.message for f in one_bad] == [
        "column 'x' has dtype str, expected float: 1 row(s) do not fit, e.g. 'oops' (row 2)"
    ]
    assert [f.message for f in all_text] == [
        "column 'x' has dtype str, expected float: 4 row(s) do not fit, e.g. '1' (row 0)"
    ]


def test_duplicates_across_chunks_and_parts(root, land, iris, schema, monkeypatch):
    """Rows repeated far apart (other chunks, other parts of the hash spill) are all found, -0.0 equals
    0.0 as in pandas, and the message names the first repeat and shows it."""
    monkeypatch.setattr(validation, "PART_ROWS", 10)  # 16 parts for 154 rows
    iris.loc[20, "petal_width"] = 0.0
    twin = iris.iloc[[20]].assign(petal_width=-0.0)
    df = pd.concat([iris, iris.iloc[[3, 140]], twin, iris.iloc[[3]]], ignore_index=True)
    expected = df.duplicated()
    assert expected.sum() == 4

    land(BATCH, df)
    [failure] = validate_raw_batch(root, BATCH, schema, SEVEN_ROWS)

    assert failure.check == "duplicates"
    assert failure.message.startswith(f"batch has 4 fully duplicated row(s), e.g. row {len(iris)}: ")
    assert repr(df.loc[len(iris)].to_dict())[:80] in failure.message


def test_a_bad_row_in_the_last_chunk_quarantines_the_batch(root, tmp_path, land, iris, schema):
    iris.loc[len(iris) - 1, "sepal_width"] = 99.5
    land(BATCH, iris)

    report = validate_and_quarantine(root, [BATCH], schema, SEVEN_ROWS)

    assert report["valid"] == []
    [quarantined] = report["quarantined"]
    assert quarantined["failed_checks"] == [
        {
            "check": "range",
            "column": "sepal_width",
            "message": "column 'sepal_width' has 1 value(s) outside [0.0, 15.0], e.g. 99.5 (row 148)",
        }
    ]
    assert list_raw_batches(root) == []
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [
        f"{BATCH}.json",
        f"{BATCH}.parquet",
        f"{BATCH}.reason.json",
    ]


def test_the_two_row_hashes_are_independent_also_for_numbers_only():
    """pandas hashes numbers without its key: unsalted, the second hash would equal the first and
    catch no collision of it."""
    frame = pd.DataFrame({"x": [1.0, -0.0, 0.0, 2.5], "n": [1, 2, 2, 3]})

    first, second = validation._row_hashes(frame)

    assert (first != second).all()
    assert (first[1], second[1]) == (first[2], second[2]), "-0.0 and 0.0 are the same row"
    assert len(set(first)) == len(set(second)) == 3
