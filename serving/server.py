"""The model server process: uvicorn running :func:`serving.app.create_app` in one or more workers.

    python -m serving --port 8500                  # storage root from PIPELINE_STORAGE_ROOT
    python -m serving --host 0.0.0.0 --workers 2   # as in docker-compose.yaml; default: one per core

The ``/reload`` token comes from the environment only (``MODEL_SERVER_TOKEN``), never from the command
line, where ``ps`` would show it. Each worker follows the production pointer on its own (see
serving/production.py), so any number of workers serve the same version.
"""

from __future__ import annotations

import argparse
import copy
import os

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from serving.app import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m serving", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument(
        "--workers", type=int, default=cores(), help=f"worker processes (default: the cores, {cores()})"
    )
    parser.add_argument("--max-rows", type=int, default=Settings.max_rows, help="rows per request")
    parser.add_argument(
        "--max-body-bytes", type=int, default=Settings.max_body_bytes, help="bytes per request body"
    )
    parser.add_argument(
        "--pointer-check-seconds",
        type=float,
        default=Settings.pointer_check_seconds,
        help="how often a worker checks the production pointer; 0: on every request (local disk), "
        "about 1 on object storage",
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", "scikit-learn"),
        default="auto",
        help="auto: a version's ONNX twin when it has one (default); scikit-learn: always the model itself",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    # Workers are separate processes that build the app from the environment.
    os.environ["MODEL_SERVER_MAX_ROWS"] = str(args.max_rows)
    os.environ["MODEL_SERVER_MAX_BODY_BYTES"] = str(args.max_body_bytes)
    os.environ["MODEL_SERVER_POINTER_CHECK_SECONDS"] = str(args.pointer_check_seconds)
    os.environ["MODEL_SERVER_ONNX"] = "0" if args.runtime == "scikit-learn" else "1"
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=args.access_log,
        log_level="info",
        log_config=log_config(),
    )


def cores() -> int:
    """The cores this process may run on (a container's or ``taskset``'s limit, not the host's count):
    one worker per core, since a worker uses one core at most (the GIL; ONNX Runtime runs one thread
    per call)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def log_config() -> dict:
    """uvicorn's logging, plus the ``serving`` logger through the same handler: the log then says which
    version each worker loaded and which it refused (a tampered file, say), not only uvicorn's lines."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["serving"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


if __name__ == "__main__":
    main()
