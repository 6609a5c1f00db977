"""Process supervision: every component runs in a session of its own and is stopped by process group
and session, so the LocalExecutor's workers, the task processes (each in a process group of its own)
and the API server's children go with their parent (``airflow standalone`` leaves them behind). The
process ids are kept in a state file, so another command can stop what an earlier one started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path

from scripts.stack.errors import StackError

# How long SIGKILLed processes get to be gone before stop() returns (they exit at once, unless stuck in
# the kernel).
KILLED_GRACE = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports() -> dict[str, int | tuple[int, int]]:
    """A free port for every port a ``StackConfig`` listens on, by its keyword: a stack of the tests or
    the benchmarks runs beside any other."""
    return {
        "api_port": free_port(),
        "source_port": free_port(),
        "smtp_port": free_port(),
        "log_server_ports": (free_port(), free_port()),
        "model_server_port": free_port(),
    }


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Supervisor:
    """Starts, lists and stops the processes whose ids ``state_file`` keeps; each component's output
    goes to ``log_dir/<name>.log``."""

    def __init__(self, state_file: Path, log_dir: Path) -> None:
        self.state_file = state_file
        self.log_dir = log_dir

    def pids(self) -> dict[str, int]:
        """The pid last recorded for each component, by name."""
        return json.loads(self.state_file.read_text())["pids"] if self.state_file.exists() else {}

    def running(self) -> dict[str, int]:
        """Components started here whose process is still alive, by name."""
        alive = {}
        for name, pid in self.pids().items():
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 0)
                alive[name] = pid
        return alive

    def check_can_start(self, ports: Iterable[int]) -> None:
        """Refuse to start twice from one state file, or on a port something else listens on."""
        if self.running():
            raise StackError(
                f"a stack is already running from {self.state_file.parent}; stop it first (make down)"
            )
        for port in ports:
            if port_in_use(port):
                raise StackError(f"port {port} is taken on 127.0.0.1; stop what uses it or pick other ports")

    def start(self, commands: Mapping[str, list[str]], *, env: Mapping[str, str], cwd: Path) -> None:
        """Start each command in a new session, in the background; on failure stop what did start."""
        self.state_file.unlink(missing_ok=True)  # pids of a stack that ended: never signal them again
        try:
            for name, command in commands.items():
                self.restart(name, command, env=env, cwd=cwd)
        except BaseException:
            self.stop()
            raise

    def restart(self, name: str, command: list[str], *, env: Mapping[str, str], cwd: Path | str) -> int:
        """Start ``name`` in a session of its own, its output appended to its log, and record its pid in
        place of any earlier one; return the pid."""
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        state = {"pids": {}, "started_at": time.time()}
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
        state["pids"][name] = process.pid
        self.state_file.write_text(json.dumps(state))
        return process.pid

    def stop(self, grace: float = 20) -> list[str]:
        """Stop every component and all it started: SIGTERM to each component's process group, then,
        after ``grace`` seconds, SIGKILL to every process left in the components' sessions, and wait
        until they are gone. Return the names of the components that had been started.

        Sessions, not only groups: Airflow runs each task process in a process group of its own (so its
        supervisor can signal the task's children), and a task whose executor worker was killed with
        the scheduler's group ran on after ``stop()`` returned. It stays in the scheduler's session."""
        if not self.state_file.exists():
            return []
        pids = self.pids()
        sessions = set(pids.values())  # each component leads a session of its own
        if keeper := pids.get("keeper"):  # first, so that it restarts nothing that is being stopped
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(keeper, signal.SIGTERM)
            _wait_until_gone({keeper}, grace)
        for pid in pids.values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        _wait_until_gone(sessions, grace)
        for pid in _members(sessions):
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _wait_until_gone(sessions, KILLED_GRACE)
        self.state_file.unlink()
        return sorted(pids)


def alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie does not: it has exited, and waits for its parent to notice)."""
    if pid is None:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _members(sessions: set[int]) -> list[int]:
    """The processes of ``sessions`` that still run. Zombies do not count: a zombie whose parent died
    waits for init to reap it, and some container inits never do."""
    for leader in sessions:
        with suppress(ChildProcessError):
            os.waitpid(leader, os.WNOHANG)  # reap the leader if it is our own child
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError):
            # "pid (comm) state ppid pgrp session ...": comm may hold spaces, so split after its ")".
            state, _ppid, _group, session = stat.read_text().rsplit(")", 1)[1].split()[:4]
            if int(session) in sessions and state != "Z":
                members.append(int(stat.parent.name))
    return members


def _wait_until_gone(sessions: set[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _members(sessions):
        time.sleep(0.2)
