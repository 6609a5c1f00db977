"""The model server under load: requests per second, rows per second and p50/p99 latency of ``POST
/predict`` with single-row and batch bodies at several client concurrencies, for today's server
(``python -m serving``: ONNX Runtime, orjson, no lock) against the servers before it, in the same run.

``BENCH_SERVING_SERVERS`` picks them (default ``before,new``):

- ``old``: the ``http.server`` model server the FastAPI one replaced, from git history (the parent of
  the commit that replaced it);
- ``before``: the FastAPI server as it was before ONNX Runtime serving (``serving/`` and ``include/``
  at ``BEFORE``, scikit-learn behind a lock, FastAPI's own body parsing);
- ``new``: ``python -m serving`` from this tree;
- ``new-sklearn``: the same with ``--runtime scikit-learn``, to tell ONNX Runtime's share from the
  rest.

The earlier servers are taken from git history into a temp folder and run against the same registry
(a version's ONNX twin is a file they ignore), with the same request body (all take ``{"rows":
[{feature: value, ...}]}``). Without that history they are skipped and the record says why.

The servers serve a real model: trained by ``include.training`` on the Iris data with the default
hyperparameters of its type, registered and put in production by ``include.registry`` in a temp
storage root, as ``train_validate`` and ``deploy`` do. ``random_forest`` (the default type) costs
milliseconds of CPU per request in scikit-learn alone; ``linear`` costs little, so what
is left is the server's own cost.

Load: one client process (this one) on uvloop, N concurrent clients in a closed loop (each sends its
next request when the answer to the previous one arrived) over keep-alive connections, for a fixed
time after a warm-up that is not counted. The client is a few lines of HTTP/1.1 over asyncio streams
(:class:`Connection`) rather than httpx, which cost about 1 ms of CPU per request, as much as the
servers being measured, on the same two cores. Every answer is checked (status 200, one prediction per row);
anything else counts as an error. Server CPU is the CPU time of the server's process tree over the
measured period, per request answered: on a shared machine it says more than the wall-clock figures.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psutil
import uvloop

from bench import record
from scripts.stack.supervisor import free_port

# The commit that replaced scripts/model_server.py (http.server) by the serving/ package (FastAPI).
REPLACED_BY = "6c7ba3e"
OLD_SERVER_PATH = "scripts/model_server.py"
OLD = "http.server (old)"
# The last commit before ONNX Runtime serving (issue #22): "today's server" for the comparison.
BEFORE = "70bad37"
SERVER_KINDS = ("old", "before", "new", "new-sklearn")


@dataclass(frozen=True)
class Server:
    """One way of serving the model: its name in the table and the command that starts it."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    kind: str = "new"


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


def before_source(folder: Path) -> tuple[Path | None, str]:
    """``serving/`` and ``include/`` at ``BEFORE`` extracted into ``folder``, or ``None`` and why not."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(record.REPO), "archive", "--format=tar", BEFORE, "serving", "include"],
            capture_output=True,
        )
    except OSError as exc:
        return None, f"git is not available ({exc})"
    if archive.returncode != 0:
        return None, f"git archive {BEFORE} failed: {archive.stderr.decode().strip()}"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder, f"git archive {BEFORE} serving include"


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
            env={**env, **server.env},
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


class Connection:
    """One keep-alive HTTP/1.1 connection posting one prepared request: a load generator that costs a
    small part of what the server spends per request. A server that closes the connection (the old
    ``http.server`` answers HTTP/1.0) gets a new one for the next request."""

    def __init__(self, url: str, body: bytes) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(self.request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip().lower()
            length = headers.get(b"content-length")
            body = await (self.reader.readexactly(int(length)) if length else self.reader.read())
            if not length or headers.get(b"connection") == b"close" or head.startswith(b"HTTP/1.0"):
                self.close()
            return int(head[9:12]), body
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _closed_loop(
    url: str, body: bytes, rows: int, clients: int, seconds: float
) -> tuple[list[float], Counter[str], float]:
    """``clients`` loops posting ``body`` until ``seconds`` have passed; the latencies of the good
    answers, the bad ones counted by what went wrong, and the wall time until the last answer."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    started = time.perf_counter()
    end = started + seconds

    async def one_client() -> None:
        connection = Connection(url, body)
        while time.perf_counter() < end:
            sent = time.perf_counter()
            try:
                status, answer = await connection.post()
                answered = len(orjson.loads(answer)["predictions"]) if status == 200 else None
                error = None if answered == rows else f"HTTP {status}, {answered} predictions"
            except (OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
                error = type(exc).__name__
            if error is None:
                latencies.append(time.perf_counter() - sent)
            else:
                errors[error] += 1
        connection.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def _measure(
    url: str, body: bytes, rows: int, clients: int, seconds: float, warmup: float, server: psutil.Process
) -> dict[str, Any]:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_closed_loop(url, body, rows, clients, warmup))
        server_cpu, client_cpu = _tree_cpu_seconds(server), time.process_time()
        latencies, errors, wall = runner.run(_closed_loop(url, body, rows, clients, seconds))
        server_cpu, client_cpu = _tree_cpu_seconds(server) - server_cpu, time.process_time() - client_cpu

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "seconds": round(wall, 3),
        "rps": round(len(latencies) / wall, 1),
        "rows_per_s": round(len(latencies) * rows / wall, 1),
        "p50_ms": ms(record.percentile(latencies, 50)),
        "p99_ms": ms(record.percentile(latencies, 99)),
        "server_cpu_ms_per_request": ms(server_cpu / len(latencies)) if latencies else None,
        "client_cpu_share": round(client_cpu / wall, 2),
    }


