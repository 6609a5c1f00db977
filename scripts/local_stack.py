"""Run the whole pipeline on one machine: Airflow (SQLite + LocalExecutor), a data source and a mail sink.

    python -m scripts.local_stack up        # start in the background; prints the UI address and login
    python -m scripts.local_stack publish   # a new batch at the data source (--kind bad|shuffled-labels)
    python -m scripts.local_stack demo      # up, publish, follow the pipeline reacting, print a summary
    python -m scripts.local_stack status
    python -m scripts.local_stack down      # stop everything this stack started

Every process is started in a session of its own and stopped by process group, so the LocalExecutor's
workers and the API server's children go with their parent (``airflow standalone`` leaves them behind).
The state (Airflow home, SQLite database, logs, data-source files, mails, process ids) lives in one
folder, ``.airflow/`` by default; the pipeline's data goes to ``PIPELINE_STORAGE_ROOT`` (default
``data/``). The integration tests run this same class in a temporary folder on free ports.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from scripts.publish import publish

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
STAGES = ("ingest", "etl", "train_validate", "deploy", "monitor")
ADMIN_USER = "admin"
GET_RETRIES = 15


class StackError(RuntimeError):
    """The stack could not start, or a component died."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalStack:
    """One local Airflow deployment with its data source and mail sink, kept under ``home``."""

    def __init__(
        self,
        home: Path,
        *,
        api_port: int = 8080,
        source_port: int = 8000,
        smtp_port: int = 2525,
        log_server_ports: tuple[int, int] = (8793, 8794),
        model_server_port: int = 8500,
        storage_root: str | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.api_port = api_port
        self.source_port = source_port
        self.smtp_port = smtp_port
        self.log_server_ports = log_server_ports
        self.model_server_port = model_server_port
        self.storage_root = storage_root or os.environ.get("PIPELINE_STORAGE_ROOT") or str(REPO / "data")
        self._token: str | None = None

    # -- layout -------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def crawl_url(self) -> str:
        return f"http://127.0.0.1:{self.source_port}/iris.csv"

    @property
    def source_dir(self) -> Path:
        return self.home / "source"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def password(self) -> str:
        return json.loads((self.home / "passwords.json").read_text())[ADMIN_USER]

    def _secrets(self) -> dict[str, str]:
        """Per-home secrets, made once: every component must share the JWT secret and Fernet key."""
        path = self.home / "secrets.json"
        if not path.exists():
            from cryptography.fernet import Fernet

            path.write_text(
                json.dumps(
                    {
                        "fernet_key": Fernet.generate_key().decode(),
                        "jwt_secret": secrets.token_urlsafe(32),
                        "api_secret_key": secrets.token_urlsafe(32),
                    }
                )
            )
            path.chmod(0o600)
        return json.loads(path.read_text())

    @property
    def env(self) -> dict[str, str]:
        """The environment every component and CLI call of this stack runs with."""
        keys = self._secrets()
        smtp = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.smtp_port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "ml-pipeline@localhost"},
        }
        return {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # LocalExecutor starts up to `parallelism` worker processes; 2 cores do not need 32.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_dir),
            # The scheduler and triggerer serve task logs to the API server on these ports.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
            # New DAG files show up within seconds, not the default 5 minutes.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp),
            "AIRFLOW_CONN_MODEL_SERVER": json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": self.model_server_port}
            ),
            "PIPELINE_STORAGE_ROOT": self.storage_root,
        }

    # -- lifecycle ----------------------------------------------------------------------------------

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command against this stack."""
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, cwd=REPO
        )
        if check and result.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        """Create the home, its database, the admin login and the Variables (idempotent)."""
        for folder in (self.home, self.source_dir, self.mail_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "passwords.json"
        if not passwords.exists():
            passwords.write_text(json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}))
            passwords.chmod(0o600)
        self.airflow("db", "migrate")
        self.airflow("variables", "import", str(REPO / "config" / "variables.json"))
        self.airflow("variables", "set", "crawl_url", self.crawl_url)

    def _components(self) -> dict[str, list[str]]:
        python = str(VENV_BIN / "python")
        airflow = str(VENV_BIN / "airflow")
        return {
            "data-source": [
                python,
                str(REPO / "scripts" / "data_source.py"),
                "--port",
                str(self.source_port),
                "--directory",
                str(self.source_dir),
            ],
            "smtp-sink": [
                python,
                str(REPO / "scripts" / "smtp_sink.py"),
                "--port",
                str(self.smtp_port),
                "--maildir",
                str(self.mail_dir),
            ],
            "model-server": [python, "-m", "scripts.model_server", "--port", str(self.model_server_port)],
            "api-server": [airflow, "api-server", "--port", str(self.api_port), "--host", "127.0.0.1"],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer"],
        }

    def _ports(self) -> tuple[int, ...]:
        return (
            self.api_port,
            self.source_port,
            self.smtp_port,
            self.model_server_port,
            *self.log_server_ports,
        )

    def running(self) -> dict[str, int]:
        """Components started by this stack whose process is still alive, by name."""
        if not self.state_file.exists():
            return {}
        pids = json.loads(self.state_file.read_text())["pids"]
        alive = {}
        for name, pid in pids.items():
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 0)
                alive[name] = pid
        return alive

    def start(self, timeout: float = 180) -> None:
        """Start every component in the background and wait until the API answers and DAGs are parsed."""
        if self.running():
            raise StackError(f"a stack is already running from {self.home}; stop it first (make down)")
        for port in self._ports():
            if _port_in_use(port):
                raise StackError(f"port {port} is taken on 127.0.0.1; stop what uses it or pick other ports")
        self.init()
        pids = {}
        try:
            for name, command in self._components().items():
                log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it open)
                process = subprocess.Popen(
                    command,
                    env=self.env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                pids[name] = process.pid
            self.state_file.write_text(json.dumps({"pids": pids, "started_at": time.time()}))
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = set(self._components()) - set(self.running())
            if dead:
                raise StackError(f"{', '.join(sorted(dead))} exited; see {self.log_dir}/<name>.log")
            with suppress(httpx.HTTPError, StackError):
                dags = {d["dag_id"] for d in self.get("/api/v2/dags", limit=100)["dags"]}
                if "ingest" in dags:
                    return
            time.sleep(2)
        raise StackError(f"the stack was not ready within {timeout:.0f} s; see {self.log_dir}")

    def stop(self, grace: float = 20) -> list[str]:
        """Stop every component by process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if not self.state_file.exists():
            return []
        pids = json.loads(self.state_file.read_text())["pids"]
        for pid in pids.values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_group_alive(pid) for pid in pids.values()):
            time.sleep(0.2)
        for pid in pids.values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.state_file.unlink()
        return sorted(pids)

    # -- data source ----------------------------------------------------------------------------------

    def publish(self, kind: str = "good", seed: int | None = None) -> Path:
        return publish(self.source_dir, kind, seed=seed)

    def mails(self) -> list[Path]:
        return sorted(self.mail_dir.glob("*.eml"))

    # -- REST API -------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = httpx.post(
                f"{self.api_url}/auth/token",
                json={"username": ADMIN_USER, "password": self.password},
                timeout=30,
            )
            if response.status_code != 201:
                raise StackError(f"login failed: HTTP {response.status_code} {response.text}")
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(GET_RETRIES if method == "GET" else 1):
            response = httpx.request(
                method, f"{self.api_url}{path}", headers=self._headers(), timeout=30, **kwargs
            )
            if response.status_code < 500:
                break
            # Airflow 3.3.2 answers 500 for asset events while a run they created has not started yet
            # (apache/airflow#71360, fixed upstream); that lasts a moment, so ask again.
            time.sleep(1)
        if response.status_code >= 400:
            raise StackError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="-run_after", limit=100)["dag_runs"]

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        """Start a manual run of ``dag_id`` with ``conf`` as its params, like the UI's Trigger form."""
        return self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )

    def set_variable(self, key: str, value: str) -> None:
        self.request("PATCH", f"/api/v2/variables/{key}", json={"key": key, "value": value})

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def asset_events(self, asset_name: str) -> list[dict]:
        assets = self.get("/api/v2/assets", name_pattern=asset_name)["assets"]
        asset = next(a for a in assets if a["name"] == asset_name)
        return self.get("/api/v2/assets/events", asset_id=asset["id"], order_by="-timestamp")["asset_events"]

    def stage_dags(self) -> list[str]:
        """The pipeline's stage DAGs that Airflow has parsed, in pipeline order."""
        parsed = {d["dag_id"] for d in self.get("/api/v2/dags", limit=100)["dags"]}
        return [stage for stage in STAGES if stage in parsed]

    def runs_since(self, since: datetime) -> Iterator[tuple[str, dict]]:
        """(dag_id, run) for every stage run active at or after ``since`` (queued, running or ended then)."""
        for dag_id in self.stage_dags():
            for run in self.dag_runs(dag_id):
                ended = run["end_date"] and datetime.fromisoformat(run["end_date"])
                if not ended or ended >= since or datetime.fromisoformat(run["run_after"]) >= since:
                    yield dag_id, run


