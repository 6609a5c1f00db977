"""The ledger: one atomic file per entry, concurrent writers keep every entry, torn entries heal."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from include import layout, ledger, storage

SHA = "ab" * 32


def write_items(root: str, worker: int, count: int) -> None:
    for n in range(count):
        ledger.record_item(
            root,
            f"file:///drop/{worker}-{n}.csv",
            {"size": n, "mtime": 1.0},
            sha256=SHA,
            outcome="landed",
            batch_id=None,
        )


def test_an_entry_is_one_file_named_by_a_sha256_and_never_left_partial(root, tmp_path: Path):
    ledger.record_content(
        root, SHA, "landing", batch_id="20261121T161500123456Z-abababab", item="http://x/a.csv"
    )

    [entry] = (tmp_path / "ledger" / "content").iterdir()
    assert entry.name == f"{SHA}.json"
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    assert ledger.content(root, SHA)["outcome"] == "landing"
    ledger.record_content(
        root, SHA, "landed", batch_id="20261121T161500123456Z-abababab", item="http://x/a.csv"
    )
    assert ledger.content(root, SHA)["outcome"] == "landed"


def test_concurrent_writers_lose_no_entry(root):
    """Four processes (a triggerer and workers) record 50 items each at the same time."""
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(write_items, [root] * 4, range(4), [50] * 4))

    assert len(ledger.received_items(root)) == 200


def test_a_torn_item_entry_counts_as_not_received_and_is_rewritten(root):
    validators = {"size": 3, "mtime": 2.5}
    url = layout.ledger(root, "items", ledger.item_key("file:///drop/a.csv", validators))
    storage.write_bytes_atomic(url, b'{"item": "file:///dr')

    assert ledger.item(root, "file:///drop/a.csv", validators) is None
    ledger.record_item(root, "file:///drop/a.csv", validators, sha256=SHA, outcome="duplicate", batch_id=None)
    assert ledger.item(root, "file:///drop/a.csv", validators)["outcome"] == "duplicate"


def test_a_torn_content_entry_without_a_batch_is_not_received(root):
    storage.write_bytes_atomic(layout.ledger(root, "content", SHA), b"\x00\x00")

    assert ledger.content(root, SHA) is None


def test_source_fingerprint_keeps_the_newest_validators(root):
    assert ledger.source_fingerprint(root, "http://x/a.csv") is None
    ledger.remember_source(root, "http://x/a.csv", {"etag": '"1"', "last_modified": None}, SHA)
    ledger.remember_source(root, "http://x/a.csv", {"etag": '"2"', "last_modified": None}, "cd" * 32)

    assert ledger.source_fingerprint(root, "http://x/a.csv") == {
        "etag": '"2"',
        "last_modified": None,
        "sha256": "cd" * 32,
    }
