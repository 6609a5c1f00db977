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
from scripts.stack.supervisor import free_ports
from tests.processes import leftover_processes, stack_sessions
from tests.sabotage import Saboteur


@pytest.fixture(scope="package")
def deployment(tmp_path_factory) -> Iterator[tuple[LocalStack, Saboteur]]:
    """The stack and the saboteur that hurts it. One fixture, because the leak check after `stop()`
    needs the sessions of the components the saboteur killed as well as of those running at the end."""
    home = tmp_path_factory.mktemp("faults")
    root = home / "sandbox" / "data"
    root.mkdir(parents=True)
    stack = LocalStack(StackConfig(home, **free_ports(), storage_root=str(root)))
    stack.start(timeout=300)
    # Two good Iris models tie or differ by a row on 30 held-out rows: let every passing candidate in.
    stack.rest.set_variable("deploy_margin", "1")
    saboteur = Saboteur(stack)
    yield stack, saboteur
    saboteur.stop_orphans()
    sessions = saboteur.sessions | stack_sessions(stack)
    stopped = stack.stop()
    assert not leftover_processes(stack, sessions), f"processes of the stack outlived `stop()` of {stopped}"


@pytest.fixture(scope="package")
def stack(deployment: tuple[LocalStack, Saboteur]) -> LocalStack:
    return deployment[0]


@pytest.fixture(scope="package")
def saboteur(deployment: tuple[LocalStack, Saboteur]) -> Saboteur:
    return deployment[1]


@pytest.fixture(scope="package")
def data(stack: LocalStack) -> Path:
    return Path(stack.config.storage_root)
