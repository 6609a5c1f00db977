"""A team's own tables on a real stack, as the README's "Use your own data" tells a newcomer to do: infer
a schema from a sample (``python -m scripts.infer_schema``, what ``make schema`` runs), start the stack
with it, drop files into a folder source, see the model in production and ask the model server.

Two tables of ``scripts.sample_data``: ``churn`` (a class to predict; numbers, categories, a date, a
boolean, an id column, gaps) and ``deliveries`` (a number to predict). The second scenario restarts the
stack with the deliveries schema over the churn scenario's data and production model: the churn model
cannot read the new table, so the first deliveries model replaces it, and the mail says why.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from include.config import load_schema_file
from scripts.sample_data import DATASETS, LABELS, write_csv
from scripts.stack.config import REPO
from scripts.stack.launcher import LocalStack
from tests.integration.chain import body, events_since, mail_with_subject, production, served_version

SAMPLE_ROWS = 600
BATCH_ROWS = 800


def inferred_schema(folder: Path, dataset: str) -> Path:
    """The schema ``make schema`` infers from a sample of ``dataset``, written where a user would."""
    sample = write_csv(DATASETS[dataset](SAMPLE_ROWS, seed=1), folder / f"{dataset}-sample.csv")
    out = folder / f"{dataset}.schema.json"
    command = [sys.executable, "-m", "scripts.infer_schema", "--csv", str(sample), "--label", LABELS[dataset]]
    subprocess.run([*command, "--out", str(out)], cwd=REPO, check=True, capture_output=True, text=True)
    return out


def drop_batch(stack: LocalStack, name: str, frame) -> Path:
    return write_csv(frame, stack.config.drop_dir / name)


def watch_drop_folder(stack: LocalStack) -> None:
    stack.config.drop_dir.mkdir(parents=True, exist_ok=True)
    stack.rest.set_variable("crawl_url", stack.config.drop_dir.as_uri() + "/")


def model_server_health(stack: LocalStack) -> dict | None:
    """``GET /health`` once the model server answers (it starts beside Airflow, not before it)."""
    try:
        return httpx.get(f"{stack.config.model_server_url}/health", timeout=10).json()
    except httpx.HTTPError:
        return None


def predict(stack: LocalStack, rows: list[dict]) -> httpx.Response:
    return httpx.post(f"{stack.config.model_server_url}/predict", json={"rows": rows}, timeout=30)


def request_rows(frame, schema_file: Path) -> list[dict]:
    """``frame``'s rows as a client sends them to the model server: the schema's features, each as its
    JSON type, gaps as null."""
    schema = load_schema_file(schema_file)
    as_json = {"float": float, "int": int, "bool": bool, "str": str, "datetime": str}
    return [
        {
            spec.name: None
            if row[spec.name] is None or row[spec.name] != row[spec.name]
            else as_json[spec.dtype](row[spec.name])
            for spec in schema.features
        }
        for row in frame.astype(object).to_dict("records")
    ]


def drop_until_promoted(stack: LocalStack, dataset: str, seed: int, wait_for) -> dict:
    """Drop a batch of ``dataset`` into the folder source; the ``production_model`` event's extra once
    the model trained on it is in production, which the model server then serves."""
    since = datetime.now(UTC)
    drop_batch(stack, f"{dataset}-{seed:04d}.csv", DATASETS[dataset](BATCH_ROWS, seed=seed))
    event = wait_for(
        lambda: next(iter(events_since(stack, "production_model", since)), None), 240, "a model in production"
    )
    took = (datetime.fromisoformat(event["timestamp"]) - since).total_seconds()
    print(f"\n{dataset}: dropped to production in {took:.1f} s; metrics {event['extra']['metrics']}")
    version = event["extra"]["version"]
    assert production(stack)["version"] == version
    wait_for(lambda: served_version(stack) == version, 30, "the model server to serve the new version")
    return event["extra"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("own-data-files")


def test_a_classification_table_with_categories_dates_and_gaps_runs_end_to_end(
    own_data_stack: Callable[[Path], LocalStack], folder: Path, wait_for
):
    schema_file = inferred_schema(folder, "churn")
    stack = own_data_stack(schema_file)
    watch_drop_folder(stack)

    promoted = drop_until_promoted(stack, "churn", 2, wait_for)
    version = promoted["version"]
    assert promoted["metrics"]["accuracy"] >= 0.8  # the default bar: accuracy_threshold on accuracy
    assert {"f1_macro", "balanced_accuracy", "roc_auc"} <= set(promoted["metrics"])

    fresh = DATASETS["churn"](200, seed=99)
    answer = predict(stack, request_rows(fresh, schema_file))
    assert answer.status_code == 200, answer.text
    predicted = answer.json()
    assert predicted["version"] == version
    assert predicted["classes"] == ["no", "yes"]
    agreement = (fresh["churned"].to_numpy() == predicted["predictions"]).mean()
    print(f"churn: served predictions agree with 200 fresh labels for {agreement:.0%}")
    assert agreement >= 0.75
    gaps = request_rows(fresh.head(1), schema_file)[0] | {"monthly_fee": None, "plan": None}
    assert predict(stack, [gaps]).json()["predictions"][0] in ("no", "yes")
    unknown_region = request_rows(fresh.head(1), schema_file)[0] | {"region": "mars"}
    refused = predict(stack, [unknown_region])
    assert refused.status_code == 422
    assert "region" in refused.json()["error"]

    # A batch outside the schema is quarantined, naming each rule; production stays where it was.
    bad = DATASETS["churn"](BATCH_ROWS, seed=3)
    bad.loc[:9, "plan"] = "gold"
    bad.loc[: BATCH_ROWS // 2, "monthly_fee"] = None
    since = datetime.now(UTC)
    drop_batch(stack, "churn-0003.csv", bad)  # a new name: the folder source looks past the last
    mail = wait_for(lambda: mail_with_subject(stack, since, "quarantined"), 180, "the quarantine alert")
    text = body(mail)
    assert "categories" in text
    assert "gold" in text
    assert "monthly_fee" in text
    assert "nulls" in text
    assert production(stack)["version"] == version


def test_a_regression_table_replaces_a_model_of_another_schema(
    own_data_stack: Callable[[Path], LocalStack], folder: Path, wait_for
):
    schema_file = inferred_schema(folder, "deliveries")
    stack = own_data_stack(schema_file)
    churn_model = production(stack)["version"]
    wait_for(lambda: model_server_health(stack), 60, "the model server to answer")
    refused = predict(stack, request_rows(DATASETS["deliveries"](1, seed=98), schema_file))
    assert refused.status_code == 503  # the churn model cannot read a delivery
    assert "trained on dataset schema" in refused.json()["error"]
    watch_drop_folder(stack)
    since = datetime.now(UTC)

    promoted = drop_until_promoted(stack, "deliveries", 3, wait_for)
    assert promoted["previous_version"] == churn_model
    assert "another dataset schema" in promoted["reason"]
    assert promoted["metrics"]["r2"] >= 0.8
    assert {"rmse", "mae"} <= set(promoted["metrics"])
    mail = wait_for(lambda: mail_with_subject(stack, since, "is in production"), 60, "the deploy mail")
    assert "another dataset schema" in body(mail)

    fresh = DATASETS["deliveries"](200, seed=99)
    answer = predict(stack, request_rows(fresh, schema_file))
    assert answer.status_code == 200, answer.text
    predicted = answer.json()
    assert predicted["classes"] is None
    assert predicted["probabilities"] is None
    errors = abs(fresh["minutes"].to_numpy() - predicted["predictions"])
    print(f"deliveries: served predictions are off by {errors.mean():.1f} minutes on average")
    assert errors.mean() < 8  # minutes; the table's noise alone is 2
