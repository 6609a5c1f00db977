"""Infer a dataset schema from a sample CSV, write it for review, and say what was decided and why.

    python -m scripts.infer_schema --csv sample.csv --label price
    python -m scripts.infer_schema --csv sample.csv --label churned --task classification --out s.json
    make schema CSV=sample.csv LABEL=price [TASK=regression] [OUT=path] [NAME=name] [FORCE=1]

The schema is written to ``--out`` (default: ``<csv stem>.schema.json`` beside the CSV), never over an
existing file unless ``--force``. Its ``"$schema"`` key points editors at
``include/schemas/dataset-schema.json``. The rules are in ``include/schema_inference.py``;
docs/own-data.md explains every key of the file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from include.config import SCHEMA_JSON_SCHEMA_FILE, DatasetSchema
from include.schema_inference import infer_schema

EXIT_BAD_INPUT = 2


def default_out(csv: Path) -> Path:
    return csv.with_name(f"{csv.stem}.schema.json")


def default_name(csv: Path) -> str:
    """The CSV's stem as a name (it names the model server's row type): letters, digits and ``_``."""
    return re.sub(r"\W+", "_", csv.stem).strip("_").lower() or "dataset"


def render(schema: DatasetSchema, out: Path) -> str:
    """The schema as JSON for people: one key per line, one feature per line, defaults left out."""
    raw: dict[str, Any] = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw.pop("$schema", None)
    with contextlib.suppress(ValueError):  # on another drive (Windows): editors only lose the hint
        raw = {"$schema": os.path.relpath(SCHEMA_JSON_SCHEMA_FILE, out.resolve().parent), **raw}
    features = [_without_defaults(spec) for spec in raw.pop("features")]
    _whole_bounds_as_integers(raw, "label_min", "label_max")
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in raw.items()]
    feature_lines = ",\n".join(f"    {json.dumps(spec)}" for spec in features)
    return "{\n" + "\n".join(lines) + f'\n  "features": [\n{feature_lines}\n  ]\n}}\n'


def _without_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    if not spec.get("nullable"):
        spec.pop("nullable", None)
    _whole_bounds_as_integers(spec, "min", "max")
    return spec


def _whole_bounds_as_integers(raw: dict[str, Any], *keys: str) -> None:
    """``0`` reads better than ``0.0``, and loads the same."""
    for key in keys:
        if isinstance(raw.get(key), float) and raw[key].is_integer():
            raw[key] = int(raw[key])


def write_new(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` in one step (a temporary sibling, then a rename); with ``force`` off,
    refuse a path that exists, even one created while this ran."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file exists, unlike a rename
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.infer_schema",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--csv", type=Path, required=True, help="a sample of the data, with a header line")
    parser.add_argument("--label", required=True, help="the column to predict")
    parser.add_argument("--task", choices=["classification", "regression"], help="default: from the label")
    parser.add_argument("--name", help="the dataset's name (default: from the CSV's file name)")
    parser.add_argument("--out", type=Path, help="where to write (default: <csv stem>.schema.json beside it)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(argv)
    out: Path = args.out or default_out(args.csv)
    try:
        if out.exists() and not args.force:
            raise FileExistsError(f"{out} exists: review or move it, or replace it with --force")
        schema, reasons = _infer(args.csv, args.label, args.task, args.name or default_name(args.csv))
        write_new(out, render(schema, out), force=args.force)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Inferred from {args.csv}:")
    print("\n".join(f"  {reason}" for reason in reasons))
    print(f"\nWrote {out}. Review it (docs/own-data.md explains each key), then:")
    print(f"  PIPELINE_SCHEMA={out.resolve()} make up")
    return 0


def _infer(csv: Path, label: str, task: str | None, name: str) -> tuple[DatasetSchema, list[str]]:
    """Read ``csv`` and infer its schema; a file pandas cannot read is a ``ValueError`` here."""
    try:
        frame = pd.read_csv(csv)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{csv} is empty: give a CSV with a header line and rows of data") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{csv} is not a readable CSV file ({exc})") from None
    return infer_schema(frame, label, task=task, name=name)


if __name__ == "__main__":
    sys.exit(main())
