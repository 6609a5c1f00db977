"""``clean`` of the Celery topology's state: its home and its PostgreSQL database go together, or
neither does. Needs PostgreSQL on 127.0.0.1:5432, like the rest of this tier; each test makes a
throwaway database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from scripts.stack.config import CeleryConfig
from scripts.stack.errors import StackError
from scripts.stack.housekeeping import clean
from scripts.stack.supervisor import Supervisor


def admin(statement: str, *args: str) -> list[tuple]:
    connection = psycopg2.connect(dbname="postgres", user="postgres", host="127.0.0.1", port=5432)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, args)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def database_exists(name: str) -> bool:
    return bool(admin("SELECT 1 FROM pg_database WHERE datname = %s", name))


@pytest.fixture
def config(tmp_path: Path) -> Iterator[CeleryConfig]:
    """A Celery stack's home with a file in it and its own new database, dropped after the test."""
    config = CeleryConfig(tmp_path / "home", database=f"mlpipe_clean_{uuid.uuid4().hex[:8]}")
    config.log_dir.mkdir(parents=True)
    (config.log_dir / "scheduler.log").write_text("was running\n")
    admin(f'CREATE DATABASE "{config.database}"')
    yield config
    admin(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')


def test_clean_drops_the_database_with_the_home(config: CeleryConfig):
    done = clean(config, Supervisor(config.state_file, config.log_dir))

    assert done == [f"dropped PostgreSQL database {config.database}", f"removed {config.home}"]
    assert not database_exists(config.database)
    assert not config.home.exists()


def test_clean_keeps_home_and_database_while_another_session_uses_the_database(config: CeleryConfig):
    other = psycopg2.connect(dbname=config.database, user="postgres", host="127.0.0.1", port=5432)
    try:
        with pytest.raises(StackError, match=f"database {config.database} is in use by another session"):
            clean(config, Supervisor(config.state_file, config.log_dir))
    finally:
        other.close()

    assert database_exists(config.database)
    assert (config.log_dir / "scheduler.log").exists()
