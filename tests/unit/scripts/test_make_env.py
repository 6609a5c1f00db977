"""``python -m scripts.make_env``: a ``.env`` for docker-compose.yaml with fresh secrets, never wider
than its owner, never replacing one unless told."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from tests.compose_env import GENERATED, REPO, interpolate, read_env_file


def make_env(output: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.make_env", "--output", str(output), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_writes_fresh_secrets(tmp_path: Path, compose_yaml: dict, example_env: dict) -> None:
    paths = [tmp_path / "first.env", tmp_path / "second.env"]
    for path in paths:
        result = make_env(path)
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, "secrets must be readable by their owner only"
    first, second = (read_env_file(path) for path in paths)
    for env in (first, second):
        assert list(env) == list(example_env)
        assert "change-me" not in env.values()
        Fernet(env["AIRFLOW_FERNET_KEY"].encode())
        assert env["AIRFLOW_UID"].isdigit()
        for key, value in example_env.items():
            if key not in (*GENERATED, "AIRFLOW_UID"):
                assert env[key] == value, key
        resolved = interpolate(compose_yaml, env)["x-airflow-common"]["environment"]
        url = make_url(resolved["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert url.password == env["POSTGRES_PASSWORD"], "the password must survive a URL unquoted"
    for key in GENERATED:
        assert first[key] != second[key], f"{key} is the same on two runs"
    assert len({first[key] for key in GENERATED}) == len(GENERATED)


def test_keeps_an_existing_file_unless_forced(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=mine\n")
    refused = make_env(env_file)
    assert refused.returncode != 0
    assert "--force" in refused.stderr
    assert env_file.read_text() == "POSTGRES_PASSWORD=mine\n"
    assert make_env(env_file, "--force").returncode == 0
    assert read_env_file(env_file)["POSTGRES_PASSWORD"] != "mine"


def test_never_writes_secrets_into_a_wider_file(tmp_path: Path) -> None:
    leftover = tmp_path / "..env.tmp"  # an interrupted earlier run's temporary file, world-readable
    leftover.write_text("stale")
    leftover.chmod(0o644)
    output = tmp_path / ".env"

    assert make_env(output).returncode == 0

    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert not leftover.exists()
