"""``python -m bench.moto_seeded PORT BUCKET=COUNT ...``: moto's S3 server, in a process of its own, with
``COUNT`` tiny objects under ``drop/`` in each ``BUCKET``, put straight into its backend (100,000 PUTs
over HTTP would take minutes on a shared 2-core machine). One bucket per size: moto scans every key of
a bucket for each listing request, so a size of its own keeps the small sizes' figures their own.
``GET /__requests`` answers how many requests it has served (that one excluded), so a benchmark counts
S3 requests on the server side, whatever the client.
"""

from __future__ import annotations

import sys
import threading

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
from werkzeug.serving import make_server


class Counting:
    """A WSGI middleware counting the requests it passes on."""

    def __init__(self, app) -> None:
        self.app = app
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__requests":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(self.count).encode()]
        with self.lock:
            self.count += 1
        return self.app(environ, start_response)


def main(port: int, specs: list[str]) -> None:
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for spec in specs:
        bucket, count = spec.rsplit("=", 1)
        backend.create_bucket(bucket, "us-east-1")
        for n in range(int(count)):
            backend.put_object(bucket, f"drop/f-{n:07}.csv", b"x\n1\n")
    app = Counting(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, True, request_handler=MotoRequestHandler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
