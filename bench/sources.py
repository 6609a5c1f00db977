"""Many sources at once: what watching 1 / 10 / 100 sources costs the triggerer, and whether every source
is still polled once a second and a new file still found at once.

``ingest`` watches every source ``crawl_url`` lists with one :class:`~mlpipe.triggers.SourcesTrigger`
(one source: that source's trigger alone, as the sensor defers). Per kind of source and count, the
trigger runs here as on the triggerer (its loop polling every source once a second, ``poll_interval``
1 s): after every source's first ``WARM_UP_POLLS`` polls (a folder's first is a full listing, which
reads the ledger's item list; their time is ``warm_up_s``), an idle window of
``BENCH_SOURCES_IDLE_SECONDS`` measures the CPU of this process per minute and the polls each source
got per second; then one new item at the last source is timed until the trigger fires with it.

- ``folders``: local drop folders, each with ``BENCH_SOURCES_FILES`` files already received (their
  ledger entries written as landing leaves them), watched by :class:`~mlpipe.triggers.NewFilesTrigger`.
- ``urls``: URLs of one local HTTP data source (``scripts/data_source.py`` in a process of its own,
  so its CPU is not counted), each a CSV whose content was received before, so a poll is a conditional
  GET answered ``304``; watched by :class:`~mlpipe.triggers.NewDataTrigger`.

The baseline is one source of the same kind in the same run: ``cpu_per_source`` against it says
whether the cost per source grows with the number of sources.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import record
from bench.arrival import _rounded, _seed_ledger, _seed_local
from include import sources

KINDS = ("folders", "urls")
WARM_UP_POLLS = 3
CSV = b"x,y\n1,2\n"


def _triggers():
    if str(record.REPO / "plugins") not in sys.path:  # as on the triggerer, where plugins/ is on sys.path
        sys.path.insert(0, str(record.REPO / "plugins"))
    from mlpipe import triggers

    return triggers


def _data_source(directory: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``scripts/data_source.py`` serving ``directory`` on a free port; the process and its base URL."""
    from scripts.stack.supervisor import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.data_source", "--directory", str(directory), "--port", str(port)],
        cwd=record.REPO,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/"
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base, timeout=1)
            return process, base
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"the data source did not start; see {log}") from None
            time.sleep(0.1)


def _folder_pollers(work: Path, count: int, files: int, root: str) -> tuple[list, Any]:
    """``count`` drop folders, each with ``files`` received files; their triggers and a function that
    drops one new file into the last."""
    triggers = _triggers()
    folders = []
    for n in range(count):
        folder = work / f"drop-{count}-{n}"
        _seed_local(folder, files)
        _seed_ledger(root, folder.as_uri() + "/")
        folders.append(folder)
    pollers = [
        triggers.NewFilesTrigger(url=folder.as_uri() + "/", storage_root=root, poll_interval=1.0)
        for folder in folders
    ]

    def new_item() -> None:
        (folders[-1] / "new.csv").write_bytes(b"x\n2\n")

    return pollers, new_item


def _url_pollers(directory: Path, base: str, count: int, root: str) -> tuple[list, Any]:
    """``count`` URLs whose content is known (their fingerprints as the ledger keeps them); their
    triggers and a function that publishes new content at the last."""
    triggers = _triggers()
    names = [f"u-{count}-{n}.csv" for n in range(count)]
    pollers = []
    for name in names:
        (directory / name).write_bytes(CSV)
        fetched = asyncio.run(sources.fetch_within(base + name, timeout=30, max_bytes=1 << 20))
        pollers.append(
            triggers.NewDataTrigger(
                url=base + name,
                storage_root=root,
                poll_interval=1.0,
                known_fingerprint={**fetched.validators, "sha256": fetched.sha256},
            )
        )

    def new_item() -> None:
        (directory / names[-1]).write_bytes(CSV + b"3,4\n")

    return pollers, new_item


def measure(kind: str, pollers: list, new_item, idle_seconds: float) -> dict[str, Any]:
    triggers = _triggers()
    if len(pollers) == 1:
        trigger = pollers[0]
    else:
        trigger = triggers.SourcesTrigger(watches=[p.serialize() for p in pollers], poll_interval=1.0)
    watched = trigger.pollers if len(pollers) > 1 else pollers
    result: dict[str, Any] = {"kind": kind, "sources": len(pollers), "load_avg_before": list(os.getloadavg())}

    async def run() -> None:
        generator = trigger.run()
        fired = asyncio.ensure_future(anext(generator))
        started = time.perf_counter()
        while min(p.polls for p in watched) < WARM_UP_POLLS:  # the first polls: folders listed whole
            await asyncio.sleep(0.1)
        result["warm_up_s"] = time.perf_counter() - started
        polls, cpu, wall = sum(p.polls for p in watched), time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        wall = time.perf_counter() - wall
        polls, cpu = sum(p.polls for p in watched) - polls, time.process_time() - cpu
        assert not fired.done(), f"fired while idle: {fired.result().payload}"
        result["idle_cpu_s_per_min"] = cpu * 60 / wall
        result["cpu_ms_per_poll"] = cpu * 1000 / max(polls, 1)
        result["polls_per_source_per_s"] = polls / len(pollers) / wall
        written = time.perf_counter()
        await asyncio.to_thread(new_item)
        event = await asyncio.wait_for(fired, 120)
        result["detect_s"] = time.perf_counter() - written
        await generator.aclose()
        assert event.payload["url"] == watched[-1].url, event.payload
        assert event.payload["items"], event.payload

    asyncio.run(run())
    result["load_avg_after"] = list(os.getloadavg())
    return result


def run(counts: list[int], kinds: list[str], files: int, idle_seconds: float) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        work = Path(tmp)
        served = work / "served"
        served.mkdir()
        server, base = _data_source(served, work / "data_source.log") if "urls" in kinds else (None, "")
        try:
            for kind in kinds:
                for count in counts:
                    root = (work / f"root-{kind}-{count}").as_uri()
                    if kind == "folders":
                        pollers, new_item = _folder_pollers(work, count, files, root)
                    else:
                        pollers, new_item = _url_pollers(served, base, count, root)
                    rows.append(measure(kind, pollers, new_item, idle_seconds))
                    print(_rounded(rows[-1]), flush=True)
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
    for row in rows:
        one = next(r for r in rows if r["kind"] == row["kind"] and r["sources"] == min(counts))
        row["cpu_per_source_vs_one"] = (row["idle_cpu_s_per_min"] / row["sources"]) / (
            one["idle_cpu_s_per_min"] / one["sources"]
        )
    return {"files_per_folder": files, "idle_seconds": idle_seconds, "rows": _rounded(rows)}


def print_report(result: dict[str, Any]) -> None:
    record.table(
        [
            "kind",
            "sources",
            "CPU s/min",
            "CPU ms/poll",
            "polls/source/s",
            "CPU per source x 1",
            "detect s",
            "load",
        ],
        [
            [
                r["kind"],
                r["sources"],
                r["idle_cpu_s_per_min"],
                r["cpu_ms_per_poll"],
                r["polls_per_source_per_s"],
                r["cpu_per_source_vs_one"],
                r["detect_s"],
                r["load_avg_before"][0],
            ]
            for r in result["rows"]
        ],
        title=f"Many sources, each polled once a second ({result['idle_seconds']} s idle window)",
    )
