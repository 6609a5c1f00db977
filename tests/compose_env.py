"""docker-compose.yaml and its env files read as compose reads them, without an engine: ``KEY=value``
files and ``${VAR}`` interpolation (tests/unit/test_compose.py and tests/unit/scripts/test_make_env.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"

SECRETS = ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY")
GENERATED = (*SECRETS, "AIRFLOW_ADMIN_PASSWORD", "MODEL_SERVER_TOKEN")  # what scripts/make_env.py makes

# $$ is a literal dollar; ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}.
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of an env file (no quoting, as ours use none)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            values[key.strip()] = value
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` with every string interpolated as compose does; an unset required variable raises."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if unset else current
        if unset:
            raise KeyError(f"${{{name}}} is not set ({arg or 'no default'})")
        return current

    return _VARIABLE.sub(substitute, value)


def variables_used(value: Any) -> set[str]:
    """The names of the variables interpolated anywhere in ``value`` (comments are not)."""
    if isinstance(value, dict):
        return set().union(*(variables_used(item) for item in value.values()), set())
    if isinstance(value, list):
        return set().union(*(variables_used(item) for item in value), set())
    if isinstance(value, str):
        return {match["name"] for match in _VARIABLE.finditer(value) if match["name"]}
    return set()
