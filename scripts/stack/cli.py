"""Run the whole pipeline on one machine: Airflow (SQLite + LocalExecutor), a data source, a mail sink
and the model server.

    python -m scripts.stack up        # start in the background; prints the UI address and login
    python -m scripts.stack publish   # a new batch at the data source (--kind: see scripts/publish.py)
    python -m scripts.stack demo      # up, publish, follow the pipeline reacting, print a summary
    python -m scripts.stack status    # each component's state and restarts, and Airflow's health view
    python -m scripts.stack logs      # the components' last log lines, then follow them (--no-follow)
    python -m scripts.stack clean     # remove the state of a stopped stack (home, data/)
    python -m scripts.stack down      # stop everything this stack started
    python -m scripts.stack airflow -- dags list

The state (Airflow home, SQLite database, logs, data-source files, mails, process ids) lives in one
folder, ``.airflow/`` by default; the pipeline's data goes to ``PIPELINE_STORAGE_ROOT`` (default
``data/``). ``--celery`` runs the production topology instead (PostgreSQL, Redis, CeleryExecutor) from
``.airflow-celery/``. The integration tests run the same stack in a temporary folder on free ports.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import sys
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import httpx

from scripts.stack import keeper
from scripts.stack.config import ADMIN_USER, CELERY_HOME, EMBEDDED_HOME, CeleryConfig, StackConfig
from scripts.stack.errors import StackError
from scripts.stack.housekeeping import clean, show_logs
from scripts.stack.launcher import LocalStack
from scripts.stack.supervisor import alive


def _print_login(stack: LocalStack) -> None:
    config = stack.config
    print(f"  Airflow UI:   {config.api_url}   (login: {ADMIN_USER} / {config.password})")
    print(f"  data source:  {config.crawl_url}   (publish another batch: make publish)")
    print(f"  model server: {config.model_server_url}/health   (POST /predict)")
    print(f"  data:         {config.storage_root}")
    print(f"  mails:        {config.mail_dir}")
    print(f"  logs:         {config.log_dir}")


def follow(stack: LocalStack, since: datetime, timeout: float, quiet: float = 4) -> dict[str, dict]:
    """Print every state change of the stage runs queued after ``since`` until the pipeline has reacted
    and gone quiet: a batch was received, no later stage is queued or running, and nothing changed for
    ``quiet`` seconds (a consumer run is queued about a second after its asset event, when the
    scheduler's next loop sees the event), or for half that once ``monitor``, the end of the chain, has
    run. Return each stage's newest finished run."""
    seen: dict[str, str] = {}
    last_change = time.monotonic()
    deadline = last_change + timeout
    while time.monotonic() < deadline:
        runs = list(stack.rest.runs_since(since))
        for dag_id, run in runs:
            key = f"{dag_id}/{run['dag_run_id']}"
            if seen.get(key) != run["state"]:
                seen[key] = run["state"]
                last_change = time.monotonic()
                print(
                    f"  {datetime.now():%H:%M:%S}  {dag_id:<15} {run['run_type']:<15} {run['state']}",
                    flush=True,
                )
        finished = {}
        for dag_id, run in runs:
            if run["state"] in ("success", "failed"):
                finished.setdefault(dag_id, run)
        busy = any(dag_id != "ingest" and run["state"] in ("queued", "running") for dag_id, run in runs)
        settle = quiet / 2 if "monitor" in finished else quiet
        if "ingest" in finished and not busy and time.monotonic() - last_change > settle:
            return finished
        time.sleep(1)
    raise StackError(f"the pipeline did not settle within {timeout:.0f} s")


def demo(stack: LocalStack) -> None:
    started = time.monotonic()
    if not stack.supervisor.running():
        print(
            "Starting Airflow (scheduler, dag-processor, triggerer, API server), data source, mail sink ..."
        )
        stack.start()
        print(f"  ready after {time.monotonic() - started:.0f} s")
    since = datetime.now(UTC)
    mails_before = set(stack.mails())
    path = stack.publish()
    print(f"Published a batch at {stack.config.crawl_url} ({path}).")
    print("No DAG is triggered by hand; following the runs as the pipeline reacts:")
    finished = follow(stack, since, timeout=600)
    print("\nSummary")
    for dag_id in stack.rest.stage_dags():
        run = finished.get(dag_id)
        if run is None:
            print(f"  {dag_id:<15} did not run")
            continue
        took = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
        print(f"  {dag_id:<15} {run['state']:<8} {took.total_seconds():5.1f} s   {run['dag_run_id']}")
    production = stack.rest.asset_events("production_model")
    if production and datetime.fromisoformat(production[0]["timestamp"]) >= since:
        extra = production[0]["extra"]
        took = datetime.fromisoformat(production[0]["timestamp"]) - since
        print(f"  in production:  model {extra['version']} ({extra['model_type']}, {extra['metrics']})")
        print(f"  publish to production: {took.total_seconds():.0f} s")
    else:
        print("  in production:  unchanged by this batch")
    for mail in sorted(set(stack.mails()) - mails_before):
        print(f"  mail received:  {_subject(mail)}")
    _print_login(stack)
    print(f"  whole demo: {time.monotonic() - started:.0f} s")
    print("The stack keeps running for the UI; stop it with: make down")
    failed = sorted(dag_id for dag_id, run in finished.items() if run["state"] == "failed")
    if failed:
        raise StackError(f"{', '.join(failed)} failed; see the UI or {stack.config.log_dir}")


def status_report(stack: LocalStack) -> str:
    """Each component's state (running, restarting, gave up, stopped), pid and restarts, then Airflow's
    own view of its components (``GET /api/v2/monitor/health``)."""
    pids, running = stack.supervisor.pids(), stack.supervisor.running()
    if not pids:
        return "not running"
    kept = keeper.status(stack.config.home)
    lines = [f"{'component':<15}{'state':<12}{'pid':>8}{'restarts':>10}"]
    for name, pid in pids.items():
        state = kept.get(name, {}).get("state", "running") if alive(pid) else "stopped"
        if name not in running:
            state = "stopped"
        lines.append(f"{name:<15}{state:<12}{pid:>8}{kept.get(name, {}).get('restarts', 0):>10}")
    try:
        health = stack.health()
    except (httpx.HTTPError, StackError) as exc:
        lines.append(f"Airflow health: no answer from {stack.config.api_url} ({exc})")
        return "\n".join(lines)
    lines.append("Airflow health (GET /api/v2/monitor/health):")
    for part, info in health.items():
        beat = next((value for key, value in (info or {}).items() if key.endswith("heartbeat")), None)
        lines.append(f"  {part:<15}{(info or {}).get('status')}" + (f"  (heartbeat {beat})" if beat else ""))
    return "\n".join(lines)


def _subject(path: Path) -> str:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["subject"]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command", choices=("up", "down", "publish", "demo", "status", "logs", "clean", "airflow")
    )
    parser.add_argument("--home", type=Path, help="state folder (default .airflow/)")
    parser.add_argument("--kind", default="good", help="publish: good, bad, shuffled-labels, drifted-petals")
    parser.add_argument(
        "--drop",
        action="store_true",
        help="publish: a new file in the drop folder <home>/drop/ instead of the HTTP source",
    )
    parser.add_argument("--lines", type=int, default=20, help="logs: last lines shown per component")
    parser.add_argument(
        "--component",
        action="append",
        default=[],
        help="logs: only this component (scheduler, triggerer, ...); repeat for more",
    )
    parser.add_argument("--no-follow", action="store_true", help="logs: print the last lines and exit")
    parser.add_argument(
        "--celery",
        action="store_true",
        help="the production topology: PostgreSQL, Redis, CeleryExecutor, a worker and Flower "
        "(state in .airflow-celery/ unless --home is given)",
    )
    args, airflow_args = parser.parse_known_args()
    if airflow_args and args.command != "airflow":
        parser.error(f"unrecognized arguments: {' '.join(airflow_args)}")
    if args.celery:
        stack = LocalStack(CeleryConfig(args.home or CELERY_HOME))
    else:
        stack = LocalStack(StackConfig(args.home or EMBEDDED_HOME))
    try:
        if args.command == "up":
            stack.start()
            print("The stack is running in the background:")
            _print_login(stack)
        elif args.command == "down":
            stopped = stack.stop()
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        elif args.command == "publish":
            print(f"published a {args.kind} batch at {stack.publish(args.kind, drop=args.drop)}")
        elif args.command == "airflow":
            result = stack.config.airflow(*[a for a in airflow_args if a != "--"], check=False)
            print(result.stdout, end="")
            print(result.stderr, end="", file=sys.stderr)
            sys.exit(result.returncode)
        elif args.command == "logs":
            with suppress(KeyboardInterrupt):
                show_logs(
                    stack.config,
                    stack.supervisor,
                    sys.stdout,
                    components=args.component,
                    lines=args.lines,
                    follow=not args.no_follow,
                )
        elif args.command == "clean":
            print("\n".join(clean(stack.config, stack.supervisor)))
        elif args.command == "status":
            print(status_report(stack))
        else:
            demo(stack)
    except StackError as exc:
        sys.exit(f"error: {exc}")
