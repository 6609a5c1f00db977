"""A schema inferred from a sample: each rule, each refusal, and the JSON Schema editors check files with."""

from __future__ import annotations

import io
import json

import jsonschema
import pandas as pd
import pytest

from include.config import (
    DEFAULT_SCHEMA_FILE,
    SCHEMA_JSON_SCHEMA_FILE,
    DatasetSchema,
    FeatureSpec,
    schema_json_schema,
)
from include.schema_inference import SchemaInferenceError, infer_schema

REGENERATE = (
    ".venv/bin/python -c 'import json; from include.config import SCHEMA_JSON_SCHEMA_FILE as f, "
    'schema_json_schema as s; f.write_text(json.dumps(s(), indent=2, sort_keys=True) + "\\n")\''
)


def read(csv: str) -> pd.DataFrame:
    """The sample as the command reads it: pandas' ``read_csv`` decides the column types."""
    return pd.read_csv(io.StringIO(csv))


def sample(rows: int = 20, **columns: list) -> pd.DataFrame:
    """A CSV of ``columns`` (cycled to ``rows`` rows, "" for a gap) and a two-class label, read back."""
    frame = pd.DataFrame(
        {name: [values[i % len(values)] for i in range(rows)] for name, values in columns.items()}
    )
    frame["label"] = ["a", "b"] * (rows // 2)
    return read(frame.to_csv(index=False))


def infer(frame: pd.DataFrame, label: str = "label", **kwargs: str) -> tuple[DatasetSchema, list[str]]:
    schema, reasons = infer_schema(frame, label, **kwargs)
    # Whatever is inferred loads again from its JSON form, and the JSON Schema agrees.
    raw = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert DatasetSchema.from_dict(raw) == schema
    jsonschema.validate(raw, schema_json_schema())
    return schema, reasons


def feature(schema: DatasetSchema, name: str) -> FeatureSpec:
    return next(spec for spec in schema.features if spec.name == name)


def reason(reasons: list[str], subject: str) -> str:
    return next(line for line in reasons if line.startswith(f"{subject}: "))


def test_one_reason_per_column_and_for_the_task():
    frame = sample(x=[1.5, 2.5], customer_id=list(range(20)))

    schema, reasons = infer(frame, name="shop")

    assert schema.name == "shop"
    assert [line.split(":")[0] for line in reasons] == ["task", "label 'label'", "x", "customer_id"]


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([1, 2, 3], "int"),
        ([1, "", 3], "int"),  # pandas reads whole numbers with a gap as floats
        ([1.5, 2.0, -3.25], "float"),
        (["1.0", "2.0"], "float"),  # decimal points in the file and no gap: floats
        ([True, False], "bool"),
        ([True, "", False], "bool"),
        (["2024-01-31", "2024-02-01T10:30:00", "2024-03-01 08:00:00+01:00"], "datetime"),
        (["red", "green"], "str"),
    ],
)
def test_dtypes(values, dtype):
    schema, _ = infer(sample(x=values))

    assert feature(schema, "x").dtype == dtype


@pytest.mark.parametrize(("not_dates", "dtype"), [(1, "datetime"), (2, "str")])
def test_text_is_datetime_when_95_percent_parse(not_dates, dtype):
    dates = [f"2024-01-{day:02d}" for day in range(1, 21 - not_dates)]

    schema, reasons = infer(sample(x=[*dates, *["soon"] * not_dates]))

    assert feature(schema, "x").dtype == dtype
    if dtype == "datetime":
        assert "1 of 20 values are not ISO dates" in reason(reasons, "x")


@pytest.mark.parametrize(
    ("values", "bounds"),
    [
        ([10, 20], (9, 21)),  # 10% of the span on each side
        ([0.52, 0.61, 0.7], (0.5, 0.72)),  # rounded outwards at the margin's precision
        ([-50, 50], (-60, 60)),
        ([7, 7], (6, 8)),  # one value: a margin all the same
        ([1000, 3000], (800, 3200)),
    ],
)
def test_ranges_are_widened_by_a_margin(values, bounds):
    schema, reasons = infer(sample(x=values))

    spec = feature(schema, "x")
    assert (spec.min, spec.max) == bounds
    assert "not below 0" not in reason(reasons, "x")


