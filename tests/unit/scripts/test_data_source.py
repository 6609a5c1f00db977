"""The local data source over real HTTP: validators, conditional requests, and nothing outside its folder."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import uuid
from email.utils import formatdate
from pathlib import Path

import pytest

from scripts.data_source import DataSource
from tests.waits import Lines

SCRIPT = Path(__file__).parents[3] / "scripts" / "data_source.py"
CONTENT = b"sepal_length,species\n5.1,setosa\n"
MTIME = 1_700_000_000.7  # served as Tue, 14 Nov 2023 22:13:20 GMT (HTTP dates have whole seconds)
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"


class Response:
    def __init__(self, response: http.client.HTTPResponse):
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()


def get(port: int, path: str, **headers: str) -> Response:
    """GET ``path`` exactly as given (no client-side normalisation of ``..``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return Response(connection.getresponse())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("data-source")
    (base / "served").mkdir()
    (base / "secret.txt").write_bytes(b"outside the served folder")
    return base


@pytest.fixture(scope="module")
def source_dir(base: Path) -> Path:
    """The served folder: ``source`` and ``bare_source`` (tests/unit/conftest.py) serve it."""
    return base / "served"


@pytest.fixture
def name(source_dir: Path) -> str:
    """A file of this test's own in the served folder."""
    name = f"{uuid.uuid4().hex}.csv"
    (source_dir / name).write_bytes(CONTENT)
    os.utime(source_dir / name, (MTIME, MTIME))
    return name


def test_serves_the_file_with_etag_and_last_modified(source, name):
    response = get(source.port, f"/{name}")

    assert response.status == 200
    assert response.body == CONTENT
    assert response.headers["Content-Type"] == "text/csv"
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["Last-Modified"] == LAST_MODIFIED
    etag = response.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert len(etag) > 10
    assert source.url(name) == f"http://127.0.0.1:{source.port}/{name}"
    assert source.statuses[-1] == 200


def test_query_string_is_ignored(source, name):
    assert get(source.port, f"/{name}?cache-buster=1").body == CONTENT


def test_files_in_subfolders_are_served(source, source_dir):
    (source_dir / "sub").mkdir(exist_ok=True)
    (source_dir / "sub" / "nested.csv").write_bytes(CONTENT)

    assert get(source.port, "/sub/nested.csv").body == CONTENT


def test_if_none_match_with_the_etag_is_not_modified(source, name):
    etag = get(source.port, f"/{name}").headers["ETag"]

    response = get(source.port, f"/{name}", If_None_Match=etag)

    assert response.status == 304
    assert response.body == b""
    assert response.headers["ETag"] == etag
    assert get(source.port, f"/{name}", If_None_Match=f'"other", {etag}').status == 304
    assert source.statuses[-3:] == [200, 304, 304]


def test_if_none_match_with_another_etag_gets_the_body(source, name):
    response = get(source.port, f"/{name}", If_None_Match='"stale"')

    assert (response.status, response.body) == (200, CONTENT)


def test_if_none_match_wins_over_if_modified_since(source, name):
    response = get(
        source.port,
        f"/{name}",
        If_None_Match='"stale"',
        If_Modified_Since=formatdate(MTIME + 3600, usegmt=True),
    )

    assert response.status == 200


@pytest.mark.parametrize(
    ("since", "status"),
    [
        (LAST_MODIFIED, 304),
        (formatdate(MTIME + 3600, usegmt=True), 304),
        (formatdate(MTIME - 1, usegmt=True), 200),
        ("not a date", 200),
    ],
    ids=["at-mtime", "after-mtime", "before-mtime", "garbage"],
)
def test_if_modified_since(source, name, since, status):
    response = get(source.port, f"/{name}", If_Modified_Since=since)

    assert response.status == status
    assert response.body == (CONTENT if status == 200 else b"")


def test_changed_content_gets_a_new_etag(source, source_dir, name):
    old = get(source.port, f"/{name}").headers["ETag"]
    (source_dir / name).write_bytes(CONTENT + b"4.9,setosa\n")
    os.utime(source_dir / name, (MTIME, MTIME))  # same time: only the ETag can tell

    response = get(source.port, f"/{name}", If_None_Match=old)

    assert response.status == 200
    assert response.body == CONTENT + b"4.9,setosa\n"
    new = response.headers["ETag"]
    assert new != old
    assert get(source.port, f"/{name}", If_None_Match=new).status == 304


def test_same_content_keeps_its_etag(source, source_dir, name):
    old = get(source.port, f"/{name}").headers["ETag"]
    (source_dir / name).write_bytes(CONTENT)

    assert get(source.port, f"/{name}").headers["ETag"] == old


def test_without_validators_only_bodies_are_served(source, bare_source, name):
    etag = get(source.port, f"/{name}").headers["ETag"]

    plain = get(bare_source.port, f"/{name}")
    conditional = get(
        bare_source.port,
        f"/{name}",
        If_None_Match=etag,
        If_Modified_Since=formatdate(MTIME + 3600, usegmt=True),
    )

    for response in (plain, conditional):
        assert (response.status, response.body) == (200, CONTENT)
        assert "ETag" not in response.headers
        assert "Last-Modified" not in response.headers
    assert bare_source.statuses[-2:] == [200, 200]


@pytest.mark.parametrize(
    "path",
    ["/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/", "/sub", "/missing.csv"],
)
def test_nothing_but_files_inside_the_folder(source, source_dir, path):
    (source_dir / "sub").mkdir(exist_ok=True)

    response = get(source.port, path)

    assert response.status == 404
    assert b"outside the served folder" not in response.body
    assert source.statuses[-1] == 404


def test_symlink_out_of_the_folder_is_not_followed(source, source_dir, base):
    link = source_dir / f"{uuid.uuid4().hex}.csv"
    link.symlink_to(base / "secret.txt")

    assert get(source.port, f"/{link.name}").status == 404


def test_command_line(tmp_path):
    directory = tmp_path / "not-yet-created"
    probe = DataSource(tmp_path)
    port = probe.port
    probe.server.server_close()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port), "--directory", str(directory), "--no-validators"],
        stdout=subprocess.PIPE,
        text=True,
    )
    printed = Lines(proc.stdout)
    try:
        assert printed.next() == f"data source: serving {directory} at http://127.0.0.1:{port}/"
        (directory / "iris.csv").write_bytes(CONTENT)
        response = get(port, "/iris.csv")
        assert (response.status, response.body) == (200, CONTENT)
        assert "ETag" not in response.headers
        assert printed.next() == "GET /iris.csv 200", "each request is logged"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
