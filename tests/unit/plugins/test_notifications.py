from __future__ import annotations

from urllib.parse import quote

FAILING_DAG = """
    from airflow.sdk import DAG, task

    from mlpipe.notifications import failure_notifier

    with DAG(
        "failure_notifier_test",
        schedule=None,
        default_args={"on_failure_callback": failure_notifier(), "retries": 0},
    ) as dag:

        @task
        def validate():
            raise ValueError("batch 42: column <price> has nulls")

        @task
        def train():
            raise RuntimeError("out of memory")

        validate()
        train()
"""


def test_one_email_per_failed_task(load_dag, smtp_conn, received, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_NOTIFICATION_EMAIL", "ml@example.com,ops@example.com")
    dag = load_dag("failure_notifier_test", FAILING_DAG)

    dag_run = dag.test()

    assert dag_run.state == "failed"
    mails = received()
    messages = {m["Subject"].split(".")[1].split(" ")[0]: m for m in mails}
    assert sorted(messages) == ["train", "validate"]
    assert len(mails) == 2, "one mail per failed task, not more"
    for task_id, message in messages.items():
        assert message["X-Envelope-To"] == "ml@example.com, ops@example.com"
        assert message["Subject"] == (
            f"[ml-pipeline] Task failed: failure_notifier_test.{task_id} run {dag_run.run_id} (try 1)"
        )
        body = message.get_body(("html",)).get_content()
        assert f"Task <b>{task_id}</b> of DAG <b>failure_notifier_test</b> failed" in body
        log_url = f"http://airflow.test:8080/dags/failure_notifier_test/runs/{quote(dag_run.run_id)}/tasks/{task_id}"
        assert f'<a href="{log_url}?try_number=1">' in body
    assert "column &lt;price&gt; has nulls" in messages["validate"].get_body(("html",)).get_content()
    assert "out of memory" in messages["train"].get_body(("html",)).get_content()


def test_recipients_are_read_when_the_mail_is_sent(load_dag, smtp_conn, received, monkeypatch):
    """The Variable is read at notification time: a change reaches the next failure without a redeploy."""
    dag = load_dag("failure_notifier_test", FAILING_DAG)
    monkeypatch.setenv("AIRFLOW_VAR_NOTIFICATION_EMAIL", "first@example.com")
    dag.test()
    monkeypatch.setenv("AIRFLOW_VAR_NOTIFICATION_EMAIL", "second@example.com")
    dag.test()

    assert sorted(m["X-Envelope-To"] for m in received()) == [
        "first@example.com",
        "first@example.com",
        "second@example.com",
        "second@example.com",
    ]
