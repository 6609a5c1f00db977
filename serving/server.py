"""A small model server: answers predictions with the production model and reloads it on request.

    python -m serving --port 8500                  # storage root from PIPELINE_STORAGE_ROOT

    GET  /health    {"version": ..., "loaded_at": ...}: the version being served
    POST /predict   {"rows": [{"sepal_length": 5.1, ...}, ...]} -> {"version": ..., "predictions": [...]}
    POST /reload    load the version models/production.json names (deploy calls this after promoting)

The model is loaded through the registry, which checks its sha256 before unpickling; a reload that
fails (a tampered file, no production model) answers 409 and keeps serving the model it had.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd

from include import registry
from include.config import DatasetSchema, load_schema, storage_root


class ModelServer:
    """Serves the production model under ``root`` on ``host:port``; ``start()`` runs it on a thread."""

    def __init__(self, root: str, schema: DatasetSchema, host: str = "127.0.0.1", port: int = 0):
        self.root = root
        self.schema = schema
        self.model: Any = None
        self.version: str | None = None
        self.loaded_at: str | None = None
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        # A short poll interval makes stop() return within 0.1 s instead of 0.5 s.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> ModelServer:
        """Serve, with the production model if it loads; otherwise with none until a reload works."""
        try:
            self.reload()
        except (LookupError, FileNotFoundError, registry.IntegrityError) as exc:
            print(f"model server: starting without a model: {exc}", file=sys.stderr, flush=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def reload(self) -> dict:
        """Load the production version; on any failure keep the current model and raise."""
        version = registry.production_version(self.root)
        if version is None:
            raise LookupError(f"no model in production under {self.root}")
        model = registry.load_model(self.root, version)
        with self._lock:
            self.model, self.version = model, version
            self.loaded_at = datetime.now(UTC).isoformat()
        return self.health()

    def health(self) -> dict:
        return {"version": self.version, "loaded_at": self.loaded_at}

    def predict(self, rows: list[dict]) -> dict:
        with self._lock:
            model, version = self.model, self.version
        if model is None:
            raise LookupError("no model loaded yet")
        if not rows:
            return {"version": version, "predictions": []}
        frame = pd.DataFrame(rows)
        missing = [name for name in self.schema.feature_names if name not in frame.columns]
        if missing:
            raise ValueError(f"rows lack feature(s) {', '.join(missing)}")
        predictions = model.predict(frame[self.schema.feature_names].astype(float))
        return {"version": version, "predictions": [str(p) for p in predictions]}


class _Handler(BaseHTTPRequestHandler):
    server_state: ModelServer

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(HTTPStatus.OK, self.server_state.health())
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}"})

    def do_POST(self) -> None:
        try:
            if self.path == "/reload":
                self._answer(HTTPStatus.OK, self.server_state.reload())
            elif self.path == "/predict":
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not isinstance(body, dict) or not isinstance(body.get("rows", []), list):
                    raise ValueError('the body must be a JSON object {"rows": [{feature: value, ...}, ...]}')
                self._answer(HTTPStatus.OK, self.server_state.predict(body.get("rows", [])))
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}"})
        except (LookupError, FileNotFoundError, registry.IntegrityError) as exc:
            self._answer(HTTPStatus.CONFLICT, {"error": str(exc), **self.server_state.health()})
        except (ValueError, TypeError) as exc:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def _answer(self, status: HTTPStatus, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m serving", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    args = parser.parse_args()
    server = ModelServer(storage_root(), load_schema(), args.host, args.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(
        f"model server: serving {server.version or 'no model yet'} at http://{args.host}:{server.port}/",
        flush=True,
    )
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
