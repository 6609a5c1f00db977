"""The launcher's command line, without starting Airflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from scripts.stack.config import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.stack", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_publish_passes_the_kind_through(tmp_path: Path):
    result = run_cli("publish", "--kind", "bad", "--home", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "published a bad batch" in result.stdout
    assert "unicorn" in set(pd.read_csv(tmp_path / "source" / "iris.csv")["species"])


def test_publish_drop_writes_a_new_file_into_the_drop_folder(tmp_path: Path):
    for _ in range(2):
        assert run_cli("publish", "--drop", "--home", str(tmp_path)).returncode == 0

    dropped = sorted((tmp_path / "drop").iterdir())
    assert len(dropped) == 2
    assert all(path.suffix == ".csv" and not path.name.startswith(".") for path in dropped)
    assert not (tmp_path / "source" / "iris.csv").exists()


def test_unknown_arguments_are_refused_outside_the_airflow_command(tmp_path: Path):
    result = run_cli("publish", "--kidn", "bad", "--home", str(tmp_path))

    assert result.returncode != 0
    assert "unrecognized arguments: --kidn" in result.stderr


def test_status_and_down_of_a_stack_that_never_started(tmp_path: Path):
    assert run_cli("status", "--home", str(tmp_path)).stdout == "not running\n"
    assert run_cli("down", "--home", str(tmp_path)).stdout == "nothing was running\n"
