"""``python -m scripts.infer_schema`` and ``make schema``: a schema written for review from a sample CSV,
the reasons printed, an existing file kept, and bad input answered with a message and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from include.config import SCHEMA_JSON_SCHEMA_FILE, load_schema_file

REPO = Path(__file__).resolve().parents[3]
MIXED_CSV = "\n".join(
    [
        "customer_id,age,plan,monthly_fee,signed_up,churned",
        *(
            f"C{i:03d},{'' if i % 10 == 3 else 20 + i},{['basic', 'plus', 'pro'][i % 3]},"
            f"{10 + i * 1.25},2024-01-{i % 28 + 1:02d},{'yes' if i % 4 == 0 else 'no'}"
            for i in range(40)
        ),
    ]
)


def infer_schema(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.infer_schema", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(MIXED_CSV + "\n")
    return path


def test_writes_the_schema_beside_the_csv_and_says_why(csv: Path):
    result = infer_schema("--csv", csv, "--label", "churned")

    assert result.returncode == 0, result.stderr
    out = csv.with_name("customers.schema.json")
    schema = load_schema_file(out)
    assert (schema.name, schema.task, schema.classes) == ("customers", "classification", ("no", "yes"))
    assert schema.feature_names == ["age", "plan", "monthly_fee", "signed_up"]
    assert [spec.dtype for spec in schema.features] == ["int", "str", "float", "datetime"]
    assert schema.features[0].max_null_fraction == 0.2
    assert schema.features[1].categories == ("basic", "plus", "pro")
    raw = json.loads(out.read_text())
    assert (out.parent / raw["$schema"]).resolve() == SCHEMA_JSON_SCHEMA_FILE
    feature_lines = [line for line in out.read_text().splitlines() if line.strip().startswith('{"name"')]
    assert len(feature_lines) == 4, "one feature per line"
    for expected in (
        "task: classification",
        "customer_id: left out: named like an id",
        "age: int",
        "up to 20% missing",
        "plan: str; categories [basic, plus, pro]",
        "signed_up: datetime",
        f"PIPELINE_SCHEMA={out.resolve()} make up",
    ):
        assert expected in result.stdout


def test_keeps_an_existing_file_unless_forced(csv: Path, tmp_path: Path):
    out = tmp_path / "schemas" / "mine.json"
    assert infer_schema("--csv", csv, "--label", "churned", "--out", out).returncode == 0
    out.write_text("edited by hand")

    refused = infer_schema("--csv", csv, "--label", "churned", "--out", out)

    assert refused.returncode == 2
    assert "--force" in refused.stderr
    assert out.read_text() == "edited by hand"
    forced = infer_schema("--csv", csv, "--label", "churned", "--out", out, "--force", "--name", "churn")
    assert forced.returncode == 0, forced.stderr
    assert load_schema_file(out).name == "churn"
    assert sorted(path.name for path in out.parent.iterdir()) == ["mine.json"], "no temporary file is left"


@pytest.mark.parametrize(
    ("content", "label", "message"),
    [
        (MIXED_CSV, "churn", "'churn' is not a column of the sample (did you mean 'churned'?)"),
        ("", "churned", "is empty"),
        ("customer_id,age,churned\n", "churned", "no rows"),
    ],
)
def test_bad_input_is_a_message_and_exit_code_2(tmp_path: Path, content: str, label: str, message: str):
    path = tmp_path / "sample.csv"
    path.write_text(content)

    result = infer_schema("--csv", path, "--label", label)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not path.with_name("sample.schema.json").exists()


def make_schema(*variables: str) -> subprocess.CompletedProcess:
    # -o: never reinstall the virtualenv from a test, even when requirements*.txt are newer than it.
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "schema",
            f"PY={sys.executable}",
            *variables,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_schema(csv: Path, tmp_path: Path):
    out = tmp_path / "churn.json"

    result = make_schema(f"CSV={csv}", "LABEL=monthly_fee", f"OUT={out}", "NAME=fees")

    assert result.returncode == 0, result.stderr
    schema = load_schema_file(out)
    assert (schema.name, schema.task, schema.label) == ("fees", "regression", "monthly_fee")
    assert "task: regression" in result.stdout
    missing = make_schema(f"CSV={csv}")
    assert missing.returncode != 0
    assert "make schema needs CSV and LABEL" in missing.stderr
