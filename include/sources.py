"""The two kinds of source ``ingest`` watches, and how each is read (no pandas: the triggerer imports it).

- **A single URL** (``http://`` or ``https://``): one CSV whose content is replaced now and then. Only its
  latest content can be seen; anything replaced between two polls is never seen.
- **A drop folder** (any other fsspec URL: ``file:///srv/drop/``, ``s3://bucket/prefix/``, or a plain
  path): every file directly in it is one batch. A file counts once its size and modification time are
  the same in two listings one poll apart (a file still being written changes between them); names
  starting with ``.`` or ``_`` are ignored, so a writer can write ``.name.tmp`` and rename it.

Both are read within the ``crawl_*`` limits: the HTTP deadline bounds the whole download (also while a
chunk is stalled), bodies over the byte limit are cut off, and redirects are followed only to the same
scheme and host.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import posixpath
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from stat import S_ISREG
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import certifi
import fsspec
import httpx
from fsspec.implementations.local import LocalFileSystem

from include.errors import ConfigurationError

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)  # not httpx's is_redirect: that is every 3xx, 304 included
IGNORED_PREFIXES = (".", "_")
COPY_BLOCK_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """The source could not be read: HTTP error, timeout, refused redirect, or content over the limit."""


class SourcesError(ConfigurationError):
    """A ``crawl_url`` value that names no source, or names one twice."""


def watched_urls(value: str) -> list[str]:
    """The sources a ``crawl_url`` value names: one URL, or a JSON list of URLs (several sources
    watched at once, e.g. ``["file:///srv/drop/", "https://example.com/feed.csv"]``)."""
    text = value.strip()
    if not text.startswith("["):
        if not text:
            raise SourcesError("crawl_url is empty: set it to a URL or a JSON list of URLs")
        return [text]
    try:
        urls = json.loads(text)
    except ValueError as exc:
        raise SourcesError(
            f"crawl_url {value[:200]!r} starts with '[' but is not a JSON list: {exc}"
        ) from None
    if not urls or not all(isinstance(url, str) and url.strip() for url in urls):
        raise SourcesError(f"crawl_url {value[:200]!r} must list one URL or more, each a non-empty string")
    urls = [url.strip() for url in urls]
    if twice := sorted({url for url in urls if urls.count(url) > 1}):
        raise SourcesError(f"crawl_url names {', '.join(twice)} more than once")
    return urls


def is_folder(url: str) -> bool:
    """Whether ``url`` names a drop folder (anything but an http(s) URL) rather than one CSV."""
    return urlsplit(url).scheme not in ("http", "https")


# --- a single URL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """One GET: ``status`` 304 (unchanged, no body) or 200 with the body's sha256 and size."""

    url: str
    status: int
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    size: int = 0

    @property
    def validators(self) -> dict[str, str | None]:
        return {"etag": self.etag, "last_modified": self.last_modified}


def _follow(origin: httpx.URL, current: httpx.URL, location: str | None) -> httpx.URL:
    """Where a redirect leads, refusing another scheme or host (a source must not send us elsewhere)."""
    if not location:
        raise DownloadError(f"GET {origin} redirected without a Location")
    target = current.join(location)
    if (target.scheme, target.host, target.port) != (origin.scheme, origin.host, origin.port):
        raise DownloadError(
            f"GET {origin} redirected to {target}: only redirects to the same scheme and host are followed"
        )
    return target


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    headers: dict[str, str] | None = None,
    sink: BinaryIO | None = None,
) -> Fetched:
    """GET ``url`` with ``client`` (which must not follow redirects itself), hashing the body as it
    streams and writing it to ``sink`` if given (the body is never held whole in memory); raise
    DownloadError for a status other than 200/304, a refused redirect or a body over ``max_bytes``. The
    caller bounds the time (``asyncio.timeout``)."""
    origin = current = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", current, headers=headers) as response:
            if response.status_code == 304:
                return Fetched(url, 304)
            if response.status_code in REDIRECTS:
                current = _follow(origin, current, response.headers.get("location"))
                continue
            if response.status_code != 200:
                raise DownloadError(f"GET {url} answered HTTP {response.status_code}")
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise DownloadError(f"GET {url}: body of {declared} bytes exceeds the {max_bytes}-byte limit")
            digest, size = hashlib.sha256(), 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"GET {url}: body exceeds the {max_bytes}-byte limit")
                digest.update(chunk)
                if sink is not None:
                    sink.write(chunk)
            return Fetched(
                url,
                200,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                sha256=digest.hexdigest(),
                size=size,
            )
    raise DownloadError(f"GET {url}: more than {MAX_REDIRECTS} redirects")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every poll: building one costs ~0.2 s, more than a local poll itself."""
    return ssl.create_default_context(cafile=certifi.where())


def http_client(timeout: float) -> httpx.AsyncClient:
    """A client for :func:`fetch`: redirects are followed by ``fetch`` itself (same host only)."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=_tls())


