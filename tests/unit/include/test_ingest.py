"""Download from real local HTTP servers and land batches on a real local storage root."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest

from include import batches, layout, storage
from include.batches import CheckFailure
from include.ingest import (
    BatchFormatError,
    Download,
    DownloadError,
    DuplicateBatchError,
    download,
    known_fingerprint,
    land,
    parse_csv,
)
from scripts.data_source import DataSource

NOW = datetime(2026, 11, 21, 16, 15, 0, 123456, tzinfo=UTC)
SOURCE_URL = "http://127.0.0.1:8000/iris.csv"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def content(iris) -> bytes:
    return iris.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory) -> Path:
    """The data sources' folder, outside the storage root so storage snapshots do not see it."""
    return tmp_path_factory.mktemp("source")


@pytest.fixture(scope="module")
def source(source_dir: Path) -> Iterator[DataSource]:
    """One real data source for the module (stopping one takes half a second)."""
    server = DataSource(source_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bare_source(source_dir: Path) -> Iterator[DataSource]:
    """The same folder served without ETag / Last-Modified."""
    server = DataSource(source_dir, validators=False).start()
    yield server
    server.stop()


@pytest.fixture
def published(source_dir: Path, content: bytes) -> str:
    """The name of a file of its own at the data sources, holding ``content``."""
    name = f"{uuid.uuid4().hex}.csv"
    (source_dir / name).write_bytes(content)
    os.utime(source_dir / name, (MTIME, MTIME))
    return name


@contextmanager
def serving(respond: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A real HTTP server on a free port answering every GET with ``respond(handler)``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # some clients hang up early
                respond(self)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/iris.csv"
    finally:
        server.shutdown()
        server.server_close()


def streaming(body: bytes, chunk: int = 1000, repeat: int = 1, sent: list[int] | None = None):
    """A response without Content-Length: ``body``, ``repeat`` times, then the connection closes."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.end_headers()
        for _ in range(repeat):
            for start in range(0, len(body), chunk):
                handler.wfile.write(body[start : start + chunk])
                handler.wfile.flush()
                if sent is not None:
                    sent[0] += len(body[start : start + chunk])

    return respond


def received(content: bytes, etag: str | None = '"v1"', last_modified: str | None = None) -> Download:
    """A download as ``download`` returns it, without the HTTP round trip."""
    return Download(content, hashlib.sha256(content).hexdigest(), etag, last_modified)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def batch_id(at: datetime, content: bytes) -> str:
    return f"{at:%Y%m%dT%H%M%S%fZ}-{hashlib.sha256(content).hexdigest()[:8]}"


# --- download ------------------------------------------------------------------------------------


def test_download_returns_content_hash_and_validators(source, published, content):
    batch = download(source.url(published), timeout=5, max_bytes=len(content))

    assert batch.content == content
    assert batch.sha256 == hashlib.sha256(content).hexdigest()
    assert batch.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert batch.etag == httpx.get(source.url(published)).headers["etag"]
    assert batch.etag.startswith('"')
    assert batch.fingerprint == {
        "etag": batch.etag,
        "last_modified": "Tue, 14 Nov 2023 22:13:20 GMT",
        "sha256": batch.sha256,
    }


def test_download_from_a_source_without_validators(bare_source, published, content):
    batch = download(bare_source.url(published), timeout=5, max_bytes=len(content))

    assert (batch.content, batch.etag, batch.last_modified) == (content, None, None)


def test_declared_body_over_the_limit_is_refused(source, published, content):
    with pytest.raises(
        DownloadError, match=f"body of {len(content)} bytes exceeds the {len(content) - 1}-byte"
    ):
        download(source.url(published), timeout=5, max_bytes=len(content) - 1)
    assert source.statuses[-1] == 200


def test_streamed_body_at_the_limit_is_read(content):
    with serving(streaming(content)) as url:
        batch = download(url, timeout=5, max_bytes=len(content))

    assert batch.content == content
    assert (batch.etag, batch.last_modified) == (None, None)


def test_streamed_body_over_the_limit_is_refused(content):
    with (
        serving(streaming(content)) as url,
        pytest.raises(DownloadError, match=f"body exceeds the {len(content) - 1}-byte limit"),
    ):
        download(url, timeout=5, max_bytes=len(content) - 1)


def test_endless_stream_is_cut_off_without_reading_it_all():
    sent = [0]
    done = threading.Event()
    chunk = b"x" * (1 << 16)
    total = len(chunk) * 3000  # about 200 MB

    def respond(handler: BaseHTTPRequestHandler) -> None:
        try:
            streaming(chunk, chunk=len(chunk), repeat=3000, sent=sent)(handler)
        finally:
            done.set()

    with serving(respond) as url:
        started = time.monotonic()
        with pytest.raises(DownloadError, match="exceeds the 100000-byte limit"):
            download(url, timeout=5, max_bytes=100_000)
        elapsed = time.monotonic() - started
        assert done.wait(5), "the server should see the client hang up"

    assert elapsed < 2
    assert sent[0] < total // 10


def test_http_error_names_the_status(source):
    with pytest.raises(DownloadError, match=r"answered HTTP 404"):
        download(source.url("missing.csv"), timeout=5, max_bytes=1000)
    assert source.statuses[-1] == 404


def test_server_error_names_the_status():
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_error(503)

    with serving(respond) as url, pytest.raises(DownloadError, match="HTTP 503"):
        download(url, timeout=5, max_bytes=1000)


def test_refused_connection_is_a_download_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DownloadError, match=f"GET http://127.0.0.1:{port}/iris.csv failed"):
        download(f"http://127.0.0.1:{port}/iris.csv", timeout=2, max_bytes=1000)


def test_server_slower_than_the_timeout(content):
    release = threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        release.wait(5)
        streaming(content)(handler)

    with serving(respond) as url:
        started = time.monotonic()
        try:
            with pytest.raises(DownloadError, match="Timeout"):
                download(url, timeout=0.3, max_bytes=len(content))
        finally:
            release.set()
    assert time.monotonic() - started < 3


def test_server_stalling_mid_body(content):
    release = threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content[:100])
        handler.wfile.flush()
        release.wait(5)

    with serving(respond) as url:
        try:
            with pytest.raises(DownloadError, match="Timeout"):
                download(url, timeout=0.3, max_bytes=len(content))
        finally:
            release.set()


def test_trickling_server_cannot_outlast_the_timeout():
    """The timeout bounds the whole download, not each read: a byte every 0.1 s must not outlast it."""
    release = threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not release.is_set():
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)

    with serving(respond) as url:
        started = time.monotonic()
        try:
            with pytest.raises(DownloadError):
                download(url, timeout=0.3, max_bytes=1_000_000)
        finally:
            release.set()
    assert time.monotonic() - started < 1.0


# --- parse_csv -----------------------------------------------------------------------------------


def test_parse_csv_infers_types(content, iris):
    frame = parse_csv(content)

    pd.testing.assert_frame_equal(frame, iris)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (PNG, "not a readable CSV table: 'utf-8' codec"),
        (b"", "not a readable CSV table: No columns"),
        (b"sepal_length,species\n", "header but no rows"),
        (b'sepal_length,species\n"5.1,setosa\n', "not a readable CSV table: Error tokenizing"),
        (b"a,b\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
    ],
    ids=["binary", "empty", "header-only", "open-quote", "extra-field"],
)
def test_parse_csv_refuses_what_is_not_a_table(body, problem):
    with pytest.raises(BatchFormatError, match=problem):
        parse_csv(body)


def test_parse_csv_refuses_rows_longer_than_the_header():
    """pandas would turn the surplus leading field into an index, which landing would then drop."""
    with pytest.raises(BatchFormatError):
        parse_csv(b"a,b\n1,2,3\n4,5,6\n")


# --- land ----------------------------------------------------------------------------------------


def test_land_writes_parquet_and_manifest(root, tmp_path, content):
    batch = received(content, etag='"abc"', last_modified="Tue, 14 Nov 2023 22:13:20 GMT")

    manifest = land(root, batch, source_url=SOURCE_URL, now=NOW)

    sha = hashlib.sha256(content).hexdigest()
    batch_id = f"20261121T161500123456Z-{sha[:8]}"
    assert manifest == {
        "batch_id": batch_id,
        "sha256": sha,
        "landed_at": "2026-11-21T16:15:00.123456+00:00",
        "rows": 149,
        "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"],
        "source": {
            "url": SOURCE_URL,
            "etag": '"abc"',
            "last_modified": "Tue, 14 Nov 2023 22:13:20 GMT",
            "sha256": sha,
        },
    }
    assert sorted(snapshot(tmp_path)) == [f"raw/batches/{batch_id}.json", f"raw/batches/{batch_id}.parquet"]
    assert batches.list_raw_batches(root) == [batch_id]
    assert batches.raw_manifest(root, batch_id) == manifest
    assert batches.last_seen(root) == manifest


def test_landed_parquet_is_what_pandas_reads_from_the_csv(root, content):
    manifest = land(root, received(content), source_url=SOURCE_URL, now=NOW)

    landed = batches.load_raw_batch(root, manifest["batch_id"])

    pd.testing.assert_frame_equal(landed, pd.read_csv(io.BytesIO(content)))


def test_land_without_now_uses_the_current_utc_time(root, content):
    before = datetime.now(UTC)
    manifest = land(root, received(content), source_url=SOURCE_URL)
    after = datetime.now(UTC)

    landed_at = datetime.fromisoformat(manifest["landed_at"])
    assert before <= landed_at <= after
    assert manifest["batch_id"] == batch_id(landed_at, content)


def test_download_then_land_end_to_end(root, source, published, content):
    url = source.url(published)

    manifest = land(root, download(url, timeout=5, max_bytes=1_000_000), source_url=url, now=NOW)

    served = httpx.get(url).headers
    assert manifest["source"] == {
        "url": url,
        "etag": served["etag"],
        "last_modified": served["last-modified"],
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    pd.testing.assert_frame_equal(batches.load_raw_batch(root, manifest["batch_id"]), parse_csv(content))


def test_same_content_again_is_a_duplicate_and_writes_nothing(root, tmp_path, content):
    first = land(root, received(content, etag='"v1"'), source_url=SOURCE_URL, now=NOW)
    before = snapshot(tmp_path)

    with pytest.raises(DuplicateBatchError, match=f"already received as batch {first['batch_id']}"):
        # New validators and a new time: only the content decides.
        land(root, received(content, etag='"v2"'), source_url=SOURCE_URL, now=NOW + timedelta(hours=1))

    assert snapshot(tmp_path) == before


def test_content_of_a_quarantined_batch_is_still_a_duplicate(root, tmp_path, content):
    first = land(root, received(content), source_url=SOURCE_URL, now=NOW)
    batches.quarantine_batch(root, first["batch_id"], [CheckFailure("range", "sepal_width", "too wide")])
    before = snapshot(tmp_path)

    with pytest.raises(DuplicateBatchError, match=first["batch_id"]):
        land(root, received(content), source_url=SOURCE_URL, now=NOW + timedelta(hours=1))

    assert snapshot(tmp_path) == before
    assert batches.list_raw_batches(root) == []


def test_different_content_lands_as_a_new_batch(root, iris, content):
    first = land(root, received(content), source_url=SOURCE_URL, now=NOW)
    other = iris.iloc[:10].to_csv(index=False).encode()

    second = land(root, received(other), source_url=SOURCE_URL, now=NOW + timedelta(seconds=1))

    assert second["rows"] == 10
    assert batches.list_raw_batches(root) == [first["batch_id"], second["batch_id"]]


def test_content_that_is_not_csv_is_quarantined_as_received(root, tmp_path, quarantine_reason):
    expected_id = batch_id(NOW, PNG)

    with pytest.raises(BatchFormatError, match=f"batch {expected_id} quarantined: content is not a readable"):
        land(root, received(PNG), source_url=SOURCE_URL, now=NOW)

    assert sorted(snapshot(tmp_path)) == [
        f"quarantine/{expected_id}.csv",
        f"quarantine/{expected_id}.json",
        f"quarantine/{expected_id}.reason.json",
    ]
    assert (tmp_path / "quarantine" / f"{expected_id}.csv").read_bytes() == PNG
    [failure] = quarantine_reason(expected_id)["failed_checks"]
    assert (failure["check"], failure["column"]) == ("format", None)
    assert "utf-8" in failure["message"]
    assert batches.list_raw_batches(root) == []
    manifest = batches.last_seen(root)
    assert manifest["batch_id"] == expected_id
    assert manifest["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert manifest["source"]["url"] == SOURCE_URL
    assert "rows" not in manifest


def test_header_only_csv_is_quarantined(root, tmp_path, quarantine_reason):
    body = b"sepal_length,sepal_width,petal_length,petal_width,species\n"

    with pytest.raises(BatchFormatError, match="header but no rows"):
        land(root, received(body), source_url=SOURCE_URL, now=NOW)

    expected_id = batch_id(NOW, body)
    assert (tmp_path / "quarantine" / f"{expected_id}.csv").read_bytes() == body
    [failure] = quarantine_reason(expected_id)["failed_checks"]
    assert failure == {"check": "format", "column": None, "message": "CSV has a header but no rows"}


def test_quarantined_format_error_is_a_duplicate_next_time(root, tmp_path):
    with pytest.raises(BatchFormatError):
        land(root, received(PNG), source_url=SOURCE_URL, now=NOW)
    before = snapshot(tmp_path)

    with pytest.raises(DuplicateBatchError, match=batch_id(NOW, PNG)):
        land(root, received(PNG), source_url=SOURCE_URL, now=NOW + timedelta(minutes=5))

    assert snapshot(tmp_path) == before


def test_last_seen_is_the_newest_across_raw_and_quarantine(root, iris, content):
    first = land(root, received(content), source_url=SOURCE_URL, now=NOW)
    assert batches.last_seen(root) == first

    with pytest.raises(BatchFormatError):
        land(root, received(PNG), source_url=SOURCE_URL, now=NOW + timedelta(seconds=1))
    assert batches.last_seen(root)["batch_id"] == batch_id(NOW + timedelta(seconds=1), PNG)

    third = land(
        root,
        received(iris.iloc[:3].to_csv(index=False).encode()),
        source_url=SOURCE_URL,
        now=NOW + timedelta(seconds=2),
    )
    assert batches.last_seen(root) == third
    assert [m["batch_id"] for m in batches.seen_manifests(root)] == [
        first["batch_id"],
        batch_id(NOW + timedelta(seconds=1), PNG),
        third["batch_id"],
    ]


def test_parquet_left_without_manifest_is_ignored_and_the_content_lands_again(root, content):
    # What a crash between the two writes of an earlier attempt leaves behind.
    leftover = batch_id(NOW, content)
    storage.write_parquet_atomic(parse_csv(content), layout.raw_batch(root, leftover, ".parquet"))
    assert batches.list_raw_batches(root) == []
    assert batches.seen_manifests(root) == []
    assert batches.last_seen(root) is None

    manifest = land(root, received(content), source_url=SOURCE_URL, now=NOW + timedelta(seconds=10))

    assert batches.list_raw_batches(root) == [manifest["batch_id"]]
    assert manifest["batch_id"] != leftover


def test_known_fingerprint_is_the_newest_batch_received(root, iris, content):
    assert known_fingerprint(root, SOURCE_URL) is None
    land(
        root,
        received(content, etag='"v1"', last_modified="Sat, 21 Nov 2026 16:15:00 GMT"),
        source_url=SOURCE_URL,
        now=NOW,
    )
    other = iris.iloc[:50].to_csv(index=False).encode()
    newest = land(root, received(other, etag='"v2"'), source_url=SOURCE_URL, now=NOW + timedelta(seconds=1))

    assert known_fingerprint(root, SOURCE_URL) == newest["source"]
    assert known_fingerprint(root, SOURCE_URL)["etag"] == '"v2"'


def test_after_the_url_changed_only_the_content_hash_is_compared(root, content):
    manifest = land(root, received(content, etag='"v1"'), source_url=SOURCE_URL, now=NOW)

    assert known_fingerprint(root, "http://elsewhere.test/iris.csv") == {"sha256": manifest["sha256"]}
