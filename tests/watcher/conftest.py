"""One more real stack, started with the AssetWatcher option (``PIPELINE_ARRIVAL=watcher``): the option
is read when the dag-processor parses ``dags/ingest.py``, so it is the whole stack's. Package scope: it
stops before the next tier starts. Only ``ingest`` runs here: the stages after it are paused, so a
scenario's batches stop at ``raw_batches`` (the chain after it does not depend on how ingest waits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack.config import StackConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_ports
from tests.processes import leftover_processes, stack_sessions

AFTER_INGEST = ("etl", "train_validate", "deploy", "monitor")


@pytest.fixture(scope="package")
def watcher_stack(tmp_path_factory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("watcher")
    stack = LocalStack(
        StackConfig(
            home,
            **free_ports(),
            storage_root=str(home / "data"),
            arrival="watcher",
        )
    )
    stack.start()
    sessions = stack_sessions(stack)
    try:
        for dag_id in AFTER_INGEST:
            stack.rest.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})
        yield stack
    finally:
        sessions |= stack_sessions(stack)
        stack.stop()
        assert not leftover_processes(stack, sessions), "processes of the stack outlived `stop()`"


@pytest.fixture(scope="package")
def drop(watcher_stack: LocalStack) -> Path:
    """The drop folder ``crawl_url`` names for the whole tier: the watcher reads it on the triggerer."""
    folder = watcher_stack.config.drop_dir
    folder.mkdir(exist_ok=True)
    watcher_stack.rest.set_variable("crawl_url", folder.as_uri() + "/")
    return folder