async def fetch_within(
    url: str, *, timeout: float, max_bytes: int, client: httpx.AsyncClient | None = None, **kwargs: Any
) -> Fetched:
    """:func:`fetch` with a deadline of ``timeout`` seconds over the whole exchange: a stalled read is
    cancelled at the deadline, not after another read timeout. Every failure is a DownloadError.
    ``client`` (from :func:`http_client`) is used and kept open, so its connections serve the next
    polls; None: a client for this request alone."""
    try:
        async with contextlib.AsyncExitStack() as stack:
            if client is None:
                client = await stack.enter_async_context(http_client(timeout))
            async with asyncio.timeout(timeout):
                return await fetch(client, url, max_bytes=max_bytes, **kwargs)
    except TimeoutError:
        raise DownloadError(f"GET {url} failed: Timeout, not finished within {timeout} s") from None
    except httpx.HTTPError as exc:
        raise DownloadError(f"GET {url} failed: {exc!r}") from exc


def download(url: str, sink: BinaryIO, *, timeout: float, max_bytes: int) -> Fetched:
    """GET ``url`` into the file ``sink``, within ``timeout`` seconds in all and ``max_bytes``; on a
    DownloadError ``sink`` holds a part of the body, which the caller discards."""
    return asyncio.run(fetch_within(url, timeout=timeout, max_bytes=max_bytes, sink=sink))


# --- a drop folder -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileItem:
    """A file in a drop folder as one listing saw it: its URL, size and modification time (epoch s)."""

    url: str
    size: int
    mtime: float

    @property
    def validators(self) -> dict[str, Any]:
        return {"size": self.size, "mtime": self.mtime}


