"""Landing, validation and features stream a batch in chunks: the results are those of one chunk, and
no stage ever asks for the whole table (what keeps peak memory independent of the batch's size; the
figures are in bench/etl_scale.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from include import batches, layout
from include.chunks import DEFAULT, Chunking
from include.features import build_features
from include.ingest import land, receive
from include.validation import validate_and_quarantine

NOW = datetime(2026, 11, 21, 16, 15, tzinfo=UTC)
EIGHT_ROWS = Chunking(cells=5 * 8, csv_block_bytes=128)  # 5 columns: 8 rows a chunk, a few rows a block


def etl(root: str, drop: Path, content: bytes, schema, chunking: Chunking) -> dict:
    """Land ``content`` as a file dropped at ``drop``, validate it and build its features."""
    drop.mkdir(exist_ok=True)
    (drop / "batch.csv").write_bytes(content)
    item = {"url": (drop / "batch.csv").as_uri(), "validators": {}}
    with receive(drop.as_uri() + "/", item, timeout=5, max_bytes=10**6) as received:
        landed = land(root, received, now=NOW, chunking=chunking)
    batch_id = landed["batch_id"]
    raw = pq.read_table(batches.raw_batch_data(root, batch_id))
    verdict = validate_and_quarantine(root, [batch_id], schema, chunking)
    written = build_features(root, verdict["valid"], schema, chunking)
    features = (
        pq.read_table(layout.feature_batch(root, batch_id).removeprefix("file://")) if written else None
    )
    return {
        "manifest": landed["manifest"],
        "raw": raw,
        "failed_checks": [q["failed_checks"] for q in verdict["quarantined"]],
        "features": features,
        "rows": [w["rows"] for w in written],
    }


def spoiled(iris: pd.DataFrame) -> pd.DataFrame:
    """Iris with faults in different chunks: a null in the first, a duplicate across chunks, a value out
    of range and an unknown label in the last row."""
    bad = pd.concat([iris, iris.iloc[[40, 41]]], ignore_index=True)
    bad.loc[3, "petal_length"] = None
    bad.loc[len(bad) - 1, ["sepal_width", "species"]] = [99.5, "daisy"]
    return bad


@pytest.mark.parametrize("spoil", [False, True], ids=["good-batch", "bad-batch"])
def test_many_small_chunks_give_what_one_chunk_gives(tmp_path, iris, schema, spoil):
    content = (spoiled(iris) if spoil else iris).to_csv(index=False).encode()

    one = etl((tmp_path / "one").as_uri(), tmp_path / "drop", content, schema, DEFAULT)
    many = etl((tmp_path / "many").as_uri(), tmp_path / "drop", content, schema, EIGHT_ROWS)

    assert many["manifest"] == one["manifest"]
    assert many["raw"].equals(one["raw"], check_metadata=True)
    assert many["failed_checks"] == one["failed_checks"]
    if spoil:
        assert [f["check"] for f in one["failed_checks"][0]] == ["nulls", "range", "labels", "duplicates"]
        assert many["features"] is None
    else:
        assert one["failed_checks"] == []
        assert many["features"].equals(one["features"], check_metadata=True)
        assert many["rows"] == one["rows"] == [len(iris)]


def test_no_stage_asks_for_the_whole_table(tmp_path, iris, schema, monkeypatch):
    """Each Parquet reader is asked for batches of the chunk's rows and gets no more; no whole-table
    reader (pandas or pyarrow, CSV or Parquet) is called; every file is written in row groups of the
    chunk's rows."""
    for module, name in [(pq, "read_table"), (pq.ParquetFile, "read"), (pacsv, "read_csv")]:
        monkeypatch.setattr(module, name, None)
    monkeypatch.setattr(pd, "read_parquet", None)
    monkeypatch.setattr(pd, "read_csv", None)
    asked, handed = [], []
    real_iter_batches = pq.ParquetFile.iter_batches

    def iter_batches(self, batch_size, **kwargs):
        asked.append(batch_size)
        for batch in real_iter_batches(self, batch_size=batch_size, **kwargs):
            handed.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "batch.csv").write_bytes(iris.to_csv(index=False).encode())
    item = {"url": (drop / "batch.csv").as_uri(), "validators": {}}
    root = (tmp_path / "data").as_uri()

    with receive(drop.as_uri() + "/", item, timeout=5, max_bytes=10**6) as received:
        batch_id = land(root, received, now=NOW, chunking=EIGHT_ROWS)["batch_id"]
    assert validate_and_quarantine(root, [batch_id], schema, EIGHT_ROWS)["valid"] == [batch_id]
    build_features(root, [batch_id], schema, EIGHT_ROWS)

    assert asked == [8, 8], "validation and features each read in chunks of 8 rows"
    assert max(handed) == 8
    assert sum(handed) == 2 * len(iris)
    for url in (batches.raw_batch_data(root, batch_id), layout.feature_batch(root, batch_id)):
        metadata = pq.ParquetFile(url.removeprefix("file://")).metadata
        assert {metadata.row_group(i).num_rows for i in range(metadata.num_row_groups - 1)} == {8}
