"""Ask a person to approve a promotion in the Airflow UI, and branch on the answer.

Built on the standard provider's ``HITLBranchOperator`` with the two options of its
``ApprovalOperator``, "Approve" and "Reject". Not on ``ApprovalOperator`` itself: on "Reject" it skips
every task directly after it, so nothing could record and mail the rejection; a branch goes on to
``promote`` or to the task that says why production was kept.

On Airflow 3.3 a human-in-the-loop task waits in the state ``awaiting_input``: its worker process
has ended, so the wait holds no worker slot and no pool slot, and no triggerer is involved. The
scheduler ends the wait after ``approval_timeout_hours`` by answering the default, "Reject", as
nobody. When the wait starts, ``notification_email`` is mailed the question and a link to answer it
in the UI. The answer is kept beside the version (``include.approval``) before the branch is taken (a
refusal also as the version's kept-out record, ``include.registry.record_kept_out``), and pushed as
the XCom ``answer`` for the tasks after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict

from include.approval import APPROVE, REJECT

if TYPE_CHECKING:
    from airflow.sdk import Context

ANSWER_KEY = "answer"


class PromotionApprovalOperator(HITLBranchOperator):
    """
    Ask "Promote <version>?" about a promotion decision and follow ``approved`` or ``not_approved``.

    :param decision: The decision to promote (``include.promotion``), usually an upstream task's XCom.
        The question shows its scores against production and the version's report link. (templated)
    :param approved: Task id to follow on "Approve".
    :param not_approved: Task id to follow on "Reject", or when nobody answers in time.
    """

    template_fields: Sequence[str] = (*HITLBranchOperator.template_fields, "decision")
    ui_color = "#fbe3a1"

    def __init__(self, *, decision: Any, approved: str, not_approved: str, **kwargs: Any) -> None:
        # The DAG's params come in merged into ``params``; the operator shows only those of source
        # "task" on its form: here, the comment.
        params = ParamsDict(kwargs.pop("params", None) or {})
        params["comment"] = Param(
            "",
            type="string",
            title="Comment",
            description="Why (optional): kept with the answer, and mailed with a rejection.",
            source="task",
        )
        super().__init__(
            subject="Promote the candidate?",  # the version is known when the task runs
            options=[APPROVE, REJECT],
            defaults=[REJECT],
            multiple=False,
            options_mapping={APPROVE: approved, REJECT: not_approved},
            params=params,
            **kwargs,
        )
        self.decision = decision
        self.required_actions_url = ""

    def execute(self, context: Context) -> None:
        from include.approval import check_timeout_hours, request
        from mlpipe.links import version_report_url
        from mlpipe.settings import setting
        from mlpipe.stages import no_retry_on

        with no_retry_on():  # a Variable of the wrong type or value: no retry fixes it
            hours = check_timeout_hours(setting("approval_timeout_hours"))
        self.response_timeout = timedelta(hours=hours)
        asked = request(self.decision, version_report_url(self.decision["version"]), hours)
        self.subject, self.body = asked["subject"], asked["body"]
        self._mail_the_request(context)
        super().execute(context)

    def _mail_the_request(self, context: Context) -> None:
        """Tell people a candidate waits for them; the request waits in the UI whether or not this
        mail goes out (the provider's ``notifiers`` would fail the task on an SMTP error)."""
        from mlpipe.notifications import approval_request_notifier

        try:
            self.required_actions_url = self.generate_link_to_ui_from_context(context=context)
            approval_request_notifier()(context)
        except Exception:
            self.log.exception("Could not mail the approval request; it waits under Required Actions")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from include.approval import answer_record, record, refusal
        from include.config import storage_root
        from include.registry import record_kept_out, version_metadata
        from mlpipe.links import version_report_url

        if "error" not in event:
            root, version = storage_root(), self.decision["version"]
            answer = answer_record(self.decision, event, report_url=version_report_url(version))
            answer["stored_at"] = record(root, answer)
            if (reason := refusal(answer)) is not None:
                record_kept_out(root, version, version_metadata(root, version)["batch_ids"], reason)
            self.log.info("Promotion of %s: %s", answer["version"], answer["answer"])
            context["ti"].xcom_push(key=ANSWER_KEY, value=answer)
        return super().execute_complete(context, event)