def _mtime(info: dict[str, Any]) -> float:
    """The modification time of an fsspec ``info`` entry (local: ``mtime``; S3: ``LastModified``; ...)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        if isinstance(value, int | float):
            return float(value)
    return 0.0


def list_folder(url: str, after: str | None = None, cache: DirCache | None = None) -> list[FileItem]:
    """The files directly in the folder ``url`` (none if it does not exist), hidden names left out; with
    ``after`` (a file name), only those whose name sorts after it, at a cost that depends on how many
    those are, not on how many files the folder holds (see :func:`_list_after`)."""
    fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache(path)  # object stores cache listings; a poll must see the store as it is now
    if after is not None:
        return _list_after(fs, path, after, cache)
    return _listed_files(fs, path)


def _listed_files(fs: fsspec.AbstractFileSystem, path: str, after: str = "") -> list[FileItem]:
    """The visible files of one listing of the whole folder, those named after ``after`` if given."""
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    return [
        FileItem(fs.unstrip_protocol(entry["name"]), int(entry.get("size") or 0), _mtime(entry))
        for entry in entries
        if entry.get("type") == "file"
        and _visible(entry["name"])
        and posixpath.basename(entry["name"].rstrip("/")) > after
    ]


def _visible(name: str) -> bool:
    return not posixpath.basename(name.rstrip("/")).startswith(IGNORED_PREFIXES)


@dataclass
class DirCache:
    """The names a local folder held at its last scan (those after the watermark), with the folder's
    modification time then: a folder whose mtime has not changed since holds the same names."""

    mtime_ns: int = -1
    scanned_ns: int = 0
    names: tuple[str, ...] = ()


# A folder's mtime comes from the kernel's coarse clock (up to a few ms behind); a scan that began
# less than this after the folder's last change is not trusted to have seen every name ("racy git").
RACY_NS = 2_000_000_000


def _list_after(
    fs: fsspec.AbstractFileSystem, path: str, after: str, cache: DirCache | None
) -> list[FileItem]:
    """The visible files in ``path`` named after ``after``.

    - S3: ``ListObjectsV2`` with ``StartAfter``: one request per 1,000 such files, whatever sorts before.
    - A local disk: a ``stat`` of the folder; the folder is scanned again (names only) only when its
      mtime changed (a name was added, removed or renamed), then each file after ``after`` is
      ``stat``-ed. Passing the same ``cache`` from poll to poll is what skips the scan.
    - Any other store: a listing of the whole folder, filtered (its size still grows with the folder).
    """
    if isinstance(fs, LocalFileSystem):
        return _local_after(fs, path, after, cache)
    if "s3" in ((fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol):
        return _s3_after(fs, path, after)
    return _listed_files(fs, path, after)


def _local_after(fs: LocalFileSystem, path: str, after: str, cache: DirCache | None) -> list[FileItem]:
    cache = cache if cache is not None else DirCache()
    try:
        mtime_ns = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return []
    if mtime_ns != cache.mtime_ns or cache.scanned_ns - mtime_ns < RACY_NS:
        scanned_ns = time.time_ns()
        try:
            with os.scandir(path) as entries:
                names = tuple(e.name for e in entries if e.name > after and _visible(e.name))
        except FileNotFoundError:
            return []
        cache.mtime_ns, cache.scanned_ns, cache.names = mtime_ns, scanned_ns, names
    items = []
    for name in cache.names:
        if name <= after:
            continue
        try:
            stat = os.stat(os.path.join(path, name))
        except FileNotFoundError:  # removed since the scan
            continue
        if S_ISREG(stat.st_mode):
            items.append(FileItem(fs.unstrip_protocol(f"{path}/{name}"), stat.st_size, stat.st_mtime))
    return items


def _s3_after(fs: fsspec.AbstractFileSystem, path: str, after: str) -> list[FileItem]:
    bucket, key, _ = fs.split_path(path)
    prefix = f"{key.rstrip('/')}/" if key else ""
    request = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "StartAfter": prefix + after}
    items = []
    while True:
        page = fs.call_s3("list_objects_v2", **request)
        for entry in page.get("Contents", []):
            if _visible(entry["Key"]) and not entry["Key"].endswith("/"):
                items.append(FileItem(f"s3://{bucket}/{entry['Key']}", int(entry["Size"]), _mtime(entry)))
        if not page.get("IsTruncated"):
            return items
        request["ContinuationToken"] = page["NextContinuationToken"]


def settled(previous: dict[str, FileItem], current: list[FileItem]) -> list[FileItem]:
    """The files of ``current`` whose size and modification time are what ``previous`` (the listing
    one poll earlier, by URL) saw: a file still being written changes between two listings. Oldest
    first."""
    return sorted(
        (item for item in current if previous.get(item.url) == item), key=lambda i: (i.mtime, i.url)
    )


def copy_file(url: str, sink: BinaryIO, *, max_bytes: int) -> tuple[str, int]:
    """Copy the file ``url`` into ``sink`` a block at a time, hashing it as it goes; its sha256 and
    size. DownloadError if it is (or grows while read to be) larger than ``max_bytes``."""
    fs, path = fsspec.core.url_to_fs(url)
    size = fs.size(path)
    if size is not None and size > max_bytes:
        raise DownloadError(f"{url}: {size} bytes exceed the {max_bytes}-byte limit")
    digest, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as source:
        while block := source.read(COPY_BLOCK_BYTES):
            size += len(block)
            if size > max_bytes:
                raise DownloadError(f"{url}: more than the {max_bytes}-byte limit")
            digest.update(block)
            sink.write(block)
    return digest.hexdigest(), size
