"""A real Airflow (scheduler, dag-processor, triggerer, API server) with a data source and mail sink.

One stack serves the whole integration session: starting Airflow costs ~20 s on 2 cores, and the
scenarios build on each other the way a deployment's history does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from scripts.local_stack import LocalStack, free_port

T = TypeVar("T")


def _wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., object]:
    return _wait_for


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> LocalStack:
    home = tmp_path_factory.mktemp("stack")
    stack = LocalStack(
        home,
        api_port=free_port(),
        source_port=free_port(),
        smtp_port=free_port(),
        log_server_ports=(free_port(), free_port()),
        model_server_port=free_port(),
        storage_root=str(home / "data"),
    )
    stack.start()
    yield stack
    stopped = stack.stop()
    for name in stopped:
        assert not _pids_with_env(home), f"processes of the stack outlived `stop()` ({name})"


def _pids_with_env(home: Path) -> list[int]:
    """Processes whose environment points at this stack's AIRFLOW_HOME."""
    marker = f"AIRFLOW_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found
