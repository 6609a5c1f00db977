"""Waiting on a drop folder that keeps everything: the cost of one ``NewFilesTrigger`` poll with 100 /
10,000 / 100,000 files already received, before and after the watermark (``include.folder_watch``), in
the same run, on a local disk and on the S3 emulator (moto, in a process of its own:
``bench/moto_seeded.py``, which counts the requests it serves).

"Before" is the poll as it was until the watermark (commit 70bad37), kept here as :class:`Before`: a
listing of the whole folder at every poll, and the ledger's whole item list read whenever a file looks
new (at the second poll of each trigger, that is of each ``ingest`` run, every file does).

Per side, store and size: the first two polls of a new trigger (each ingest run starts one), the
median of ``BENCH_ARRIVAL_POLLS`` idle polls after them (wall time, CPU of this process, S3 requests),
the full listing the watermark makes every ``crawl_full_listing_seconds``, and the detection latency of
one new file (written while the trigger polls once a second, as ``ingest`` does, until it fires). The
ledger (storage root) is on the local disk for both stores: the S3 requests counted are the listing's.
The sides alternate per size; the load average is recorded with each size.

On S3 a third side, "sqs", watches the same folder through the bucket's event notifications
(``NotifiedFilesTrigger``: S3 -> SQS on the same moto server, set up as a user does). Its idle poll is
one long poll of the queue (``wait_seconds``, 20 s, then the 1 s pause), so it is measured
``SQS_IDLE_POLLS`` times per trigger and its first polls are not measured apart; its full listing, every
``crawl_full_listing_seconds`` as a safety net, is the watermark's ("after_full_listing").
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import record
from include import layout, ledger, sources

SIDES = ("before", "after")
SQS = "sqs"
SQS_IDLE_POLLS = 2
BUCKET = "bench-arrival-{}"


def _trigger_classes():
    if str(record.REPO / "plugins") not in sys.path:  # as on the triggerer, where plugins/ is on sys.path
        sys.path.insert(0, str(record.REPO / "plugins"))
    from mlpipe.triggers import MAX_FILES_PER_EVENT, NewFilesTrigger, NotifiedFilesTrigger

    class Before(NewFilesTrigger):
        """The drop-folder poll as of commit 70bad37: the whole folder listed at every poll."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._received: set[str] = set()

        async def _poll(self) -> list[dict[str, Any]]:
            listing = await asyncio.to_thread(sources.list_folder, self.url)
            ready = sources.settled(self._previous, listing)
            self._previous = {item.url: item for item in listing}
            fresh = [item for item in ready if self._is_new(item)]
            if fresh:
                self._received = await asyncio.to_thread(ledger.received_items, self.storage_root)
                fresh = [item for item in fresh if self._is_new(item)]
            return [{"url": i.url, "validators": i.validators} for i in fresh[:MAX_FILES_PER_EVENT]]

        def _is_new(self, item: sources.FileItem) -> bool:
            return (
                self._within_limit(item) and ledger.item_key(item.url, item.validators) not in self._received
            )

    return {"before": Before, "after": NewFilesTrigger, SQS: NotifiedFilesTrigger}


@contextmanager
def _moto(sizes: list[int], log: Path):
    from scripts.stack.supervisor import free_port

    port = free_port()
    specs = [f"{BUCKET.format(n)}={n}" for n in sizes]
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.moto_seeded", str(port), *specs],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=record.REPO,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    saved["AWS_ENDPOINT_URL_S3"] = os.environ.get("AWS_ENDPOINT_URL_S3")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=url,
    )
    try:
        deadline = time.monotonic() + 600
        while "ready" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the seeded moto server did not start; see {log}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _purge(endpoint: str, queue_url: str) -> None:
    from tests.s3 import S3Endpoint, client

    client(S3Endpoint(endpoint), "sqs").purge_queue(QueueUrl=queue_url)


def _requests(endpoint: str | None) -> int:
    if endpoint is None:
        return 0
    import httpx

    return int(httpx.get(f"{endpoint}/__requests", timeout=30).text)


