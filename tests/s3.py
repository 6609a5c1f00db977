"""A local S3 endpoint for the tests: moto's standalone server (``moto_server``), a separate process
reached over HTTP like any S3 service. Nothing is mocked in the process under test: the pipeline's
code talks to it through s3fs and botocore, configured by the standard AWS environment variables.

moto is an S3 emulator: it answers the S3 API (including conditional PUTs, ``If-None-Match: *``) but
is not AWS (see the README, "Data and models on object storage", for what differs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.stack.supervisor import free_port
from tests.waits import wait_for

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Endpoint:
    url: str

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach this endpoint: the standard AWS variables (botocore reads
        ``AWS_ENDPOINT_URL_S3``; on AWS it is left unset)."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.url,
        }

    def filesystem(self):
        """An s3fs filesystem on this endpoint for the test's own checks, independent of the
        environment and of fsspec's instance cache."""
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.url,
            key="testing",
            secret="testing",
            skip_instance_cache=True,
            use_listings_cache=False,
        )


@contextmanager
def moto_server(log: Path) -> Iterator[S3Endpoint]:
    """Run ``moto_server`` on a free port (output to ``log``) until the block ends; stop it by its pid."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = S3Endpoint(f"http://127.0.0.1:{port}")

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}; see {log}")
        try:
            return httpx.get(endpoint.url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 30, f"moto_server on port {port}", interval=0.2)
        yield endpoint
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def s3_environment(endpoint: S3Endpoint) -> Iterator[None]:
    """This process reaches ``endpoint`` through the AWS variables until the block ends. fsspec keeps
    one S3 filesystem per set of arguments, with the endpoint it was made with: dropped both ways."""
    import s3fs

    saved = {key: os.environ.get(key) for key in endpoint.env}
    os.environ.update(endpoint.env)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()


def client(endpoint: S3Endpoint, service: str):
    """A boto3 client of ``service`` (``s3``, ``sqs``) on this endpoint, for a test's own setup and checks."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def notify_queue(endpoint: S3Endpoint, bucket: str, queue: str) -> str:
    """Create the SQS queue ``queue`` and send it ``bucket``'s ``ObjectCreated:*`` notifications, as a
    user does on AWS (docs/architecture.md, "Event notifications instead of listings"): the queue
    policy that lets S3 send, then the bucket's notification configuration (S3 sends a test event).
    The queue's URL."""
    import json

    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    client(endpoint, "s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return url


def queued(endpoint: S3Endpoint, queue_url: str) -> tuple[int, int]:
    """How many messages the queue holds: (visible, in flight)."""
    attributes = client(endpoint, "sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