def test_a_range_of_values_never_negative_stays_at_or_above_zero():
    schema, reasons = infer(sample(count=[1, 3, 21], share=[0.0, 0.4]))

    assert (feature(schema, "count").min, feature(schema, "count").max) == (0, 23)
    assert (feature(schema, "share").min, feature(schema, "share").max) == (0, 0.44)
    assert "not below 0, as no value seen is negative" in reason(reasons, "count")


def test_integer_bounds_are_whole_numbers():
    schema, _ = infer(sample(x=[3, 4, 5]))

    assert (feature(schema, "x").min, feature(schema, "x").max) == (2, 6)


def test_few_values_each_seen_twice_become_a_closed_set():
    schema, reasons = infer(sample(color=["red", "green", "blue", "red"]))

    assert feature(schema, "color").categories == ("blue", "green", "red")
    assert "closed set" in reason(reasons, "color")


def test_a_value_seen_once_leaves_the_text_open():
    schema, reasons = infer(sample(color=["red", "green"] * 9 + ["blue", "pink"]))

    assert feature(schema, "color").categories is None
    assert "open text" in reason(reasons, "color")
    assert "2 seen once" in reason(reasons, "color")


def test_many_values_are_a_closed_set_when_few_for_the_rows():
    # 25 values (over 20) in 600 rows (under 5%), one of them seen once.
    values = [*[f"v{i:02d}" for i in range(24) for _ in range(25)][:599], "v24"]

    schema, _ = infer(sample(rows=600, city=values))

    assert feature(schema, "city").categories == tuple(f"v{i:02d}" for i in range(25))


def test_a_column_without_gaps_is_required():
    schema, reasons = infer(sample(x=[1.5, 2.5]))

    assert (feature(schema, "x").nullable, feature(schema, "x").max_null_fraction) == (False, None)
    assert "required: no value is missing" in reason(reasons, "x")


@pytest.mark.parametrize(
    ("gaps", "limit"),
    [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4), (5, 0.5), (7, 0.7)],
)
def test_a_column_with_gaps_may_have_about_twice_as_many(gaps, limit):
    schema, reasons = infer(sample(x=[""] * gaps + [1.5] * (20 - gaps)))

    spec = feature(schema, "x")
    assert (spec.nullable, spec.max_null_fraction) == (False, limit)
    assert f"{gaps} of 20 values" in reason(reasons, "x")
    assert "twice that" in reason(reasons, "x")


def test_a_column_mostly_missing_is_nullable():
    schema, reasons = infer(sample(x=[""] * 11 + ["a", "b"] * 4 + ["c"]))

    assert (feature(schema, "x").nullable, feature(schema, "x").max_null_fraction) == (True, None)
    assert "any number missing" in reason(reasons, "x")


@pytest.mark.parametrize(
    ("column", "values", "why"),
    [
        ("id", [1.5, 2.5], "named like an id"),
        ("customer_id", ["a", "b"], "named like an id"),
        ("Order ID", [1, 2], "named like an id"),
        ("code", [f"k{i}" for i in range(20)], "every one of the 20 rows holds a different text"),
        ("number", list(range(100, 120)), "every one of the 20 rows holds a different integer"),
    ],
)
def test_columns_that_look_like_ids_are_left_out(column, values, why):
    schema, reasons = infer(sample(**{column: values, "x": [1.5, 2.5]}))

    assert schema.feature_names == ["x"]
    assert why in reason(reasons, column)
    assert "left out" in reason(reasons, column)


@pytest.mark.parametrize(
    ("values", "rows"),
    [
        ([i + 0.5 for i in range(20)], 20),  # different measurements are not ids
        (list(range(10)), 10),  # in ten rows any column may hold ten different values
        ([f"k{i}" for i in range(19)] + [""], 20),  # an id is never missing
    ],
)
def test_unique_values_alone_do_not_always_make_an_id(values, rows):
    schema, _ = infer(sample(rows=rows, x=values))

    assert schema.feature_names == ["x"]


