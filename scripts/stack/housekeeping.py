"""Looking after a stack's home: reading its components' logs, and removing its state.

Every component's output goes to ``<home>/logs/<component>.log`` (the supervisor opens it); the
subfolders of ``<home>/logs/`` are Airflow's task and dag-processor logs, which the UI shows.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO
from urllib.parse import urlparse

from scripts.stack.config import DEFAULT_DATA, EMBEDDED_HOME, CeleryConfig, StackConfig
from scripts.stack.errors import StackError
from scripts.stack.supervisor import Supervisor

# The last lines are looked for in blocks of this size from the end, so a long log is not read whole.
_BLOCK = 64 * 1024


class LogTail:
    """One log file read like ``tail -F``: its last lines once, then whatever is appended; a file
    that shrank (truncated, or replaced) is read again from its start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""

    def last_lines(self, count: int) -> list[str]:
        """The last ``count`` complete lines; following continues after them."""
        with self.path.open("rb") as file:
            end = file.seek(0, 2)
            start, data = end, b""
            while start > 0 and data.count(b"\n") <= count:
                start = max(0, start - _BLOCK)
                file.seek(start)
                data = file.read(end - start)
        self.offset = end
        complete, _, self._partial = data.rpartition(b"\n")
        lines = complete.split(b"\n") if complete else []
        if start > 0:
            lines = lines[1:]  # the first one was cut by the block boundary
        return [_text(line) for line in lines[-count:]] if count > 0 else []

    def new_lines(self) -> list[str]:
        """The complete lines appended since the last call; a line still being written waits."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = self._partial + file.read(size - self.offset)
        self.offset = size
        complete, newline, self._partial = data.rpartition(b"\n")
        return [_text(line) for line in complete.split(b"\n")] if newline else []


def _text(line: bytes) -> str:
    return line.decode(errors="replace").rstrip("\r")


def component_logs(config: StackConfig) -> dict[str, Path]:
    """Each component's log file by component name, for the components that ever ran from the home."""
    if not config.log_dir.is_dir():
        return {}
    return {path.stem: path for path in sorted(config.log_dir.glob("*.log")) if path.is_file()}


def show_logs(
    config: StackConfig,
    supervisor: Supervisor,
    out: TextIO,
    *,
    components: Iterable[str] = (),
    lines: int = 20,
    follow: bool = True,
    poll: float = 0.5,
) -> None:
    """Print the last ``lines`` of each component's log, each line after its component's name; with
    ``follow``, then print what they append until the stack is no longer running (or Ctrl-C).

    A log that appears while following (a component started later) is followed from its start."""
    logs = component_logs(config)
    if not logs:
        raise StackError(
            f"no component logs in {config.log_dir}: no stack has run from {config.home} yet "
            f"(start one with {_make(config, 'up')})"
        )
    wanted = set(components)
    unknown = wanted - set(logs)
    if unknown:
        raise StackError(f"no log of {', '.join(sorted(unknown))}; the components are: {', '.join(logs)}")
    width = max(map(len, logs))

    def chosen(names: Iterable[str]) -> list[str]:
        return [name for name in names if not wanted or name in wanted]

    def emit(name: str, text: list[str]) -> None:
        for line in text:
            out.write(f"{name:<{width}} | {line}\n")
        out.flush()

    tails = {name: LogTail(logs[name]) for name in chosen(logs)}
    for name, tail in tails.items():
        emit(name, tail.last_lines(lines))
    if not supervisor.running():
        out.write(f"(the stack of {config.home} is not running: these were its last lines)\n")
        return
    if not follow:
        return
    while True:
        running = supervisor.running()
        for name in chosen(component_logs(config)):
            if name not in tails:
                tails[name] = LogTail(config.log_dir / f"{name}.log")
            emit(name, tails[name].new_lines())
        if not running:
            out.write(f"(the stack of {config.home} stopped)\n")
            return
        time.sleep(poll)


def _make(config: StackConfig, target: str) -> str:
    """The make command that does ``target`` (up, down) for this kind of stack."""
    return f"make {target}-celery" if isinstance(config, CeleryConfig) else f"make {target}"


def own_data_folder(config: StackConfig) -> Path | None:
    """The stack's data folder if it is the stack's own, which ``clean`` may remove: a folder inside
    its home (the Celery stack's ``data/``), or the repo's ``data/`` for the stack of ``make up``, the
    one stack that uses it by default. None for any other storage root (a folder or bucket someone
    named in PIPELINE_STORAGE_ROOT, or ``data/`` seen from a stack in another home, which may be
    running on it)."""
    parsed = urlparse(config.storage_root)
    if parsed.scheme not in ("", "file"):
        return None
    folder = Path(parsed.path if parsed.scheme else config.storage_root).resolve()
    if folder.is_relative_to(config.home):
        return folder
    if folder == DEFAULT_DATA.resolve() and config.home == EMBEDDED_HOME.resolve():
        return folder
    return None


def clean(config: StackConfig, supervisor: Supervisor) -> list[str]:
    """Remove the stack's state: its home (database, logs, secrets, mails, source files), its own data
    folder (:func:`own_data_folder`), and for the Celery topology its PostgreSQL database. Refuse,
    removing nothing, while the stack is running.

    Return one line per thing removed or deliberately kept.
    """
    running = supervisor.running()
    if running:
        raise StackError(
            f"the stack of {config.home} is running ({', '.join(sorted(running))}); "
            f"stop it first ({_make(config, 'down')}), then clean"
        )
    removed: list[str] = []
    kept: list[str] = []
    if isinstance(config, CeleryConfig) and config.home.exists():
        # The database holds Variables encrypted with the home's Fernet key: a new home could not read
        # them from the old database, so both go or neither (the drop goes first, and refuses while
        # another session uses the database).
        config.drop_database(force=False)
        removed.append(f"dropped PostgreSQL database {config.database}")
    data = own_data_folder(config)
    if data is None:
        kept.append(f"kept {config.storage_root}: not this stack's own data folder")
    for path in (config.home, data):
        if path is not None and path.exists():
            shutil.rmtree(path)
            removed.append(f"removed {path}")
    return (removed or [f"nothing to remove: {config.home} does not exist"]) + kept
