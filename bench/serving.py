"""The model server under load: requests per second and p50/p99 latency of ``POST /predict`` with 1-row
and 100-row bodies at several client concurrencies, for the FastAPI server (``python -m serving``, 1
and 2 uvicorn workers) against the ``http.server`` model server it replaced, in the same run.

The old server no longer is in the tree: it is taken from git history (the parent of the commit that
replaced it) into a temp folder and run against the same registry, with the same request body (both
take ``{"rows": [{feature: value, ...}]}``). Without that history the baseline is skipped and the record
says why.

The servers serve a real model: trained by ``include.training`` on the Iris data with the default
hyperparameters of its type, registered and put in production by ``include.registry`` in a temp
storage root, as ``train_validate`` and ``deploy`` do. ``random_forest`` (the default type) costs
milliseconds of CPU per request in scikit-learn alone; ``linear`` costs little, so what
is left is the server's own cost.

Load: one client process (this one), asyncio with one ``httpx.AsyncClient``, N concurrent clients in a
closed loop (each sends its next request when the answer to the previous one arrived), for a fixed
time after a warm-up that is not counted. Every answer is checked (status 200, one prediction per row);
anything else counts as an error. Server CPU is the CPU time of the server's process tree over the
measured period, per request answered: on a shared machine it says more than the wall-clock figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import record
from scripts.stack.supervisor import free_port

# The commit that replaced scripts/model_server.py (http.server) by the serving/ package (FastAPI).
REPLACED_BY = "6c7ba3e"
OLD_SERVER_PATH = "scripts/model_server.py"
OLD = "http.server (old)"


@dataclass(frozen=True)
class Server:
    """One way of serving the model: its name in the table and the command that starts it."""

    name: str
    command: list[str]
    cwd: Path


def old_server_source() -> tuple[str | None, str]:
    """The old server's source from git history, or ``None`` and why it is not available."""
    try:
        shown = subprocess.run(
            ["git", "-C", str(record.REPO), "show", f"{REPLACED_BY}^:{OLD_SERVER_PATH}"],
            capture_output=True,
            text=True,
        )
    except OSError as exc:
        return None, f"git is not available ({exc})"
    if shown.returncode != 0:
        return None, f"git show {REPLACED_BY}^:{OLD_SERVER_PATH} failed: {shown.stderr.strip()}"
    return shown.stdout, f"git show {REPLACED_BY}^:{OLD_SERVER_PATH}"


def register_production_model(root: str, model_type: str) -> dict[str, Any]:
    """Train ``model_type`` with its default hyperparameters on Iris, register it and put it in
    production under ``root``."""
    from include import metrics, registry
    from include.config import load_schema
    from include.features import to_features
    from include.settings import SETTINGS
    from include.training import train_and_evaluate
    from scripts.publish import iris_frame

    schema = load_schema()
    params = SETTINGS["ml_hyperparameters"].default[model_type]
    result = train_and_evaluate(to_features(iris_frame(), schema), schema, model_type, params)
    staged = registry.stage_candidate(
        root, result, threshold=0.8, metric=metrics.metric("accuracy"), batch_ids=[], feature_hash="0" * 64
    )
    metadata = registry.register(root, staged["version"])
    registry.discard_staged(root, staged["version"])
    registry.set_production(root, metadata["version"])
    return {"version": metadata["version"], "model_type": model_type, "params": params}


def request_body(rows: int) -> bytes:
    """``{"rows": [...]}`` with ``rows`` distinct Iris flowers (cycled past 149)."""
    from scripts.publish import iris_frame

    frame = iris_frame().drop(columns="species")
    picked = frame.iloc[[i % len(frame) for i in range(rows)]]
    return json.dumps({"rows": picked.to_dict(orient="records")}).encode()


def _tree_cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        with suppress(psutil.NoSuchProcess):
            times = member.cpu_times()
            total += times.user + times.system
    return total


@contextmanager
def started(server: Server, env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``server`` on a free port in a session of its own, its output to ``log``; yield its URL
    and process; stop the whole group afterwards."""
    port = free_port()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*server.command, "--port", str(port)],
            cwd=server.cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def serving_version(
    server: Server, url: str, process: subprocess.Popen, version: str, log: Path, timeout: float = 120
) -> psutil.Process:
    """Wait until the server's ``/health`` names ``version``; fail with its log if it exits first or
    takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=5).json().get("version") == version:
                return psutil.Process(process.pid)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.name} did not serve {version} within {timeout:.0f} s:\n{log.read_text()[-2000:]}"
            )
        time.sleep(0.2)


