"""``python -m serving`` as the launcher and compose run it: uvicorn with two worker processes on a real
port, over a real file registry."""

from __future__ import annotations

import os
import signal

import httpx
import psutil
import pytest

from include import registry
from tests.unit.serving.conftest import TOKEN
from tests.waits import wait_for


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_serve_the_same_version_and_follow_the_pointer(server, register_model, root):
    """Both uvicorn workers answer (each names its pid in ``X-Worker-Pid``), and each serves the
    version the pointer names, before and after it moves."""
    first = register_model()["version"]
    registry.set_production(root, first)
    client = server("--workers", "2")
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    workers = {child.pid for child in psutil.Process(server.processes[-1].pid).children(recursive=True)}

    def served_by_both(version: str) -> dict[int, set[str]]:
        """Predictions on a new connection each, until each worker has answered one, seen as
        {worker pid: versions it answered}. The workers share one listening socket, and which one
        accepts a connection is the kernel's choice: under load one may take many in a row."""
        answered: dict[int, set[str]] = {}

        def both() -> bool:
            response = httpx.post(f"{client.base_url}/predict", json={"rows": [row]}, timeout=10)
            answered.setdefault(int(response.headers["x-worker-pid"]), set()).add(response.json()["version"])
            return len(answered) == 2

        wait_for(both, timeout=60, what="both workers to answer", interval=0.05)
        return answered

    answered = served_by_both(first)
    assert set(answered) <= workers
    assert answered == {pid: {first} for pid in answered}
    second = register_model()["version"]
    registry.set_production(root, second)
    answered = served_by_both(second)
    assert answered == {pid: {second} for pid in answered}
    reload = client.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reload.json()["version"] == second
    assert client.post("/reload").status_code == 401


def test_a_declared_oversized_body_is_refused_before_it_is_read(server):
    client = server("--max-body-bytes", "100")
    body = b"{" + b" " * 200 + b"}"
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": "the request body exceeds 100 bytes"}


def test_sigterm_stops_every_worker(server):
    """The launcher stops a component with SIGTERM to its process group: no worker may outlive it."""
    client = server("--workers", "2")
    process = server.processes[-1]
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    wait_for(lambda: not group_alive(process.pid), timeout=30, what="every worker to exit", interval=0.2)
    with pytest.raises(httpx.TransportError):
        client.get("/health")
