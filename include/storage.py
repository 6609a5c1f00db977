"""Atomic reads and writes under the storage root, through fsspec (local disk or object storage).

A writer never leaves a partial file, whatever its size (:func:`atomic_local_path`: content is written
to a local file first, in any way). On a local disk that file is a temporary sibling, fsynced and
renamed into place (the folder fsynced after). On object storage (S3) it is uploaded with one PUT
(over s3fs's multipart threshold, a multipart upload whose object appears only once completed), which
is all-or-nothing: no temporary object, no rename, nothing to fsync.

``overwrite=False`` creates only: a file already there is left unchanged and the write refused with
``FileExistsError``, decided by the store itself (a hard link on a local disk, a conditional PUT with
``If-None-Match: *`` on S3), so two writers racing for one name cannot both win. The same bytes
already there count as written: a retried write whose first answer was lost must not fail. (Another
fsspec store gets what its ``pipe_file(mode="create")`` does; fsspec's default checks for the file
first, which two racing writers can both pass.)

Listings are never cached: the triggerer, the workers and the model server write and read the same
root from different processes, and each read must see the store as it is now.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from include.chunks import DEFAULT, Chunking

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``url`` (listings not cached) and the path inside it."""
    return fsspec.core.url_to_fs(url, use_listings_cache=False)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


@contextmanager
def atomic_local_path(url: str, *, overwrite: bool = True) -> Iterator[str]:
    """A local file path to write the new content of ``url`` to, in any way and any size: when the block
    ends without an error the file becomes ``url`` in one step; when it raises, nothing is left behind
    and an earlier ``url`` is untouched. With ``overwrite=False`` it creates only (see the module)."""
    fs, path = filesystem(url)
    if not isinstance(fs, LocalFileSystem):
        with tempfile.TemporaryDirectory(prefix="storage-") as folder:
            local = os.path.join(folder, "content")
            yield local
            try:
                # For "create" s3fs sends `If-None-Match: *` and turns the 412 into FileExistsError.
                fs.put_file(local, path, mode="overwrite" if overwrite else "create")
            except FileExistsError:
                _refuse_unless_same(fs, path, local)
        return
    parent = path.rsplit("/", 1)[0]
    os.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
    try:
        yield tmp
        _fsync(tmp)  # the bytes are on disk before the name points at them
        if overwrite:
            os.replace(tmp, path)  # atomic; refuses to replace a folder
        else:
            try:
                os.link(tmp, path)  # atomic; fails if another writer got there first
            except FileExistsError:
                _refuse_unless_same(fs, path, tmp)
        _fsync(parent)  # and the rename itself survives a power loss
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _refuse_unless_same(fs: fsspec.AbstractFileSystem, path: str, local: str) -> None:
    """A create-only write found ``path`` taken: fine if it holds the bytes of ``local``, refused
    otherwise."""
    if fs.size(path) == os.path.getsize(local):
        with open(local, "rb") as ours, fs.open(path, "rb") as theirs:
            while (block := ours.read(1 << 20)) == theirs.read(1 << 20):
                if not block:
                    return
    raise FileExistsError(f"{fs.unstrip_protocol(path)} already exists and is immutable")


