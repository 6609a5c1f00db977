"""Download a batch from the source and land it as an immutable raw Parquet file (see ``batches``)."""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pandas as pd

from include import batches, layout, storage


class DownloadError(RuntimeError):
    """The source could not be read (HTTP error, timeout, or the body was too large)."""


class BatchFormatError(ValueError):
    """The downloaded content is not a CSV table with at least one row."""


class DuplicateBatchError(ValueError):
    """The content was landed before; the same content is never landed twice."""


@dataclass(frozen=True)
class Download:
    content: bytes
    sha256: str
    etag: str | None
    last_modified: str | None

    @property
    def fingerprint(self) -> dict[str, str | None]:
        return {"etag": self.etag, "last_modified": self.last_modified, "sha256": self.sha256}


def download(url: str, *, timeout: float, max_bytes: int) -> Download:
    """GET ``url`` within ``timeout`` seconds in all, refusing a body larger than ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise DownloadError(f"GET {url} answered HTTP {response.status_code}")
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise DownloadError(f"GET {url}: body of {declared} bytes exceeds the {max_bytes}-byte limit")
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"GET {url}: body exceeds the {max_bytes}-byte limit")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise DownloadError(f"GET {url} did not finish within {timeout} s")
            headers = response.headers
    except httpx.HTTPError as exc:
        raise DownloadError(f"GET {url} failed: {exc!r}") from exc
    content = b"".join(chunks)
    return Download(
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
    )


def parse_csv(content: bytes) -> pd.DataFrame:
    """Read CSV content with pandas' own type inference; validation of the values is ETL's job."""
    try:
        frame = pd.read_csv(io.BytesIO(content))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BatchFormatError(f"content is not a readable CSV table: {exc}") from exc
    if frame.empty:
        raise BatchFormatError("CSV has a header but no rows")
    if not frame.index.equals(pd.RangeIndex(len(frame))):  # pandas made the surplus fields an index
        raise BatchFormatError("some rows have more fields than the header")
    return frame


def land(root: str, batch: Download, *, source_url: str, now: datetime | None = None) -> dict:
    """Land ``batch`` as ``raw/batches/<batch_id>.parquet`` plus its manifest; return the manifest.

    Content seen before (landed or quarantined) raises DuplicateBatchError and writes nothing. Content
    that is not a CSV table is kept as received in ``quarantine/`` with a reason file (so it is not
    fetched again) and raises BatchFormatError.
    """
    for manifest in batches.seen_manifests(root):
        if manifest["sha256"] == batch.sha256:
            raise DuplicateBatchError(
                f"content sha256 {batch.sha256} was already received as batch {manifest['batch_id']}"
            )
    landed_at = now or datetime.now(UTC)
    batch_id = layout.make_id(landed_at, batch.sha256)
    manifest = {
        "batch_id": batch_id,
        "sha256": batch.sha256,
        "landed_at": landed_at.isoformat(),
        "source": {"url": source_url, **batch.fingerprint},
    }
    try:
        frame = parse_csv(batch.content)
    except BatchFormatError as exc:
        batches.write_reason(root, batch_id, [batches.CheckFailure("format", None, str(exc))])
        storage.write_bytes_atomic(layout.quarantined(root, batch_id, ".csv"), batch.content, overwrite=False)
        storage.write_json_atomic(layout.quarantined(root, batch_id, ".json"), manifest, overwrite=False)
        raise BatchFormatError(f"batch {batch_id} quarantined: {exc}") from exc
    manifest |= {"rows": len(frame), "columns": list(map(str, frame.columns))}
    storage.write_parquet_atomic(frame, layout.raw_batch(root, batch_id, ".parquet"), overwrite=False)
    storage.write_json_atomic(layout.raw_batch(root, batch_id, ".json"), manifest, overwrite=False)
    return manifest


def known_fingerprint(root: str, source_url: str) -> dict | None:
    """What the source watcher compares new content with: the newest batch received (landed or
    quarantined). Its ETag and Last-Modified only mean something at the URL they came from; after
    ``crawl_url`` changed, only the content hash is compared."""
    manifest = batches.last_seen(root)
    if manifest is None:
        return None
    source = manifest["source"]
    return source if source["url"] == source_url else {"sha256": source["sha256"]}
