"""Write ``.env`` for docker-compose.yaml from ``.env.example``, with fresh random secrets.

    python -m scripts.make_env            # .env next to docker-compose.yaml; refuses to overwrite one
    python -m scripts.make_env --force    # replace it (new secrets: the database and Fernet key change!)

Every ``change-me`` value of the example is replaced with a new random value; every other line is
copied as it is, except ``AIRFLOW_UID``, which becomes your user id (on Linux, so files the containers
write in bind mounts stay yours). The file is readable by you only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLACEHOLDER = "change-me"


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _token(nbytes: int) -> Callable[[], str]:
    # URL-safe characters only: the database password goes into connection URLs unquoted.
    return lambda: secrets.token_urlsafe(nbytes)


GENERATORS: dict[str, Callable[[], str]] = {
    "AIRFLOW_FERNET_KEY": _fernet_key,
    "AIRFLOW_JWT_SECRET": _token(32),
    "AIRFLOW_API_SECRET_KEY": _token(32),
    "POSTGRES_PASSWORD": _token(24),
    "AIRFLOW_ADMIN_PASSWORD": _token(16),
    "MODEL_SERVER_TOKEN": _token(32),
}


def render(example: str, uid: int | None = None) -> str:
    """The text of ``.env``: ``example`` with fresh secrets and, if given and not root, the user id."""
    lines = []
    for line in example.splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and not key.startswith("#"):
            if value == PLACEHOLDER:
                if key not in GENERATORS:
                    raise ValueError(f"{key} is {PLACEHOLDER!r} in the example but no generator makes it")
                line = f"{key}={GENERATORS[key]()}"
            elif key == "AIRFLOW_UID" and uid:
                line = f"{key}={uid}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_env(example: Path, output: Path, *, force: bool = False) -> None:
    """Write ``output`` from ``example``; refuse to replace an existing file unless ``force``."""
    if output.exists() and not force:
        raise FileExistsError(
            f"{output} exists; keep it, or replace it with --force (new database password and Fernet "
            "key: an existing database volume then needs `docker compose down -v`)"
        )
    text = render(example.read_text(), uid=os.getuid() if hasattr(os, "getuid") else None)
    tmp = output.with_name(f".{output.name}.tmp")
    # A leftover temporary file may have a wider mode: remove it, and create ours 0600 from the start.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, output)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example", type=Path, default=REPO / ".env.example")
    parser.add_argument("--output", type=Path, default=REPO / ".env")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    try:
        write_env(args.example, args.output, force=args.force)
    except FileExistsError as exc:
        sys.exit(f"error: {exc}")
    print(
        f"wrote {args.output} with fresh secrets. The UI (http://localhost:8080) and Flower (:5555) "
        "login is AIRFLOW_ADMIN_USERNAME / AIRFLOW_ADMIN_PASSWORD from that file."
    )


if __name__ == "__main__":
    main()
