"""Atomic reads and writes under the storage root, through fsspec (local disk or object storage).

A writer never leaves a partial file: it writes a temporary sibling and moves it into place. On a
local disk the move is an atomic rename; on object storage a single PUT is already all-or-nothing.
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
    """The fsspec filesystem for ``url`` and the path inside it."""
    return fsspec.core.url_to_fs(url)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def write_bytes_atomic(url: str, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``url`` all at once; with ``overwrite=False`` refuse an existing file."""
    fs, path = filesystem(url)
    if not overwrite and fs.exists(path):
        raise FileExistsError(f"{url} already exists and is immutable")
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    if not isinstance(fs, LocalFileSystem):
        fs.pipe_file(path, data)
        return
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        if overwrite:
            os.replace(tmp, path)  # atomic; refuses to replace a folder
        else:
            os.link(tmp, path)  # atomic; fails if another writer got there first
        _fsync_dir(parent)  # and the rename itself survives a power loss
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    if not fs.exists(path):
        return []
    names = (entry.rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))
    return sorted(n for n in names if n.endswith(suffix) and not n.startswith(".tmp-"))


def move(src: str, dst: str) -> None:
    fs, src_path = filesystem(src)
    _, dst_path = filesystem(dst)
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
