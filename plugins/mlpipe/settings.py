"""Read the pipeline's settings (``include.settings``) from Airflow Variables, inside a running task."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Variable

from include.settings import parse


def setting(name: str) -> Any:
    """The typed value of setting ``name``: its Variable if set, else the setting's default."""
    return parse(name, Variable.get(name, default=None))
