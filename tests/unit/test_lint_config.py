"""The pre-commit hooks run the ruff that `make lint` runs: same version, same two commands."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_pre_commit_runs_the_pinned_ruff_check_and_format():
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    pinned = re.search(r"^ruff==(\S+)$", (REPO / "requirements-dev.txt").read_text(), re.MULTILINE)

    [ruff] = [
        repo for repo in config["repos"] if repo["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
    ]
    assert pinned, "requirements-dev.txt pins no ruff"
    assert ruff["rev"] == f"v{pinned.group(1)}"
    assert [hook["id"] for hook in ruff["hooks"]] == ["ruff-check", "ruff-format"]
    lint = (REPO / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "ruff check ." in lint
    assert "ruff format --check ." in lint
