"""
A local SMTP sink: accept every message and store it as a file, for demos and tests.

    python scripts/smtp_sink.py --host 127.0.0.1 --port 2525 --maildir DIR

Each message lands atomically as ``DIR/<UTC timestamp>-<n>.eml``: the raw bytes received, preceded
by ``X-Envelope-From`` and ``X-Envelope-To`` headers carrying the SMTP envelope (Bcc recipients
appear only there). ``MaildirSink`` runs the same server in-process, on a background thread.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller


class _MaildirHandler:
    """aiosmtpd handler writing each message to its own file."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        self.write(envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content)
        return "250 Message accepted for delivery"

    def write(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> Path:
        nl = "\r\n" if b"\r\n" in raw else "\n"
        headers = f"X-Envelope-From: {mail_from}{nl}X-Envelope-To: {', '.join(rcpt_tos)}{nl}".encode()
        with self._lock:
            n = next(self._counter)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        final = self.maildir / f"{stamp}-{n:06d}.eml"
        # A dot-file in the same directory: readers globbing *.eml never see a partial message,
        # and os.replace is atomic on one filesystem.
        partial = self.maildir / f".{final.name}.{os.getpid()}.tmp"
        with open(partial, "wb") as fh:
            fh.write(headers + raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, final)
        return final


class _Controller(Controller):
    def _trigger_server(self) -> None:
        # aiosmtpd probes the configured port after binding; with port 0 that is the kernel's
        # choice, so learn it first.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MaildirSink:
    """
    An SMTP server on ``host:port`` that stores every message under ``maildir``.

    ``port=0`` picks a free port; read it from ``.port`` after ``start()``. Usable as a context manager.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 2525, maildir: str | os.PathLike = "maildir"):
        self.host = host
        self.maildir = Path(maildir)
        self._requested_port = port
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        return self._controller.port if self._controller else self._requested_port

    def start(self) -> Self:
        if self._controller is not None:
            raise RuntimeError("MaildirSink is already running")
        self.maildir.mkdir(parents=True, exist_ok=True)
        controller = _Controller(
            _MaildirHandler(self.maildir),
            hostname=self.host,
            port=self._requested_port,
            # The default is socket.getfqdn(), which can stall for seconds without DNS.
            server_hostname="smtp-sink.local",
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[Path]:
        """Stored message files, oldest first."""
        return sorted(self.maildir.glob("*.eml"))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", required=True, help="directory for received messages")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    with MaildirSink(args.host, args.port, args.maildir) as sink:
        print(f"smtp_sink listening on {sink.host}:{sink.port}, writing to {sink.maildir}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
