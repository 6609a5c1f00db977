"""Fixtures shared by the unit tests: the Iris data as the publisher makes it, the default schema,
a throwaway storage root, on a local disk or (``s3_root``) in a bucket of a local S3 endpoint, the
local data source serving a module's ``source_dir``, the compose file and its example env, and a
migrated SQLite database in the test Airflow home (tests/conftest.py) for ``dag.test()`` runs."""

from __future__ import annotations

import functools
import importlib.util
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from include.config import DatasetSchema, load_schema
from include.features import to_features
from scripts.data_source import DataSource
from scripts.publish import iris_frame
from tests import models
from tests.compose_env import COMPOSE_FILE, ENV_EXAMPLE, read_env_file
from tests.http_servers import data_source
from tests.s3 import S3Endpoint, moto_server, s3_environment

S3_BUCKET = "mlpipe-unit"


@pytest.fixture(scope="session")
def schema() -> DatasetSchema:
    return load_schema()


@pytest.fixture(scope="session")
def iris_once() -> pd.DataFrame:
    """Iris without its one repeated flower (rows 101 and 142), which `duplicates` would rightly reject."""
    return iris_frame()


@pytest.fixture
def iris(iris_once: pd.DataFrame) -> pd.DataFrame:
    return iris_once.copy()


@pytest.fixture
def root(tmp_path) -> str:
    return tmp_path.as_uri()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory) -> Iterator[S3Endpoint]:
    """moto's S3 server with an empty bucket, for the test module that asks for it (tests/unit is no
    package: a wider scope would keep it, and the AWS variables, for the rest of the session); this
    process reaches it through the AWS variables, as the pipeline reaches AWS."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        endpoint.filesystem().mkdir(S3_BUCKET)
        with s3_environment(endpoint):
            yield endpoint


@pytest.fixture
def s3_root(s3_endpoint: S3Endpoint) -> str:
    """A fresh storage root (prefix) in the bucket for each test."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def source(source_dir: Path) -> Iterator[DataSource]:
    """The local data source serving the module's ``source_dir``, one for the module (stopping one
    takes a tenth of a second)."""
    with data_source(source_dir) as server:
        yield server


@pytest.fixture(scope="module")
def bare_source(source_dir: Path) -> Iterator[DataSource]:
    """The same folder served without ETag / Last-Modified."""
    with data_source(source_dir, validators=False) as server:
        yield server


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    """The values of .env.example, which the compose checks resolve the file with and make_env copies."""
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose_yaml() -> dict:
    """docker-compose.yaml as parsed, before interpolation."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture
def register_model(root: str, iris: pd.DataFrame, schema: DatasetSchema) -> Callable[..., dict]:
    """Train, stage and register a model on the Iris data, as train_validate does; return its metadata
    (``tests.models.register_model``'s arguments after the data)."""
    return functools.partial(models.register_model, root, to_features(iris, schema), schema)


@pytest.fixture
def tamper() -> Callable[[str], bytes]:
    """Flip one byte in the middle of a stored file; return the new bytes."""
    return models.tamper


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the metadata tables in the test database (see tests/conftest.py); return the DAGs folder."""
    from airflow import settings
    from airflow.utils import db

    db.initdb()
    return Path(settings.DAGS_FOLDER)


@pytest.fixture
def load_dag(airflow_db: Path):
    """
    Write DAG source into the isolated DAGs folder and return the DAG it defines as ``dag``.

    ``dag.test()`` syncs the DAGs folder bundle to the database, so the DAG must live in a file there.
    """

    def load(name: str, source: str):
        path = airflow_db / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(f"mlpipe_test_dag_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.dag

    return load
