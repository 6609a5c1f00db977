"""Training time and quality per dataset and model type: Iris and the two "own data" tables of
``scripts.sample_data`` (churn: classes; deliveries: a number), each through the pipeline's own steps
(schema inferred from a sample, CSV landed as Parquet, validated, features, trained and scored on the
held-out split). Training time is also given as a ratio to the random forest on Iris in the same run.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import record

BASELINE = ("iris", "random_forest")


def _features(name: str, rows: int, folder: Path):
    import pandas as pd

    from include.config import load_schema_file
    from include.csv_to_parquet import write_parquet
    from include.features import to_features
    from include.schema_inference import infer_schema
    from include.validation import validate_chunks
    from scripts.publish import make_batch
    from scripts.sample_data import DATASETS, LABELS, write_csv

    if name == "iris":
        schema = load_schema_file(record.REPO / "include" / "schemas" / "iris.json")
        frame = make_batch("good", rows, seed=1)
    else:
        sample = write_csv(DATASETS[name](600, seed=1), folder / f"{name}-sample.csv")
        schema, _ = infer_schema(pd.read_csv(sample), LABELS[name], name=name)  # what `make schema` reads
        frame = DATASETS[name](rows, seed=2)
    csv = write_csv(frame, folder / f"{name}.csv")
    landed = (folder / f"{name}.parquet").as_uri()
    write_parquet(str(csv), landed, max_columns=1000)
    table = pd.read_parquet(landed)
    failures = validate_chunks(list(table.columns), len(table), lambda: [table], schema)
    if failures:
        raise RuntimeError(f"the {name} sample breaks its own schema: {failures}")
    return to_features(table, schema), schema


def run(rows: int, model_types: list[str], repeats: int = 3) -> dict[str, Any]:
    """Per dataset and model type: rows, the fastest of ``repeats`` trainings (seconds), and every
    held-out metric of the task with the quality metric named."""
    from include.metrics import DEFAULT_METRIC
    from include.training import train_and_evaluate

    cells = []
    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as folder:
        for name in ("iris", "churn", "deliveries"):
            # Iris has 150 distinct flowers; the publisher's batches are at most that many rows.
            features, schema = _features(name, min(rows, 150) if name == "iris" else rows, Path(folder))
            for model_type in model_types:
                seconds = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    result = train_and_evaluate(features, schema, model_type, {})
                    seconds.append(time.perf_counter() - started)
                quality = DEFAULT_METRIC[schema.task]
                cells.append(
                    {
                        "dataset": name,
                        "task": schema.task,
                        "model_type": model_type,
                        "rows": len(features),
                        "features": len(schema.features),
                        "train_s": round(min(seconds), 3),
                        "quality_metric": quality,
                        "quality": result.metrics[quality],
                        "metrics": result.metrics,
                    }
                )
    base = next((c["train_s"] for c in cells if (c["dataset"], c["model_type"]) == BASELINE), None)
    for cell in cells:
        cell["train_vs_iris_rf"] = round(cell["train_s"] / base, 2) if base else None
    return {
        "rows": rows,
        "repeats": repeats,
        "baseline": "/".join(BASELINE),
        # Unset: OpenMP's default, a thread per core (what gradient boosting's fit is most sensitive to).
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cells": cells,
    }


def print_report(result: dict[str, Any]) -> None:
    record.table(
        ["dataset", "task", "model type", "rows", "train s", "x iris RF", "quality metric", "value"],
        [
            [
                c["dataset"],
                c["task"],
                c["model_type"],
                c["rows"],
                c["train_s"],
                c["train_vs_iris_rf"],
                c["quality_metric"],
                c["quality"],
            ]
            for c in result["cells"]
        ],
        title="Training per dataset (fastest of the repeats) and held-out quality, "
        f"OMP_NUM_THREADS={result['omp_num_threads'] or 'unset'}",
    )
