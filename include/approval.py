"""Approval before promotion: when a person is asked, what they are shown, and what their answer leaves.

With the setting ``approval_required`` on, a candidate that beats production waits for a person to
approve or reject it in the Airflow UI (Browse > Required Actions) before ``deploy`` promotes it. A
version asked for by hand (the ``version`` param, a rollback) is a person's decision already: no
approval is asked. Every answer is kept beside the version, in ``models/versions/<v>/approval.json``:
who answered, when, what, and their comment; no answer within ``approval_timeout_hours`` counts as a
rejection by nobody (``timed out``), and production stays as it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from include import layout, storage
from include.errors import ConfigurationError

APPROVAL_FILE = "approval.json"
APPROVE = "Approve"
REJECT = "Reject"
APPROVED, REJECTED, TIMED_OUT = "approved", "rejected", "timed out"


def asks_approval(decision: dict, *, by_hand: bool, required: bool) -> bool:
    """Whether the promotion ``decision`` waits for a person: only a candidate that would be promoted,
    only when approval is ``required``, never for a version a person asked for ``by_hand``."""
    return bool(decision["promote"]) and required and not by_hand


def check_timeout_hours(hours: float) -> float:
    """``hours`` if it can bound the wait for an answer; ``ConfigurationError`` naming the setting."""
    if not hours > 0:
        raise ConfigurationError(f"approval_timeout_hours must be above 0, not {hours!r}")
    return hours


def request(decision: dict, report_url: str, timeout_hours: float) -> dict[str, str]:
    """The question a person is asked about ``decision`` (``include.promotion``): a ``subject`` and a
    Markdown ``body`` with the candidate's score against production's and the report's link."""
    version = decision["version"]
    champion = decision.get("champion")
    lines = [f"Candidate **{version}** beats the production model and is ready to be promoted.", ""]
    if "candidate_score" in decision:
        lines.append(f"- {decision['metric']}: candidate **{decision['candidate_score']}**")
        if "champion_score" in decision:
            lines[-1] += f", production ({champion}) **{decision['champion_score']}**"
    lines += [
        f"- Production now: {champion or 'none'}",
        f"- Why: {decision['reason']}",
        f"- Report: [{report_url}]({report_url})",
        "",
        f"**{APPROVE}** promotes it now. **{REJECT}** keeps production as it is; the candidate stays "
        "registered and can be deployed later by hand. With no answer within "
        f"{timeout_hours:g} h, production stays as it is.",
    ]
    return {"subject": f"Promote {version}?", "body": "\n".join(lines)}


def answer_record(decision: dict, answer: dict[str, Any], *, report_url: str) -> dict[str, Any]:
    """What is kept of ``answer`` (the approval task's response: ``chosen_options``, ``params_input``,
    ``responded_at``, ``responded_by_user``, a ``{"id", "name"}`` or ``None`` when the wait timed out)."""
    [chosen] = answer["chosen_options"]
    if chosen not in (APPROVE, REJECT):
        raise ValueError(f"an approval is answered {APPROVE!r} or {REJECT!r}, not {chosen!r}")
    user = answer.get("responded_by_user")
    # The scheduler answers the default ("Reject") as nobody when the wait times out.
    outcome = APPROVED if chosen == APPROVE else REJECTED if user else TIMED_OUT
    responded_at = answer["responded_at"]
    comment = (answer.get("params_input") or {}).get("comment") or ""
    return {
        "version": decision["version"],
        "answer": outcome,
        "responded_by": user["name"] if user else None,
        "responded_by_id": user["id"] if user else None,
        "responded_at": responded_at.isoformat() if isinstance(responded_at, datetime) else responded_at,
        "comment": comment.strip(),
        "production": decision.get("champion"),
        "reason": decision["reason"],
        "report_url": report_url,
    }


def refusal(answer: dict[str, Any]) -> str | None:
    """Why production stays as it is after ``answer`` (:func:`answer_record`), or ``None`` when the
    candidate was approved."""
    if answer["answer"] == APPROVED:
        return None
    by = f" by {answer['responded_by']}" if answer["responded_by"] else ""
    return f"not approved: {answer['answer']}{by}"


def record(root: str, answer: dict[str, Any]) -> str:
    """Keep ``answer`` (:func:`answer_record`) beside its version, atomically; return where."""
    url = layout.model_version(root, answer["version"], APPROVAL_FILE)
    storage.write_json_atomic(url, answer)
    return url


def recorded(root: str, version: str) -> dict[str, Any] | None:
    """The answer kept for ``version``, or ``None`` when nobody was asked."""
    url = layout.model_version(root, version, APPROVAL_FILE)
    return storage.read_json(url) if storage.exists(url) else None