def _seed_local(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for n in range(count):
        path = folder / f"f-{n:07}.csv"
        path.write_bytes(b"x\n1\n")
        os.utime(path, (1_700_000_000, 1_700_000_000))
    # The steady state: the folder last changed a while ago (a scan right after a change is redone).
    os.utime(folder, (time.time() - 60, time.time() - 60))


def _seed_ledger(root: str, url: str) -> None:
    """An item entry for every file in ``url``, as landing leaves them (written plainly: a benchmark's
    setup, not the exactly-once path)."""
    import json

    folder = Path(layout.ledger(root, "items").removeprefix("file://"))
    folder.mkdir(parents=True, exist_ok=True)
    for item in sources.list_folder(url):
        entry = {"item": item.url, "validators": item.validators, "outcome": "landed"}
        (folder / f"{ledger.item_key(item.url, item.validators)}.json").write_text(json.dumps(entry))


def _drop(store: str, url: str, name: str) -> None:
    if store == "local":
        Path(url.removeprefix("file://"), name).write_bytes(b"x\n2\n")
    else:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url)
        fs.pipe_file(f"{path.rstrip('/')}/{name}", b"x\n2\n")


async def _timed_poll(trigger, endpoint: str | None) -> dict[str, float]:
    requests, cpu, wall = _requests(endpoint), time.process_time(), time.perf_counter()
    await trigger._poll()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "requests": _requests(endpoint) - requests}


async def _detect(trigger, store: str, url: str, name: str) -> float:
    """Seconds from writing file ``name`` until ``trigger`` (polling once a second) fires with it; the
    file is then recorded as received, so the other side does not see it."""
    generator = trigger.run()
    fired = asyncio.ensure_future(anext(generator))
    await asyncio.sleep(2.5)  # a new trigger's first two polls are behind it
    written = time.perf_counter()
    await asyncio.to_thread(_drop, store, url, name)
    event = await asyncio.wait_for(fired, 600)
    latency = time.perf_counter() - written
    await generator.aclose()
    [item] = event.payload["items"]
    assert item["url"].rsplit("/", 1)[1] == name, event.payload
    await asyncio.to_thread(
        ledger.record_item,
        trigger.storage_root,
        item["url"],
        item["validators"],
        sha256="0" * 64,
        outcome="landed",
        batch_id=None,
    )
    return latency


