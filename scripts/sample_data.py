"""Sample business tables to try the pipeline on "your own data": numbers, categories, dates, booleans,
an id column, gaps, and a class or a number to predict.

    python -m scripts.sample_data churn --rows 600 --seed 1 --out churn.csv        # classification
    python -m scripts.sample_data deliveries --rows 600 --seed 1 --out deliveries.csv  # regression

``churn`` predicts whether a customer leaves (``churned``: yes/no); ``deliveries`` predicts how many
minutes a delivery takes (``minutes``). Both depend on their columns through a known rule plus noise,
so a model can learn them, and every draw (another seed) is new data from the same rule. ``shift``
moves the numbers and category mix of a draw, as drifted data would. The CSV is written atomically.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd


def churn(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Customers of a subscription service; ``churned`` mostly follows tenure, fee, plan, support calls
    and autopay. About 5-8% of fees, plans and support-call counts are missing."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=_mix([0.5, 0.3, 0.2], shift))
    fee = np.round(
        np.select([plan == "basic", plan == "plus"], [25.0, 55.0], 95.0)
        + rng.normal(0, 6, rows)
        + 20 * shift,
        2,
    )
    calls = rng.poisson(2 + 3 * shift, rows)
    autopay = rng.random(rows) < 0.6
    region = rng.choice(["north", "south", "east", "west"], rows)
    signed_up = pd.Timestamp("2026-11-01") - pd.to_timedelta(
        tenure * 30 + rng.integers(0, 30, rows), unit="D"
    )
    risk = 1.6 - 0.06 * tenure + 0.9 * (calls - 2) - 1.2 * autopay + 0.012 * (fee - 50)
    churned = np.where(risk + rng.logistic(0, 0.35, rows) > 0, "yes", "no")
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{seed:04d}{n:06d}" for n in range(rows)],
            "tenure_months": tenure,
            "monthly_fee": fee,
            "plan": plan,
            "region": region,
            "support_calls": calls.astype(float),
            "autopay": autopay,
            "signed_up": signed_up.strftime("%Y-%m-%d"),
            "churned": churned,
        }
    )
    return _with_gaps(frame, rng, {"monthly_fee": 0.05, "plan": 0.05, "support_calls": 0.08})


def deliveries(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Food deliveries; ``minutes`` follows distance by vehicle, items, weather and the rush hours.
    About 5-10% of distances and weather readings are missing."""
    rng = np.random.default_rng(seed)
    distance = np.round(rng.gamma(2.0, 3.0 + 3 * shift, rows) + 0.5, 2)
    vehicle = rng.choice(["bike", "car", "van"], rows, p=[0.4, 0.45, 0.15])
    items = rng.integers(1, 15, rows)
    weather = rng.choice(["clear", "rain", "snow"], rows, p=_mix([0.7, 0.25, 0.05], shift))
    ordered_at = pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.integers(0, 30 * 24 * 60, rows), unit="min")
    express = rng.random(rows) < 0.3
    speed = np.select([vehicle == "bike", vehicle == "car"], [3.0, 2.0], 2.4)  # minutes per km
    rush = np.isin(ordered_at.hour, [12, 13, 18, 19, 20])
    minutes = (
        8
        + speed * distance
        + 0.7 * items
        + np.select([weather == "rain", weather == "snow"], [6.0, 15.0], 0.0)
        + 7 * rush
        - 5 * express
        + rng.normal(0, 2.0, rows)
    )
    frame = pd.DataFrame(
        {
            "order_id": [f"D{seed:04d}{n:06d}" for n in range(rows)],
            "distance_km": distance,
            "vehicle": vehicle,
            "items": items,
            "weather": weather,
            "ordered_at": ordered_at.strftime("%Y-%m-%dT%H:%M:%S"),
            "express": express,
            "minutes": np.round(np.maximum(minutes, 5.0), 1),
        }
    )
    return _with_gaps(frame, rng, {"distance_km": 0.05, "weather": 0.1})


DATASETS: dict[str, Callable[..., pd.DataFrame]] = {"churn": churn, "deliveries": deliveries}
LABELS = {"churn": "churned", "deliveries": "minutes"}


def _mix(weights: list[float], shift: float) -> list[float]:
    """Category weights moved towards the last category by ``shift`` (0: unchanged, 1: mostly it)."""
    moved = np.array(weights) * (1 - shift)
    moved[-1] += shift
    return list(moved / moved.sum())


def _with_gaps(frame: pd.DataFrame, rng: np.random.Generator, fractions: dict[str, float]) -> pd.DataFrame:
    for column, fraction in fractions.items():
        frame[column] = frame[column].astype(object).where(rng.random(len(frame)) >= fraction, None)
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shift", type=float, default=0.0, help="0-1: drift the draw")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_csv(DATASETS[args.dataset](args.rows, args.seed, args.shift), args.out)
    print(f"wrote {args.rows} rows of {args.dataset} to {args.out} (label: {LABELS[args.dataset]})")


if __name__ == "__main__":
    main()
