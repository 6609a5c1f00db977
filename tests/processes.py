"""A stack's processes as /proc shows them: which sessions its components run in, and what of it is
still alive after it stopped.

The launcher starts every component as the leader of a session of its own, and records its pid in
``stack.json``; everything the component starts (executor workers, task processes, uvicorn workers)
stays in that session unless it calls ``setsid``, even when it moves to a process group of its own or
overwrites its environment with a process title (as Airflow's task processes do).
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

from scripts.stack.launcher import LocalStack


def stat(pid: int) -> list[int | str]:
    """State, parent, process group and session of ``pid`` from /proc (``comm`` may hold spaces)."""
    state, ppid, pgrp, session = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:4]
    return [state, int(ppid), int(pgrp), int(session)]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count)."""
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        return stat(pid)[0] != "Z"
    except OSError:
        return False


def stack_sessions(stack: LocalStack) -> set[int]:
    """The sessions the stack's components run in now; none once it is stopped (``stop()`` removes
    ``stack.json``), so read them while it runs."""
    state = stack.config.state_file
    return set(json.loads(state.read_text())["pids"].values()) if state.exists() else set()


def in_sessions(sessions: set[int], environ_marker: bytes | None = None) -> list[int]:
    """Live processes (zombies do not count: some container inits never reap them) in ``sessions``, or
    with ``environ_marker`` (``NAME=value``) in their environment; this one left out."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with suppress(OSError):
                state, _, _, session = stat(int(proc.name))
                if state == "Z":
                    continue
                if session in sessions or (
                    environ_marker and environ_marker in (proc / "environ").read_bytes().split(b"\0")
                ):
                    found.append(int(proc.name))
    return found


def leftover_processes(stack: LocalStack, sessions: set[int]) -> list[int]:
    """Live processes in one of ``sessions`` (see :func:`stack_sessions`), or whose environment points
    at this stack's AIRFLOW_HOME (a process that left its session with ``setsid``); none once the stack
    is stopped."""
    return sorted(in_sessions(sessions, f"AIRFLOW_HOME={stack.config.home}".encode()))
