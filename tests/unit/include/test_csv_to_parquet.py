"""CSV to Parquet a block at a time: the types and values pandas would read from the whole file, for any
block size; content that is not a table is refused with the line or row named and leaves no file."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from include import csv_to_parquet
from include.chunks import Chunking
from include.csv_to_parquet import BatchFormatError, write_parquet

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
TINY = Chunking(cells=6, csv_block_bytes=16)  # 16-byte blocks: a row or two each


@pytest.fixture
def convert(tmp_path):
    """Write ``content`` as a CSV file and land it as Parquet; the Parquet file's path."""

    def convert(content: bytes, chunking: Chunking = TINY, max_columns: int = 10, name: str = "out") -> Path:
        source = tmp_path / f"{name}.csv"
        source.write_bytes(content)
        target = tmp_path / "out" / f"{name}.parquet"
        write_parquet(str(source), target.as_uri(), max_columns=max_columns, chunking=chunking)
        return target

    return convert


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "content",
    [
        b"a,b,c,d,e\n1,x,2.5,True,\n2,y,3,False,\n3, z , 4 ,true,\n",
        b"a,b\n1,2\n3,4\n5,6.5\n7,\n8,x\n",
        b",a,a\n1,2,3\n4,5,6\n",
        b"\xef\xbb\xbfa,b\n1,2\n",
        b"a,b\nNone,<NA>\n1,2\nn/a,\n",
        b'a,b\n"quoted, comma",1\n"line\nbreak",2\n',
    ],
    ids=[
        "int-text-float-bool-null",
        "int-then-float-then-text",
        "unnamed-repeated",
        "bom",
        "null-words",
        "quoted",
    ],
)
@pytest.mark.parametrize("chunking", [TINY, Chunking()], ids=["tiny-blocks", "one-block"])
def test_types_and_values_are_what_pandas_reads_from_the_whole_file(convert, content, chunking):
    landed = pd.read_parquet(convert(content, chunking))

    pd.testing.assert_frame_equal(landed, pd.read_csv(io.BytesIO(content)))


def test_a_type_only_a_later_block_shows_widens_the_whole_column(convert, monkeypatch):
    content = b"n,s\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(200)) + b"2.5,text\n"
    opened = []
    real_open = csv_to_parquet._open
    monkeypatch.setattr(csv_to_parquet, "_open", lambda *args: opened.append(args) or real_open(*args))

    landed = pd.read_parquet(convert(content))

    pd.testing.assert_frame_equal(landed, pd.read_csv(io.BytesIO(content)))
    assert landed.dtypes.astype(str).tolist() == ["float64", "str"]
    assert len(opened) == 2, "the file is read again once, with both wider types known"


def test_the_bytes_do_not_depend_on_the_csv_block_size(convert, iris):
    content = iris.to_csv(index=False).encode()
    cells = Chunking().cells

    small = convert(content, Chunking(cells=cells, csv_block_bytes=64), name="small")
    large = convert(content, Chunking(cells=cells, csv_block_bytes=1 << 20), name="large")

    assert small.read_bytes() == large.read_bytes()


def test_row_groups_and_blocks_keep_to_the_chunk_size(convert, iris, monkeypatch):
    """The reader is asked for one block at a time, never the whole file, and the writer holds one row
    group of ``chunking.rows(columns)`` rows: what bounds memory for any batch size."""
    chunking = Chunking(cells=5 * 16, csv_block_bytes=256)
    block_sizes = []
    real_open_csv = pacsv.open_csv

    def open_csv(source, read_options, **kwargs):
        block_sizes.append(read_options.block_size)
        return real_open_csv(source, read_options=read_options, **kwargs)

    monkeypatch.setattr(pacsv, "open_csv", open_csv)
    monkeypatch.setattr(pacsv, "read_csv", None)  # the whole-file reader is never used

    landed = pq.ParquetFile(convert(iris.to_csv(index=False).encode(), chunking))

    assert block_sizes == [256]
    assert [landed.metadata.row_group(i).num_rows for i in range(landed.num_row_groups)] == [16] * 9 + [5]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (PNG, "not UTF-8 text: the header line"),
        (b"", "not a readable CSV table: No columns"),
        (b"sepal_length,species\n", "header but no rows"),
        (b"<html><body>502 Bad Gateway</body></html>", "header but no rows"),
        (b"a,b\n\n\n", "header but no rows"),
        (b'sepal_length,species\n"5.1,setosa\n', "not a readable CSV table"),
        (b"a,b\n1,2\n3,4,5\n", r"Row #3: Expected 2 columns, got 3: 3,4,5"),
        (b"a,b\n1,2\n3\n", r"Row #3: Expected 2 columns, got 1"),
    ],
    ids=[
        "binary",
        "empty",
        "header-only",
        "html-page",
        "blank-lines",
        "open-quote",
        "extra-field",
        "short-row",
    ],
)
def test_what_is_not_a_table_is_refused_and_leaves_no_file(convert, tmp_path, content, problem):
    with pytest.raises(BatchFormatError, match=problem):
        convert(content)

    assert files(tmp_path / "out") == []


def test_a_bad_row_in_the_last_block_is_named_and_leaves_no_file(convert, iris, tmp_path):
    content = iris.to_csv(index=False).encode()

    with pytest.raises(BatchFormatError, match=r"Row #151: Expected 5 columns, got 6"):
        convert(content + b"5.0,3.0,1.0,0.2,setosa,extra\n")
    with pytest.raises(BatchFormatError, match=r"not UTF-8 text: column 'species', row 149"):
        convert(content + b"5.0,3.0,1.0,0.2,set\xffosa\n")

    assert files(tmp_path / "out") == []


def test_a_header_over_the_column_cap_is_refused_before_any_row_is_parsed(convert, monkeypatch):
    monkeypatch.setattr(csv_to_parquet, "_open", None)
    wide = ",".join(f"c{i}" for i in range(1_000_000)).encode() + b"\n" + b"1," * 999_999 + b"1\n"

    with pytest.raises(BatchFormatError, match="or more columns, more than the limit of 1000"):
        convert(wide, max_columns=1000)
    with pytest.raises(BatchFormatError, match="3 columns, more than the limit of 2"):
        convert(b"a,b,c\n1,2,3\n", max_columns=2)
    with pytest.raises(BatchFormatError, match="header line is longer than 512 bytes"):
        convert(b"a," + b"b" * 600 + b"\n1,2\n", max_columns=2)
