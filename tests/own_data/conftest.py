"""One more real stack for the "your own data" scenarios: it runs with a dataset schema inferred from a
sample of another table, so it cannot be the integration tier's Iris stack. Package scope: it stops
before the next tier starts. A scenario may restart it with another schema (``restart``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.stack.config import StackConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_ports
from tests.processes import leftover_processes, stack_sessions


class OwnDataStack:
    """The stack of this tier: started with ``start(schema_file)``, restarted with another schema on
    the same home, data and ports, as a team that changes its schema restarts its deployment."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ports = free_ports()
        self.current: LocalStack | None = None
        self.sessions: set[int] = set()

    def start(self, schema_file: Path) -> LocalStack:
        self.stop()
        config = StackConfig(
            self.home, storage_root=str(self.home / "data"), schema_file=schema_file, **self.ports
        )
        self.current = LocalStack(config)
        self.current.start()
        self.sessions |= stack_sessions(self.current)
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.sessions |= stack_sessions(self.current)
            self.current.stop()
            assert not leftover_processes(self.current, self.sessions), "processes outlived `stop()`"


@pytest.fixture(scope="package")
def own_data_stack(tmp_path_factory) -> Iterator[Callable[[Path], LocalStack]]:
    """``start(schema_file)``: the tier's stack running with ``schema_file``, restarted if it runs."""
    stack = OwnDataStack(tmp_path_factory.mktemp("own-data"))
    try:
        yield stack.start
    finally:
        stack.stop()
