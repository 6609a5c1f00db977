"""Land a CSV file as Parquet a block at a time, with the column types pandas' ``read_csv`` infers for
the whole file, so that a landed batch is the same whatever the block size and never held whole.

pandas decides a column's type from all its values: integers without a null are ``int64``, numbers
(also integers with a null, or a column of nulls only) ``float64``, ``True``/``False`` without a null
``bool``, anything else text. A block only shows some of the values, so each column's type is the
least type that fits every block so far (the join in the order null, int < float < text and
bool < text). When a later block needs a wider type than the one already written, the file is read
again from the start with the wider types known: rare (the first 4 MB of a column rarely hide its
type), and the result is then exactly what one whole-file read would give.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from include import storage
from include.chunks import DEFAULT, Chunking

# pandas' default ``na_values`` (pandas._libs.parsers.STR_NA_VALUES): the same texts read as missing.
NULL_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
TRUE_VALUES = pa.array(["True", "TRUE", "true"], pa.large_string())
BOOL_VALUES = pa.array(["True", "TRUE", "true", "False", "FALSE", "false"], pa.large_string())
UTF8_BOM = b"\xef\xbb\xbf"
SAMPLE_ROWS = 100
HEADER_BYTES_PER_COLUMN = 256  # a header line longer than this per allowed column is refused unread


class BatchFormatError(ValueError):
    """The content is not a CSV table with at least one row."""


class Kind(enum.Enum):
    """What pandas would make of a column's values: the order of these is the join below."""

    NULL = "null"
    INT = "int"
    BOOL = "bool"
    FLOAT = "float"
    TEXT = "text"


_STORED = {
    Kind.NULL: pa.float64(),
    Kind.INT: pa.int64(),
    Kind.BOOL: pa.bool_(),
    Kind.FLOAT: pa.float64(),
    Kind.TEXT: pa.large_string(),  # what pandas' ``str`` columns become in Parquet
}


def join(a: Kind | None, b: Kind) -> Kind:
    """The least kind that holds values of kind ``a`` (None: no value seen yet) and of kind ``b``."""
    if a is None or a == b:
        return b
    if {a, b} <= {Kind.NULL, Kind.INT, Kind.FLOAT}:
        return Kind.FLOAT
    return Kind.TEXT


class _WidenedError(Exception):
    """A block needs a wider stored type than earlier blocks were written with: read again."""

    def __init__(self, kinds: dict[str, Kind]) -> None:
        super().__init__(kinds)
        self.kinds = kinds


def write_parquet(
    path: str, url: str, *, max_columns: int, chunking: Chunking = DEFAULT
) -> tuple[list[str], int]:
    """Write the CSV file at the local ``path`` as Parquet to ``url`` (atomically; nothing is left on an
    error); its column names and row count. BatchFormatError, naming the line or row, for content that
    is not a CSV table: not UTF-8, no header or no rows, a header wider than ``max_columns``, a row
    with more or fewer fields than the header."""
    names, header_bytes = _read_header(path, max_columns)
    # A block must hold the header whole (the reader skips it); rows longer than a block are fine.
    chunking = replace(chunking, csv_block_bytes=max(chunking.csv_block_bytes, header_bytes + 1))
    kinds: dict[str, Kind] = {}
    while True:
        try:
            tables = _tables(path, names, kinds, chunking)
            rows, _ = storage.write_parquet_chunks(url, tables, chunking=chunking)
        except _WidenedError as widened:
            kinds = widened.kinds
            continue
        return names, rows


