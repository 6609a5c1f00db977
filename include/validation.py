"""Fail-fast validation of raw batches (quarantine is in ``batches``), one chunk at a time.

A batch is judged by named rules (``empty``, ``required_columns``, ``dtype``, ``nulls``, ``range``,
``labels``, ``duplicates``). Each failure names its rule and column, how many rows offend and the first
of them (its value and row number, counted from 0 after the header), so the alert alone tells a person
what to fix at the source. A rule that cannot judge a column (it is missing, or its values have the
wrong type) skips it rather than piling up follow-on failures.

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from include import storage
from include.batches import CheckFailure, quarantine_batch, raw_batch_data
from include.chunks import DEFAULT, Chunking
from include.config import DatasetSchema, FeatureSpec

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
    failures = [
        CheckFailure("required_columns", column, f"required column {column!r} is missing")
        for column in schema.columns
        if column not in columns
    ]
    if rows == 0:
        return [CheckFailure("empty", None, "batch has no rows"), *failures]
    present = [column for column in schema.columns if column in columns]
    tally = _Tally(schema, present)
    with tempfile.TemporaryDirectory(prefix="validate-") as folder:
        duplicates = _DuplicateRows(Path(folder), rows)
        for frame in chunks():
            tally.add(frame)
            duplicates.add(frame)
        duplicated, first = duplicates.count()
    return [*failures, *tally.failures(), *_duplicates_failure(duplicated, first, chunks)]


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


class _Tally:
    """The row-wise rules (dtype, nulls, range, labels), counted chunk by chunk."""

    def __init__(self, schema: DatasetSchema, present: list[str]) -> None:
        self.schema, self.present = schema, present
        self.specs = {spec.name: spec for spec in schema.features}
        self.types = {column: _TypeCount() for column in present}
        self.nulls = {column: _Count() for column in present}
        self.outside = {column: _Count() for column in present if column in self.specs}
        self.unknown_labels = _Count()

    def add(self, frame: pd.DataFrame) -> None:
        for column in self.present:
            series = frame[column]
            types = self.types[column]
            types.dtype = types.dtype or str(series.dtype)
            if column == self.schema.label:
                types.unfit.add(series[_label_type_mismatch(series, self.schema.classes)])
                if _is_textual(series):  # other types are judged by the dtype rule alone
                    unknown = series.notna() & ~series.astype(str).isin(self.schema.classes)
                    self.unknown_labels.add(series[unknown])
            else:
                spec = self.specs[column]
                unfit, text_for_numbers = _feature_type_mismatch(series, spec)
                types.unfit.add(series[unfit])
                if text_for_numbers:
                    types.text_for_numbers.add(series[series.notna()])
                if spec.dtype != "str" and pd.api.types.is_numeric_dtype(series):
                    low = -np.inf if spec.min is None else spec.min
                    high = np.inf if spec.max is None else spec.max
                    self.outside[column].add(series[(series < low) | (series > high)])
            nulls = series.isna()
            self.nulls[column].add(series[nulls])

    def failures(self) -> list[CheckFailure]:
        failures, mistyped = [], set()
        for column in self.present:
            types = self.types[column]
            found = types.found()
            if not found.rows:
                continue
            mistyped.add(column)
            if column == self.schema.label:
                expected = f"one of the classes {list(self.schema.classes)}"
            else:
                expected = self.specs[column].dtype
            failures.append(
                CheckFailure(
                    "dtype",
                    column,
                    f"column {column!r} has dtype {types.dtype}, expected {expected}: "
                    f"{found.rows} row(s) do not fit, e.g. {found.example}",
                )
            )
        for column in self.present:
            nulls = self.nulls[column]
            if nulls.rows:
                failures.append(
                    CheckFailure(
                        "nulls",
                        column,
                        f"column {column!r} has {nulls.rows} null value(s), e.g. at row {nulls.first_row}",
                    )
                )
        for spec in self.schema.features:
            if spec.name not in self.present or spec.name in mistyped or spec.dtype == "str":
                continue
            if spec.min is None and spec.max is None:
                continue
            outside = self.outside[spec.name]
            if outside.rows:
                failures.append(
                    CheckFailure(
                        "range",
                        spec.name,
                        f"column {spec.name!r} has {outside.rows} value(s) outside "
                        f"[{spec.min}, {spec.max}], e.g. {outside.example}",
                    )
                )
        label = self.schema.label
        if label in self.present and label not in mistyped and self.unknown_labels.rows:
            failures.append(
                CheckFailure(
                    "labels",
                    label,
                    f"column {label!r} has {self.unknown_labels.rows} value(s) not in "
                    f"{list(self.schema.classes)}, e.g. {self.unknown_labels.example}",
                )
            )
        return failures


def _feature_type_mismatch(series: pd.Series, spec: FeatureSpec) -> tuple[pd.Series, bool]:
    """A mask of the non-null values that do not fit ``spec.dtype``, and whether the column holds text
    where numbers are declared.

    When the column's dtype is wrong but every value would parse (numbers stored as text, say), all its
    values count: the batch is still malformed, and the count then says how much of it.
    """
    present = series.notna()
    if spec.dtype == "str":
        return (_nothing(series) if _is_textual(series) else present), False
    if pd.api.types.is_bool_dtype(series):
        return present, False
    numeric = pd.api.types.is_numeric_dtype(series)
    parsed = series if numeric else pd.to_numeric(series, errors="coerce")
    bad = present & parsed.isna()
    if spec.dtype == "int":
        bad |= present & parsed.notna() & (parsed % 1 != 0)
    return bad, not numeric


def _label_type_mismatch(series: pd.Series, classes: tuple[str, ...]) -> pd.Series:
    """Text labels are judged by the ``labels`` rule; other types fail here unless they read as a class."""
    if _is_textual(series):
        return _nothing(series)
    return series.notna() & ~series.astype(str).isin(classes)


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


def _duplicates_failure(duplicated: int, first: int, chunks: Chunks) -> list[CheckFailure]:
    if not duplicated:
        return []
    row = next(frame.loc[first] for frame in chunks() if first in frame.index)
    return [
        CheckFailure(
            "duplicates",
            None,
            f"batch has {duplicated} fully duplicated row(s), "
            f"e.g. row {first}: {_bounded(repr(row.to_dict()))}",
        )
    ]


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
