from __future__ import annotations

import pandas as pd
import pytest

from include import layout, storage, validation
from include.batches import CheckFailure, list_raw_batches, quarantine_batch, raw_manifest
from include.chunks import Chunking
from include.config import DatasetSchema
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


def toy(*features: dict, **keys) -> DatasetSchema:
    """A schema of ``features`` with the label ``y``: classes "0" and "1" unless ``keys`` say otherwise."""
    label = {"classes": ["0", "1"]} if keys.get("task", "classification") == "classification" else {}
    return DatasetSchema.from_dict({"name": "toy", "label": "y", "features": list(features), **label, **keys})


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
        ([1, 2, 3], "str", True),  # values are read as text: a code column of numbers is text
        ([True, False, True], "bool", True),
        (["true", "False", "TRUE"], "bool", True),
        (["true", "no", "false"], "bool", False),
        ([1, 0, 1], "bool", True),
        ([1, 2, 0], "bool", False),
        ([True, False, True], "float", False),
        (["2026-11-21", "2026-11-21T16:15:00Z", "2026-11-21T16:15:00+02:00"], "datetime", True),
        (["2026-11-21", "yesterday", "2026-11-22"], "datetime", False),
        (["2026-11-21", "2026-13-01", "2026-11-22"], "datetime", False),
        ([20261121, 20261122, 20261123], "datetime", False),
    ],
)
def test_dtype_by_declared_type(values, dtype, valid):
    schema = toy({"name": "x", "dtype": dtype})
    df = pd.DataFrame({"x": values, "y": [0, 1, 1]})

    assert (frame_failures(df, schema) == []) is valid


def test_numeric_label_is_judged_after_str_conversion():
    schema = toy({"name": "x"})

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
    schema = toy({"name": "x"})
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


@pytest.fixture(params=[0, 1, 2, 3], ids=lambda rows: f"{rows or 'one'}-row-chunks")
def rows_per_chunk(request) -> int:
    """The rules of format 2 judged on one chunk and across chunk boundaries: the same failures."""
    return request.param


def messages(failures: list[CheckFailure]) -> list[tuple[str, str | None, str]]:
    return [(f.check, f.column, f.message) for f in failures]


def test_categories_outside_a_closed_set(rows_per_chunk):
    schema = toy({"name": "c", "dtype": "str", "categories": ["red", "blue"], "nullable": True})
    df = pd.DataFrame({"c": ["red", None, "pink", "blue", "Red"], "y": ["0", "1", "0", "1", "0"]})

    assert messages(frame_failures(df, schema, rows_per_chunk)) == [
        (
            "categories",
            "c",
            "column 'c' has 2 value(s) outside its categories ['red', 'blue'], e.g. 'pink' (row 2)",
        )
    ]


def test_nulls_up_to_a_columns_limit_pass_and_above_it_fail(rows_per_chunk):
    schema = toy({"name": "x", "max_null_fraction": 0.25}, {"name": "free", "nullable": True})
    at_limit = pd.DataFrame({"x": [1.0, None, 3.0, 4.0], "free": [None] * 4, "y": ["0", "1", "0", "1"]})
    above = at_limit.assign(x=[1.0, None, None, 4.0])

    assert frame_failures(at_limit, schema, rows_per_chunk) == []
    assert messages(frame_failures(above, schema, rows_per_chunk)) == [
        (
            "nulls",
            "x",
            "column 'x' has 2 null value(s) (50.0% of 4 rows; the schema allows at most 25%), e.g. at row 1",
        )
    ]


def test_the_label_may_never_be_missing_even_when_every_feature_may(rows_per_chunk):
    schema = toy({"name": "x", "nullable": True})
    df = pd.DataFrame({"x": [None, None, 3.0], "y": ["0", None, "1"]})

    assert messages(frame_failures(df, schema, rows_per_chunk)) == [
        (
            "nulls",
            "y",
            "column 'y' has 1 null value(s) (33.3% of 3 rows; the schema allows none: the label may never "
            "be missing), e.g. at row 1",
        )
    ]


