"""Starting and stopping whole process groups, with stand-in components instead of Airflow."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from scripts.stack.errors import StackError
from scripts.stack.supervisor import Supervisor, free_port
from tests.waits import wait_for

SLEEPER = "import time; time.sleep(60)"
# A component whose child (like a LocalExecutor worker or an API server worker) shares its process group.
PARENT = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {SLEEPER!r}]); {SLEEPER}"


@pytest.fixture
def supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(tmp_path / "stack.json", tmp_path)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, process group, session, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def state(pid: int) -> str:
    return stat_fields(pid)[0] if Path(f"/proc/{pid}").exists() else "gone"


@contextmanager
def socket_listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_stop_ends_every_process_of_each_group_and_forgets_them(supervisor: Supervisor):
    parents = {
        f"component-{n}": subprocess.Popen([sys.executable, "-c", PARENT], start_new_session=True)
        for n in range(2)
    }
    supervisor.state_file.write_text(json.dumps({"pids": {name: p.pid for name, p in parents.items()}}))
    child_pids = [
        wait_for(lambda p=parent: children(p.pid), 30, f"{name} to start its child", interval=0.05)[0]
        for name, parent in parents.items()
    ]

    assert supervisor.stop(grace=5) == sorted(parents)

    for pid in child_pids:
        assert state(pid) in ("Z", "gone"), f"child {pid} of a stopped component still runs"
    assert supervisor.running() == {}
    assert not supervisor.state_file.exists()


def test_stop_ends_a_child_in_a_process_group_of_its_own(supervisor: Supervisor, tmp_path: Path):
    # As Airflow's task processes: forked into a group of their own, so a signal to the component's
    # group misses them. This one also ignores SIGTERM, as a task busy in native code may.
    escaper = (
        "import os, signal, time\n"
        "if os.fork() == 0:\n"
        "    os.setpgid(0, 0); signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)\n"
        "time.sleep(60)"
    )
    supervisor.start({"a": [sys.executable, "-c", escaper]}, env={}, cwd=tmp_path)
    component = supervisor.running()["a"]
    [child] = wait_for(lambda: children(component), 30, "the component to fork its child", interval=0.05)
    wait_for(lambda: stat_fields(child)[2] == str(child), 30, "the child's own group", interval=0.05)

    try:
        supervisor.stop(grace=1)

        assert state(child) in ("Z", "gone"), f"child {child} in a group of its own outlived stop()"
    finally:
        with suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_start_runs_each_component_in_a_session_of_its_own(supervisor: Supervisor, tmp_path: Path):
    supervisor.start(
        {"a": [sys.executable, "-c", SLEEPER], "b": [sys.executable, "-c", SLEEPER]}, env={}, cwd=tmp_path
    )
    try:
        running = supervisor.running()
        assert sorted(running) == ["a", "b"]
        for pid in running.values():
            assert stat_fields(pid)[2:4] == [str(pid), str(pid)], "own process group and session"
        assert (tmp_path / "a.log").exists()
    finally:
        supervisor.stop(grace=5)


def test_refuses_a_second_start_and_a_taken_port(supervisor: Supervisor, tmp_path: Path):
    supervisor.check_can_start([free_port()])
    supervisor.start({"a": [sys.executable, "-c", SLEEPER]}, env={}, cwd=tmp_path)
    try:
        with pytest.raises(StackError, match="already running"):
            supervisor.check_can_start([])
    finally:
        supervisor.stop(grace=5)
    with pytest.raises(StackError, match="is taken"), socket_listening() as port:
        supervisor.check_can_start([port])


def test_restart_replaces_a_dead_component_and_stop_ends_it(supervisor: Supervisor, tmp_path: Path):
    supervisor.start(
        {"a": [sys.executable, "-c", SLEEPER], "b": [sys.executable, "-c", SLEEPER]}, env={}, cwd=tmp_path
    )
    first = supervisor.running()
    os.killpg(first["a"], signal.SIGKILL)
    os.waitpid(first["a"], 0)  # our own child: reap it
    assert "a" not in supervisor.running()

    again = supervisor.restart(
        "a", [sys.executable, "-c", f"print('again', flush=True); {SLEEPER}"], env={}, cwd=tmp_path
    )
    try:
        assert supervisor.running() == {"a": again, "b": first["b"]}
        assert stat_fields(again)[2:4] == [str(again), str(again)], "own process group and session"
        wait_for(lambda: b"again" in (tmp_path / "a.log").read_bytes(), 30, "the new a to log")
    finally:
        assert supervisor.stop(grace=5) == ["a", "b"]
    assert state(again) in ("Z", "gone")
