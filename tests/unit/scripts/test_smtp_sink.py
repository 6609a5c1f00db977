from __future__ import annotations

import email
import email.policy
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from scripts.smtp_sink import MaildirSink
from tests.waits import Lines

SCRIPT = Path(__file__).parents[3] / "scripts" / "smtp_sink.py"


def build(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "pipeline@example.com"
    message["To"] = "ml@example.com"
    message["Subject"] = subject
    message.set_content("<p>hello</p>", subtype="html")
    return message


def parse(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_stores_each_message_with_its_envelope(tmp_path):
    with MaildirSink("127.0.0.1", 0, tmp_path / "mail") as sink:
        assert sink.port > 0
        with smtplib.SMTP("127.0.0.1", sink.port) as client:
            client.send_message(build("first"), to_addrs=["ml@example.com", "hidden@example.com"])
            client.send_message(build("second"))

        first, second = sink.messages()

    assert [p.suffix for p in (tmp_path / "mail").iterdir()] == [".eml", ".eml"]
    assert first.name < second.name
    assert first.name.endswith("-000001.eml")
    message = parse(first)
    assert message["X-Envelope-From"] == "pipeline@example.com"
    assert message["X-Envelope-To"] == "ml@example.com, hidden@example.com"
    assert message["To"] == "ml@example.com"
    assert message["Subject"] == "first"
    assert "<p>hello</p>" in message.get_body(("html",)).get_content()
    assert parse(second)["X-Envelope-To"] == "ml@example.com"


def test_stop_releases_the_port(tmp_path):
    sink = MaildirSink("127.0.0.1", 0, tmp_path).start()
    port = sink.port
    sink.stop()
    with MaildirSink("127.0.0.1", port, tmp_path) as again:
        assert again.port == port


def test_command_line(tmp_path):
    maildir = tmp_path / "mail"
    with MaildirSink("127.0.0.1", 0, tmp_path / "probe") as probe:
        port = probe.port
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--host", "127.0.0.1", "--port", str(port), "--maildir", str(maildir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert Lines(proc.stdout).next().startswith(f"smtp_sink listening on 127.0.0.1:{port}")
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.send_message(build("via cli"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    [path] = maildir.glob("*.eml")
    assert parse(path)["Subject"] == "via cli"
