"""Keep the local stack's components running: restart one that exits, with backoff and a limit.

The launcher starts the keeper as one more component (``keeper``) once the others answer, and
``stop()`` ends it before them, so nothing is restarted while the stack is going down. Every second
it checks the pids the state file records; a component whose process is gone (or a zombie) is
started again with the command, environment and folder the launcher recorded (``keeper.json``, private:
the environment holds the stack's secrets), after 1, 2, 4, ... up to 30 seconds when it keeps dying,
and not at all after ``RESTART_LIMIT`` restarts within ``WINDOW_SECONDS``: a component that cannot
stay up needs a person (its log says why). Each restart is logged to ``logs/keeper.log`` and counted in
``keeper-status.json``, which ``make status`` shows.

    python -m scripts.stack.keeper <home>
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from scripts.stack.supervisor import Supervisor, alive

NAME = "keeper"
SPEC_FILE = "keeper.json"
STATUS_FILE = "keeper-status.json"
RESTART_LIMIT = 5
WINDOW_SECONDS = 600.0
MAX_DELAY_SECONDS = 30.0


def restart_delay(recent_restarts: int) -> float | None:
    """Seconds to wait before restarting a component restarted ``recent_restarts`` times within the
    window: none the first time, then doubling from 1 s up to 30 s; None once over the limit."""
    if recent_restarts >= RESTART_LIMIT:
        return None
    return 0.0 if recent_restarts == 0 else min(MAX_DELAY_SECONDS, 2.0 ** (recent_restarts - 1))


@dataclass
class Watched:
    """What the keeper knows of one component: its restarts (times), when it was seen dead, its state."""

    restarts: list[float] = field(default_factory=list)
    dead_since: float | None = None
    state: str = "running"

    def recent(self, now: float) -> int:
        return sum(1 for at in self.restarts if now - at < WINDOW_SECONDS)


class Keeper:
    """Restart the components of the stack whose state lives in ``home`` (``stack.json``, ``keeper.json``)."""

    def __init__(self, home: Path, log=print) -> None:
        self.home = home
        spec = json.loads((home / SPEC_FILE).read_text())
        self.commands: dict[str, list[str]] = spec["commands"]
        self.env: dict[str, str] = spec["env"]
        self.cwd: str = spec["cwd"]
        self.supervisor = Supervisor(Path(spec["state_file"]), Path(spec["log_dir"]))
        self.watched = {name: Watched() for name in self.commands}
        self.log = log

    def check(self, now: float | None = None) -> list[str]:
        """Look at every component once; restart those due; return the names restarted."""
        now = time.monotonic() if now is None else now
        pids = self.supervisor.pids()
        restarted = []
        for name, watched in self.watched.items():
            if alive(pids.get(name)):
                watched.dead_since, watched.state = None, "running"
                continue
            if watched.dead_since is None:
                watched.dead_since = now
                self.log(f"{_stamp()} {name} (pid {pids.get(name)}) has exited")
            delay = restart_delay(watched.recent(now))
            if delay is None:
                if watched.state != "gave up":
                    self.log(
                        f"{_stamp()} {name} exited {RESTART_LIMIT} times within {WINDOW_SECONDS:.0f} s; "
                        f"not restarting it (see logs/{name}.log, then make down and make up)"
                    )
                watched.state = "gave up"
                continue
            watched.state = "restarting"
            if now - watched.dead_since < delay:
                continue
            pid = self.supervisor.restart(name, self.commands[name], env=self.env, cwd=self.cwd)
            watched.restarts.append(now)
            watched.dead_since, watched.state = None, "running"
            self.log(f"{_stamp()} restarted {name} as pid {pid} (restart {len(watched.restarts)})")
            restarted.append(name)
        self.write_status()
        return restarted

    def write_status(self) -> None:
        status = {name: {"state": w.state, "restarts": len(w.restarts)} for name, w in self.watched.items()}
        tmp = self.home / f".{STATUS_FILE}.tmp"
        tmp.write_text(json.dumps(status))
        tmp.replace(self.home / STATUS_FILE)

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.wait(interval):
            self.check()


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def status(home: Path) -> dict[str, dict]:
    """What the keeper last wrote about each component (empty if no keeper ran)."""
    try:
        return json.loads((home / STATUS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> None:
    [home] = argv if argv is not None else sys.argv[1:]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    keeper = Keeper(Path(home), log=lambda line: print(line, flush=True))
    print(f"{_stamp()} keeping {', '.join(keeper.commands)} running", flush=True)
    keeper.run(stop)


if __name__ == "__main__":
    main()
