"""Validation of raw batches (quarantine is in ``batches``), one chunk at a time.

A batch is judged by every rule in ``RULES`` (``required_columns``, ``empty``, ``dtype``, ``nulls``,
``range``, ``categories``, ``labels``, ``duplicates``), and every rule it breaks is reported. Each
failure names its rule and column, how many rows offend and the first of them (its value and row
number, counted from 0 after the header), so the alert alone tells a person what to fix at the source.
A rule that cannot judge a column (it is missing, or its values have the wrong type) skips it
rather than piling up follow-on failures.

The batch is read in chunks (``include.chunks``) and every rule keeps only counts and its first example
between chunks, so the verdict and the messages are the same for any chunk size. The one rule that
needs every row at once, ``duplicates``, keeps two 64-bit hashes and the row number of each row (24
bytes a row) in temporary files, split by hash into parts of about half a million rows, and then
checks one part at a time: memory stays a few tens of MB for any row count, disk grows by 24 bytes a
row (240 MB for 10M rows) for the duration of the check.
"""

from __future__ import annotations

import math
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from include import storage
from include.batches import CheckFailure, quarantine_batch, raw_batch_data
from include.chunks import DEFAULT, Chunking
from include.config import BOOL_TEXTS, DatasetSchema

EXAMPLE_CHARS = 80  # an example value in a message is cut here: the message goes into e-mails and JSON
HASH_KEYS = ("mlpipe-rows-key1", "mlpipe-rows-key2")  # keys of the two row hashes' text (16 chars)
HASH_SALT = np.uint64(0x9E3779B97F4A7C15)  # numbers' bits are salted with this in the second hash
PART_ROWS = 1 << 19  # rows per part of the duplicates check (24 bytes each in memory while checked)
_RECORD = np.dtype([("h1", "<u8"), ("h2", "<u8"), ("row", "<i8")])

Chunks = Callable[[], Iterable[pd.DataFrame]]


def validate_raw_batch(
    root: str, batch_id: str, schema: DatasetSchema, chunking: Chunking = DEFAULT
) -> list[CheckFailure]:
    """Every rule the landed batch ``batch_id`` breaks against ``schema``, read a chunk at a time."""
    url = raw_batch_data(root, batch_id)
    with storage.open_parquet(url) as parquet:
        columns, rows = parquet.schema_arrow.names, parquet.metadata.num_rows

    def chunks() -> Iterator[pd.DataFrame]:
        with storage.open_parquet(url) as parquet:
            offset = 0
            for batch in parquet.iter_batches(batch_size=chunking.rows(len(columns))):
                frame = batch.to_pandas()
                frame.index = pd.RangeIndex(offset, offset + len(frame))
                offset += len(frame)
                yield frame

    return validate_chunks(columns, rows, chunks, schema)


def validate_chunks(
    columns: list[str], rows: int, chunks: Chunks, schema: DatasetSchema
) -> list[CheckFailure]:
    """Every rule a batch breaks against ``schema``; an empty list means it is valid. The batch has
    ``columns`` and ``rows``; ``chunks()`` yields its rows in order as frames indexed by row number (it
    is called a second time only to show a duplicated row)."""
    with tempfile.TemporaryDirectory(prefix="validate-") as folder:
        batch = Batch(schema, columns, rows, chunks, Path(folder))
        rules = [rule(batch) for rule in RULES]
        if rows:
            for frame in chunks():
                for rule in rules:
                    rule.add(frame)
        failures: list[CheckFailure] = []
        unjudged: set[str] = set()  # columns a rule found mistyped: later rules skip them
        for rule in rules:
            found = rule.failures(frozenset(unjudged))
            failures += found
            if rule.blocks_later_rules:
                unjudged |= {failure.column for failure in found if failure.column}
        return failures


@dataclass(frozen=True)
class Batch:
    """What every rule knows of the batch before its rows: the schema, its columns, its row count, a
    way to read its rows again, and a folder for temporary files."""

    schema: DatasetSchema
    columns: list[str]
    rows: int
    chunks: Chunks
    folder: Path

    def present(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name in self.columns]


class Rule(ABC):
    """One validation rule, judged a chunk at a time: ``add`` counts what a chunk breaks (keeping only
    counts and the first example between chunks), ``failures`` reports it once every chunk was added,
    skipping ``unjudged`` columns that an earlier rule found to hold the wrong type of value. A new
    rule is a subclass listed in ``RULES``."""

    check: str
    blocks_later_rules = False

    def __init__(self, batch: Batch) -> None:
        self.batch, self.schema = batch, batch.schema

    def add(self, frame: pd.DataFrame) -> None:  # noqa: B027 - a rule on the batch's shape counts no rows
        """Count what ``frame`` (consecutive rows, indexed by row number) breaks."""

    @abstractmethod
    def failures(self, unjudged: frozenset[str]) -> list[CheckFailure]:
        """What the rule found in every chunk added, leaving out the ``unjudged`` columns."""


