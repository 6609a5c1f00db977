"""A throwaway stack for the orchestrated benchmarks: the product's DAGs plus the benchmark DAGs of
``bench/dags`` as a second DAG bundle, in a temp home on free ports, embedded or on Celery."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from scripts.stack.config import REPO, CeleryConfig, StackConfig
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import free_port, free_ports

BENCH_DAGS = REPO / "bench" / "dags"


class _BenchEnv:
    """Adds the benchmark DAG bundle and the benchmark's own settings to a stack's environment."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(home, **kwargs)  # type: ignore[call-arg]
        self.extra_env = extra_env or {}

    @property
    def env(self) -> dict[str, str]:
        env = super().env  # type: ignore[misc]
        bundles = [
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {},
            },
            {
                "name": "bench",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(BENCH_DAGS), "refresh_interval": 5},
            },
        ]
        return {
            **env,
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "BENCH_DEFER_DIR": str(self.home / "defer"),  # type: ignore[attr-defined]
            **self.extra_env,
        }


class BenchStackConfig(_BenchEnv, StackConfig):
    pass


class BenchCeleryConfig(_BenchEnv, CeleryConfig):
    pass


def make_config(
    executor: str, home: Path, extra_env: dict[str, str] | None = None, storage_root: str | None = None
) -> StackConfig:
    ports: dict[str, Any] = {**free_ports(), "storage_root": storage_root or str(home / "data")}
    if executor == "celery":
        return BenchCeleryConfig(
            home,
            extra_env,
            database=f"mlpipe_bench_{uuid.uuid4().hex[:8]}",
            redis_db=random.randint(1, 15),
            flower_port=free_port(),
            **ports,
        )
    return BenchStackConfig(home, extra_env, **ports)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            value = condition()
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def s3_root(home: Path) -> Iterator[str]:
    """A storage root on a local S3 emulator (moto's server, the one the tests use), for as long as the
    block runs; this process and the stacks it starts reach it through the AWS variables."""
    from tests.s3 import moto_server, s3_environment

    with moto_server(home / "moto.log") as endpoint:
        endpoint.filesystem().mkdir("mlpipe-bench")
        with s3_environment(endpoint):
            yield "s3://mlpipe-bench/pipeline"


@contextmanager
def running_stack(
    executor: str, home: Path, extra_env: dict[str, str] | None = None, storage_root: str | None = None
) -> Iterator[LocalStack]:
    """A started stack whose bench DAGs are parsed too; stopped (and its database dropped) after."""
    config = make_config(executor, home, extra_env, storage_root)
    stack = LocalStack(config)
    try:
        stack.start(timeout=300)
        wait_for(
            lambda: (
                {"bench_noop_chain"}
                <= {d["dag_id"] for d in stack.rest.get("/api/v2/dags", limit=100)["dags"]}
            ),
            180,
            "the bench DAGs to be parsed",
            interval=2,
        )
        yield stack
    finally:
        stack.stop()
        if isinstance(config, CeleryConfig):
            with suppress(Exception):
                config.drop_database()