def test_a_column_without_any_value_is_left_out():
    schema, reasons = infer(sample(empty=[""], x=[1.5, 2.5]))

    assert schema.feature_names == ["x"]
    assert "every value is missing" in reason(reasons, "empty")


def test_the_label_is_never_nullable_and_missing_labels_are_counted():
    frame = read("x,label\n1.5,a\n2.5,\n3.5,b\n4.5,a\n5.5,\n")

    schema, reasons = infer(frame)

    assert schema.classes == ("a", "b")
    assert "2 of 5 rows have no label" in reason(reasons, "label 'label'")
    assert "quarantine" in reason(reasons, "label 'label'")


@pytest.mark.parametrize(
    ("labels", "task", "classes"),
    [
        (["yes", "no"], "classification", ("no", "yes")),
        ([True, False], "classification", ("False", "True")),
        ([10, 2, 1], "classification", ("1", "2", "10")),  # numbers in numeric order
        ([1, "", 0], "classification", ("0", "1")),  # as a batch without gaps reads them
        (list(range(21)), "regression", None),
        ([1.5, 2.5], "regression", None),
    ],
)
def test_the_task_follows_the_label(labels, task, classes):
    frame = pd.DataFrame(
        {"x": [i + 0.5 for i in range(42)], "y": [labels[i % len(labels)] for i in range(42)]}
    )

    schema, reasons = infer(read(frame.to_csv(index=False)), label="y")

    assert (schema.task, schema.classes) == (task, classes)
    assert reason(reasons, "task").startswith(f"task: {task} (the label 'y'")


def test_a_regression_label_gets_a_range_with_the_same_margin():
    frame = read("x,price\n1.5,120.5\n2.5,100\n3.5,300\n4.5,250.5\n")

    schema, reasons = infer(frame, label="price")

    assert (schema.task, schema.label_min, schema.label_max) == ("regression", 80, 320)
    assert "seen 100 to 300" in reason(reasons, "label 'price'")


def test_a_given_task_wins():
    frame = read("x,grade\n1.5,1\n2.5,2\n3.5,3\n")

    schema, reasons = infer(frame, label="grade", task="regression")

    assert (schema.task, schema.label_min, schema.label_max) == ("regression", 0, 4)
    assert reason(reasons, "task") == "task: regression (as given)"


@pytest.mark.parametrize(
    ("frame", "label", "task", "message"),
    [
        (read("x,Species\n1.5,a\n"), "species", None, "'species' is not a column.*did you mean 'Species'"),
        (read("x,y\n"), "y", None, "no rows"),
        (read("x,y\n1.5,\n2.5,\n"), "y", None, "no values.*fill it in"),
        (read("x,y\n1.5,a\n2.5,a\n"), "y", None, "one value only.*at least two classes"),
        (read("x,y\n1.5,a\n2.5,b\n"), "y", "regression", "not numeric.*--task classification"),
        (read("x,y\n1.5,a\n2.5,b\n"), "y", "ranking", "not one of"),
        (read("id,y\n1,a\n2,b\n"), "y", None, "no column is left to learn from"),
    ],
)
def test_refusals_name_the_problem_and_the_fix(frame, label, task, message):
    with pytest.raises(SchemaInferenceError, match=message) as raised:
        infer_schema(frame, label, task=task)

    assert isinstance(raised.value, ValueError)


def test_the_json_schema_file_is_what_the_code_says():
    committed = SCHEMA_JSON_SCHEMA_FILE.read_text()

    assert committed == json.dumps(schema_json_schema(), indent=2, sort_keys=True) + "\n", (
        f"{SCHEMA_JSON_SCHEMA_FILE} is out of date with include/config.py; regenerate it with:\n{REGENERATE}"
    )


def test_editors_and_pydantic_agree_on_the_bundled_schema():
    iris = json.loads(DEFAULT_SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_JSON_SCHEMA_FILE.read_text()))

    validator.validate(iris)
    DatasetSchema.from_dict(iris)
    broken = {**iris, "features": [{"name": "x", "dtype": "decimal"}]}
    assert not validator.is_valid(broken)
    with pytest.raises(ValueError, match="dtype"):
        DatasetSchema.from_dict(broken)
