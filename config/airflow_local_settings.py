"""Airflow imports ``airflow_local_settings`` from ``$AIRFLOW_HOME/config`` (or ``PYTHONPATH``) in every
one of its processes. Here it makes the processes that fork task processes load the tasks' heavy
third-party libraries once, up front. The compose file mounts this folder as ``/opt/airflow/config``
(and the image copies it); the local stack puts it on ``PYTHONPATH``.

A task process is forked: by the LocalExecutor's workers (themselves forked from the scheduler) and by
the Celery worker's pool. A module its parent already imported costs it nothing. The pipeline's tasks
import pandas, pyarrow and scikit-learn, 1.5-2 s per task on 2 cores, on seven of the ten tasks
between a publish and the production pointer; preloaded, register and promote went from ~2 s to
~0.3 s each (bench/latency.py, docs/performance.md). The price is ~200 MB more RSS in the scheduler
or Celery worker, shared copy-on-write with the task processes.

Only third-party libraries are loaded, never ``include/`` or ``plugins/``: those change while a stack
runs, and a forked task must see the code as it is on disk. The API server, dag-processor and
triggerer skip this (DAG parsing stays light: tests/dags checks it).
"""

from __future__ import annotations

import gc
import importlib
import sys

__all__: list[str] = []  # no cluster policies here

PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "fsspec",
    "s3fs",  # when installed (requirements-s3.txt): 0.3-0.5 s of imports for a task on an S3 root
    "httpx",
    "joblib",
    "scipy.stats",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    # train's registration converts the candidate to ONNX and checks it (include/onnx_model.py):
    # skl2onnx alone is ~1-3 s of imports on 2 cores.
    "skl2onnx",
    "onnxruntime",
)


def _forks_tasks(argv: list[str]) -> bool:
    """True for ``airflow scheduler`` (the LocalExecutor forks from it) and ``airflow celery worker``."""
    args = argv[1:3]
    return args[:1] == ["scheduler"] or args == ["celery", "worker"]


if _forks_tasks(sys.argv):
    for _name in PRELOAD:
        try:
            importlib.import_module(_name)
        except ImportError:  # a library the image does not have: its tasks import (and fail) as before
            continue
    # Move what was just loaded out of the collector's sight: a forked child's first collection would
    # otherwise write to every object's header and copy the whole preloaded heap (measured: 100-185 ms
    # per fork with these libraries, 7 ms frozen).
    gc.freeze()