async def _closed_loop(
    client: httpx.AsyncClient, url: str, body: bytes, rows: int, clients: int, seconds: float
) -> tuple[list[float], Counter[str], float]:
    """``clients`` loops posting ``body`` until ``seconds`` have passed; the latencies of the good
    answers, the bad ones counted by what went wrong, and the wall time until the last answer."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    started = time.perf_counter()
    end = started + seconds

    async def one_client() -> None:
        while time.perf_counter() < end:
            sent = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
                answered = len(response.json()["predictions"]) if response.status_code == 200 else None
                error = None if answered == rows else f"HTTP {response.status_code}, {answered} predictions"
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                error = type(exc).__name__
            if error is None:
                latencies.append(time.perf_counter() - sent)
            else:
                errors[error] += 1

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


async def _measure(
    url: str, body: bytes, rows: int, clients: int, seconds: float, warmup: float, server: psutil.Process
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await _closed_loop(client, url, body, rows, clients, warmup)
        server_cpu, client_cpu = _tree_cpu_seconds(server), time.process_time()
        latencies, errors, wall = await _closed_loop(client, url, body, rows, clients, seconds)
        server_cpu, client_cpu = _tree_cpu_seconds(server) - server_cpu, time.process_time() - client_cpu

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "seconds": round(wall, 3),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": ms(record.percentile(latencies, 50)),
        "p99_ms": ms(record.percentile(latencies, 99)),
        "server_cpu_ms_per_request": ms(server_cpu / len(latencies)) if latencies else None,
        "client_cpu_share": round(client_cpu / wall, 2),
    }


def servers(workers: list[int], old_server: Path | None) -> list[Server]:
    new = [
        Server(
            f"FastAPI, {n} worker{'s' if n > 1 else ''}",
            [sys.executable, "-m", "serving", "--workers", str(n)],
            record.REPO,
        )
        for n in workers
    ]
    if old_server is None:
        return new
    return [Server(OLD, [sys.executable, str(old_server)], old_server.parent), *new]


def run(
    clients: list[int],
    rows: list[int],
    workers: list[int],
    model_types: list[str],
    seconds: float = 5.0,
    warmup: float = 1.0,
) -> dict[str, Any]:
    """Every model type x server x row count x concurrency, each for ``seconds`` after ``warmup``.

    Per model type, all servers run from the start and are measured in turn for each row count and
    concurrency, the order rotating from one to the next, so that a change in the machine's load (other
    people's jobs) falls on every server alike instead of on whichever happened to run last."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    source, baseline = old_server_source()
    if source is None:
        print(f"serving: baseline skipped: {baseline}", flush=True)
    cells = []
    models = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as home:
        old_server = None
        if source is not None:
            old_server = Path(home, "old", "model_server.py")
            old_server.parent.mkdir()
            old_server.write_text(source)
        bodies = {n: request_body(n) for n in rows}
        for model_type in model_types:
            root = Path(home, model_type).as_uri()
            models[model_type] = model = register_production_model(root, model_type)
            env = {**os.environ, "PYTHONPATH": str(record.REPO), "PIPELINE_STORAGE_ROOT": root}
            # All servers start at once (their imports overlap), then each is waited for.
            with ExitStack() as running:
                launched = []
                for i, server in enumerate(servers(workers, old_server)):
                    log = Path(home, f"{i}.log")
                    launched.append((server, log, *running.enter_context(started(server, env, log))))
                serving = [
                    (server, url, serving_version(server, url, process, model["version"], log))
                    for server, log, url, process in launched
                ]
                for turn, (n, c) in enumerate((n, c) for n in rows for c in clients):
                    first = turn % len(serving)
                    for server, url, process in serving[first:] + serving[:first]:
                        figures = asyncio.run(
                            _measure(f"{url}/predict", bodies[n], n, c, seconds, warmup, process)
                        )
                        cells.append(
                            {
                                "model_type": model_type,
                                "server": server.name,
                                "rows": n,
                                "clients": c,
                                **figures,
                            }
                        )
    _add_ratios(cells)
    return {
        "models": models,
        "baseline": baseline,
        "client_processes": 1,
        "seconds_per_cell": seconds,
        "warmup_seconds": warmup,
        "load_avg_before": load_before,
        "cells": cells,
    }


def _same_load(cell: dict[str, Any]) -> tuple[str, int, int]:
    return cell["model_type"], cell["rows"], cell["clients"]


def _add_ratios(cells: list[dict[str, Any]]) -> None:
    """Each cell's req/s and p99 against the old server's for the same model, rows and clients."""
    old = {_same_load(c): c for c in cells if c["server"] == OLD}
    for cell in cells:
        base = old.get(_same_load(cell))
        if base and base["rps"] and cell["p99_ms"] and base["p99_ms"]:
            cell["rps_vs_old"] = round(cell["rps"] / base["rps"], 2)
            cell["p99_old_over_new"] = round(base["p99_ms"] / cell["p99_ms"], 2)


def print_report(result: dict[str, Any]) -> None:
    # The servers in the order they were started: the old one first.
    order = {name: i for i, name in enumerate(dict.fromkeys(c["server"] for c in result["cells"]))}
    cells = sorted(result["cells"], key=lambda c: (*_same_load(c), order[c["server"]]))
    record.table(
        [
            "model",
            "rows",
            "clients",
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "server CPU ms/req",
            "req/s / old",
            "old p99 / p99",
        ],
        [
            [
                c["model_type"],
                c["rows"],
                c["clients"],
                c["server"],
                c["rps"],
                c["p50_ms"],
                c["p99_ms"],
                c["errors"],
                c["server_cpu_ms_per_request"],
                c.get("rps_vs_old"),
                c.get("p99_old_over_new"),
            ]
            for c in cells
        ],
        title=(
            f"POST /predict, {result['client_processes']} client process (asyncio), "
            f"{result['seconds_per_cell']} s per cell; baseline: {result['baseline']}; "
            f"load average before {result['load_avg_before']}"
        ),
    )
    for c in cells:
        if c["errors"]:
            print(
                f"errors of {c['server']}, {c['model_type']}, {c['rows']} rows, {c['clients']} clients: "
                f"{c['error_kinds']}"
            )
