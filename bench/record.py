"""What every benchmark shares: the machine it ran on, result records, tables and percentiles."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    """Where records go: ``BENCH_RESULTS_DIR`` (the smoke test points it at a temp folder), else
    ``bench/results``."""
    return Path(os.environ.get("BENCH_RESULTS_DIR") or REPO / "bench" / "results")


def env_ints(name: str, default: str) -> list[int]:
    """A comma-separated list of sizes from the environment, e.g. ``BENCH_ETL_ROWS=1000000,10000000``."""
    return [int(part) for part in (os.environ.get(name) or default).split(",") if part.strip()]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def machine() -> dict[str, Any]:
    """Cores, memory, load and software versions: the context a figure means something in."""
    import psutil

    try:
        revision = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        # The records a run appends to bench/results are not a change of the code it measured.
        status = ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]
        changed = subprocess.run([*status, "--", ":!bench/results"], capture_output=True, text=True)
        dirty = bool(changed.stdout.strip())
    except OSError:
        revision, dirty = "", False
    try:
        from importlib.metadata import version

        airflow_version = version("apache-airflow")
    except Exception:  # the harness also runs where Airflow is not installed
        airflow_version = None
    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "airflow": airflow_version,
        "git_revision": revision + ("-dirty" if dirty else ""),
    }


def append(name: str, figures: dict[str, Any]) -> Path:
    """Append one record (the figures plus the machine) to ``<results>/<name>.jsonl``."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    record = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **figures,
    }
    with path.open("a") as file:
        file.write(json.dumps(record, default=str) + "\n")
    return path


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p95, max and mean of ``values``, rounded to milliseconds."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "max": r(max(values) if values else None),
        "mean": r(statistics.fmean(values) if values else None),
    }


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> str:
    """A plain-text table, numbers right-aligned."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return str(value)

    body = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append(
            "  ".join(
                c.rjust(w) if c[:1].isdigit() or c[:1] == "-" else c.ljust(w)
                for c, w in zip(row, widths, strict=True)
            )
        )
    text = "\n".join(lines)
    print(text, flush=True)
    return text
