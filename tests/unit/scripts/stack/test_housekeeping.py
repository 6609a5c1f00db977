"""``python -m scripts.stack logs`` and ``clean`` on a stack home in a temp folder, with a real process
recorded as the stack's component where the stack has to be running."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.stack.config import DEFAULT_DATA, EMBEDDED_HOME, REPO, CeleryConfig, StackConfig
from scripts.stack.errors import StackError
from scripts.stack.housekeeping import LogTail, clean, own_data_folder, show_logs
from scripts.stack.supervisor import Supervisor
from tests.waits import Lines


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.stack", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def write_log(home: Path, component: str, lines: list[str]) -> Path:
    path = home / "logs" / f"{component}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.writelines(f"{line}\n" for line in lines)
    return path


@pytest.fixture
def running_component(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen]]:
    """Record a real, running process as the stack's scheduler in ``home/stack.json``, as the launcher
    does; every such process is killed after the test."""
    processes: list[subprocess.Popen] = []

    def record(home: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True
        )
        processes.append(process)
        home.mkdir(parents=True, exist_ok=True)
        (home / "stack.json").write_text(json.dumps({"pids": {"scheduler": process.pid}}))
        return process

    yield record
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_logs_of_a_home_where_no_stack_ran_say_so(tmp_path: Path):
    result = run_cli("logs", "--home", str(tmp_path))

    assert result.returncode != 0
    assert f"no component logs in {tmp_path / 'logs'}: no stack has run from {tmp_path}" in result.stderr
    assert "make up" in result.stderr


def logs(home: Path, **options) -> str:
    config = StackConfig(home)
    out = io.StringIO()
    show_logs(config, Supervisor(config.state_file, config.log_dir), out, **options)
    return out.getvalue()


def test_logs_of_a_stopped_stack_print_each_components_last_lines(tmp_path: Path):
    write_log(tmp_path, "scheduler", [f"scheduler line {i}" for i in range(30)])
    write_log(tmp_path, "triggerer", ["triggerer line 0", "triggerer line 1"])
    (tmp_path / "logs" / "dag_id=etl").mkdir()  # Airflow's task logs are not a component's

    assert logs(tmp_path, lines=3).splitlines() == [
        "scheduler | scheduler line 27",
        "scheduler | scheduler line 28",
        "scheduler | scheduler line 29",
        "triggerer | triggerer line 0",
        "triggerer | triggerer line 1",
        f"(the stack of {tmp_path} is not running: these were its last lines)",
    ]


def test_logs_of_one_component_and_of_an_unknown_one(tmp_path: Path):
    write_log(tmp_path, "scheduler", ["from the scheduler"])
    write_log(tmp_path, "triggerer", ["from the triggerer"])

    assert logs(tmp_path, components=["triggerer"]).splitlines()[0] == "triggerer | from the triggerer"
    assert "scheduler |" not in logs(tmp_path, components=["triggerer"])
    with pytest.raises(StackError, match="no log of schedular; the components are: scheduler, triggerer"):
        logs(tmp_path, components=["schedular"])


def test_logs_follow_a_running_stack_until_it_stops(tmp_path: Path, running_component):
    scheduler = running_component(tmp_path)
    write_log(tmp_path, "scheduler", ["before"])
    follower = subprocess.Popen(
        [sys.executable, "-m", "scripts.stack", "logs", "--home", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    printed = Lines(follower.stdout)

    try:
        printed.wait_for("scheduler | before", 60)
        write_log(tmp_path, "scheduler", ["appended while following"])
        printed.wait_for("scheduler | appended while following")
        write_log(tmp_path, "model-server", ["a component that started later"])
        printed.wait_for("model-server | a component that started later")

        os.killpg(scheduler.pid, signal.SIGKILL)
        scheduler.wait(timeout=10)

        assert follower.wait(timeout=30) == 0
        printed.wait_for(f"(the stack of {tmp_path} stopped)", 10)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=10)
        follower.stdout.close()


def test_logs_no_follow_returns_while_the_stack_runs(tmp_path: Path, running_component):
    running_component(tmp_path)
    write_log(tmp_path, "scheduler", ["only line"])

    assert logs(tmp_path, follow=False) == "scheduler | only line\n"


def test_log_tail_waits_for_a_whole_line_and_starts_over_after_truncation(tmp_path: Path):
    path = tmp_path / "a.log"
    path.write_bytes(b"old 1\nold 2\n")
    tail = LogTail(path)
    assert tail.last_lines(5) == ["old 1", "old 2"]

    with path.open("ab") as file:
        file.write(b"half")
        file.flush()
        assert tail.new_lines() == []
        file.write(b" and the rest\n")
    assert tail.new_lines() == ["half and the rest"]

    path.write_bytes(b"after truncation\n")
    assert tail.new_lines() == ["after truncation"]


def test_log_tail_reads_the_last_lines_of_a_long_log_from_its_end(tmp_path: Path):
    path = tmp_path / "long.log"
    lines = [f"line {i:06d} " + "x" * 40 for i in range(20_000)]  # about 1 MB, many 64 KB blocks
    path.write_text("\n".join(lines) + "\n")

    assert LogTail(path).last_lines(3) == lines[-3:]
    assert LogTail(path).last_lines(5_000) == lines[-5_000:]
    assert LogTail(path).last_lines(0) == []


def test_clean_refuses_while_the_stack_runs_and_removes_nothing(tmp_path: Path, running_component):
    home = tmp_path / "home"
    running_component(home)
    write_log(home, "scheduler", ["running"])

    result = run_cli("clean", "--home", str(home))

    assert result.returncode != 0
    assert f"the stack of {home} is running (scheduler); stop it first (make down)" in result.stderr
    assert (home / "logs" / "scheduler.log").exists()
    assert (home / "stack.json").exists()


def test_clean_removes_a_stopped_stacks_home(tmp_path: Path, running_component):
    home = tmp_path / "home"
    stopped = running_component(home)
    os.killpg(stopped.pid, signal.SIGKILL)
    stopped.wait(timeout=10)
    write_log(home, "scheduler", ["was running"])
    (home / "airflow.db").write_bytes(b"SQLite format 3\x00")
    config = StackConfig(home, storage_root=str(home / "data"))
    (home / "data" / "raw").mkdir(parents=True)
    supervisor = Supervisor(config.state_file, config.log_dir)

    assert clean(config, supervisor) == [f"removed {home}"]
    assert not home.exists()
    assert clean(config, supervisor) == [f"nothing to remove: {home} does not exist"]


def test_clean_keeps_a_data_folder_that_is_not_the_stacks_own(tmp_path: Path):
    home, data = tmp_path / "home", tmp_path / "data"
    write_log(home, "scheduler", ["was running"])
    data.mkdir()
    config = StackConfig(home, storage_root=str(data))

    done = clean(config, Supervisor(config.state_file, config.log_dir))

    assert done == [f"removed {home}", f"kept {data}: not this stack's own data folder"]
    assert data.exists()


def test_which_data_folder_is_the_stacks_own(tmp_path: Path):
    home = tmp_path / "home"

    assert own_data_folder(StackConfig(EMBEDDED_HOME, storage_root=str(DEFAULT_DATA))) == DEFAULT_DATA
    assert own_data_folder(StackConfig(home, storage_root=str(DEFAULT_DATA))) is None
    assert own_data_folder(StackConfig(home, storage_root=(home / "data").as_uri())) == home / "data"
    assert own_data_folder(CeleryConfig(home)) == home.resolve() / "data"
    assert own_data_folder(StackConfig(EMBEDDED_HOME, storage_root=str(tmp_path / "mine"))) is None
    assert own_data_folder(StackConfig(EMBEDDED_HOME, storage_root="s3://bucket/pipeline")) is None
