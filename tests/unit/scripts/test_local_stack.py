"""The launcher's command line and process handling, without starting Airflow."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from scripts.local_stack import REPO, LocalStack


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.local_stack", *args],
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


def test_unknown_arguments_are_refused_outside_the_airflow_command(tmp_path: Path):
    result = run_cli("publish", "--kidn", "bad", "--home", str(tmp_path))

    assert result.returncode != 0
    assert "unrecognized arguments: --kidn" in result.stderr


def test_stop_ends_every_process_of_each_group_and_forgets_them(tmp_path: Path):
    """A component's children (LocalExecutor workers, API server workers) share its process group."""
    stack = LocalStack(tmp_path)
    sleeper = "import time; time.sleep(60)"
    script = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {sleeper!r}]); {sleeper}"
    parents = {
        f"component-{n}": subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
        for n in range(2)
    }
    stack.state_file.write_text(json.dumps({"pids": {name: p.pid for name, p in parents.items()}}))
    time.sleep(0.5)  # let each parent start its child
    children = [
        int(pid)
        for parent in parents.values()
        for pid in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    ]
    assert len(children) == 2

    assert stack.stop(grace=5) == sorted(parents)

    for pid in children:
        state = (
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if Path(f"/proc/{pid}").exists()
            else "gone"
        )
        assert state in ("Z", "gone"), f"child {pid} of a stopped component still runs"
    assert stack.running() == {}
    assert not stack.state_file.exists()