def measure(
    store: str,
    size: int,
    url: str,
    root: str,
    endpoint: str | None,
    polls: int,
    *,
    before_one_poll: bool = False,
    queue_url: str | None = None,
) -> dict[str, Any]:
    classes = _trigger_classes()
    common = {"url": url, "storage_root": root, "poll_interval": 1.0}
    # The full listing is the watermark's, measured once as "after_full_listing": not again per trigger.
    kwargs = {side: common for side in SIDES} | {
        SQS: {**common, "queue_url": queue_url, "full_listing_every": 3600}
    }
    sides = (*SIDES, SQS) if queue_url else SIDES
    result: dict[str, Any] = {"store": store, "files": size, "load_avg_before": list(os.getloadavg())}

    async def run() -> None:
        # The watermark's steady state: one full listing made (and its cost recorded).
        first = classes["after"](**common)
        result["after_full_listing"] = await _timed_poll(first, endpoint)
        for side in sides:
            result[side] = {"first_two_polls": [], "idle_polls": []}
        if before_one_poll:  # a new trigger's first poll: the whole listing, as every idle poll
            result["before"]["idle_polls"].append(await _timed_poll(classes["before"](**common), endpoint))
        for _ in range(2):  # alternate the sides, twice each, to spread the machine's noise
            for side in sides:
                if side == "before" and before_one_poll:
                    continue
                trigger = classes[side](**kwargs[side])
                if side == SQS:
                    async with trigger.connected():  # one SQS client for the trigger's life, as in run()
                        result[side]["idle_polls"] += [
                            await _timed_poll(trigger, endpoint) for _ in range(SQS_IDLE_POLLS)
                        ]
                    continue
                two = [await _timed_poll(trigger, endpoint) for _ in range(2)]
                result[side]["first_two_polls"].append({k: sum(p[k] for p in two) for k in two[0]})
                result[side]["idle_polls"] += [await _timed_poll(trigger, endpoint) for _ in range(polls)]
        for n, side in enumerate(sides):
            if side == "before" and before_one_poll:
                result[side]["detect_s"] = None
                continue
            if side == SQS:  # the other sides' new files were notified too: handled, they would only wait
                await asyncio.to_thread(_purge, endpoint, queue_url)
            result[side]["detect_s"] = await _detect(classes[side](**kwargs[side]), store, url, f"g-{n}.csv")

    asyncio.run(run())
    for side in sides:
        idle = result[side].pop("idle_polls")
        firsts = result[side].pop("first_two_polls")
        result[side] |= {
            "idle_wall_s": statistics.median(p["wall_s"] for p in idle),
            "idle_cpu_s": statistics.median(p["cpu_s"] for p in idle),
            "idle_requests": statistics.median(p["requests"] for p in idle),
            "first_two_wall_s": min((p["wall_s"] for p in firsts), default=None),
            "first_two_cpu_s": min((p["cpu_s"] for p in firsts), default=None),
            "first_two_requests": min((p["requests"] for p in firsts), default=None),
        }
        # Requests per minute while idle, polling once a second: a poll starts a second after one ends.
        result[side]["idle_requests_per_min"] = (
            result[side]["idle_requests"] * 60 / (1 + result[side]["idle_wall_s"])
        )
        result[side]["idle_cpu_s_per_min"] = (
            result[side]["idle_cpu_s"] * 60 / (1 + result[side]["idle_wall_s"])
        )
    result["load_avg_after"] = list(os.getloadavg())
    return _rounded(result)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def run(sizes: list[int], stores: list[str], polls: int = 5, before_s3_max: int = 10_000) -> dict[str, Any]:
    """Every size on every store; on S3, sizes over ``before_s3_max`` measure the before side with one
    poll only (no first polls, no detection): on the emulator its whole-bucket listing takes minutes."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-arrival-") as tmp:
        work = Path(tmp)
        if "local" in stores:
            for size in sizes:
                folder, root = work / f"drop-{size}", (work / f"root-{size}").as_uri()
                _seed_local(folder, size)
                _seed_ledger(root, folder.as_uri() + "/")
                rows.append(measure("local", size, folder.as_uri() + "/", root, None, polls))
                print(rows[-1], flush=True)
        if "s3" in stores:
            with _moto(sizes, work / "moto.log") as endpoint:
                from tests.s3 import S3Endpoint, notify_queue

                for size in sizes:
                    url, root = f"s3://{BUCKET.format(size)}/drop/", (work / f"s3root-{size}").as_uri()
                    _seed_ledger(root, url)
                    light = size > before_s3_max
                    queue = notify_queue(S3Endpoint(endpoint), BUCKET.format(size), BUCKET.format(size))
                    rows.append(
                        measure(
                            "s3", size, url, root, endpoint, polls, before_one_poll=light, queue_url=queue
                        )
                    )
                    print(rows[-1], flush=True)
    return {"polls": polls, "sqs_polls": SQS_IDLE_POLLS, "before_s3_max": before_s3_max, "rows": rows}


def print_report(result: dict[str, Any]) -> None:
    record.table(
        [
            "store",
            "files",
            "side",
            "idle poll ms",
            "idle CPU ms",
            "CPU ms/min",
            "S3 req/poll",
            "S3 req/min",
            "new trigger ms",
            "full listing ms",
            "detect s",
            "load",
        ],
        [
            [
                r["store"],
                r["files"],
                side,
                r[side]["idle_wall_s"] * 1000,
                r[side]["idle_cpu_s"] * 1000,
                r[side]["idle_cpu_s_per_min"] * 1000,
                r[side]["idle_requests"] if r["store"] == "s3" else None,
                r[side]["idle_requests_per_min"] if r["store"] == "s3" else None,
                None if r[side]["first_two_wall_s"] is None else r[side]["first_two_wall_s"] * 1000,
                r["after_full_listing"]["wall_s"] * 1000 if side == "after" else None,
                r[side]["detect_s"],
                r["load_avg_before"][0],
            ]
            for r in result["rows"]
            for side in (*SIDES, SQS)
            if side in r
        ],
        title="One drop-folder poll with N files already received (before: whole listing; after: watermark; "
        "sqs: S3 event notifications)",
    )
