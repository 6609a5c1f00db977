"""What the local stack runs and with which settings: folders, ports, Airflow's environment, per-home
secrets, the command of every component, and the one-off set-up (database, admin login, Variables)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from include.arrivals import ARRIVAL_ENV, MODES, SENSOR
from include.config import DEFAULT_SCHEMA_FILE, SchemaError, load_schema_file
from scripts.stack.errors import StackError

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ADMIN_USER = "admin"
# Where `make up` and `make up-celery` keep their state.
EMBEDDED_HOME = REPO / ".airflow"
CELERY_HOME = REPO / ".airflow-celery"
# The embedded stack's default storage root (PIPELINE_STORAGE_ROOT unset).
DEFAULT_DATA = REPO / "data"
SQLITE_LOCKED = "sqlite3.OperationalError: database is locked"
# The components that do not use Airflow's metadata database.
NO_DATABASE = ("data-source", "smtp-sink", "model-server")


def private_json(path: Path, make: Callable[[], dict]) -> dict:
    """The JSON object in ``path``; if the file is missing, create it from ``make()`` readable by its
    owner only (mode 0600 from the first byte, never written wider and narrowed afterwards)."""
    if path.exists():
        return json.loads(path.read_text())
    content = make()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by another process of the stack
        return json.loads(path.read_text())
    with os.fdopen(descriptor, "w") as file:
        json.dump(content, file)
    return content


class StackConfig:
    """One local Airflow deployment (SQLite + LocalExecutor) with its data source, mail sink and model
    server, its state kept under ``home``."""

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
        schema_file: Path | None = None,
        arrival: str | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.api_port = api_port
        self.source_port = source_port
        self.smtp_port = smtp_port
        self.log_server_ports = log_server_ports
        self.model_server_port = model_server_port
        self.storage_root = storage_root or os.environ.get("PIPELINE_STORAGE_ROOT") or str(DEFAULT_DATA)
        # Resolved here: the components run in the repo, wherever `make up` was started from.
        chosen = schema_file or os.environ.get("PIPELINE_SCHEMA") or DEFAULT_SCHEMA_FILE
        self.schema_file = Path(chosen).resolve()
        # How ingest waits for data (include.arrivals): the dag-processor reads it when parsing.
        self.arrival = arrival or os.environ.get(ARRIVAL_ENV) or SENSOR

    # -- layout -------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def crawl_url(self) -> str:
        return f"http://127.0.0.1:{self.source_port}/iris.csv"

    @property
    def model_server_url(self) -> str:
        return f"http://127.0.0.1:{self.model_server_port}"

    @property
    def source_dir(self) -> Path:
        return self.home / "source"

    @property
    def drop_dir(self) -> Path:
        """A drop folder for ``publish --drop``; ingest watches it once crawl_url names it."""
        return self.home / "drop"

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
    def passwords_file(self) -> Path:
        return self.home / "passwords.json"

    @property
    def password(self) -> str:
        return json.loads(self.passwords_file.read_text())[ADMIN_USER]

    def ports(self) -> tuple[int, ...]:
        return (
            self.api_port,
            self.source_port,
            self.smtp_port,
            self.model_server_port,
            *self.log_server_ports,
        )

    @property
    def model_server_token(self) -> str:
        """The model server's ``/reload`` token, made once per home; deploy sends it as the
        ``model_server`` connection's password."""
        token = private_json(self.home / "model-server.json", lambda: {"token": secrets.token_urlsafe(32)})
        return token["token"]

    # -- Airflow's configuration ----------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        """Per-home secrets, made once: every component must share the JWT secret and Fernet key."""

        def make() -> dict[str, str]:
            from cryptography.fernet import Fernet

            return {
                "fernet_key": Fernet.generate_key().decode(),
                "jwt_secret": secrets.token_urlsafe(32),
                "api_secret_key": secrets.token_urlsafe(32),
            }

        return private_json(self.home / "secrets.json", make)

    @property
    def env(self) -> dict[str, str]:
        """The environment every component and CLI call of this stack runs with."""
        keys = self.secrets()
        smtp = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.smtp_port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "ml-pipeline@localhost"},
        }
        return {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # config/ holds airflow_local_settings.py: the scheduler preloads the tasks' libraries.
            "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'config'}",
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
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
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
            # Re-parsing every known file every 10 s kept the dag-processor busy on one of the 2 cores
            # while the pipeline's tasks needed it; Airflow's default 30 s still picks up an edit soon.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            # Speed for a small machine (bench/latency.py measures it). Every hop of the chain (a task
            # ended -> the next is scheduled; an asset event -> the consumer's run) waits for the next
            # scheduler loop, and an idle loop sleeps `scheduler_idle_sleep_time` (default 1 s) first:
            # ~0.5 s on average per hop, ~15 hops per batch. Not lower on SQLite: each loop also writes
            # (ingest's always-running run gets a new scheduling decision), and at 0.1 s an `airflow
            # backfill create` in the integration tests once hit "database is locked" (a SQLite writer
            # whose snapshot went stale fails at once, whatever the busy timeout). PostgreSQL: 0.1 s.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp),
            "AIRFLOW_CONN_MODEL_SERVER": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": self.model_server_port,
                    "login": "airflow",
                    "password": self.model_server_token,
                }
            ),
            "MODEL_SERVER_TOKEN": self.model_server_token,
            # One OpenMP thread per task: on 2 cores shared with the scheduler and other tasks, the
            # gradient-boosting models' OpenMP threads wait on each other and fit many times slower.
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "PIPELINE_STORAGE_ROOT": self.storage_root,
            "PIPELINE_SCHEMA": str(self.schema_file),
            ARRIVAL_ENV: self.arrival,
        }

    def components(self) -> dict[str, list[str]]:
        """The command line of every process the stack runs, by component name."""
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
            "model-server": [
                python,
                "-m",
                "serving",
                "--port",
                str(self.model_server_port),
                *self._pointer_check(),
            ],
            "api-server": [airflow, "api-server", "--port", str(self.api_port), "--host", "127.0.0.1"],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer"],
        }

    def _pointer_check(self) -> list[str]:
        """On object storage each check of the production pointer is a request (a HEAD): once a
        second rather than on every prediction; on a local disk it is a ``stat``, so always."""
        local = "://" not in self.storage_root or self.storage_root.startswith("file://")
        return [] if local else ["--pointer-check-seconds", "1"]

    # -- set-up -----------------------------------------------------------------------------------------

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command against this stack. A command that met "database is locked"
        (SQLite refuses a writer whose snapshot went stale at once, whatever the busy timeout, while
        the scheduler writes) had its transaction rolled back, and is run again, up to 5 times."""
        for _ in range(5):
            result = subprocess.run(
                [str(VENV_BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, cwd=REPO
            )
            if result.returncode == 0 or SQLITE_LOCKED not in result.stdout + result.stderr:
                break
            time.sleep(1)
        if check and result.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def prepare(self) -> None:
        """Check the dataset schema and create the home's folders and admin login (idempotent): what
        every component needs before it starts."""
        try:  # a schema that cannot be used stops the stack before anything starts, naming the fix
            load_schema_file(self.schema_file)
        except SchemaError as exc:
            raise StackError(str(exc)) from None
        if self.arrival not in MODES:
            raise StackError(f"{ARRIVAL_ENV}={self.arrival!r} is not one of {', '.join(MODES)}")
        for folder in (self.home, self.source_dir, self.drop_dir, self.mail_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        private_json(self.passwords_file, lambda: {ADMIN_USER: secrets.token_urlsafe(12)})

    def init(self) -> None:
        """Migrate the metadata database and import the Variables that are not set yet (idempotent),
        in one process (``scripts.stack.init_airflow``)."""
        # The defaults, with crawl_url at this stack's data source; a Variable someone changed (in the
        # UI, say) keeps its value across `make up`.
        defaults = json.loads((REPO / "config" / "variables.json").read_text()) | {
            "crawl_url": self.crawl_url
        }
        variables = self.home / "variables.json"
        variables.write_text(json.dumps(defaults, indent=2))
        result = subprocess.run(
            [sys.executable, "-m", "scripts.stack.init_airflow", str(variables)],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        if result.returncode != 0:
            raise StackError(f"initialising Airflow failed:\n{result.stdout}\n{result.stderr}")


class CeleryConfig(StackConfig):
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
            # PostgreSQL takes the scheduler's frequent writes without locking out other writers.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
            "AIRFLOW__CELERY__FLOWER_PORT": str(self.flower_port),
        }

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    def components(self) -> dict[str, list[str]]:
        airflow = str(VENV_BIN / "airflow")
        return {
            **super().components(),
            "celery-worker": [airflow, "celery", "worker"],
            "flower": [airflow, "celery", "flower"],
        }

    def ports(self) -> tuple[int, ...]:
        return (*super().ports(), self.flower_port)

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

    def drop_database(self, *, force: bool = True) -> None:
        """Drop the metadata database (the stack must be stopped). Without ``force``, refuse while a
        session is connected to it: another stack on the same database, say."""
        import psycopg2.errors

        try:
            self._admin_sql(f'DROP DATABASE IF EXISTS "{self.database}"' + (" WITH (FORCE)" if force else ""))
        except psycopg2.errors.ObjectInUse as exc:
            raise StackError(
                f"PostgreSQL database {self.database} is in use by another session, so it was kept: "
                f"{str(exc).strip()}"
            ) from exc
