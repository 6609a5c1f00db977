"""
### deploy: champion/challenger promotion of model candidates, and rollback

Runs when `train_validate` publishes `model_candidate`. The candidate is promoted only if it is at
least as good as the production model on the candidate's own held-out data (the metric the candidate
was gated on, less the `deploy_margin` Variable). `promote` rewrites `models/production.json`
atomically, tells the model server (connection `model_server`) to reload, and checks that it now
serves that version; if not, it puts the previous pointer back and fails, so no `production_model`
event is published and the failure is e-mailed. Every earlier version stays under `models/versions/`.
The `production_model` asset event carries the version, the previous version, the metrics and the
URL of the version's report; a success e-mail follows, with the report's key plot inline. The promote
task's "Model report" button opens the report. A candidate kept out gets an e-mail saying why.

Approval (the `approval_required` Variable, off by default): a candidate that beats production waits
in `approval` (state "Awaiting Input", holding no worker slot) until a person answers "Approve" or
"Reject" under Browse > Required Actions. Approve promotes it; Reject, or no answer within
`approval_timeout_hours`, keeps production and mails why. The answer is kept in
`models/versions/<version>/approval.json`.

Rollback: trigger `deploy` by hand with `version` set to an earlier version; it is promoted as is,
without approval (asking for it by hand is the decision).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from include.layout import ID_PATTERN
from mlpipe.approval import ANSWER_KEY, PromotionApprovalOperator
from mlpipe.assets import model_candidate, production_model
from mlpipe.links import REPORT_URL_KEY, ModelReportLink, version_report_url
from mlpipe.settings import setting
from mlpipe.smtp_alert import SmtpAlertOperator
from mlpipe.stages import fail_fast, stage_dag_args

RELOAD_TIMEOUT_SECONDS = 30  # the longest the pointer can name a model the server has not confirmed
REPORT_WAIT_SECONDS = 60  # train_validate writes the report after register, beside this stage's work


@dag(
    schedule=[model_candidate],
    doc_md=__doc__,
    **stage_dag_args("deploy"),
    params={
        "version": Param(
            None,
            type=["null", "string"],
            pattern=ID_PATTERN,
            description="Promote this registered version as is (a rollback when it is older). "
            "Empty: the candidate that triggered the run, if it beats production.",
        ),
    },
)
def deploy():
    @task.branch
    def compare_with_production(*, params, triggering_asset_events=None, ti=None) -> str:
        """Decide on the candidate (or the version asked for); the decision goes to XCom as `decision`."""
        from include import promotion
        from include.approval import asks_approval
        from include.config import load_schema, storage_root
        from include.registry import record_kept_out

        root = storage_root()
        candidates = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
        if params["version"]:
            decision = promotion.requested(root, params["version"])
        else:
            candidate = promotion.newest_candidate(candidates)
            decision = promotion.compare_with_production(
                root, load_schema(), candidate, setting("deploy_margin")
            )
        for candidate, reason in promotion.not_promoted(candidates, decision):
            record_kept_out(root, candidate["version"], candidate["batch_ids"], reason)
        ti.xcom_push(key="decision", value=decision)
        if not decision["promote"]:
            return "kept_out_alert"
        required = setting("approval_required")
        ask = asks_approval(decision, by_hand=bool(params["version"]), required=required)
        return "approval" if ask else "promote"

    # Runs after compare_with_production chose it directly, or after an approval.
    @task(outlets=[production_model], trigger_rule="none_failed_min_one_success")
    def promote(decision: dict, *, outlet_events=None, ti=None) -> dict:
        """Move the pointer and have the model server confirm it serves the version; else undo and fail."""
        from airflow.providers.http.hooks.http import HttpHook

        from include import layout
        from include.config import storage_root
        from include.promotion import promote_and_confirm
        from include.report import KEY_PLOT_FILE

        def reload() -> str:
            hook = HttpHook(method="POST", http_conn_id="model_server")
            response = hook.run("/reload", extra_options={"timeout": RELOAD_TIMEOUT_SECONDS})
            return response.json()["version"]

        root = storage_root()
        promoted = promote_and_confirm(root, decision["version"], decision["reason"], reload)
        report_url = version_report_url(promoted["version"])
        ti.xcom_push(key=REPORT_URL_KEY, value=report_url)
        outlet_events[production_model].extra = {**promoted, "report_url": report_url}
        return {
            **promoted,
            "report_url": report_url,
            "key_plot": layout.model_version(root, promoted["version"], KEY_PLOT_FILE),
        }

    decide = compare_with_production()
    decision = decide["decision"]
    approval = PromotionApprovalOperator(
        task_id="approval", decision=decision, approved="promote", not_approved="not_approved_alert"
    )
    promoted = promote(decision)
    approval >> promoted
    promoted.operator.operator_extra_links = [ModelReportLink()]
    SmtpAlertOperator(
        task_id="success_email",
        data=promoted,
        subject="[ml-pipeline] model {{ data.version }} is in production",
        html_content="deploy_success.html",
        inline_images=["{{ data.key_plot }}"],
        inline_wait_seconds=REPORT_WAIT_SECONDS,
    )
    decide >> SmtpAlertOperator(
        task_id="kept_out_alert",
        data=decision,
        subject="[ml-pipeline] candidate {{ data.version }} kept out of production",
        html_content="deploy_kept_out.html",
    )
    approval >> SmtpAlertOperator(
        task_id="not_approved_alert",
        data=approval.output[ANSWER_KEY],
        subject="[ml-pipeline] candidate {{ data.version }} not promoted: {{ data.answer }}"
        "{{ ' by ' ~ data.responded_by if data.responded_by else '' }}",
        html_content="deploy_not_approved.html",
    )


fail_fast(deploy())
