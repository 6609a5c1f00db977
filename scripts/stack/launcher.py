"""The local stack as one object: its settings, its processes and its REST API, put together."""

from __future__ import annotations

import json
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx

from scripts.publish import publish
from scripts.stack import keeper
from scripts.stack.config import ADMIN_USER, NO_DATABASE, REPO, StackConfig
from scripts.stack.errors import StackError
from scripts.stack.rest import AirflowRestClient
from scripts.stack.supervisor import Supervisor


class LocalStack:
    """One deployment on this machine, described by ``config`` (a ``StackConfig``, or a ``CeleryConfig``
    for the production topology), run by ``supervisor`` and queried through ``rest``."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.supervisor = Supervisor(config.state_file, config.log_dir)
        self.rest = AirflowRestClient(config.api_url, ADMIN_USER, lambda: config.password)

    def start(self, timeout: float = 180) -> None:
        """Start every component in the background and wait until the API answers and DAGs are parsed."""
        self.supervisor.check_can_start(self.config.ports())
        self.config.prepare()
        components = self.config.components()
        try:
            # The data source, mail sink and model server need no metadata database: they start on the
            # core the (single-threaded) database set-up leaves idle.
            self.supervisor.start(
                {name: components.pop(name) for name in NO_DATABASE}, env=self.config.env, cwd=REPO
            )
            self.config.init()
            for name, command in components.items():
                self.supervisor.restart(name, command, env=self.config.env, cwd=REPO)
            self._wait_until_ready(timeout)
            self._start_keeper()
        except BaseException:
            self.stop()
            raise

    def _start_keeper(self) -> None:
        """Start the keeper (``scripts.stack.keeper``), which restarts a component that exits; it reads
        the components' commands and environment from a file only this user can read."""
        spec = self.config.home / keeper.SPEC_FILE
        spec.touch(mode=0o600)
        spec.write_text(
            json.dumps(
                {
                    "commands": self.config.components(),
                    "env": dict(self.config.env),
                    "cwd": str(REPO),
                    "state_file": str(self.config.state_file),
                    "log_dir": str(self.config.log_dir),
                }
            )
        )
        command = [sys.executable, "-m", "scripts.stack.keeper", str(self.config.home)]
        self.supervisor.restart(keeper.NAME, command, env=self.config.env, cwd=REPO)

    def health(self) -> dict:
        """Airflow's own view of its components (``GET /api/v2/monitor/health``: the metadata database,
        and the scheduler's, triggerer's and dag-processor's heartbeats)."""
        return self.rest.get("/api/v2/monitor/health")

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = set(self.config.components()) - set(self.supervisor.running())
            if dead:
                raise StackError(f"{', '.join(sorted(dead))} exited; see {self.config.log_dir}/<name>.log")
            with suppress(httpx.HTTPError, StackError):
                if "ingest" in self.rest.stage_dags():
                    return
            time.sleep(0.5)
        raise StackError(f"the stack was not ready within {timeout:.0f} s; see {self.config.log_dir}")

    def stop(self, grace: float = 20) -> list[str]:
        """Stop every component this stack started; return their names."""
        return self.supervisor.stop(grace)

    def publish(self, kind: str = "good", seed: int | None = None, *, drop: bool = False) -> Path:
        """A new batch at the stack's data source, or with ``drop`` a new file in its drop folder."""
        if drop:
            return publish(self.config.drop_dir, kind, seed=seed, drop=True)
        return publish(self.config.source_dir, kind, seed=seed)

    def mails(self) -> list[Path]:
        """Every mail the stack's mail sink received, oldest first."""
        return sorted(self.config.mail_dir.glob("*.eml"))
