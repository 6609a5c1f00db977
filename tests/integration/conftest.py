"""A real Airflow (scheduler, dag-processor, triggerer, API server) with a data source and mail sink.

One stack serves the whole integration tier (package scope: it stops before the next tier starts):
starting Airflow costs ~20 s on 2 cores, and the scenarios build on each other the way a
deployment's history does; each scenario reads the state it starts from instead of assuming one.
"""

from __future__ import annotations

import json

import pytest

from scripts.stack.config import REPO, StackConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_ports
from tests.integration.chain import variables_changed
from tests.processes import leftover_processes, stack_sessions


@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> LocalStack:
    home = tmp_path_factory.mktemp("stack")
    stack = LocalStack(
        StackConfig(
            home,
            **free_ports(),
            storage_root=str(home / "data"),
        )
    )
    stack.start()
    # The sessions of the components started now and of those running at the end (a scenario may
    # restart the stack or a component): what `stop()` leaves in either is a leak.
    sessions = stack_sessions(stack)
    yield stack
    changed = changed_variables(stack)
    sessions |= stack_sessions(stack)
    stopped = stack.stop()
    assert not leftover_processes(stack, sessions), f"processes of the stack outlived `stop()` of {stopped}"
    assert not changed, f"scenarios left Variables changed (name: value, default): {changed}"


def changed_variables(stack: LocalStack) -> dict[str, tuple]:
    """The Variables whose value differs from the one the stack started with (config/variables.json,
    crawl_url at the stack's data source): each scenario must put back what it changed."""
    defaults = json.loads((REPO / "config" / "variables.json").read_text()) | {
        "crawl_url": stack.config.crawl_url
    }
    changed = {}
    for key, default in defaults.items():
        value = stack.rest.get(f"/api/v2/variables/{key}")["value"]
        if (json.loads(value) if isinstance(default, dict) else value) != default:
            changed[key] = (value, default)
    return changed


@pytest.fixture
def variables(stack: LocalStack, wait_for):
    """``variables(name=value, ...)`` sets Variables for one scenario; each is put back once the runs
    it caused have ended (``tests.integration.chain.variables_changed``)."""
    with variables_changed(stack, wait_for) as set_variables:
        yield set_variables
