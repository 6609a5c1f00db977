"""ETL at scale: landing + validation + features on large batches in the Iris schema, rows/s and
peak RSS, against bare pyarrow reading the same CSV and writing Parquet (and reading that and writing
it again, as features do) in the same run. Each side runs in a fresh process so its peak RSS is its own.

The pipeline side receives the CSV as a drop-folder file, as ``ingest`` does (``include.ingest.receive``
copies it to a local temporary file while hashing it, as it does with an HTTP body), then lands,
validates and builds features exactly as the tasks do, a chunk at a time. Its peak RSS above the RSS
after its imports is the memory the data costs: with streaming it should not grow with the rows.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import record


def make_csv(path: Path, rows: int, seed: int = 7) -> int:
    """Write ``rows`` valid Iris-schema rows as CSV (in chunks, so the generator stays small)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    species = np.array(["setosa", "versicolor", "virginica"])
    chunk = 1_000_000
    scale = 10.0 ** (math.ceil(math.log10(max(rows, 10_000_000))) + 1)
    with pacsv.CSVWriter(
        str(path),
        pa.schema(
            [
                ("sepal_length", pa.float64()),
                ("sepal_width", pa.float64()),
                ("petal_length", pa.float64()),
                ("petal_width", pa.float64()),
                ("species", pa.string()),
            ]
        ),
        write_options=pacsv.WriteOptions(quoting_style="none"),
    ) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            # Distinct rows (the duplicates rule would reject repeats): a unique tail in the 4th column,
            # below its 0.1 step (1e-8 per row up to 10M rows, as the first records had; 1e-9 past that).
            unique = np.arange(start, start + n) / scale
            table = pa.table(
                {
                    "sepal_length": np.round(rng.uniform(4.3, 7.9, n), 1),
                    "sepal_width": np.round(rng.uniform(2.0, 4.4, n), 1),
                    "petal_length": np.round(rng.uniform(1.0, 6.9, n), 1),
                    "petal_width": np.round(rng.uniform(0.1, 2.4, n), 1) + unique,
                    "species": species[rng.integers(0, 3, n)],
                }
            )
            writer.write_table(table)
    return path.stat().st_size