class CeleryStack(LocalStack):
    """The production topology run natively: PostgreSQL as the metadata database, Redis as the Celery
    broker, a Celery worker executing the tasks and Flower watching it, next to the same scheduler,
    dag-processor, triggerer and API server. State in ``home``; data under ``home/data`` by default."""

    def __init__(
        self,
        home: Path,
        *,
        database: str = "airflow_ml_pipeline",
        postgres: str = "postgres@127.0.0.1:5432",
        redis: str = "127.0.0.1:6379",
        redis_db: int = 0,
        flower_port: int = 5555,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("storage_root", str(Path(home).resolve() / "data"))
        super().__init__(home, **kwargs)
        self.database = database
        self.postgres = postgres
        self.redis = redis
        self.redis_db = redis_db
        self.flower_port = flower_port

    @property
    def env(self) -> dict[str, str]:
        return {
            **super().env,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{self.postgres}/{self.database}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{self.postgres}/{self.database}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{self.redis}/{self.redis_db}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            "AIRFLOW__CELERY__FLOWER_PORT": str(self.flower_port),
        }

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    def _components(self) -> dict[str, list[str]]:
        airflow = str(VENV_BIN / "airflow")
        return {
            **super()._components(),
            "celery-worker": [airflow, "celery", "worker"],
            "flower": [airflow, "celery", "flower"],
        }

    def _ports(self) -> tuple[int, ...]:
        return (*super()._ports(), self.flower_port)

    def _admin_sql(self, statement: str, *args: str) -> list[tuple]:
        """Run ``statement`` in the server's ``postgres`` database, autocommitted as CREATE DATABASE needs."""
        import psycopg2

        user, host_port = self.postgres.split("@")
        host, port = host_port.split(":")
        try:
            connection = psycopg2.connect(
                dbname="postgres", user=user, host=host, port=port, connect_timeout=5
            )
        except psycopg2.OperationalError as exc:
            raise StackError(
                f"PostgreSQL is not reachable at {host_port} as {user} ({exc}). Start it, e.g. "
                "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
            ) from exc
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, args)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def init(self) -> None:
        """Check Redis, create the metadata database if it is new, then initialise Airflow."""
        import redis

        try:
            redis.Redis.from_url(f"redis://{self.redis}/{self.redis_db}", socket_timeout=5).ping()
        except redis.RedisError as exc:
            raise StackError(
                f"Redis is not reachable at {self.redis} ({exc}). Start it, e.g. "
                '`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`'
            ) from exc
        if not self._admin_sql("SELECT 1 FROM pg_database WHERE datname = %s", self.database):
            self._admin_sql(f'CREATE DATABASE "{self.database}"')
        super().init()

    def drop_database(self) -> None:
        """Drop the metadata database (the stack must be stopped)."""
        self._admin_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _group_alive(pgid: int) -> bool:
    """True while a process of the group still runs. Zombies do not count: a zombie whose parent died
    waits for init to reap it, and some container inits never do."""
    with suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # reap the leader if it is our own child
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(group) == pgid and state != "Z":
                return True
    return False