def write_bytes_atomic(url: str, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``url`` all at once; with ``overwrite=False`` refuse an existing file that
    holds other bytes."""
    with atomic_local_path(url, overwrite=overwrite) as local, open(local, "wb") as fh:
        fh.write(data)


def copy_in_atomic(local: str, url: str) -> None:
    """Copy the local file ``local`` to ``url`` atomically, without reading it into memory."""
    with atomic_local_path(url) as target:
        shutil.copyfile(local, target)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    return fs.cat_file(path)


def write_json_atomic(url: str, payload: dict[str, Any], *, overwrite: bool = True) -> None:
    write_bytes_atomic(url, json.dumps(payload, indent=2, sort_keys=True).encode(), overwrite=overwrite)


def read_json(url: str) -> dict[str, Any]:
    return json.loads(read_bytes(url))


def write_parquet_atomic(df: pd.DataFrame, url: str, *, overwrite: bool = True) -> bytes:
    """Write ``df`` as Parquet to ``url`` atomically; return the bytes written (for hashing)."""
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    write_bytes_atomic(url, data, overwrite=overwrite)
    return data


def read_parquet(url: str) -> pd.DataFrame:
    import pandas as pd  # here, not at the top: DAG parsing, the triggerer, register and promote need none

    return pd.read_parquet(io.BytesIO(read_bytes(url)))


def write_parquet_chunks(
    url: str, tables: Iterable[pa.Table], *, chunking: Chunking = DEFAULT, overwrite: bool = True
) -> tuple[int, str]:
    """Write the ``tables`` (chunks of one table, all with the first one's schema) as one Parquet file at
    ``url``, atomically, holding a few chunks of rows at once; return the rows and the sha256 of the
    file. Row groups have exactly ``chunking.rows(columns)`` rows (the last fewer), so the bytes depend
    on the data and the chunk size only, not on how the tables were cut. No table at all is an error:
    a Parquet file needs a schema.

    A row group is encoded and written on a second thread while the next chunk is produced (pyarrow
    releases the GIL): one row group at a time, in order, so memory stays a few chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, row_group_rows = 0, 0
    with atomic_local_path(url, overwrite=overwrite) as local, ThreadPoolExecutor(1) as background:
        writer: pq.ParquetWriter | None = None
        pending: list[pa.Table] = []
        writing: Future | None = None
        try:
            for table in tables:
                if writer is None:
                    writer = pq.ParquetWriter(local, table.schema)
                    row_group_rows = chunking.rows(table.num_columns)
                pending.append(table)
                rows += table.num_rows
                if sum(t.num_rows for t in pending) >= row_group_rows:
                    whole = pa.concat_tables(pending)
                    full = whole.num_rows - whole.num_rows % row_group_rows
                    pending = [whole.slice(full)] if full < whole.num_rows else []
                    writing = _write_next(background, writing, writer, whole.slice(0, full), row_group_rows)
            if writer is None:
                raise ValueError(f"nothing to write to {url}: no chunk of data")
            if pending:
                writing = _write_next(background, writing, writer, pa.concat_tables(pending), row_group_rows)
            if writing is not None:
                writing.result()
        finally:
            if writing is not None:
                wait([writing])  # before closing the writer, also when the chunks failed
            if writer is not None:
                writer.close()
        digest = hashlib.sha256()
        with open(local, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return rows, digest.hexdigest()


def _write_next(
    background: ThreadPoolExecutor,
    previous: Future | None,
    writer: pq.ParquetWriter,
    table: pa.Table,
    row_group_rows: int,
) -> Future:
    """Write ``table`` on the background thread once the ``previous`` write is done (its error, if any,
    is raised here)."""
    if previous is not None:
        previous.result()
    return background.submit(writer.write_table, table, row_group_size=row_group_rows)


@contextmanager
def open_parquet(url: str) -> Iterator[pq.ParquetFile]:
    """The Parquet file at ``url``, opened for reading in row groups or batches (never all at once)."""
    import pyarrow.parquet as pq

    fs, path = filesystem(url)
    with pq.ParquetFile(path, filesystem=fs) as parquet:
        yield parquet


def list_names(url: str, suffix: str = "") -> list[str]:
    """Sorted names of the files directly under ``url`` that end with ``suffix`` (none if absent)."""
    fs, path = filesystem(url)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    names = (entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries)
    return sorted(n for n in names if n.endswith(suffix) and not n.startswith(".tmp-"))


def move(src: str, dst: str) -> None:
    """Move a file: a rename on a local disk; on object storage a server-side copy, then a delete of
    ``src`` (a move killed in between leaves both, each complete)."""
    fs, src_path = filesystem(src)
    _, dst_path = filesystem(dst)
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(dst_path.rsplit("/", 1)[0], exist_ok=True)
    fs.mv(src_path, dst_path)


def remove(url: str) -> None:
    """Delete the file at ``url`` if it exists."""
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path)


def remove_tree(url: str) -> None:
    """Delete the folder at ``url`` and everything in it, if it exists."""
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