def _peak_rss_mb() -> float:
    """This process's peak RSS since it started its program. Linux's ``VmHWM``, not ``getrusage``'s
    ``ru_maxrss``: that one survives ``execve``, so a child forked from a large parent (a pytest
    process that just generated the CSV) reports the parent's peak from its first line."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pipeline(csv: Path, root: str) -> dict[str, Any]:
    import pyarrow.dataset  # noqa: F401 (loaded lazily by the first Parquet read; not the data's cost)

    from include.config import load_schema
    from include.features import build_features
    from include.ingest import land, receive
    from include.validation import validate_and_quarantine

    schema = load_schema()
    fsync_s = _time_fsyncs()
    base = _peak_rss_mb()
    t0 = time.perf_counter()
    item = {"url": csv.as_uri(), "validators": {}}
    with receive(csv.parent.as_uri() + "/", item, timeout=60, max_bytes=csv.stat().st_size) as batch:
        landed = land(root, batch, max_columns=len(schema.columns))
    t1 = time.perf_counter()
    report = validate_and_quarantine(root, [landed["batch_id"]], schema)
    t2 = time.perf_counter()
    build_features(root, report["valid"], schema)
    t3 = time.perf_counter()
    return {
        "valid": bool(report["valid"]),
        "land_s": t1 - t0,
        "validate_s": t2 - t1,
        "features_s": t3 - t2,
        "total_s": t3 - t0,
        "fsync_s": fsync_s[0],
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_imports_mb": base,
    }


def _time_fsyncs() -> list[float]:
    """Count the seconds the pipeline spends making its writes durable (fsync of each file and its
    folder), which the bare side does not do: a one-item list that grows as the pipeline runs."""
    from include import storage

    spent = [0.0]
    fsync = storage._fsync

    def timed(path: str) -> None:
        started = time.perf_counter()
        fsync(path)
        spent[0] += time.perf_counter() - started

    storage._fsync = timed
    return spent


def _bare(csv: Path, folder: Path) -> dict[str, Any]:
    import pyarrow.csv as pacsv
    import pyarrow.dataset  # noqa: F401 (as in the pipeline's child)
    import pyarrow.parquet as pq

    base = _peak_rss_mb()
    t0 = time.perf_counter()
    pq.write_table(pacsv.read_csv(str(csv)), folder / "raw.parquet")
    t1 = time.perf_counter()
    pq.write_table(pq.read_table(folder / "raw.parquet"), folder / "features.parquet")
    t2 = time.perf_counter()
    return {
        "land_s": t1 - t0,
        "features_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_imports_mb": base,
    }


def _child(kind: str, csv: str, folder: str) -> None:
    result = (
        _pipeline(Path(csv), Path(folder).as_uri()) if kind == "pipeline" else _bare(Path(csv), Path(folder))
    )
    print(json.dumps(result))


def _spawn(kind: str, csv: Path, folder: Path, timeout: float) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "bench.etl_scale", kind, str(csv), str(folder)],
            capture_output=True,
            text=True,
            cwd=record.REPO,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(record.REPO)},
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sizes: list[int], repeats: int = 1, timeout: float = 900) -> dict[str, Any]:
    """Each side ``repeats`` times per size, alternating (bare, pipeline, bare, ...) so that load on a
    shared machine hits both alike; the figures are each side's fastest run, all runs are kept."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-etl-") as tmp:
        for rows in sizes:
            csv = Path(tmp) / f"{rows}.csv"
            size = make_csv(csv, rows)
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], "pipeline": []}
            for n in range(repeats):
                for kind in runs:
                    folder = Path(tmp) / f"{kind}-{rows}-{n}"
                    runs[kind].append(_spawn(kind, csv, folder, timeout))
                    shutil.rmtree(folder, ignore_errors=True)
            bare, pipe = _fastest(runs["bare"]), _fastest(runs["pipeline"])
            entry: dict[str, Any] = {
                "rows": rows,
                "csv_mb": round(size / 2**20, 1),
                "bare": bare,
                "pipeline": pipe,
                "runs": runs,
            }
            if "error" not in bare and "error" not in pipe:
                entry["bare_rows_per_s"] = round(rows / bare["total_s"])
                entry["pipeline_rows_per_s"] = round(rows / pipe["total_s"])
                entry["pipeline_over_bare_rate"] = round(bare["total_s"] / pipe["total_s"], 3)
                finished = [r for r in runs["pipeline"] if "error" not in r]
                entry["pipeline_data_rss_mb"] = round(
                    max(r["peak_rss_mb"] - r["rss_after_imports_mb"] for r in finished)
                )
            results.append(entry)
            csv.unlink()
    return {"repeats": repeats, "sizes": results}


def _fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the shortest total time, or the first error if every run failed."""
    finished = [r for r in runs if "error" not in r]
    return min(finished, key=lambda r: r["total_s"]) if finished else runs[0]


def print_report(result: dict[str, Any]) -> None:
    rows = []
    for e in result["sizes"]:
        for side in ("bare", "pipeline"):
            r = e[side]
            if "error" in r:
                rows.append([e["rows"], side, r["error"], None, None, None, None, None])
                continue
            rows.append(
                [
                    e["rows"],
                    side,
                    round(e["rows"] / r["total_s"]),
                    r["land_s"],
                    r.get("validate_s"),
                    r["features_s"],
                    round(r["peak_rss_mb"]),
                    round(r["peak_rss_mb"] - r["rss_after_imports_mb"]),
                ]
            )
    record.table(
        ["rows", "side", "rows/s", "land s", "validate s", "features s", "peak RSS MB", "above imports MB"],
        rows,
        title=f"ETL at scale (bare = pyarrow CSV->Parquet->Parquet on the same file, whole tables; "
        f"fastest of {result['repeats']} runs each)",
    )
    for e in result["sizes"]:
        if "pipeline_over_bare_rate" in e:
            print(
                f"  {e['rows']:,} rows ({e['csv_mb']} MB CSV): pipeline rate = "
                f"{e['pipeline_over_bare_rate']:.2f} x bare pyarrow, "
                f"pipeline peak RSS at most {e['pipeline_data_rss_mb']} MB above its imports, "
                f"{e['pipeline']['fsync_s']:.1f} s of its time in fsync"
            )


if __name__ == "__main__":
    _child(*sys.argv[1:4])
