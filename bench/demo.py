"""Fresh clone to a model in production: ``make demo`` in a new clone of this repository's HEAD, with
no ``.venv``, timed from the command to its end, the install included, as a new user meets it.

The clone gets a venv of its own (``make`` creates it and installs ``requirements.txt`` only, with uv
when it can, see the Makefile); package caches (pip's, uv's) are whatever this machine has, which the
record says. The demo's own lines give the split: the stack ``ready after`` N s, ``publish to
production`` N s, ``whole demo`` N s; the install is the rest. ``make down`` stops the clone's stack
afterwards, and the clone is removed.

:func:`install_comparison` times the install alone: ``requirements.txt`` into a new venv by pip and by
uv, one after the other (record ``install``).

The stack listens on the local stack's fixed ports (8080, 8000, 2525, 8500, 8793, 8794): with a stack
of this checkout running, the benchmark is skipped and the record says so.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import record

PORTS = (8080, 8000, 2525, 8500, 8793, 8794)
FIGURES = {
    "stack_ready_s": r"ready after (\d+) s",
    "publish_to_production_s": r"publish to production: (\d+) s",
    "demo_s": r"whole demo: (\d+) s",
}


def _busy(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _cache_state() -> dict[str, bool]:
    home = Path.home() / ".cache"
    return {"pip_cache": (home / "pip").is_dir(), "uv_cache": (home / "uv").is_dir()}


def run(timeout: float = 900) -> dict[str, Any]:
    busy = [port for port in PORTS if _busy(port)]
    if busy:
        return {"skipped": f"ports {busy} are in use (a local stack is running?)"}
    uv_on_path = shutil.which("uv") is not None
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as home:
        clone = Path(home, "clone")
        head = subprocess.run(
            ["git", "-C", str(record.REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(record.REPO), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head], check=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PIPELINE_", "BENCH_"))}
        load_before = [round(x, 2) for x in os.getloadavg()]
        started = time.monotonic()
        try:
            demo = subprocess.run(
                ["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout
            )
            total = time.monotonic() - started
        finally:
            subprocess.run(["make", "down"], cwd=clone, env=env, capture_output=True, timeout=300)
    figures: dict[str, Any] = {"returncode": demo.returncode, "total_s": round(total, 1)}
    for name, pattern in FIGURES.items():
        found = re.search(pattern, demo.stdout)
        figures[name] = int(found.group(1)) if found else None
    if figures["demo_s"] is not None:
        figures["install_s"] = round(total - figures["demo_s"], 1)
    if demo.returncode != 0:
        figures["output_tail"] = (demo.stdout + demo.stderr)[-2000:]
    return {
        **figures,
        "uv_on_path": uv_on_path,
        **_cache_state(),
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }


def install_comparison(requirements: str = "requirements.txt", timeout: float = 1200) -> dict[str, Any]:
    """``requirements`` installed into two new venvs in turn, by pip and the Makefile's way (a venv
    without pip; uv, when it is not on ``PATH``, put into it by this interpreter's pip): seconds each,
    same caches, same minute."""
    python = shutil.which("python3.11") or shutil.which("python3") or "python3"
    pins = str(record.REPO / requirements)
    uv_pins = str(record.REPO / "requirements-uv.txt")
    load_before = [round(x, 2) for x in os.getloadavg()]
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="bench-install-") as home:
        for way in ("pip", "uv"):
            venv = Path(home, way)
            started = time.monotonic()
            if way == "pip":
                subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=timeout)
                pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
                subprocess.run([*pip, "-r", pins], check=True, capture_output=True, timeout=timeout)
            else:
                venv_python = str(venv / "bin" / "python")
                bare = [python, "-m", "venv", "--without-pip", str(venv)]
                subprocess.run(bare, check=True, timeout=timeout)
                uv = shutil.which("uv")
                if uv is None:
                    pip = [python, "-m", "pip", "--python", venv_python, "install", "--quiet"]
                    subprocess.run([*pip, "-r", uv_pins], check=True, capture_output=True, timeout=timeout)
                    uv = str(venv / "bin" / "uv")
                command = [uv, "pip", "install", "--python", venv_python, "--quiet"]
                subprocess.run([*command, "-r", pins], check=True, capture_output=True, timeout=timeout)
            seconds[way] = round(time.monotonic() - started, 1)
    return {
        "requirements": requirements,
        "seconds": seconds,
        "pip_over_uv": round(seconds["pip"] / seconds["uv"], 2),
        "uv_on_path": shutil.which("uv") is not None,
        **_cache_state(),
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }


def print_report(result: dict[str, Any]) -> None:
    if "skipped" in result:
        print(f"demo: skipped: {result['skipped']}")
        return
    keys = ("total_s", "install_s", "stack_ready_s", "publish_to_production_s", "returncode")
    record.table(
        ["make demo, fresh clone: total s", "install s", "stack ready s", "publish -> production s", "exit"],
        [[result.get(key) for key in keys]],
        title=(
            f"uv on PATH: {result['uv_on_path']}, pip cache: {result['pip_cache']}, uv cache: "
            f"{result['uv_cache']}; load average before {result['load_avg_before']}, after "
            f"{result['load_avg_after']}"
        ),
    )