def servers(
    kinds: list[str], workers: list[int], old_server: Path | None, before: Path | None
) -> list[Server]:
    """The servers of ``kinds`` (``SERVER_KINDS``), the FastAPI ones with each count of ``workers``;
    one taken from git history is left out when ``old_server`` or ``before`` is ``None``."""
    unknown = set(kinds) - set(SERVER_KINDS)
    if unknown:
        raise ValueError(f"unknown server kind(s) {sorted(unknown)}; choose from {SERVER_KINDS}")
    chosen: list[Server] = []
    if "old" in kinds and old_server is not None:
        chosen.append(Server(OLD, [sys.executable, str(old_server)], old_server.parent, kind="old"))
    for n in workers:
        command = [sys.executable, "-m", "serving", "--workers", str(n)]
        plural = "s" if n > 1 else ""
        if "before" in kinds and before is not None:
            name = f"FastAPI before ({BEFORE}), {n} worker{plural}"
            chosen.append(Server(name, command, before, {"PYTHONPATH": str(before)}, "before"))
        if "new" in kinds:
            chosen.append(Server(f"FastAPI + ONNX Runtime, {n} worker{plural}", command, record.REPO))
        if "new-sklearn" in kinds:
            name = f"FastAPI new, scikit-learn, {n} worker{plural}"
            chosen.append(
                Server(name, [*command, "--runtime", "scikit-learn"], record.REPO, kind="new-sklearn")
            )
    return chosen


def run(
    clients: list[int],
    rows: list[int],
    workers: list[int],
    model_types: list[str],
    seconds: float = 5.0,
    warmup: float = 1.0,
    kinds: list[str] | None = None,
) -> dict[str, Any]:
    """Every model type x server x row count x concurrency, each for ``seconds`` after ``warmup``.

    Per model type, all servers run from the start and are measured in turn for each row count and
    concurrency, the order rotating from one to the next, so that a change in the machine's load (other
    people's jobs) falls on every server alike instead of on whichever happened to run last."""
    kinds = kinds or ["before", "new"]
    load_before = [round(x, 2) for x in os.getloadavg()]
    cells = []
    models = {}
    baselines = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as home:
        old_server = before = None
        if "old" in kinds:
            source, said = old_server_source()
            baselines.append(said)
            if source is not None:
                old_server = Path(home, "old", "model_server.py")
                old_server.parent.mkdir()
                old_server.write_text(source)
        if "before" in kinds:
            before, said = before_source(Path(home, "before"))
            baselines.append(said)
        for said in baselines:
            print(f"serving: baseline {said}", flush=True)
        bodies = {n: request_body(n) for n in rows}
        for model_type in model_types:
            root = Path(home, model_type).as_uri()
            models[model_type] = model = register_production_model(root, model_type)
            env = {**os.environ, "PYTHONPATH": str(record.REPO), "PIPELINE_STORAGE_ROOT": root}
            # All servers start at once (their imports overlap), then each is waited for.
            with ExitStack() as running:
                launched = []
                for i, server in enumerate(servers(kinds, workers, old_server, before)):
                    log = Path(home, f"{model_type}-{i}.log")
                    launched.append((server, log, *running.enter_context(started(server, env, log))))
                serving = [
                    (server, url, serving_version(server, url, process, model["version"], log))
                    for server, log, url, process in launched
                ]
                for turn, (n, c) in enumerate((n, c) for n in rows for c in clients):
                    first = turn % len(serving)
                    for server, url, process in serving[first:] + serving[:first]:
                        figures = _measure(f"{url}/predict", bodies[n], n, c, seconds, warmup, process)
                        cells.append(
                            {
                                "model_type": model_type,
                                "server": server.name,
                                "kind": server.kind,
                                "rows": n,
                                "clients": c,
                                **figures,
                            }
                        )
    reference = _add_ratios(cells)
    return {
        "models": models,
        "baseline": "; ".join(baselines) or None,
        "reference": reference,
        "client_processes": 1,
        "seconds_per_cell": seconds,
        "warmup_seconds": warmup,
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "cells": cells,
    }


def _same_load(cell: dict[str, Any]) -> tuple[str, int, int]:
    return cell["model_type"], cell["rows"], cell["clients"]


def _add_ratios(cells: list[dict[str, Any]]) -> str | None:
    """Each cell's req/s and p99 against the reference server's for the same model, rows and clients:
    the FastAPI server before ONNX Runtime when it ran, else the old one. Returns its kind."""
    kinds = {c["kind"] for c in cells}
    reference = next((kind for kind in ("before", "old") if kind in kinds), None)
    base = {_same_load(c): c for c in cells if c["kind"] == reference}
    for cell in cells:
        other = base.get(_same_load(cell))
        if other and other["rps"] and cell["p99_ms"] and other["p99_ms"]:
            cell["rps_vs_reference"] = round(cell["rps"] / other["rps"], 2)
            cell["p99_reference_over_this"] = round(other["p99_ms"] / cell["p99_ms"], 2)
    return reference


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
            "rows/s",
            "server CPU ms/req",
            "client CPU",
            "req/s / ref",
            "ref p99 / p99",
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
                c.get("rows_per_s"),
                c["server_cpu_ms_per_request"],
                c["client_cpu_share"],
                c.get("rps_vs_reference"),
                c.get("p99_reference_over_this"),
            ]
            for c in cells
        ],
        title=(
            f"POST /predict, {result['client_processes']} client process (uvloop), "
            f"{result['seconds_per_cell']} s per cell; reference: {result['reference']} "
            f"({result['baseline']}); load average before {result['load_avg_before']}, "
            f"after {result['load_avg_after']}"
        ),
    )
    for c in cells:
        if c["errors"]:
            print(
                f"errors of {c['server']}, {c['model_type']}, {c['rows']} rows, {c['clients']} clients: "
                f"{c['error_kinds']}"
            )