class _ColumnRule(Rule):
    """A rule that counts offending rows per column: ``offending(column, series)`` masks them."""

    def __init__(self, batch: Batch) -> None:
        super().__init__(batch)
        self.counts = {column: _Count() for column in self.judged()}

    def judged(self) -> list[str]:
        """The columns this rule looks at."""
        return self.batch.present(self.schema.columns)

    @abstractmethod
    def offending(self, column: str, series: pd.Series) -> pd.Series:
        """A mask of the rows of ``column`` (its values in one chunk: ``series``) that break the rule."""

    @abstractmethod
    def message(self, column: str, count: _Count) -> str:
        """The failure's message for ``column``, from what was counted."""

    def add(self, frame: pd.DataFrame) -> None:
        for column, count in self.counts.items():
            series = frame[column]
            count.add(series[self.offending(column, series)])

    def failures(self, unjudged: frozenset[str]) -> list[CheckFailure]:
        return [
            CheckFailure(self.check, column, self.message(column, count))
            for column, count in self.counts.items()
            if count.rows and column not in unjudged
        ]


class RequiredColumns(Rule):
    check = "required_columns"

    def failures(self, unjudged: frozenset[str]) -> list[CheckFailure]:
        return [
            CheckFailure(self.check, column, f"required column {column!r} is missing")
            for column in self.schema.columns
            if column not in self.batch.columns
        ]


class Empty(Rule):
    check = "empty"

    def failures(self, unjudged: frozenset[str]) -> list[CheckFailure]:
        return [] if self.batch.rows else [CheckFailure(self.check, None, "batch has no rows")]


class Dtype(Rule):
    """Values that do not fit the column's declared type. When a column's storage type is wrong but
    every value would parse (numbers stored as text, say), all its values count: the batch is still
    malformed, and the count then says how much of it."""

    check = "dtype"
    blocks_later_rules = True

    def __init__(self, batch: Batch) -> None:
        super().__init__(batch)
        self.types = {column: _TypeCount() for column in batch.present(self.schema.columns)}

    def add(self, frame: pd.DataFrame) -> None:
        for column, types in self.types.items():
            series = frame[column]
            types.dtype = types.dtype or str(series.dtype)
            unfit, text_for_numbers = _type_mismatch(
                series, self._expected_dtype(column), self.schema.classes or ()
            )
            types.unfit.add(series[unfit])
            if text_for_numbers:
                types.text_for_numbers.add(series[series.notna()])

    def _expected_dtype(self, column: str) -> str:
        if column != self.schema.label:
            return self.schema.feature(column).dtype
        return "class" if self.schema.is_classification else "float"

    def failures(self, unjudged: frozenset[str]) -> list[CheckFailure]:
        failures = []
        for column, types in self.types.items():
            found = types.found()
            if not found.rows:
                continue
            expected = self._expected_dtype(column)
            if expected == "class":
                expected = f"one of the classes {list(self.schema.classes or ())}"
            elif column == self.schema.label:
                expected = "numbers (a regression label)"
            failures.append(
                CheckFailure(
                    self.check,
                    column,
                    f"column {column!r} has dtype {types.dtype}, expected {expected}: "
                    f"{found.rows} row(s) do not fit, e.g. {found.example}",
                )
            )
        return failures


class Nulls(_ColumnRule):
    """More missing values than the column allows (``nullable``, ``max_null_fraction``; the label and
    a column that says neither allow none)."""

    check = "nulls"

    def offending(self, column: str, series: pd.Series) -> pd.Series:
        return series.isna()

    def limit(self, column: str) -> float:
        return 0.0 if column == self.schema.label else self.schema.feature(column).null_limit

    def failures(self, unjudged: frozenset[str]) -> list[CheckFailure]:
        # Missing values are judged also in a mistyped column: they are missing whatever the type.
        return [
            CheckFailure(self.check, column, self.message(column, count))
            for column, count in self.counts.items()
            if count.rows > self.limit(column) * self.batch.rows
        ]

    def message(self, column: str, count: _Count) -> str:
        limit = self.limit(column)
        allowed = "none" if limit == 0 else f"at most {limit:.0%}"
        if column == self.schema.label:
            allowed = "none: the label may never be missing"
        return (
            f"column {column!r} has {count.rows} null value(s) ({count.rows / self.batch.rows:.1%} of "
            f"{self.batch.rows} rows; the schema allows {allowed}), e.g. at row {count.first_row}"
        )