# -- command line -------------------------------------------------------------------------------------


def _print_login(stack: LocalStack) -> None:
    print(f"  Airflow UI:   {stack.api_url}   (login: {ADMIN_USER} / {stack.password})")
    print(f"  data source:  {stack.crawl_url}   (publish another batch: make publish)")
    print(f"  model server: http://127.0.0.1:{stack.model_server_port}/health   (POST /predict)")
    print(f"  data:         {stack.storage_root}")
    print(f"  mails:        {stack.mail_dir}")
    print(f"  logs:         {stack.log_dir}")


def follow(stack: LocalStack, since: datetime, timeout: float, quiet: float = 10) -> dict[str, dict]:
    """Print every state change of the stage runs queued after ``since`` until the pipeline has reacted
    and gone quiet: a batch was received, no later stage is queued or running, and nothing changed for
    ``quiet`` seconds (a consumer run appears a moment after its asset event). Return each stage's
    newest finished run."""
    seen: dict[str, str] = {}
    last_change = time.monotonic()
    deadline = last_change + timeout
    while time.monotonic() < deadline:
        runs = list(stack.runs_since(since))
        for dag_id, run in runs:
            key = f"{dag_id}/{run['dag_run_id']}"
            if seen.get(key) != run["state"]:
                seen[key] = run["state"]
                last_change = time.monotonic()
                print(
                    f"  {datetime.now():%H:%M:%S}  {dag_id:<15} {run['run_type']:<15} {run['state']}",
                    flush=True,
                )
        finished = {}
        for dag_id, run in runs:
            if run["state"] in ("success", "failed"):
                finished.setdefault(dag_id, run)
        busy = any(dag_id != "ingest" and run["state"] in ("queued", "running") for dag_id, run in runs)
        if "ingest" in finished and not busy and time.monotonic() - last_change > quiet:
            return finished
        time.sleep(1)
    raise StackError(f"the pipeline did not settle within {timeout:.0f} s")


