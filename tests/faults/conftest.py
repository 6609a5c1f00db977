"""One real stack for every fault scenario (they run in file order and build on each other).

The storage root is ``<home>/sandbox/data``, so ``sandbox/`` holds nothing but the root: anything a
hostile id wrote outside the root would show up there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack.config import StackConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_port
from tests.integration.chain import leftover_processes
from tests.sabotage import Saboteur


@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("faults")
    root = home / "sandbox" / "data"
    root.mkdir(parents=True)
    ports = {name: free_port() for name in ("api_port", "source_port", "smtp_port", "model_server_port")}
    stack = LocalStack(
        StackConfig(home, **ports, log_server_ports=(free_port(), free_port()), storage_root=str(root))
    )
    stack.start(timeout=300)
    # Two good Iris models tie or differ by a row on 30 held-out rows: let every passing candidate in.
    stack.rest.set_variable("deploy_margin", "1")
    yield stack
    stopped = stack.stop()
    assert not leftover_processes(stack), f"processes of the stack outlived `stop()` of {stopped}"


@pytest.fixture(scope="package")
def saboteur(stack: LocalStack) -> Iterator[Saboteur]:
    saboteur = Saboteur(stack)
    yield saboteur
    saboteur.stop_orphans()


@pytest.fixture(scope="package")
def data(stack: LocalStack) -> Path:
    return Path(stack.config.storage_root)