class Range(_ColumnRule):
    """Numbers outside a feature's ``min``/``max``, or a regression label outside its range."""

    check = "range"

    def bounds(self, column: str) -> tuple[float | None, float | None]:
        if column == self.schema.label:
            return self.schema.label_min, self.schema.label_max
        spec = self.schema.feature(column)
        return spec.min, spec.max

    def judged(self) -> list[str]:
        return [column for column in super().judged() if self.bounds(column) != (None, None)]

    def offending(self, column: str, series: pd.Series) -> pd.Series:
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            return _nothing(series)  # the dtype rule's business
        low, high = self.bounds(column)
        return (series < (-np.inf if low is None else low)) | (series > (np.inf if high is None else high))

    def message(self, column: str, count: _Count) -> str:
        low, high = self.bounds(column)
        return f"column {column!r} has {count.rows} value(s) outside [{low}, {high}], e.g. {count.example}"


class Categories(_ColumnRule):
    """Values of a ``str`` feature outside its closed set of ``categories``."""

    check = "categories"

    def judged(self) -> list[str]:
        return self.batch.present(spec.name for spec in self.schema.features if spec.categories)

    def offending(self, column: str, series: pd.Series) -> pd.Series:
        return series.notna() & ~series.astype(str).isin(self.schema.feature(column).categories)

    def message(self, column: str, count: _Count) -> str:
        categories = list(self.schema.feature(column).categories or ())
        return (
            f"column {column!r} has {count.rows} value(s) outside its categories {categories}, "
            f"e.g. {count.example}"
        )


class Labels(_ColumnRule):
    """Text labels that are not one of a classification schema's ``classes`` (other types are judged
    by the dtype rule alone)."""

    check = "labels"

    def judged(self) -> list[str]:
        return self.batch.present([self.schema.label]) if self.schema.is_classification else []

    def offending(self, column: str, series: pd.Series) -> pd.Series:
        if not _is_textual(series):
            return _nothing(series)
        return series.notna() & ~series.astype(str).isin(self.schema.classes or ())

    def message(self, column: str, count: _Count) -> str:
        return (
            f"column {column!r} has {count.rows} value(s) not in {list(self.schema.classes or ())}, "
            f"e.g. {count.example}"
        )


class Duplicates(Rule):
    """Rows equal to an earlier row of the batch (every column, also those the schema ignores)."""

    check = "duplicates"

    def __init__(self, batch: Batch) -> None:
        super().__init__(batch)
        self.rows = _DuplicateRows(batch.folder, batch.rows)

    def add(self, frame: pd.DataFrame) -> None:
        self.rows.add(frame)

    def failures(self, unjudged: frozenset[str]) -> list[CheckFailure]:
        duplicated, first = self.rows.count()
        if not duplicated:
            return []
        row = next(frame.loc[first] for frame in self.batch.chunks() if first in frame.index)
        return [
            CheckFailure(
                self.check,
                None,
                f"batch has {duplicated} fully duplicated row(s), "
                f"e.g. row {first}: {_bounded(repr(row.to_dict()))}",
            )
        ]


# Every rule, in the order their failures are reported; dtype first, as later rules skip what it finds.
RULES: tuple[type[Rule], ...] = (
    RequiredColumns,
    Empty,
    Dtype,
    Nulls,
    Range,
    Categories,
    Labels,
    Duplicates,
)


@dataclass
class _Count:
    """How many rows a rule found in the chunks so far, and the first one's example."""

    rows: int = 0
    example: str = ""
    first_row: int = -1

    def add(self, values: pd.Series) -> None:
        """Count the rows of ``values`` (already selected by a mask); keep the first as the example."""
        if values.empty:
            return
        if not self.rows:
            self.first_row = int(values.index[0])
            self.example = f"{_example(values)} (row {self.first_row})"
        self.rows += len(values)


@dataclass
class _TypeCount:
    """The ``dtype`` rule on one column: values that do not fit, and (for a column that is text where
    numbers are declared) every non-null value, which counts when no single value fails to parse."""

    dtype: str = ""
    unfit: _Count = field(default_factory=_Count)
    text_for_numbers: _Count = field(default_factory=_Count)

    def found(self) -> _Count:
        return self.unfit if self.unfit.rows else self.text_for_numbers


def _type_mismatch(series: pd.Series, dtype: str, classes: tuple[str, ...]) -> tuple[pd.Series, bool]:
    """A mask of the non-null values that do not fit ``dtype`` (a feature dtype, ``class`` for a
    classification label with ``classes``), and whether the column holds text where numbers are
    declared."""
    present = series.notna()
    if dtype == "str":
        return _nothing(series), False  # any value reads as text
    if dtype == "class":
        # Text labels are judged by the labels rule; other types fail here unless they read as a class.
        if _is_textual(series):
            return _nothing(series), False
        return present & ~series.astype(str).isin(classes), False
    if dtype == "bool":
        if pd.api.types.is_bool_dtype(series):
            return _nothing(series), False
        return present & ~series.astype(str).str.lower().isin(BOOL_TEXTS), False
    if dtype == "datetime":
        if not _is_textual(series) and not pd.api.types.is_datetime64_any_dtype(series):
            return present, False
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
        return present & parsed.isna(), False
    if pd.api.types.is_bool_dtype(series):
        return present, False
    numeric = pd.api.types.is_numeric_dtype(series)
    parsed = series if numeric else pd.to_numeric(series, errors="coerce")
    bad = present & parsed.isna()
    if dtype == "int":
        bad |= present & parsed.notna() & (parsed % 1 != 0)
    return bad, not numeric