def test_a_regression_label_outside_its_range(rows_per_chunk):
    schema = toy({"name": "x"}, task="regression", label_min=0, label_max=100)
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.0, 100.0, 100.5, -3.0]})

    assert messages(frame_failures(df, schema, rows_per_chunk)) == [
        ("range", "y", "column 'y' has 2 value(s) outside [0.0, 100.0], e.g. 100.5 (row 2)")
    ]
    open_above = toy({"name": "x"}, task="regression", label_min=0)
    assert [f.message for f in frame_failures(df, open_above, rows_per_chunk)] == [
        "column 'y' has 1 value(s) outside [0.0, None], e.g. -3.0 (row 3)"
    ]


def test_a_regression_label_column_of_text_is_the_wrong_kind(rows_per_chunk):
    schema = toy({"name": "x"}, task="regression")
    x = [1.0, 2.0, 3.0]

    one_word = frame_failures(pd.DataFrame({"x": x, "y": ["1.5", "cheap", "2"]}), schema, rows_per_chunk)
    all_text = frame_failures(pd.DataFrame({"x": x, "y": ["1.5", "2.5", "2"]}), schema, rows_per_chunk)

    assert messages(one_word) == [
        (
            "dtype",
            "y",
            "column 'y' has dtype str, expected numbers (a regression label): 1 row(s) do not fit, "
            "e.g. 'cheap' (row 1)",
        )
    ]
    assert [f.message for f in all_text] == [
        "column 'y' has dtype str, expected numbers (a regression label): 3 row(s) do not fit, "
        "e.g. '1.5' (row 0)"
    ]


def test_every_broken_rule_is_reported_in_the_order_of_rules(rows_per_chunk):
    schema = toy(
        {"name": "n", "dtype": "int", "min": 0},
        {"name": "c", "dtype": "str", "categories": ["a", "b"]},
        {"name": "when", "dtype": "datetime"},
        {"name": "gone"},
    )
    df = pd.DataFrame(
        {
            "n": [1, -5, 3, 3],
            "c": ["a", "b", "z", "z"],
            "when": ["2026-01-01", "2026-01-02", "someday", "someday"],
            "y": ["0", "1", "2", "2"],
        }
    )

    failures = frame_failures(df, schema, rows_per_chunk)

    assert [(f.check, f.column) for f in failures] == [
        ("required_columns", "gone"),
        ("dtype", "when"),
        ("range", "n"),
        ("categories", "c"),
        ("labels", "y"),
        ("duplicates", None),
    ]


def test_a_mistyped_column_is_not_judged_again_by_later_rules():
    schema = toy({"name": "x", "min": 0, "max": 1})

    failures = frame_failures(pd.DataFrame({"x": ["5", "oops"], "y": ["0", "1"]}), schema)

    assert [(f.check, f.column) for f in failures] == [("dtype", "x")]


def test_the_verdict_is_the_same_for_every_chunk_size():
    schema = toy(
        {"name": "x", "max_null_fraction": 0.1, "max": 10},
        {"name": "c", "dtype": "str", "categories": ["a", "b"], "nullable": True},
        {"name": "b", "dtype": "bool"},
    )
    rows = 50
    df = pd.DataFrame(
        {
            "x": [None if i % 7 == 3 else float(i % 13) for i in range(rows)],
            "c": [None if i % 5 == 0 else "abz"[i % 3] for i in range(rows)],
            "b": ["true" if i % 2 else ("maybe" if i % 17 == 4 else "false") for i in range(rows)],
            "y": [str(i % 2) for i in range(rows)],
        }
    )

    verdicts = {step: messages(frame_failures(df, schema, step)) for step in (0, 1, 3, 7, 16, 49)}

    assert {check for check, _, _ in verdicts[0]} == {"nulls", "range", "categories", "dtype"}
    assert all(verdict == verdicts[0] for verdict in verdicts.values())


def test_rules_are_listed_once_and_every_rule_with_a_check_is_listed():
    def subclasses(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}

    with_a_check = {rule for rule in subclasses(validation.Rule) if "check" in vars(rule)}

    assert len(validation.RULES) == len(set(validation.RULES))
    assert set(validation.RULES) == with_a_check
    assert [rule.check for rule in validation.RULES] == [
        "required_columns",
        "empty",
        "dtype",
        "nulls",
        "range",
        "categories",
        "labels",
        "duplicates",
    ]
