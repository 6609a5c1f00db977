"""Real HTTP servers on free ports, for tests of what reads from them: one answering with a handler of
the test's own (``serving``), or the local data source serving a folder (``data_source``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from scripts.data_source import DataSource


@dataclass
class Served:
    """A running ``serving`` server: its URL, and the path of every GET it received, oldest first."""

    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def serving(respond: Callable[[BaseHTTPRequestHandler], None], name: str = "iris.csv") -> Iterator[Served]:
    """A real HTTP server on a free port answering every GET with ``respond(handler)``."""
    served = Served("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # some clients hang up early
                respond(self)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
    # A short poll interval makes shutdown() return within 0.05 s instead of 0.5 s.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def send_body(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    """Answer 200 with ``body`` and its Content-Length."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def stall_until_hang_up(handler: BaseHTTPRequestHandler, within: float = 30) -> bool:
    """Send nothing more until the client closes the connection; whether it did within ``within``
    seconds. A GET has no body, so the next read ends only when the client hangs up (or the wait
    does): a stall that proves the client gave up by itself, not when the server finished."""
    handler.connection.settimeout(within)
    try:
        return handler.rfile.read(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@contextmanager
def data_source(directory: Path, **options) -> Iterator[DataSource]:
    """The local data source (``scripts/data_source.py``) serving ``directory`` on a free port."""
    server = DataSource(directory, **options).start()
    try:
        yield server
    finally:
        server.stop()
