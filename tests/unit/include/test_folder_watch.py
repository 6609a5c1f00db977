"""The drop folder's watermark: a poll looks only past it, late writers are found by the full listing,
and the listing past a watermark sees each file exactly as the full listing does (local disk and S3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from include import ledger, sources
from include.folder_watch import FolderWatch

HOUR = 3600.0


def receive(root: str, item: sources.FileItem) -> None:
    """Record ``item`` in the ledger as landed, the last thing landing does."""
    ledger.record_item(root, item.url, item.validators, sha256="0" * 64, outcome="landed", batch_id=None)


def poll(watch: FolderWatch, previous: dict) -> list[sources.FileItem]:
    """One poll as the trigger makes it: the settled files the ledger does not know."""
    listing = watch.listing()
    ready = sources.settled(previous, listing)
    previous.clear()
    previous.update({item.url: item for item in listing})
    fresh = watch.unreceived(ready)
    watch.advance(listing)
    return fresh


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def write(drop: Path, name: str, body: str = "x\n1\n", mtime: float = 1000.0) -> sources.FileItem:
    (drop / name).write_text(body)
    os.utime(drop / name, (mtime, mtime))
    return sources.FileItem((drop / name).as_uri(), len(body), mtime)


def test_the_listing_after_a_name_sees_each_file_as_the_full_listing_does(drop):
    for name in ("a.csv", "b.csv", "c.csv", ".c2.tmp", "_SUCCESS"):
        write(drop, name)
    (drop / "d").mkdir()
    url = drop.as_uri() + "/"

    full = sorted(sources.list_folder(url), key=lambda i: i.url)
    assert [i.url.rsplit("/", 1)[1] for i in full] == ["a.csv", "b.csv", "c.csv"]
    assert sorted(sources.list_folder(url, after="a.csv"), key=lambda i: i.url) == full[1:]
    assert sorted(sources.list_folder(url, after=""), key=lambda i: i.url) == full
    assert sources.list_folder(url, after="c.csv") == []
    assert sources.list_folder((drop / "missing").as_uri(), after="") == []


def test_an_unchanged_local_folder_is_not_scanned_again(drop, monkeypatch):
    write(drop, "a.csv")
    os.utime(drop, (1000, 1000))  # changed long before the scan: the scan can be trusted
    cache, scans = sources.DirCache(), []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scans.append(path) or real(path))
    url = drop.as_uri() + "/"

    assert len(sources.list_folder(url, after="", cache=cache)) == 1
    assert len(sources.list_folder(url, after="", cache=cache)) == 1
    assert len(scans) == 1
    (drop / "a.csv").write_text("x\n1\n2\n")  # grows in place: still seen, by its stat
    assert sources.list_folder(url, after="", cache=cache)[0].size == 6
    write(drop, "b.csv")  # a new name changes the folder's mtime
    assert len(sources.list_folder(url, after="", cache=cache)) == 2
    assert len(scans) == 2


def test_the_watermark_moves_past_received_files_and_polls_stop_reading_the_ledger_list(
    drop, tmp_path, monkeypatch
):
    root, url = (tmp_path / "data").as_uri(), drop.as_uri() + "/"
    old = [write(drop, f"{n:03}.csv") for n in range(50)]
    for item in old:
        receive(root, item)
    bulk = []
    real = ledger.received_items
    monkeypatch.setattr(ledger, "received_items", lambda r: bulk.append(r) or real(r))

    first, previous = FolderWatch(url, root, full_every=HOUR, max_bytes=100), {}
    assert poll(first, previous) == []  # the first poll ever is a full listing
    assert first.after == "049.csv"
    assert len(bulk) == 1
    assert ledger.folder_mark(root, url)["after"] == "049.csv"

    # A new watcher (each ingest run's trigger is one) starts from the saved watermark.
    watch, previous = FolderWatch(url, root, full_every=HOUR, max_bytes=100), {}
    assert poll(watch, previous) == []
    assert watch.listing() == []
    new = write(drop, "050.csv")
    assert poll(watch, previous) == []  # seen once: not settled yet
    assert poll(watch, previous) == [new]
    assert len(bulk) == 1, "no poll after the full listing read the ledger's item list"
    assert watch.after == "049.csv", "not past a file not received"
    receive(root, new)
    assert poll(watch, previous) == []
    assert watch.after == "050.csv"


def test_late_writers_are_found_by_the_next_full_listing(drop, tmp_path):
    root, url = (tmp_path / "data").as_uri(), drop.as_uri() + "/"
    for item in (write(drop, "b.csv"), write(drop, "c.csv")):
        receive(root, item)
    watch, previous = FolderWatch(url, root, full_every=HOUR, max_bytes=100), {}
    poll(watch, previous)
    assert watch.after == "c.csv"

    late = write(drop, "a.csv")  # a name before the watermark
    rewritten = write(drop, "b.csv", body="x\n2\n3\n", mtime=2000.0)  # rewritten in place
    assert poll(watch, previous) == []  # the watermark hides them
    assert poll(watch, previous) == []

    watch.full_listing_at -= HOUR  # a full listing is due
    assert poll(watch, previous) == []  # seen by the full listing, not settled yet
    assert watch.after == "", "moved back before the first file not received"
    assert sorted(poll(watch, previous), key=lambda i: i.url) == [late, rewritten]
    receive(root, late)
    receive(root, rewritten)
    assert poll(watch, previous) == []
    assert watch.after == "c.csv"


def test_files_over_the_limit_do_not_hold_the_watermark_back(drop, tmp_path):
    root, url = (tmp_path / "data").as_uri(), drop.as_uri() + "/"
    write(drop, "a.csv", body="x\n" * 100)
    receive(root, write(drop, "b.csv"))
    watch = FolderWatch(url, root, full_every=HOUR, max_bytes=10)
    poll(watch, {})
    assert watch.after == "b.csv"


def test_a_torn_watermark_means_a_full_listing(drop, tmp_path):
    root, url = (tmp_path / "data").as_uri(), drop.as_uri() + "/"
    receive(root, write(drop, "a.csv"))
    ledger.save_folder_mark(root, url, "a.csv", 10**10)
    path = Path(ledger.layout.ledger(root, "sources", ledger.key("folder", url)).removeprefix("file://"))
    path.write_text("{torn")
    watch = FolderWatch(url, root, full_every=HOUR, max_bytes=100)
    watch.listing()
    assert watch.full


def test_the_listing_after_a_name_on_s3_sees_each_file_as_the_full_listing_does(s3_endpoint, s3_root):
    fs = s3_endpoint.filesystem()
    for name in ("a.csv", "b.csv", "c.csv", ".c2.tmp", "sub/d.csv"):
        fs.pipe(f"{s3_root}/drop/{name}".removeprefix("s3://"), b"x\n1\n")
    url = f"{s3_root}/drop/"

    full = sources.list_folder(url)
    assert [i.url.rsplit("/", 1)[1] for i in full] == ["a.csv", "b.csv", "c.csv"]
    assert sources.list_folder(url, after="a.csv") == full[1:]
    assert sources.list_folder(url, after="") == full
    assert sources.list_folder(f"{s3_root}/missing/", after="") == []


def test_on_s3_a_new_watcher_offers_only_the_new_file(s3_endpoint, s3_root):
    fs = s3_endpoint.filesystem()
    for name in ("a.csv", "b.csv"):
        fs.pipe(f"{s3_root}/drop/{name}".removeprefix("s3://"), b"x\n1\n")
    url, root = f"{s3_root}/drop/", f"{s3_root}/data"
    for item in sources.list_folder(url):
        receive(root, item)
    poll(FolderWatch(url, root, full_every=HOUR, max_bytes=100), {})  # the first full listing
    assert ledger.folder_mark(root, url)["after"] == "b.csv"

    fs.pipe(f"{s3_root}/drop/c.csv".removeprefix("s3://"), b"x\n2\n")
    watch, previous = FolderWatch(url, root, full_every=HOUR, max_bytes=100), {}
    assert poll(watch, previous) == []
    assert [i.url for i in poll(watch, previous)] == [f"{url}c.csv"]
    assert not watch.full