def demo(stack: LocalStack) -> None:
    started = time.monotonic()
    if not stack.running():
        print(
            "Starting Airflow (scheduler, dag-processor, triggerer, API server), data source, mail sink ..."
        )
        stack.start()
        print(f"  ready after {time.monotonic() - started:.0f} s")
    since = datetime.now(UTC)
    mails_before = set(stack.mails())
    path = stack.publish()
    print(f"Published a batch at {stack.crawl_url} ({path}).")
    print("No DAG is triggered by hand; following the runs as the pipeline reacts:")
    finished = follow(stack, since, timeout=600)
    print("\nSummary")
    for dag_id in stack.stage_dags():
        run = finished.get(dag_id)
        if run is None:
            print(f"  {dag_id:<15} did not run")
            continue
        took = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
        print(f"  {dag_id:<15} {run['state']:<8} {took.total_seconds():5.1f} s   {run['dag_run_id']}")
    production = stack.asset_events("production_model")
    if production and datetime.fromisoformat(production[0]["timestamp"]) >= since:
        extra = production[0]["extra"]
        took = datetime.fromisoformat(production[0]["timestamp"]) - since
        print(f"  in production:  model {extra['version']} ({extra['model_type']}, {extra['metrics']})")
        print(f"  publish to production: {took.total_seconds():.0f} s")
    else:
        print("  in production:  unchanged by this batch")
    for mail in sorted(set(stack.mails()) - mails_before):
        print(f"  mail received:  {_subject(mail)}")
    _print_login(stack)
    print(f"  whole demo: {time.monotonic() - started:.0f} s")
    print("The stack keeps running for the UI; stop it with: make down")
    failed = sorted(dag_id for dag_id, run in finished.items() if run["state"] == "failed")
    if failed:
        raise StackError(f"{', '.join(failed)} failed; see the UI or {stack.log_dir}")


def _subject(path: Path) -> str:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["subject"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("up", "down", "publish", "demo", "status", "airflow"))
    parser.add_argument("--home", type=Path, help="state folder (default .airflow/)")
    parser.add_argument("--kind", default="good", help="publish: good, bad or shuffled-labels")
    parser.add_argument(
        "--celery",
        action="store_true",
        help="the production topology: PostgreSQL, Redis, CeleryExecutor, a worker and Flower "
        "(state in .airflow-celery/ unless --home is given)",
    )
    args, airflow_args = parser.parse_known_args()
    if airflow_args and args.command != "airflow":
        parser.error(f"unrecognized arguments: {' '.join(airflow_args)}")
    if args.celery:
        stack = CeleryStack(args.home or REPO / ".airflow-celery")
    else:
        stack = LocalStack(args.home or REPO / ".airflow")
    try:
        if args.command == "up":
            stack.start()
            print("The stack is running in the background:")
            _print_login(stack)
        elif args.command == "down":
            stopped = stack.stop()
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        elif args.command == "publish":
            print(f"published a {args.kind} batch at {stack.publish(args.kind)}")
        elif args.command == "airflow":
            result = stack.airflow(*[a for a in airflow_args if a != "--"], check=False)
            print(result.stdout, end="")
            print(result.stderr, end="", file=sys.stderr)
            sys.exit(result.returncode)
        elif args.command == "status":
            running = stack.running()
            print(f"running: {json.dumps(running)}" if running else "not running")
        else:
            demo(stack)
    except StackError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
