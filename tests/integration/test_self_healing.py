"""The local stack looks after itself: a component that dies is started again by the stack's keeper."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from scripts.stack import keeper
from scripts.stack.launcher import LocalStack
from tests.integration.chain import production, served_version
from tests.sabotage import Saboteur


@pytest.fixture
def saboteur(stack: LocalStack) -> Iterator[Saboteur]:
    saboteur = Saboteur(stack)
    yield saboteur
    saboteur.stop_orphans()


def answers(stack: LocalStack) -> str | None:
    try:
        return served_version(stack) or "none"
    except httpx.HTTPError:
        return None


def test_the_model_server_killed_is_restarted_by_the_keeper_and_serves_production(
    stack: LocalStack, saboteur, wait_for
):
    wait_for(lambda: answers(stack), 60, "the model server to answer")
    kept = wait_for(lambda: keeper.status(stack.config.home).get("model-server"), 30, "the keeper to watch")
    restarts = kept["restarts"]
    killed = time.monotonic()

    saboteur.kill("model-server")
    # Generous limits: how fast is reported, not asserted (it measures the machine's load as much).
    saboteur.restarted("model-server", timeout=60)
    restarted = time.monotonic() - killed
    wait_for(lambda: answers(stack), 90, "the restarted model server to answer", interval=0.1)
    serving = time.monotonic() - killed
    print(f"\nmodel server SIGKILLed -> restarted {restarted:.1f} s, serving again {serving:.1f} s")

    pointer = production(stack)
    assert served_version(stack) == (pointer["version"] if pointer else None)
    status = wait_for(
        lambda: (s := keeper.status(stack.config.home)["model-server"])["restarts"] > restarts and s,
        10,
        "the keeper to count the restart",
    )
    assert status["state"] == "running"
    log = (stack.config.log_dir / "keeper.log").read_text()
    assert "model-server (pid" in log
    assert "restarted model-server" in log
