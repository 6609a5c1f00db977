"""``python -m serving`` started for real, on a free port, over the test's registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from scripts.stack.supervisor import free_port
from tests.waits import wait_for

REPO = Path(__file__).resolve().parents[3]
TOKEN = "another-s3cret"


@contextmanager
def model_servers(root: str) -> Iterator[Callable[..., httpx.Client]]:
    """``start(*args)`` starts ``python -m serving`` over ``root`` in its own process group and returns a
    client once it answers; every group started is killed on exit."""
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> httpx.Client:
        port = free_port()
        env = {**os.environ, "PIPELINE_STORAGE_ROOT": root, "MODEL_SERVER_TOKEN": TOKEN}
        process = subprocess.Popen(
            [sys.executable, "-m", "serving", "--port", str(port), *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        processes.append(process)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

        def answers() -> bool:
            assert process.poll() is None, "the model server exited"
            try:
                return client.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, timeout=60, what="the model server to answer", interval=0.2)
        return client

    start.processes = processes
    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def server(root: str) -> Iterator[Callable[..., httpx.Client]]:
    """Start ``python -m serving`` in its own process group; every group is killed after the test."""
    with model_servers(root) as start:
        yield start
