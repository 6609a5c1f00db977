"""The keeper restarts a component that exits, with backoff and a limit, on real processes."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from scripts.stack import keeper
from scripts.stack.keeper import Keeper, restart_delay
from scripts.stack.supervisor import Supervisor, alive
from tests.waits import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_restart_delay_is_none_at_first_then_doubles_up_to_the_cap_then_gives_up():
    delays = [restart_delay(n) for n in range(keeper.RESTART_LIMIT + 2)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, None, None]
    assert max(d for d in delays if d is not None) <= keeper.MAX_DELAY_SECONDS


@pytest.fixture
def kept(tmp_path: Path):
    supervisor = Supervisor(tmp_path / "stack.json", tmp_path)
    supervisor.start({"sleeper": SLEEPER}, env=dict(os.environ), cwd=tmp_path)
    (tmp_path / keeper.SPEC_FILE).write_text(
        json.dumps(
            {
                "commands": {"sleeper": SLEEPER},
                "env": dict(os.environ),
                "cwd": str(tmp_path),
                "state_file": str(tmp_path / "stack.json"),
                "log_dir": str(tmp_path),
            }
        )
    )
    lines: list[str] = []
    yield Keeper(tmp_path, log=lines.append), supervisor, lines
    supervisor.stop(grace=5)


def kill(supervisor: Supervisor) -> int:
    pid = supervisor.pids()["sleeper"]
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 10, "the sleeper to die", interval=0.05)
    return pid


def test_a_component_that_exits_is_restarted_at_once_and_counted(kept, tmp_path):
    guard, supervisor, lines = kept
    assert guard.check() == []
    killed = kill(supervisor)

    assert guard.check() == ["sleeper"]

    pid = supervisor.pids()["sleeper"]
    assert pid != killed
    assert alive(pid)
    assert keeper.status(tmp_path) == {"sleeper": {"state": "running", "restarts": 1}}
    assert any("sleeper (pid" in line and "has exited" in line for line in lines)
    assert any(f"restarted sleeper as pid {pid}" in line for line in lines)


def test_a_component_that_keeps_dying_is_restarted_later_each_time_then_given_up(kept, tmp_path):
    guard, supervisor, lines = kept
    now = 1000.0
    for _ in range(keeper.RESTART_LIMIT):
        kill(supervisor)
        delay = restart_delay(guard.watched["sleeper"].recent(now))
        if delay:
            assert guard.check(now) == [], "not before its delay"
            assert keeper.status(tmp_path)["sleeper"]["state"] == "restarting"
        now += delay
        assert guard.check(now) == ["sleeper"]
    kill(supervisor)

    assert guard.check(now + 60) == []
    assert guard.check(now + 120) == []
    assert keeper.status(tmp_path)["sleeper"] == {"state": "gave up", "restarts": keeper.RESTART_LIMIT}
    assert sum("not restarting it" in line for line in lines) == 1, "given up once, logged once"
    assert guard.check(now + keeper.WINDOW_SECONDS + 1) == ["sleeper"], "the window moves on"
