"""The approval operator as the DAG declares it: the question's options, its default, its form."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from mlpipe.approval import PromotionApprovalOperator


def test_it_asks_approve_or_reject_defaults_to_reject_and_shows_only_its_comment():
    with DAG("approval_unit", schedule=None, params={"version": Param(None, type=["null", "string"])}):
        operator = PromotionApprovalOperator(
            task_id="approval", decision={}, approved="promote", not_approved="not_approved_alert"
        )

    assert operator.options == ["Approve", "Reject"]
    assert operator.defaults == ["Reject"]  # what the scheduler answers when the wait times out
    assert operator.options_mapping == {"Approve": "promote", "Reject": "not_approved_alert"}
    # The DAG's own params (deploy's `version`) are not part of the question's form.
    assert set(operator.serialized_params) == {"comment"}
    assert operator.serialized_params["comment"]["value"] == ""
    assert "decision" in operator.template_fields
