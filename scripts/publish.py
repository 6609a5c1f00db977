"""Publish a new batch of Iris data as CSV at the local data source (atomically, so a crawler never
reads half a file).

    python scripts/publish.py --directory .airflow/source            # a good batch
    python scripts/publish.py --directory .airflow/source --kind bad # fails ETL validation
    python scripts/publish.py --directory .airflow/source --kind shuffled-labels  # fails the threshold
    python scripts/publish.py --directory /srv/drop --drop   # a new file in a drop-folder source

Each call draws another sample, so the content always changes. ``--drop`` writes a new file
``iris-<UTC time>-<seed>.csv`` instead of replacing ``iris.csv``: in a drop folder each file is a batch.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

KINDS = ("good", "bad", "shuffled-labels", "drifted-petals")
DRIFT_CM = 1.5  # how far a drifted-petals batch moves both petal measurements
FILE_NAME = "iris.csv"
MEASUREMENT_NOISE_CM = 0.05


def iris_frame() -> pd.DataFrame:
    """The Iris data set shipped with scikit-learn, with the pipeline's default column names."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
    frame["species"] = iris.target.map(dict(enumerate(iris.target_names)))
    return frame.drop_duplicates().reset_index(drop=True)


def make_batch(kind: str, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` new measurements of Iris flowers, spoiled as ``kind`` says.

    Each row is a distinct Iris row plus a little measurement noise, so every batch is new data (a
    model trained on one batch has not seen the rows of the next), as it would be from a real source.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown batch kind {kind!r}; expected one of {KINDS}")
    if kind == "bad" and rows < 3:
        raise ValueError(f"a bad batch needs at least 3 rows to hold its three faults, not {rows}")
    rng = np.random.default_rng(seed)
    frame = iris_frame()
    picked = rng.choice(len(frame), size=min(rows, len(frame)), replace=False)
    batch = frame.iloc[picked].reset_index(drop=True)
    measured = batch.columns.drop("species")
    noise = rng.normal(0.0, MEASUREMENT_NOISE_CM, size=(len(batch), len(measured)))
    batch[measured] = (batch[measured] + noise).round(2).clip(lower=0.1)
    if kind == "bad":
        batch["petal_length"] = batch["petal_length"].astype(object)
        batch.loc[0, "petal_length"] = "abc"
        batch.loc[1, "sepal_width"] = -3.0
        batch.loc[2, "species"] = "unicorn"
    elif kind == "shuffled-labels":
        batch["species"] = rng.permutation(batch["species"].to_numpy())
    elif kind == "drifted-petals":  # valid data that has moved: drift, not a bad batch
        batch[["petal_length", "petal_width"]] += DRIFT_CM
    return batch


def publish(
    directory: Path, kind: str = "good", rows: int = 120, seed: int | None = None, *, drop: bool = False
) -> Path:
    """Write a batch to ``directory/iris.csv`` atomically and return its path; with ``drop``, to a new
    file of its own (for a drop-folder source). The temporary file's name starts with a dot, which a
    folder source ignores."""
    directory.mkdir(parents=True, exist_ok=True)
    seed = time.time_ns() if seed is None else seed
    name = f"iris-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{seed}.csv" if drop else FILE_NAME
    target = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    make_batch(kind, rows, seed).to_csv(tmp, index=False)
    os.replace(tmp, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--directory", type=Path, required=True, help="the data source's directory")
    parser.add_argument("--kind", choices=KINDS, default="good")
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--seed", type=int, help="default: the current time, so every batch differs")
    parser.add_argument("--drop", action="store_true", help="write a new file (a drop-folder source)")
    args = parser.parse_args()
    path = publish(args.directory, args.kind, args.rows, args.seed, drop=args.drop)
    print(f"published a {args.kind} batch of {args.rows} rows at {path}")


if __name__ == "__main__":
    main()
