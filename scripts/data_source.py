"""A local HTTP data source: serves the files of one directory with ETag and Last-Modified.

Run as a program, it prints one line per request (``GET /data.csv 304``) to its log.
Conditional requests (``If-None-Match``, ``If-Modified-Since``) get ``304 Not Modified`` when the file is
unchanged, like a well-behaved web server or object store. ``--no-validators`` serves bodies only,
like a server that keeps no validators, so a crawler must compare content hashes. While the directory
holds a file ``.status`` with an HTTP status in it (``echo 500 > .status``), every request is answered
with that status instead: an outage drill.

    python scripts/data_source.py --port 8000 --directory .airflow/source
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import threading
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATUS_FILE = ".status"


class DataSource:
    """An HTTP server on ``host:port`` serving ``directory``; ``start()`` runs it on a thread."""

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        validators: bool = True,
        echo: bool = False,
    ):
        self.directory = Path(directory)
        self.statuses: list[int] = []  # status of every response served, oldest first
        handler = type(
            "Handler",
            (_Handler,),
            {"directory": self.directory, "validators": validators, "statuses": self.statuses, "echo": echo},
        )
        self.server = ThreadingHTTPServer((host, port), handler)
        # A short poll interval makes stop() return within 0.1 s instead of 0.5 s.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> DataSource:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    directory: Path
    validators: bool
    statuses: list[int]
    echo: bool  # print one line per request: "GET /path status"

    def do_GET(self) -> None:
        drill = self.directory / STATUS_FILE
        if drill.is_file():
            self.send_error(int(drill.read_text()))
            return
        path = (self.directory / self.path.lstrip("/").split("?")[0]).resolve()
        if self.directory.resolve() not in path.parents or not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        body = path.read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        mtime = path.stat().st_mtime
        if self.validators and self._not_modified(etag, mtime):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        if self.validators:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
        self.end_headers()
        self.wfile.write(body)

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if (if_none_match := self.headers.get("If-None-Match")) is not None:
            return etag in [tag.strip() for tag in if_none_match.split(",")]
        if (if_modified_since := self.headers.get("If-Modified-Since")) is not None:
            try:
                return int(mtime) <= parsedate_to_datetime(if_modified_since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.statuses.append(int(code))
        if self.echo:
            print(f"{self.command} {self.path} {code}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--no-validators", action="store_true", help="send no ETag / Last-Modified")
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    source = DataSource(args.directory, args.host, args.port, validators=not args.no_validators, echo=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    source.start()
    print(f"data source: serving {args.directory} at http://{args.host}:{source.port}/", flush=True)
    stop.wait()
    source.stop()


if __name__ == "__main__":
    main()
