"""Atomic reads and writes under the storage root, through fsspec (local disk or object storage).

A writer never leaves a partial file. On a local disk it writes a temporary sibling, fsyncs it and
renames it into place (the folder fsynced after). On object storage (S3) a file is one PUT (over
100 MB, s3fs's multipart upload, whose object appears only once completed), which is all-or-nothing:
no temporary object, no rename, nothing to fsync.

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

import io
import json
import os
import uuid
from typing import TYPE_CHECKING, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

if TYPE_CHECKING:
    import pandas as pd


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``url`` (listings not cached) and the path inside it."""
    return fsspec.core.url_to_fs(url, use_listings_cache=False)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def write_bytes_atomic(url: str, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``url`` all at once; with ``overwrite=False`` refuse an existing file that
    holds other bytes."""
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        _write_local(fs, path, data, overwrite)
        return
    try:
        # One PUT; for "create" s3fs sends `If-None-Match: *` and turns the 412 into FileExistsError.
        fs.pipe_file(path, data, mode="overwrite" if overwrite else "create")
    except FileExistsError:
        _refuse_unless_same(fs, path, data)


def _write_local(fs: LocalFileSystem, path: str, data: bytes, overwrite: bool) -> None:
    parent = path.rsplit("/", 1)[0]
    os.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        if overwrite:
            os.replace(tmp, path)  # atomic; refuses to replace a folder
        else:
            try:
                os.link(tmp, path)  # atomic; fails if another writer got there first
            except FileExistsError:
                _refuse_unless_same(fs, path, data)
        _fsync_dir(parent)  # and the rename itself survives a power loss
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _refuse_unless_same(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """A create-only write found ``path`` taken: fine if it holds ``data``, refused otherwise."""
    if fs.cat_file(path) != data:
        raise FileExistsError(f"{fs.unstrip_protocol(path)} already exists and is immutable")


def _fsync_dir(path: str) -> None:
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
