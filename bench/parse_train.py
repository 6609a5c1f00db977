"""Parse time of each DAG file in a fresh interpreter, and training time against a plain scikit-learn
script on the same data."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import record

_PARSE = """
import json, runpy, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
before = set(sys.modules)
runpy.run_path(sys.argv[1])
t2 = time.perf_counter()
HEAVY = {"pandas", "numpy", "sklearn", "pyarrow", "scipy", "joblib"}
heavy = sorted({m.split(".")[0] for m in set(sys.modules) - before} & HEAVY)
print(json.dumps({"import_sdk_s": t1 - t0, "file_s": t2 - t1, "heavy": heavy}))
"""


def parse_times(files: list[Path], repeats: int = 3) -> list[dict[str, Any]]:
    """Per file: seconds to import ``airflow.sdk`` (every DAG file's floor) and then to run the file,
    each the median of ``repeats`` fresh interpreters; ``heavy`` lists heavy libraries it pulled in."""
    results = []
    for path in files:
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _PARSE, str(path)],
                capture_output=True,
                text=True,
                cwd=record.REPO,
                check=True,
                env={**__import__("os").environ, "PYTHONPATH": f"{record.REPO}:{record.REPO / 'plugins'}"},
            )
            sample = json.loads(out.stdout.strip().splitlines()[-1])
            sample["interpreter_wall_s"] = time.perf_counter() - started
            samples.append(sample)
        results.append(
            {
                "file": str(path.relative_to(record.REPO)),
                "import_sdk_s": round(statistics.median(s["import_sdk_s"] for s in samples), 3),
                "file_s": round(statistics.median(s["file_s"] for s in samples), 3),
                "interpreter_wall_s": round(statistics.median(s["interpreter_wall_s"] for s in samples), 3),
                "heavy_imports": samples[0]["heavy"],
            }
        )
    return results


def training(rows: int = 120, repeats: int = 5) -> dict[str, Any]:
    """``include.training.train_and_evaluate`` against the plain script a data scientist would write
    (stratified split, same forest, same seed) on the same feature rows; medians of warm repeats."""
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    from include.config import load_schema
    from include.features import to_features
    from include.training import train_and_evaluate
    from scripts.publish import make_batch

    schema = load_schema()
    frame = pd.concat([make_batch("good", 150, seed) for seed in range(max(1, rows // 147 + 1))])
    frame = to_features(frame.head(rows) if rows <= len(frame) else frame, schema)
    params = {"n_estimators": 100, "max_depth": None}

    def ours() -> None:
        train_and_evaluate(frame, schema, "random_forest", params)

    def plain() -> None:
        x, y = frame[schema.feature_names], frame[schema.label]
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=42, stratify=y)
        model = RandomForestClassifier(n_estimators=100, random_state=42).fit(x_train, y_train)
        accuracy_score(y_test, model.predict(x_test))

    timing = {}
    for name, fn in (("pipeline", ours), ("plain_sklearn", plain)):
        fn()  # warm
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        timing[name] = round(statistics.median(samples), 4)
    return {"rows": len(frame), **timing, "ratio": round(timing["pipeline"] / timing["plain_sklearn"], 2)}


def run(train_rows: list[int], parse_repeats: int = 3) -> dict[str, Any]:
    files = sorted((record.REPO / "dags").glob("*.py"))
    return {"parse": parse_times(files, parse_repeats), "training": [training(r) for r in train_rows]}


def print_report(result: dict[str, Any]) -> None:
    record.table(
        ["DAG file", "import airflow.sdk s", "file s", "interpreter wall s", "heavy imports"],
        [
            [
                p["file"],
                p["import_sdk_s"],
                p["file_s"],
                p["interpreter_wall_s"],
                ",".join(p["heavy_imports"]) or "none",
            ]
            for p in result["parse"]
        ],
        title="Parse time per DAG file (fresh interpreter, median)",
    )
    record.table(
        ["rows", "pipeline s", "plain sklearn s", "ratio"],
        [[t["rows"], t["pipeline"], t["plain_sklearn"], t["ratio"]] for t in result["training"]],
        title="Training: include.training vs a plain scikit-learn script (warm, median)",
    )