def _read_header(path: str, max_columns: int) -> tuple[list[str], int]:
    """The column names as pandas would name them (``Unnamed: <i>`` for an empty one, ``a.1`` for a
    second ``a``) and the header line's length; a header wider than ``max_columns``, or nothing after
    it, is refused before any row is parsed."""
    limit = max_columns * HEADER_BYTES_PER_COLUMN
    with open(path, "rb") as fh:
        line = fh.readline(limit + 1)
        rows_follow = bool(fh.read(1))
    if not line.strip():
        raise BatchFormatError("content is not a readable CSV table: No columns to parse from file")
    cut = len(line) > limit
    if cut:  # count the whole fields that were read: enough to refuse a header that is too wide
        line = line[: line.rfind(b",") + 1]
    try:
        text = line.removeprefix(UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchFormatError(f"content is not UTF-8 text: the header line has {exc.reason}") from None
    names = next(csv.reader([text]), [])
    if len(names) > max_columns:
        raise BatchFormatError(
            f"CSV header has {len(names)}{' or more' if cut else ''} columns, "
            f"more than the limit of {max_columns}"
        )
    if cut:
        raise BatchFormatError(
            f"CSV header line is longer than {limit} bytes ({max_columns} columns allowed)"
        )
    if not rows_follow:
        raise BatchFormatError("CSV has a header but no rows")
    return _dedup([name or f"Unnamed: {i}" for i, name in enumerate(names)]), len(line)


def _dedup(names: list[str]) -> list[str]:
    """pandas' renaming of repeated column names: ``a, a, a`` -> ``a, a.1, a.2``."""
    counts: dict[str, int] = {}
    unique = []
    for name in names:
        count = counts.get(name, 0)
        while count > 0:
            counts[name] = count + 1
            name = f"{name}.{count}"
            count = counts.get(name, 0)
        unique.append(name)
        counts[name] = count + 1
    return unique


def _tables(path: str, names: list[str], floor: dict[str, Kind], chunking: Chunking) -> Iterator[pa.Table]:
    """The CSV's rows a block at a time, typed; ``_WidenedError`` when a block needs wider stored types."""
    kinds: dict[str, Kind | None] = {name: floor.get(name) for name in names}
    stored: dict[str, pa.DataType] | None = None
    rows = 0
    reader = _open(path, names, chunking)
    while True:
        try:
            block = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise BatchFormatError(f"content is not a readable CSV table: {exc}") from None
        columns = {}
        for name, raw in zip(names, block.columns, strict=True):
            kinds[name], columns[name] = _convert(_utf8(raw, name, rows), kinds[name])
        table = pa.table(columns)
        if stored is None:
            stored = {name: table.schema.field(name).type for name in names}
        elif any(stored[name] != _STORED[kinds[name]] for name in names):
            raise _WidenedError({name: kind for name, kind in kinds.items() if kind is not None})
        rows += block.num_rows
        yield table
    if rows == 0:
        raise BatchFormatError("CSV has a header but no rows")


def _open(path: str, names: list[str], chunking: Chunking) -> pacsv.CSVStreamingReader:
    try:
        return pacsv.open_csv(
            path,
            # One thread: then a parse error names its line. Blocks of csv_block_bytes.
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=chunking.csv_block_bytes, use_threads=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_binary() for name in names},
                null_values=NULL_VALUES,
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise BatchFormatError(f"content is not a readable CSV table: {exc}") from None


def _utf8(raw: pa.Array, column: str, offset: int) -> pa.Array:
    """``raw`` bytes as text; BatchFormatError naming the first row (from 0) that is not UTF-8."""
    try:
        return raw.cast(pa.large_string())
    except pa.ArrowInvalid:
        for row, value in enumerate(raw.to_pylist()):
            try:
                value is None or value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BatchFormatError(
                    f"content is not UTF-8 text: column {column!r}, row {offset + row}: {exc.reason}"
                ) from None
        raise


def _convert(text: pa.Array, floor: Kind | None) -> tuple[Kind, pa.Array]:
    """The least kind at or above ``floor`` that holds every value of ``text``, and ``text`` stored as
    that kind."""
    if floor == Kind.TEXT:
        return Kind.TEXT, text
    if text.null_count == len(text):
        kind = join(floor, Kind.NULL)
        return kind, _stored(text, kind)
    own, stored = _narrowest(text, floor)
    kind = join(floor, own)
    if text.null_count:
        kind = join(kind, Kind.NULL)
    return kind, stored if kind == own else _stored(text, kind)


def _narrowest(text: pa.Array, floor: Kind | None) -> tuple[Kind, pa.Array]:
    """The narrowest kind of ``text``'s values that can still matter above ``floor``, and ``text`` as it."""
    complete = text.null_count == 0
    if floor in (None, Kind.INT) and complete and (ints := _number(text, pa.int64())) is not None:
        return Kind.INT, ints
    if floor in (None, Kind.BOOL) and complete and pc.all(pc.is_in(text, BOOL_VALUES)).as_py():
        return Kind.BOOL, pc.is_in(text, TRUE_VALUES)
    if floor != Kind.BOOL and (floats := _number(text, pa.float64())) is not None:
        return Kind.FLOAT, floats
    return Kind.TEXT, text


def _number(text: pa.Array, to: pa.DataType) -> pa.Array | None:
    """``text`` as numbers of type ``to`` (surrounding spaces allowed, as pandas does), or None. A
    failed cast costs as much as a whole one, so the first values are tried alone first."""
    if len(text) > SAMPLE_ROWS and _cast(text.slice(0, SAMPLE_ROWS), to) is None:
        return None
    return _cast(text, to)


def _cast(text: pa.Array, to: pa.DataType) -> pa.Array | None:
    try:
        return text.cast(to)
    except pa.ArrowInvalid:
        try:
            return pc.utf8_trim_whitespace(text).cast(to)
        except pa.ArrowInvalid:
            return None


def _stored(text: pa.Array, kind: Kind) -> pa.Array:
    """``text`` stored as ``kind``, which is known to hold every value."""
    if kind == Kind.TEXT:
        return text
    if kind == Kind.NULL:
        return pa.nulls(len(text), pa.float64())
    if kind == Kind.BOOL:
        return pc.is_in(text, TRUE_VALUES)
    return _number(text, _STORED[kind])
