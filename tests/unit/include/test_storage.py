"""Atomic writes under a real local storage root: all or nothing, never a partial or temporary file."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include import layout, storage
from include.chunks import Chunking
from tests.snapshots import files


def temp_files(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob(".tmp-*")]


def test_write_creates_the_parents_and_reads_back(root, tmp_path):
    url = layout.join(root, "a", "b", "data.bin")

    storage.write_bytes_atomic(url, b"\x00payload\xff")

    assert (tmp_path / "a" / "b" / "data.bin").read_bytes() == b"\x00payload\xff"
    assert storage.read_bytes(url) == b"\x00payload\xff"
    assert storage.exists(url)
    assert files(tmp_path) == {"a/b/data.bin": b"\x00payload\xff"}


def test_overwrite_replaces_the_whole_file(root, tmp_path):
    url = layout.join(root, "data.bin")
    storage.write_bytes_atomic(url, b"a much longer first version")

    storage.write_bytes_atomic(url, b"short")

    assert files(tmp_path) == {"data.bin": b"short"}


def test_overwrite_false_refuses_an_existing_file_and_leaves_it_unchanged(root, tmp_path):
    url = layout.join(root, "raw", "batch.parquet")
    storage.write_bytes_atomic(url, b"first", overwrite=False)

    with pytest.raises(FileExistsError, match=r"raw/batch\.parquet already exists"):
        storage.write_bytes_atomic(url, b"second", overwrite=False)
    with pytest.raises(FileExistsError, match="already exists"):
        storage.write_json_atomic(url, {"x": 1}, overwrite=False)
    with pytest.raises(FileExistsError, match="already exists"):
        storage.write_parquet_atomic(pd.DataFrame({"x": [1]}), url, overwrite=False)

    assert files(tmp_path) == {"raw/batch.parquet": b"first"}


def test_overwrite_false_takes_the_same_bytes_already_there_as_written(root, tmp_path):
    """A retried create (its first answer lost, or a task retried after the write) must not fail."""
    url = layout.join(root, "raw", "batch.json")
    storage.write_bytes_atomic(url, b"same", overwrite=False)

    storage.write_bytes_atomic(url, b"same", overwrite=False)

    assert files(tmp_path) == {"raw/batch.json": b"same"}


def test_failure_while_writing_leaves_no_temp_file_and_no_target(root, tmp_path):
    (tmp_path / "out").mkdir()
    url = layout.join(root, "out", "data.bin")

    # The temporary file is opened, then the write itself fails: str is not bytes.
    with pytest.raises(TypeError, match="bytes-like"):
        storage.write_bytes_atomic(url, "not bytes")  # type: ignore[arg-type]

    assert files(tmp_path) == {}
    assert not storage.exists(url)


def test_failure_while_writing_keeps_the_previous_version(root, tmp_path):
    url = layout.join(root, "data.bin")
    storage.write_bytes_atomic(url, b"previous")

    with pytest.raises(TypeError):
        storage.write_bytes_atomic(url, "not bytes")  # type: ignore[arg-type]

    assert files(tmp_path) == {"data.bin": b"previous"}


def test_target_whose_parent_is_a_file_fails_and_writes_nothing(root, tmp_path):
    (tmp_path / "raw").write_bytes(b"a file, not a folder")

    with pytest.raises(OSError, match="raw"):
        storage.write_bytes_atomic(layout.join(root, "raw", "data.bin"), b"payload")

    assert files(tmp_path) == {"raw": b"a file, not a folder"}


def test_target_that_is_a_folder_is_refused_and_leaves_no_temp_file(root, tmp_path):
    """A folder at the target is refused, not written into."""
    (tmp_path / "batch.parquet").mkdir()

    with pytest.raises(OSError, match=r"batch\.parquet"):
        storage.write_bytes_atomic(layout.join(root, "batch.parquet"), b"payload")

    assert temp_files(tmp_path) == []
    assert files(tmp_path) == {}


def test_parquet_that_pyarrow_cannot_serialize_writes_nothing(root, tmp_path):
    url = layout.join(root, "raw", "batch.parquet")
    storage.write_parquet_atomic(pd.DataFrame({"x": [1, 2]}), url)
    before = files(tmp_path)
    mixed = pd.DataFrame({"x": pd.Series([1, "two"], dtype=object)})

    with pytest.raises(ValueError, match="column x"):
        storage.write_parquet_atomic(mixed, url)

    assert files(tmp_path) == before
    assert storage.read_parquet(url).equals(pd.DataFrame({"x": [1, 2]}))


def test_parquet_round_trip_returns_the_bytes_written(root, tmp_path, iris):
    url = layout.join(root, "iris.parquet")

    data = storage.write_parquet_atomic(iris, url)

    assert (tmp_path / "iris.parquet").read_bytes() == data
    pd.testing.assert_frame_equal(storage.read_parquet(url), iris)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(data)), iris)


def test_json_round_trip_is_stable(root, tmp_path):
    url = layout.join(root, "m.json")

    storage.write_json_atomic(url, {"b": [1, 2], "a": {"z": None}})

    assert storage.read_json(url) == {"a": {"z": None}, "b": [1, 2]}
    assert (tmp_path / "m.json").read_text().splitlines()[1] == '  "a": {'


def test_list_names_is_sorted_filtered_and_ignores_temp_files(root, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in ("b.parquet", "a.parquet", "a.json", ".tmp-0123abcd"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "raw" / "nested").mkdir()
    (tmp_path / "raw" / "nested" / "c.parquet").write_bytes(b"x")
    url = layout.join(root, "raw")

    assert storage.list_names(url, ".parquet") == ["a.parquet", "b.parquet"]
    assert storage.list_names(url, ".json") == ["a.json"]
    assert ".tmp-0123abcd" not in storage.list_names(url)


def test_list_names_of_a_missing_folder_is_empty(root):
    assert storage.list_names(layout.join(root, "never", "created")) == []
    assert storage.list_names(layout.join(root, "never", "created"), ".json") == []


def test_move_creates_the_destination_folder(root, tmp_path):
    storage.write_bytes_atomic(layout.join(root, "raw", "x.bin"), b"x")

    storage.move(layout.join(root, "raw", "x.bin"), layout.join(root, "quarantine", "deep", "x.bin"))

    assert files(tmp_path) == {"quarantine/deep/x.bin": b"x"}


def test_join_tolerates_a_trailing_slash(root):
    assert layout.join(root + "/", "raw", "x") == layout.join(root, "raw", "x") == f"{root}/raw/x"


def test_a_replaced_file_is_on_disk_before_its_name_and_the_name_before_returning(
    root, tmp_path, monkeypatch
):
    """After a power loss the name points at the old bytes or the complete new ones, never at an empty
    file: the data is fsynced before the rename, and the folder (the rename) before the write returns."""
    url = layout.join(root, "models", "production.json")
    storage.write_bytes_atomic(url, b'{"version": "old"}')
    steps = []
    real_fsync, real_replace = storage.os.fsync, storage.os.replace

    def fsync(fd):
        path = Path(f"/proc/self/fd/{fd}").resolve()
        steps.append(("fsync", "folder" if path.is_dir() else path.read_bytes()))
        real_fsync(fd)

    def replace(src, dst):
        steps.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "replace", replace)

    storage.write_bytes_atomic(url, b'{"version": "new"}')

    assert steps == [("fsync", b'{"version": "new"}'), ("replace", "production.json"), ("fsync", "folder")]
    assert files(tmp_path) == {"models/production.json": b'{"version": "new"}'}


def chunked(df: pd.DataFrame, rows: int) -> list[pa.Table]:
    return [
        pa.Table.from_pandas(df.iloc[i : i + rows], preserve_index=False) for i in range(0, len(df), rows)
    ]


def test_parquet_chunks_make_row_groups_of_the_chunk_size_however_they_are_cut(root, tmp_path, iris):
    chunking = Chunking(cells=5 * 40)  # 40 rows a row group for Iris' 5 columns

    rows, sha256 = storage.write_parquet_chunks(
        layout.join(root, "a.parquet"), chunked(iris, 7), chunking=chunking
    )
    storage.write_parquet_chunks(layout.join(root, "b.parquet"), chunked(iris, 149), chunking=chunking)

    data = (tmp_path / "a.parquet").read_bytes()
    assert (rows, sha256) == (len(iris), hashlib.sha256(data).hexdigest())
    assert data == (tmp_path / "b.parquet").read_bytes()
    metadata = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [40, 40, 40, 29]
    with storage.open_parquet(layout.join(root, "a.parquet")) as parquet:
        pd.testing.assert_frame_equal(parquet.read().to_pandas(), iris)


def test_a_failure_in_a_later_chunk_leaves_nothing_and_keeps_the_previous_version(root, tmp_path, iris):
    url = layout.join(root, "features", "x.parquet")
    storage.write_parquet_chunks(url, chunked(iris, 50))
    before = files(tmp_path)

    def failing():
        yield from chunked(iris, 50)[:2]
        raise ValueError("bad row in the last chunk")

    with pytest.raises(ValueError, match="bad row in the last chunk"):
        storage.write_parquet_chunks(url, failing(), chunking=Chunking(cells=5 * 10))
    with pytest.raises(ValueError, match="no chunk of data"):
        storage.write_parquet_chunks(layout.join(root, "features", "y.parquet"), iter([]))

    assert files(tmp_path) == before


def write_half_and_fail(url: str) -> None:
    with storage.atomic_local_path(url) as local:
        Path(local).write_bytes(b"partial")
        raise ValueError("half way")


def test_object_storage_writes_are_one_upload_of_the_complete_file(iris):
    """Any fsspec filesystem that is not the local disk (here fsspec's in-memory one) gets the file in
    one put_file, after it is complete, and nothing when the writer fails."""
    root = f"memory://{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")

    storage.write_parquet_chunks(layout.join(root, "x.parquet"), chunked(iris, 50))
    with pytest.raises(ValueError, match="half way"):
        write_half_and_fail(layout.join(root, "y.bin"))
    storage.copy_in_atomic(__file__, layout.join(root, "copy.py"))

    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root.removeprefix("memory:/"), detail=False)) == [
        "copy.py",
        "x.parquet",
    ]
    assert storage.read_bytes(layout.join(root, "copy.py")) == Path(__file__).read_bytes()
    with storage.open_parquet(layout.join(root, "x.parquet")) as parquet:
        pd.testing.assert_frame_equal(parquet.read().to_pandas(), iris)
