from __future__ import annotations

import socket

import pytest

from mlpipe.smtp_alert import SmtpAlertOperator

FROM_EMAIL = "pipeline@example.com"  # the smtp_default connection's from_email extra (conftest)


def html_body(message) -> str:
    return message.get_body(("html",)).get_content()


def test_sends_to_explicit_recipients(smtp_conn, received):
    op = SmtpAlertOperator(
        task_id="alert",
        to=["ml@example.com", "ops@example.com"],
        cc="lead@example.com",
        subject="Model rejected",
        html_content="<p>accuracy <b>0.71</b> &lt; 0.8</p>",
    )

    assert op.execute({}) == ["ml@example.com", "ops@example.com", "lead@example.com"]

    [message] = received()
    assert message["X-Envelope-To"] == "ml@example.com, ops@example.com, lead@example.com"
    assert message["To"] == "ml@example.com, ops@example.com"
    assert message["Cc"] == "lead@example.com"
    assert message["From"] == FROM_EMAIL
    assert message["Subject"] == "Model rejected"
    assert "<p>accuracy <b>0.71</b> &lt; 0.8</p>" in html_body(message)


def test_reads_recipients_from_variable_at_execute_time(smtp_conn, received, monkeypatch):
    op = SmtpAlertOperator(task_id="alert", subject="Drift detected", html_content="<p>psi 0.4</p>")
    monkeypatch.setenv("AIRFLOW_VAR_NOTIFICATION_EMAIL", "ml@example.com, ops@example.com;oncall@example.com")

    assert op.execute({}) == ["ml@example.com", "ops@example.com", "oncall@example.com"]

    [message] = received()
    assert message["X-Envelope-To"] == "ml@example.com, ops@example.com, oncall@example.com"
    assert message["Subject"] == "Drift detected"
    assert "<p>psi 0.4</p>" in html_body(message)


def test_from_email_overrides_connection(smtp_conn, received):
    SmtpAlertOperator(
        task_id="alert", to="ml@example.com", from_email="deploy@example.com", subject="s", html_content="b"
    ).execute({})

    [message] = received()
    assert (message["From"], message["X-Envelope-From"]) == ("deploy@example.com", "deploy@example.com")


def test_no_recipients_is_an_error(smtp_conn, received, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_NOTIFICATION_EMAIL", " , ")
    op = SmtpAlertOperator(task_id="alert", subject="s", html_content="b")

    with pytest.raises(ValueError, match="notification_email"):
        op.execute({})
    assert received() == []


def test_unreachable_server_fails_the_task(smtp_connection_json, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection_json(closed_port))

    with pytest.raises(ConnectionRefusedError):
        SmtpAlertOperator(task_id="alert", to="ml@example.com", subject="s", html_content="b").execute({})


def test_hook_is_lazy_and_uses_conn_id():
    op = SmtpAlertOperator(task_id="alert", subject="s", html_content="b", smtp_conn_id="smtp_alerts")
    assert "hook" not in op.__dict__
    assert op.hook.smtp_conn_id == "smtp_alerts"
    assert op.hook is op.hook


def test_template_fields_render():
    op = SmtpAlertOperator(
        task_id="alert",
        to="{{ params.owner }}",
        subject="{{ params.dag }} failed",
        html_content="<p>{{ params.reason }}</p>",
    )
    op.render_template_fields({"params": {"owner": "ml@example.com", "dag": "etl", "reason": "bad batch"}})
    assert (op.to, op.subject, op.html_content) == ("ml@example.com", "etl failed", "<p>bad batch</p>")


ALERT_DAG = """
    from airflow.sdk import DAG

    from mlpipe.smtp_alert import SmtpAlertOperator

    with DAG("smtp_alert_test", schedule=None, params={"reason": "accuracy 0.71 < 0.8"}) as dag:
        SmtpAlertOperator(
            task_id="alert",
            subject="[{{ dag.dag_id }}] model rejected in {{ run_id }}",
            html_content="alert_body.html",
        )
"""


def test_in_a_dag_run_with_html_template_file(load_dag, airflow_db, smtp_conn, received, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_NOTIFICATION_EMAIL", "ml@example.com")
    # Airflow's Jinja environment does not autoescape: HTML templates must escape values themselves.
    (airflow_db / "alert_body.html").write_text(
        "<p>Rejected: {{ params.reason | e }} ({{ ti.task_id }})</p>\n"
    )
    dag = load_dag("smtp_alert_test", ALERT_DAG)

    dag_run = dag.test()

    assert dag_run.state == "success"
    [message] = received()
    assert message["X-Envelope-To"] == "ml@example.com"
    assert message["Subject"] == f"[smtp_alert_test] model rejected in {dag_run.run_id}"
    assert "<p>Rejected: accuracy 0.71 &lt; 0.8 (alert)</p>" in html_body(message)


def test_data_is_resolved_first_and_the_html_body_escapes_every_value():
    op = SmtpAlertOperator(
        task_id="alert",
        to="ml@example.com",
        data={"batch": "<b>42</b>", "checks": ["a & b"]},
        subject="batch {{ data.batch }}",
        html_content="<p>{{ data.batch }}: {{ data.checks | join(', ') }} {{ data.batch | e }}</p>",
    )

    op.render_template_fields({"params": {}})

    assert op.subject == "batch <b>42</b>"  # a subject is text, not HTML
    assert op.html_content == "<p>&lt;b&gt;42&lt;/b&gt;: a &amp; b &lt;b&gt;42&lt;/b&gt;</p>"


def test_an_inline_image_from_storage_is_attached_under_its_name(smtp_conn, received, tmp_path):
    image = tmp_path / "store" / "key_plot.png"
    image.parent.mkdir()
    image.write_bytes(b"\x89PNG\r\n\x1a\nplot")
    SmtpAlertOperator(
        task_id="alert",
        to="ml@example.com",
        subject="s",
        html_content='<img src="cid:key_plot.png">',
        inline_images=[image.as_uri(), (tmp_path / "store" / "never_written.png").as_uri()],
    ).execute({})

    [message] = received()
    [part] = [p for p in message.walk() if p["Content-ID"]]
    assert part["Content-ID"] == "<key_plot.png>"
    assert part.get_content() == b"\x89PNG\r\n\x1a\nplot"
    assert 'src="cid:key_plot.png"' in html_body(message)


def test_an_inline_image_still_being_written_is_waited_for(smtp_conn, received, tmp_path):
    import threading

    image = tmp_path / "key_plot.png"
    threading.Timer(1.0, image.write_bytes, args=(b"late",)).start()
    SmtpAlertOperator(
        task_id="alert",
        to="ml@example.com",
        subject="s",
        html_content="b",
        inline_images=[image.as_uri()],
        inline_wait_seconds=10,
    ).execute({})

    [message] = received()
    assert [p.get_content() for p in message.walk() if p["Content-ID"]] == [b"late"]
