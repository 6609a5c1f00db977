"""The modules the quick tasks (register, promote) and the DAG files import load no data library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HEAVY = {"pandas", "numpy", "pyarrow", "sklearn", "joblib", "scipy", "matplotlib"}


@pytest.mark.parametrize(
    "module",
    [
        "include.layout",
        "include.settings",
        "include.storage",
        "include.registry",
        "include.promotion",
        "include.approval",
        "include.source_health",
        "include.report",
    ],
)
def test_importing_loads_no_data_library(module):
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(' '.join(sys.modules))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()

    assert module in loaded
    assert not {name.split(".")[0] for name in loaded} & HEAVY
