"""Storage on S3: a local S3 endpoint (moto's standalone server, over HTTP), reached the way the
pipeline reaches AWS, through s3fs and the standard AWS environment variables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from include import layout, storage
from tests.s3 import S3Endpoint


def objects(endpoint: S3Endpoint, root: str) -> dict[str, bytes]:
    """Every object under ``root`` with its bytes, read by a client of the test's own."""
    fs = endpoint.filesystem()
    prefix = root.removeprefix("s3://")
    return {path.removeprefix(prefix + "/"): fs.cat_file(path) for path in fs.find(prefix)}


def test_a_write_is_one_object_and_reads_back(s3_endpoint, s3_root):
    url = layout.join(s3_root, "raw", "batches", "x.json")

    storage.write_json_atomic(url, {"rows": 3})

    assert objects(s3_endpoint, s3_root) == {"raw/batches/x.json": b'{\n  "rows": 3\n}'}
    assert storage.read_json(url) == {"rows": 3}
    assert storage.exists(url)
    assert not storage.exists(layout.join(s3_root, "raw", "batches", "y.json"))


def test_parquet_round_trip(s3_endpoint, s3_root, iris):
    url = layout.join(s3_root, "features", "x.parquet")

    data = storage.write_parquet_atomic(iris, url)

    assert objects(s3_endpoint, s3_root) == {"features/x.parquet": data}
    pd.testing.assert_frame_equal(storage.read_parquet(url), iris)


def test_create_only_refuses_other_bytes_and_accepts_the_same(s3_endpoint, s3_root):
    url = layout.join(s3_root, "models", "versions", "v", "metadata.json")
    storage.write_bytes_atomic(url, b"first", overwrite=False)

    with pytest.raises(FileExistsError, match=r"s3://.*/models/versions/v/metadata\.json already exists"):
        storage.write_bytes_atomic(url, b"second", overwrite=False)
    storage.write_bytes_atomic(url, b"first", overwrite=False)  # a retried write whose answer was lost

    assert objects(s3_endpoint, s3_root) == {"models/versions/v/metadata.json": b"first"}


def test_racing_creators_one_wins_because_the_store_decides(s3_endpoint, s3_root):
    """Sixteen writers create one name at once, each with its own bytes. A client-side "does it exist?"
    before the PUT would let several through; the conditional PUT lets exactly one."""
    url = layout.join(s3_root, "raw", "batches", "b.json")

    def create(n: int) -> int | None:
        try:
            storage.write_bytes_atomic(url, f"writer {n}".encode(), overwrite=False)
        except FileExistsError:
            return None
        return n

    with ThreadPoolExecutor(16) as pool:
        winners = [n for n in pool.map(create, range(16)) if n is not None]

    assert len(winners) == 1
    assert objects(s3_endpoint, s3_root) == {"raw/batches/b.json": f"writer {winners[0]}".encode()}


def test_overwrite_replaces_the_whole_object(s3_endpoint, s3_root):
    url = layout.join(s3_root, "models", "production.json")
    storage.write_bytes_atomic(url, b"a much longer first version")

    storage.write_bytes_atomic(url, b"short")

    assert objects(s3_endpoint, s3_root) == {"models/production.json": b"short"}


def test_listings_and_existence_see_what_another_writer_just_wrote(s3_endpoint, s3_root):
    """The triggerer, the workers and the model server are separate processes: a listing or an
    existence check made before another writer's PUT must not hide that PUT afterwards."""
    folder = layout.join(s3_root, "ledger", "items")
    storage.write_bytes_atomic(layout.join(folder, "a.json"), b"{}")
    assert storage.list_names(folder, ".json") == ["a.json"]
    assert not storage.exists(layout.join(folder, "b.json"))

    s3_endpoint.filesystem().pipe_file(f"{folder.removeprefix('s3://')}/b.json", b"{}")

    assert storage.list_names(folder, ".json") == ["a.json", "b.json"]
    assert storage.exists(layout.join(folder, "b.json"))


def test_list_names_of_a_missing_prefix_is_empty(s3_root):
    assert storage.list_names(layout.join(s3_root, "never", "written")) == []


def test_move_copies_then_deletes(s3_endpoint, s3_root):
    storage.write_bytes_atomic(layout.join(s3_root, "raw", "batches", "x.parquet"), b"x")

    storage.move(
        layout.join(s3_root, "raw", "batches", "x.parquet"), layout.join(s3_root, "quarantine", "x.parquet")
    )

    assert objects(s3_endpoint, s3_root) == {"quarantine/x.parquet": b"x"}


def test_remove_and_remove_tree(s3_endpoint, s3_root):
    for name in ("a", "b"):
        storage.write_bytes_atomic(layout.join(s3_root, "models", "staging", name), b"x")
    storage.write_bytes_atomic(layout.join(s3_root, "models", "promotion.json"), b"x")

    storage.remove(layout.join(s3_root, "models", "promotion.json"))
    storage.remove(layout.join(s3_root, "models", "promotion.json"))  # already gone: nothing to do
    storage.remove_tree(layout.join(s3_root, "models", "staging"))

    assert objects(s3_endpoint, s3_root) == {}


def test_a_missing_bucket_is_an_error_not_created(s3_endpoint):
    with pytest.raises(FileNotFoundError, match="bucket does not exist"):
        storage.write_bytes_atomic("s3://mlpipe-no-such-bucket/root/x.json", b"x")

    assert not s3_endpoint.filesystem().exists("mlpipe-no-such-bucket")
