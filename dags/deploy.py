"""
### deploy: champion/challenger promotion of model candidates, and rollback

Runs when `train_validate` publishes `model_candidate`. The candidate is promoted only if it is at
least as good as the production model on the candidate's own held-out data (the metric the candidate
was gated on, less the `deploy_margin` Variable). Promotion rewrites `models/production.json`
atomically; every earlier version stays under `models/versions/`. The `production_model` asset
event carries the version, the previous version and the metrics; the model server (connection
`model_server`) is told to reload and must then serve that version; a success e-mail follows. A
candidate kept out gets an e-mail saying why.

Rollback: trigger `deploy` by hand with `version` set to an earlier version; it is promoted as is.
"""

from __future__ import annotations

from airflow.sdk import Param, Variable, dag, task

from mlpipe.assets import model_candidate, production_model
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import stage_dag_args


@dag(
    schedule=[model_candidate],
    doc_md=__doc__,
    **stage_dag_args("deploy"),
    params={
        "version": Param(
            None,
            type=["null", "string"],
            description="Promote this registered version as is (a rollback when it is older). "
            "Empty: the candidate that triggered the run, if it beats production.",
        ),
    },
)
def deploy():
    @task.branch
    def compare_with_production(*, params, triggering_asset_events=None, ti=None) -> str:
        from include.config import load_schema, storage_root
        from include.registry import load_holdout, load_model, production_version, version_metadata
        from include.training import evaluate

        root = storage_root()
        champion = production_version(root)
        if params["version"]:
            decision = {"version": params["version"], "promote": True, "reason": "requested by hand"}
        else:
            candidate = max(
                event.extra["version"] for events in triggering_asset_events.values() for event in events
            )
            metadata = version_metadata(root, candidate)
            metric, score = metadata["metric"], metadata["metrics"][metadata["metric"]]
            decision = {"version": candidate, "metric": metric, "candidate_score": score}
            if champion is None:
                decision |= {"promote": True, "reason": "no model in production yet"}
            else:
                margin = float(Variable.get("deploy_margin", default="0"))
                champion_score = evaluate(
                    load_model(root, champion), load_holdout(root, candidate), load_schema()
                )
                decision |= {
                    "champion": champion,
                    "champion_score": champion_score[metric],
                    "promote": score >= champion_score[metric] - margin,
                    "reason": f"candidate {metric} {score} vs production {champion_score[metric]} "
                    f"on the candidate's held-out data (margin {margin})",
                }
        ti.xcom_push(key="decision", value=decision)
        return "promote" if decision["promote"] else "kept_out_alert"

    @task(outlets=[production_model])
    def promote(*, ti, outlet_events=None) -> dict:
        from include.config import storage_root
        from include.registry import promote as promote_version
        from include.registry import version_metadata

        decision = ti.xcom_pull(task_ids="compare_with_production", key="decision")
        root = storage_root()
        pointer = promote_version(root, decision["version"])
        metadata = version_metadata(root, pointer["version"])
        promoted = {
            **pointer,
            "model_type": metadata["model_type"],
            "metrics": metadata["metrics"],
            "reason": decision["reason"],
        }
        outlet_events[production_model].extra = promoted
        return promoted

    @task
    def reload_model_server(promoted: dict) -> dict:
        """Make the serving side load the new production model, and check it serves that version."""
        from airflow.providers.http.hooks.http import HttpHook

        served = HttpHook(method="POST", http_conn_id="model_server").run("/reload").json()
        if served["version"] != promoted["version"]:
            raise RuntimeError(f"the model server serves {served['version']}, not {promoted['version']}")
        return served

    success_email = SmtpAlertOperator(
        task_id="success_email",
        subject="[ml-pipeline] model {{ ti.xcom_pull(task_ids='promote')['version'] }} is in production",
        html_content="deploy_success.html",
    )
    kept_out_alert = SmtpAlertOperator(
        task_id="kept_out_alert",
        subject="[ml-pipeline] candidate {{ ti.xcom_pull(task_ids='compare_with_production', key='decision')"
        "['version'] }} kept out of production",
        html_content="deploy_kept_out.html",
    )
    decide = compare_with_production()
    promoted = promote()
    decide >> promoted
    reload_model_server(promoted) >> success_email
    decide >> kept_out_alert


deploy()