def _is_textual(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def _nothing(series: pd.Series) -> pd.Series:
    return pd.Series(False, index=series.index)


class _DuplicateRows:
    """Rows equal to an earlier row of the batch, found with bounded memory (see the module's doc)."""

    def __init__(self, folder: Path, rows: int) -> None:
        self.parts = [folder / f"part-{n}" for n in range(max(1, math.ceil(rows / PART_ROWS)))]

    def add(self, frame: pd.DataFrame) -> None:
        first, second = _row_hashes(frame)
        part = first % len(self.parts)
        if len(self.parts) <= 1 << 16:
            part = part.astype(np.uint16)  # a stable sort of 16-bit keys is a radix sort
        order = np.argsort(part, kind="stable")
        # Field by field: gathering whole records (24-byte structs) costs ten times as much.
        records = np.empty(len(frame), _RECORD)
        records["h1"], records["h2"], records["row"] = (
            first[order],
            second[order],
            frame.index.to_numpy()[order],
        )
        bounds = np.searchsorted(part[order], np.arange(len(self.parts) + 1))
        for n, path in enumerate(self.parts):
            if bounds[n] < bounds[n + 1]:
                with path.open("ab") as fh:
                    records[bounds[n] : bounds[n + 1]].tofile(fh)

    def count(self) -> tuple[int, int]:
        """How many rows repeat an earlier row, and the first such row (-1 if none)."""
        duplicated, first = 0, -1
        for path in self.parts:
            if not path.exists():
                continue
            records = np.fromfile(path, _RECORD)
            order = np.argsort(records["h1"])
            first_hashes = records["h1"][order]
            same = first_hashes[1:] == first_hashes[:-1]
            if not same.any():
                continue
            # Only rows whose first hash repeats can be duplicates: sort those few by both hashes and row.
            candidates = np.zeros(len(records), bool)
            candidates[1:] |= same
            candidates[:-1] |= same
            records = records[order[candidates]]
            records = records[np.lexsort((records["row"], records["h2"], records["h1"]))]
            repeats = (records["h1"][1:] == records["h1"][:-1]) & (records["h2"][1:] == records["h2"][:-1])
            if repeats.any():
                rows = records["row"][1:][repeats]
                duplicated += len(rows)
                first = int(rows.min()) if first < 0 else min(first, int(rows.min()))
        return duplicated, first


def _row_hashes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each row, equal for rows ``df.duplicated`` calls equal (also
    -0.0 and 0.0, and missing and missing). pandas hashes a number by a fixed mix of its bits and text
    with a key, so the second hash mixes salted bits and keys the text differently."""
    numeric = {}
    for name in frame:
        column = frame[name]
        if pd.api.types.is_float_dtype(column):
            numeric[name] = (column.to_numpy() + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
        elif pd.api.types.is_numeric_dtype(column):
            numeric[name] = column.to_numpy().astype(np.uint64)
    first = pd.util.hash_pandas_object(frame.assign(**numeric), index=False, hash_key=HASH_KEYS[0])
    salted = {name: values ^ HASH_SALT for name, values in numeric.items()}
    second = pd.util.hash_pandas_object(frame.assign(**salted), index=False, hash_key=HASH_KEYS[1])
    return first.to_numpy(), second.to_numpy()


def _example(values: pd.Series) -> str:
    value = values.iloc[0]
    return _bounded(repr(value.item() if isinstance(value, np.generic) else value))


def _bounded(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else f"{text[:EXAMPLE_CHARS]}..."


def validate_and_quarantine(
    root: str, batch_ids: list[str], schema: DatasetSchema, chunking: Chunking = DEFAULT
) -> dict:
    """Validate each raw batch; move each bad one to quarantine with its reason. The report lists the
    ``valid`` batch ids and the ``quarantined`` ones with their reason file and failed checks."""
    report: dict = {"valid": [], "quarantined": []}
    for batch_id in batch_ids:
        failures = validate_raw_batch(root, batch_id, schema, chunking)
        if not failures:
            report["valid"].append(batch_id)
            continue
        reason_url = quarantine_batch(root, batch_id, failures)
        report["quarantined"].append(
            {"batch_id": batch_id, "reason_url": reason_url, "failed_checks": [vars(f) for f in failures]}
        )
    return report
