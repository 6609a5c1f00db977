"""Hurt a running stack the way real faults do, and only that stack.

Components are killed by the pids the launcher recorded in ``stack.json`` (never by name: other stacks
run on this machine), and started again with the command line, working folder and environment the
launcher gave them. Every pid is checked to belong to this stack's sessions before it is signalled.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from scripts.stack.launcher import LocalStack
from tests.processes import alive, in_sessions, stack_sessions, stat
from tests.waits import wait_for


class Saboteur:
    """Kills parts of ``stack`` by pid and starts components again the way the launcher did.

    A restarted component replaces the old one in ``stack.json``, so the stack keeps it and
    ``stack.stop()`` ends it. A component killed without its process group may leave children behind
    (a scheduler's executor workers): :meth:`stop_orphans` ends them."""

    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.state_file = stack.config.state_file
        self.sessions = stack_sessions(stack)  # every session a component of this stack ran in
        self.orphaned: list[int] = []  # components (session and group leaders) we killed alone
        self.last_killed: dict[str, int] = {}  # the pid each component had when it was last killed

    def _pids(self) -> dict[str, int]:
        return json.loads(self.state_file.read_text())["pids"]

    def pid(self, component: str) -> int:
        return self._pids()[component]

    def _check_ours(self, pid: int) -> None:
        """Refuse to signal a process outside the sessions of this stack's components (the launcher
        starts each in a session of its own; a task process's environment is overwritten by its title,
        its session is not)."""
        if stat(pid)[3] not in self.sessions:
            raise RuntimeError(f"process {pid} does not belong to the stack in {self.stack.config.home}")

    def kill(self, component: str, *, group: bool = True) -> tuple[list[str], str, dict[str, str]]:
        """SIGKILL ``component`` (its whole process group, or only its main process); return the
        command line, working folder and environment it was started with."""
        pid = self.pid(component)
        self._check_ours(pid)
        command = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
        env = dict(line.split("=", 1) for line in environ if "=" in line)
        if env.get("AIRFLOW_HOME") != str(self.stack.config.home):  # overwritten by a process title
            env = self.stack.config.env
        self.last_killed[component] = pid
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
            self.orphaned.append(pid)
        wait_for(lambda: not alive(pid), 10, f"{component} ({pid}) to die")
        return command, cwd, env

    def restart(self, component: str, command: list[str], cwd: str, env: dict[str, str]) -> int:
        """Start ``component`` again the way the launcher did, or, where the stack's keeper runs, wait
        for it to do so; the stack keeps it and stops it."""
        if "keeper" in self.stack.supervisor.running():
            return self.restarted(component)
        pid = self.stack.supervisor.restart(component, command, env=env, cwd=cwd)
        self.sessions.add(pid)
        return pid

    def restarted(self, component: str, timeout: float = 60) -> int:
        """The pid of ``component`` once the stack's keeper has started it again after a kill."""
        killed = self.last_killed[component]
        pid = wait_for(
            lambda: (pid := self.pid(component)) != killed and alive(pid) and pid,
            timeout,
            f"the stack to restart {component} on its own",
            interval=0.1,
        )
        self.sessions.add(pid)
        return pid

    @contextmanager
    def keeper_paused(self) -> Iterator[None]:
        """Freeze the stack's keeper (SIGSTOP) for the block, so a component killed in it stays dead
        until the block ends, however long the block takes; it is thawed (SIGCONT) even if the block
        fails, and restarts what died then."""
        pid = self.pid("keeper")
        self._check_ours(pid)
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def kill_task(self, dag_id: str, run_id: str, task_id: str, timeout: float = 60) -> int:
        """SIGKILL the process running ``task_id`` as soon as it runs (its pid comes from the REST API);
        return the try that was killed."""

        def running() -> dict | None:
            ti = self.stack.rest.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
            return ti if ti["state"] == "running" and ti["pid"] and alive(ti["pid"]) else None

        ti = wait_for(running, timeout, f"{dag_id}.{task_id} to run", interval=0.1)
        self._check_ours(ti["pid"])
        os.kill(ti["pid"], signal.SIGKILL)
        return ti["try_number"]

    def stop_orphans(self) -> None:
        """End what is left of the components killed alone: their sessions (each component leads one),
        which hold their process groups and the task processes in groups of their own."""
        for pid in in_sessions(set(self.orphaned)):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.orphaned.clear()
