"""Download from real local HTTP servers and land batches on a real local storage root."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pandas as pd
import pytest

from include import batches, csv_to_parquet, layout, ledger, storage
from include.batches import CheckFailure
from include.ingest import Received, announcement, land, land_arrival, receive
from include.sources import DownloadError, Fetched, download, fetch_within
from tests.http_servers import send_body, serving, stall_until_hang_up
from tests.received import received as received_file
from tests.snapshots import files

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


@pytest.fixture
def published(source_dir: Path, content: bytes) -> str:
    """The name of a file of its own at the data sources, holding ``content``."""
    name = f"{uuid.uuid4().hex}.csv"
    (source_dir / name).write_bytes(content)
    os.utime(source_dir / name, (MTIME, MTIME))
    return name


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


@pytest.fixture
def received(tmp_path_factory) -> Callable[..., Received]:
    """Content as read from the single URL ``url``, without the HTTP round trip."""
    folder = tmp_path_factory.mktemp("received")

    def received(
        content: bytes, etag: str | None = '"v1"', last_modified: str | None = None, url: str = SOURCE_URL
    ) -> Received:
        return received_file(folder, content, url, {"etag": etag, "last_modified": last_modified})

    return received


def fetch_body(url: str, **limits) -> tuple[Fetched, bytes]:
    """:func:`download` into memory: what it answered and the body it wrote."""
    sink = io.BytesIO()
    return download(url, sink, **limits), sink.getvalue()


def batch_id(at: datetime, content: bytes) -> str:
    return f"{at:%Y%m%dT%H%M%S%fZ}-{hashlib.sha256(content).hexdigest()[:8]}"


# --- download ------------------------------------------------------------------------------------


def test_download_returns_content_hash_and_validators(source, published, content):
    batch, body = fetch_body(source.url(published), timeout=5, max_bytes=len(content))

    assert body == content
    assert batch.size == len(content)
    assert batch.sha256 == hashlib.sha256(content).hexdigest()
    assert batch.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert batch.etag == httpx.get(source.url(published)).headers["etag"]
    assert batch.etag.startswith('"')
    assert batch.validators == {"etag": batch.etag, "last_modified": "Tue, 14 Nov 2023 22:13:20 GMT"}


def test_a_conditional_get_of_unchanged_content_is_a_304_not_a_redirect(source, published):
    etag = httpx.get(source.url(published)).headers["etag"]

    fetched = asyncio.run(
        fetch_within(source.url(published), timeout=5, max_bytes=10, headers={"If-None-Match": etag})
    )

    assert (fetched.status, fetched.sha256) == (304, None)


def test_download_from_a_source_without_validators(bare_source, published, content):
    batch, body = fetch_body(bare_source.url(published), timeout=5, max_bytes=len(content))

    assert (body, batch.etag, batch.last_modified) == (content, None, None)


def test_declared_body_over_the_limit_is_refused(source, published, content):
    with pytest.raises(
        DownloadError, match=f"body of {len(content)} bytes exceeds the {len(content) - 1}-byte"
    ):
        fetch_body(source.url(published), timeout=5, max_bytes=len(content) - 1)
    assert source.statuses[-1] == 200


def test_streamed_body_at_the_limit_is_read(content):
    with serving(streaming(content)) as served:
        batch, body = fetch_body(served.url, timeout=5, max_bytes=len(content))

    assert body == content
    assert (batch.etag, batch.last_modified) == (None, None)


def test_streamed_body_over_the_limit_is_refused(content):
    with (
        serving(streaming(content)) as served,
        pytest.raises(DownloadError, match=f"body exceeds the {len(content) - 1}-byte limit"),
    ):
        fetch_body(served.url, timeout=5, max_bytes=len(content) - 1)


def test_endless_stream_is_cut_off_without_reading_it_all():
    chunk = b"x" * (1 << 16)
    total = len(chunk) * 3000  # about 200 MB
    sent = [0]
    hung_up, done = threading.Event(), threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        try:
            streaming(chunk, chunk=len(chunk), repeat=3000, sent=sent)(handler)
        except (BrokenPipeError, ConnectionResetError):
            hung_up.set()
        finally:
            done.set()

    with serving(respond) as served:
        with pytest.raises(DownloadError, match="exceeds the 100000-byte limit"):
            fetch_body(served.url, timeout=30, max_bytes=100_000)
        assert done.wait(30), "the server should stop writing"

    assert hung_up.is_set(), "the client's hang-up, not the end of the stream, stopped the server"
    assert sent[0] < total // 10


def test_http_error_names_the_status(source):
    with pytest.raises(DownloadError, match=r"answered HTTP 404"):
        fetch_body(source.url("missing.csv"), timeout=5, max_bytes=1000)
    assert source.statuses[-1] == 404


def test_server_error_names_the_status():
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_error(503)

    with serving(respond) as served, pytest.raises(DownloadError, match="HTTP 503"):
        fetch_body(served.url, timeout=5, max_bytes=1000)


def test_refused_connection_is_a_download_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(DownloadError, match=f"GET http://127.0.0.1:{port}/iris.csv failed"):
        fetch_body(f"http://127.0.0.1:{port}/iris.csv", timeout=2, max_bytes=1000)


def test_server_slower_than_the_timeout(content):
    """The server answers only once the client has waited 30 s: a timeout of 0.3 s must end the
    download while the server is still stalled, and hang up."""
    hung_up = threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if stall_until_hang_up(handler):
            hung_up.set()
        else:
            streaming(content)(handler)

    with serving(respond) as served:
        with pytest.raises(DownloadError, match="Timeout"):
            fetch_body(served.url, timeout=0.3, max_bytes=len(content))
        assert hung_up.wait(30), "the client should hang up on the stalled server"


def test_server_stalling_mid_body(content):
    hung_up = threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content[:100])
        handler.wfile.flush()
        if stall_until_hang_up(handler):
            hung_up.set()

    with serving(respond) as served:
        with pytest.raises(DownloadError, match="Timeout"):
            fetch_body(served.url, timeout=0.3, max_bytes=len(content))
        assert hung_up.wait(30), "the client should hang up on the stalled server"


def test_trickling_server_cannot_outlast_the_timeout():
    """The timeout bounds the whole download, not each read: a byte every 0.1 s for 30 s never trips a
    read timeout, so only the deadline can end it, while the server still trickles."""
    hung_up = threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            hung_up.set()

    with serving(respond) as served:
        with pytest.raises(DownloadError, match=r"not finished within 0\.5 s"):
            fetch_body(served.url, timeout=0.5, max_bytes=1_000_000)
        assert hung_up.wait(30), "the client should hang up while the server trickles"


def test_deadline_holds_while_a_chunk_is_stalled():
    """Bytes for most of the deadline, then silence: the deadline ends it ("not finished within"), not
    another read timeout (an httpx ReadTimeout, 1.0 s after the last byte)."""
    hung_up = threading.Event()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        for _ in range(8):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)
        if stall_until_hang_up(handler):
            hung_up.set()

    with serving(respond) as served:
        with pytest.raises(DownloadError, match=r"not finished within 1\.0 s"):
            fetch_body(served.url, timeout=1.0, max_bytes=1_000_000)
        assert hung_up.wait(30), "the client should hang up on the stalled server"


def redirecting(location: str, content: bytes):
    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/iris.csv":
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        send_body(handler, content)

    return respond


def test_redirect_on_the_same_host_is_followed(content):
    with serving(redirecting("/moved.csv", content)) as served:
        assert fetch_body(served.url, timeout=5, max_bytes=len(content))[1] == content


@pytest.mark.parametrize("location", ["http://localhost:9/elsewhere.csv", "https://127.0.0.1/iris.csv"])
def test_redirect_to_another_host_or_scheme_is_refused(location, content):
    with (
        serving(redirecting(location, content)) as served,
        pytest.raises(DownloadError, match="only redirects to the same scheme and host"),
    ):
        fetch_body(served.url, timeout=5, max_bytes=len(content))


# --- land ----------------------------------------------------------------------------------------


def test_land_writes_parquet_manifest_and_ledger(root, tmp_path, content, received):
    batch = received(content, etag='"abc"', last_modified="Tue, 14 Nov 2023 22:13:20 GMT")

    report = land(root, batch, run_id="run-1", now=NOW)

    sha = hashlib.sha256(content).hexdigest()
    batch_id = f"20261121T161500123456Z-{sha[:8]}"
    assert report["outcome"] == "landed"
    assert report["manifest"] == {
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
    assert batches.list_raw_batches(root) == [batch_id]
    assert ledger.content(root, sha)["outcome"] == "landed"
    assert ledger.item(root, SOURCE_URL, batch.validators)["batch_id"] == batch_id
    assert ledger.source_fingerprint(root, SOURCE_URL) == {
        "etag": '"abc"',
        "last_modified": batch.validators["last_modified"],
        "sha256": sha,
    }
    landed = storage.read_parquet(batches.raw_batch_data(root, batch_id))
    pd.testing.assert_frame_equal(landed, pd.read_csv(io.BytesIO(content)))


def test_download_then_land_end_to_end(root, source, published, content):
    url = source.url(published)

    with receive(url, {"url": url, "validators": {}}, timeout=5, max_bytes=1_000_000) as fetched:
        report = land(root, fetched, now=NOW)
        assert fetched.path.read_bytes() == content

    assert not fetched.path.exists(), "the local copy is removed once landed"
    served = httpx.get(url).headers
    assert report["manifest"]["source"] == {
        "url": url,
        "etag": served["etag"],
        "last_modified": served["last-modified"],
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def test_content_received_before_is_a_recorded_duplicate(root, tmp_path, content, received):
    first = land(root, received(content, etag='"v1"'), run_id="run-1", now=NOW)
    batch_files = files(tmp_path / "raw")

    # New validators, a new time, another run: only the content decides.
    again = land(root, received(content, etag='"v3"'), run_id="run-2", now=NOW + timedelta(hours=1))

    assert (again["outcome"], again["batch_id"]) == ("duplicate", first["batch_id"])
    assert files(tmp_path / "raw") == batch_files
    assert ledger.item(root, SOURCE_URL, {"etag": '"v3"', "last_modified": None})["outcome"] == "duplicate"


def test_content_of_a_batch_quarantined_by_etl_is_still_a_duplicate(root, content, received):
    first = land(root, received(content), now=NOW)
    batches.quarantine_batch(root, first["batch_id"], [CheckFailure("range", "sepal_width", "too wide")])

    assert land(root, received(content, etag='"v2"'), now=NOW + timedelta(hours=1))["outcome"] == "duplicate"
    assert batches.list_raw_batches(root) == []


def test_a_retry_of_the_same_run_reports_the_batch_again(root, content, received):
    first = land(root, received(content), run_id="run-1", now=NOW)

    retried = land(root, received(content), run_id="run-1", now=NOW + timedelta(seconds=30))

    assert retried == first
    assert batches.list_raw_batches(root) == [first["batch_id"]]


def test_content_that_is_not_csv_is_quarantined_as_received(root, tmp_path, quarantine_reason, received):
    expected_id = batch_id(NOW, PNG)

    report = land(root, received(PNG), now=NOW)

    assert report["outcome"] == "quarantined"
    assert report["batch_id"] == expected_id
    assert sorted(files(tmp_path / "quarantine")) == [
        f"{expected_id}.csv",
        f"{expected_id}.json",
        f"{expected_id}.reason.json",
    ]
    assert (tmp_path / "quarantine" / f"{expected_id}.csv").read_bytes() == PNG
    [failure] = report["failed_checks"]
    assert (failure["check"], failure["column"]) == ("format", None)
    assert "not UTF-8" in failure["message"]
    assert report["failed_checks"] == quarantine_reason(expected_id)["failed_checks"]
    assert batches.list_raw_batches(root) == []
    assert land(root, received(PNG), now=NOW + timedelta(minutes=5))["outcome"] == "duplicate"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "No columns"),
        (b"<html><body>502 Bad Gateway</body></html>", "header but no rows"),
        ("sepal_length\n5,1\n".encode("utf-16"), "not UTF-8"),
        (b"a,b\n1,2\n3,4,5\n", "Row #3: Expected 2 columns, got 3"),
    ],
    ids=["empty", "html-error-page", "not-utf-8", "not-a-table"],
)
def test_landing_failures_are_quarantined_with_their_reason(root, body, reason, received):
    report = land(root, received(body), now=NOW)

    assert report["outcome"] == "quarantined"
    assert reason in report["failed_checks"][0]["message"]


def crash_between_parquet_and_manifest(root: str, received: Received, run_id: str) -> str:
    """Leave what a landing killed right after writing the Parquet file leaves: the ledger says
    ``landing``, the data is written, the manifest and the item entry are not."""
    leftover = batch_id(NOW, received.path.read_bytes())
    ledger.record_content(
        root, received.sha256, "landing", batch_id=leftover, item=SOURCE_URL, landed_at=NOW.isoformat(),
        run_id=run_id, item_key=ledger.item_key(SOURCE_URL, received.validators),
    )  # fmt: skip
    csv_to_parquet.write_parquet(
        str(received.path), layout.raw_batch(root, leftover, ".parquet"), max_columns=10
    )
    return leftover


@pytest.mark.parametrize("retried_by", ["the same run", "the next run"])
def test_landing_killed_half_way_is_finished_once_by_the_retry(root, content, retried_by, received):
    leftover = crash_between_parquet_and_manifest(root, received(content), "run-1")
    assert batches.list_raw_batches(root) == [], "a half-landed batch must not be listed"
    entry = ledger.content(root, hashlib.sha256(content).hexdigest())
    assert (entry or {}).get("outcome") not in ledger.RECEIVED, "a landing under way is not received"

    run_id = "run-1" if retried_by == "the same run" else "run-2"
    report = land(root, received(content), run_id=run_id, now=NOW + timedelta(minutes=1))

    assert (report["outcome"], report["batch_id"]) == ("landed", leftover)
    assert batches.list_raw_batches(root) == [leftover]
    assert report["manifest"]["landed_at"] == NOW.isoformat()
    assert land(root, received(content), run_id="run-3")["outcome"] == "duplicate"
    assert batches.list_raw_batches(root) == [leftover]


def test_landing_killed_after_the_manifest_is_finished_without_rewriting(root, content, received):
    leftover = crash_between_parquet_and_manifest(root, received(content), "run-1")
    manifest = {"batch_id": leftover, "sha256": hashlib.sha256(content).hexdigest(), "rows": 149}
    storage.write_json_atomic(layout.raw_batch(root, leftover, ".json"), manifest)

    report = land(root, received(content), run_id="run-1")

    assert report["manifest"] == manifest
    assert batches.list_raw_batches(root) == [leftover]


def test_a_torn_content_entry_is_rebuilt_from_the_manifest(root, content, received):
    first = land(root, received(content), now=NOW)
    storage.write_bytes_atomic(layout.ledger(root, "content", first["sha256"]), b'{"sha256": "ab')

    again = land(root, received(content, etag='"v2"'), now=NOW + timedelta(hours=1))

    assert (again["outcome"], again["batch_id"]) == ("duplicate", first["batch_id"])
    assert batches.list_raw_batches(root) == [first["batch_id"]]


def test_land_arrival_lands_each_file_of_a_folder_once_in_order(root, tmp_path, iris):
    drop = tmp_path / "drop"
    drop.mkdir()
    items = []
    for n in range(3):
        path = drop / f"part-{n}.csv"
        path.write_bytes(iris.iloc[n * 10 : n * 10 + 10].to_csv(index=False).encode())
        items.append({"url": path.as_uri(), "validators": {"size": path.stat().st_size, "mtime": float(n)}})
    items.append(dict(items[0], validators={"size": 1, "mtime": 9.0}))  # the same content touched again
    (drop / "gone.csv").write_bytes(b"a\n1\n")
    items.append({"url": (drop / "gone.csv").as_uri(), "validators": {"size": 4, "mtime": 10.0}})
    (drop / "gone.csv").unlink()

    report = land_arrival(
        root, {"url": drop.as_uri() + "/", "items": items}, run_id="r", timeout=5, max_bytes=10**6
    )

    assert [m["source"]["url"] for m in report["landed"]] == [item["url"] for item in items[:3]]
    assert batches.list_raw_batches(root) == report["valid"]
    assert [d["batch_id"] for d in report["duplicates"]] == [report["valid"][0]]
    assert report["quarantined"] == []
    event = announcement(report["landed"])
    assert event["batch_ids"] == report["valid"]
    assert event["rows"] == 30
    assert [b["source"]["url"] for b in event["batches"]] == [item["url"] for item in items[:3]]


def test_no_source_fingerprint_before_the_first_content(root):
    assert ledger.source_fingerprint(root, SOURCE_URL) is None


# --- receive: the local copy ---------------------------------------------------------------------


@pytest.fixture
def spool(tmp_path, monkeypatch) -> Path:
    """Where :func:`receive` keeps its local copies during the test."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_drop_file_is_copied_hashed_and_the_copy_removed(tmp_path, spool, content):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "batch.csv").write_bytes(content)
    item = {"url": (drop / "batch.csv").as_uri(), "validators": {"size": len(content), "mtime": 1.0}}

    with receive(drop.as_uri() + "/", item, timeout=5, max_bytes=len(content)) as copy:
        assert copy.path.parent.parent == spool
        assert copy.path.read_bytes() == content
        assert (copy.sha256, copy.size) == (hashlib.sha256(content).hexdigest(), len(content))
        assert copy.validators == item["validators"]

    assert list(spool.iterdir()) == []


def read(source: str, item: dict, max_bytes: int) -> None:
    with receive(source, item, timeout=5, max_bytes=max_bytes):
        pass


def test_content_over_the_limit_leaves_no_copy_behind(tmp_path, spool, content):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "batch.csv").write_bytes(content)
    file_item = {"url": (drop / "batch.csv").as_uri(), "validators": {}}

    with pytest.raises(DownloadError, match=f"exceed the {len(content) - 1}-byte limit"):
        read(drop.as_uri() + "/", file_item, max_bytes=len(content) - 1)
    with serving(streaming(content)) as served, pytest.raises(DownloadError, match="body exceeds"):
        read(served.url, {"url": served.url, "validators": {}}, max_bytes=len(content) - 1)

    assert list(spool.iterdir()) == []
