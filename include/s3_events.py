"""S3 event notifications delivered to an SQS queue: which new files of a drop folder a message names, and
how the folder's files are looked up by key (no Airflow imports: the triggerer uses it).

An ``s3://bucket/prefix/`` drop folder can be watched through its bucket's notifications instead of
listings (the setting ``crawl_notification_queue``, :class:`mlpipe.triggers.NotifiedFilesTrigger`). A
message body is the S3 event structure (``{"Records": [{"eventName": "ObjectCreated:Put", "s3":
{"bucket": {"name"}, "object": {"key"}}}]}``, keys URL-encoded), possibly wrapped by SNS (``{"Type":
"Notification", "Message": "<that structure as text>"}``). A notification says only that a key was
written: the file's size and modification time, which the ledger keys items by, are read from S3 with
the same request a listing makes, so a file is the same item however it was found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from include import sources
from include.errors import ConfigurationError

CREATED = "ObjectCreated:"
TEST_EVENT = "s3:TestEvent"


class NotificationError(ValueError):
    """A message that is not an S3 event notification (it can never be handled: it is logged and
    deleted)."""


@dataclass(frozen=True)
class Notification:
    """What one message says about the folder: the ``names`` of the files created in it (in the order
    of its records, each once), and why each other record was ``ignored``."""

    names: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def folder_of(url: str) -> tuple[str, str]:
    """The bucket and key prefix (``""`` or ending in ``/``) of the drop folder ``s3://bucket/prefix/``."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "s3a") or not parts.netloc:
        raise ConfigurationError(f"{url!r} is not an s3://bucket/prefix/ URL")
    key = parts.path.strip("/")
    return parts.netloc, f"{key}/" if key else ""


def parse(body: str, *, bucket: str, prefix: str) -> Notification:
    """The files directly in ``bucket``/``prefix`` that the message ``body`` says were created.

    Ignored, with the reason: S3's test event (sent when notifications are configured), events other
    than ``ObjectCreated:*``, other buckets, keys outside the prefix or in a folder under it, hidden names
    (``.``/``_``, as the listing ignores them). NotificationError for a body that is not an S3 event
    notification."""
    try:
        message = json.loads(body)
    except ValueError:
        raise NotificationError(f"not JSON: {body[:200]!r}") from None
    if isinstance(message, dict) and message.get("Type") == "Notification" and "Message" in message:
        return parse(message["Message"], bucket=bucket, prefix=prefix)  # delivered through SNS
    if not isinstance(message, dict):
        raise NotificationError(f"not an S3 event notification: {body[:200]!r}")
    if message.get("Event") == TEST_EVENT:
        return Notification(ignored=(f"the test event of bucket {message.get('Bucket')}",))
    records = message.get("Records")
    if not isinstance(records, list):
        raise NotificationError(f"no Records: not an S3 event notification: {body[:200]!r}")
    names: list[str] = []
    ignored: list[str] = []
    for record in records:
        try:
            event, s3 = record["eventName"], record["s3"]
            record_bucket, key = s3["bucket"]["name"], unquote_plus(s3["object"]["key"])
        except (KeyError, TypeError):
            raise NotificationError(f"a record without eventName, bucket or key: {record!r:.200}") from None
        name = key[len(prefix) :]
        if not str(event).startswith(CREATED):
            ignored.append(f"{event} {key}: not an ObjectCreated event")
        elif record_bucket != bucket:
            ignored.append(f"{key}: in bucket {record_bucket}, not {bucket}")
        elif not key.startswith(prefix) or not name or "/" in name:
            ignored.append(f"{key}: not directly under s3://{bucket}/{prefix}")
        elif name.startswith(sources.IGNORED_PREFIXES):
            ignored.append(f"{key}: a hidden name")
        elif name not in names:
            names.append(name)
    return Notification(tuple(names), tuple(ignored))


def queue_endpoint(queue_url: str) -> tuple[str, str | None]:
    """The endpoint to send SQS requests for ``queue_url`` to, and its region if the URL names one
    (``https://sqs.<region>.amazonaws.com/<account>/<name>``); an emulator's queue URL names its own
    endpoint. ConfigurationError for anything that is not a queue URL."""
    parts = urlsplit(queue_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/").count("/") != 1:
        raise ConfigurationError(
            f"crawl_notification_queue {queue_url!r} is not an SQS queue URL "
            "(https://sqs.<region>.amazonaws.com/<account>/<queue name>)"
        )
    labels = parts.hostname.split(".") if parts.hostname else []
    region = (
        labels[1] if len(labels) >= 4 and labels[0] == "sqs" and labels[-2:] == ["amazonaws", "com"] else None
    )
    return f"{parts.scheme}://{parts.netloc}", region


def check_source(crawl_url: str, queue_url: str) -> None:
    """ConfigurationError unless a notification queue ``queue_url`` can feed the source ``crawl_url``:
    only an ``s3://`` drop folder has S3 event notifications."""
    if not crawl_url.startswith(("s3://", "s3a://")):
        raise ConfigurationError(
            f"crawl_notification_queue is set ({queue_url}) but crawl_url {crawl_url!r} is not an s3:// "
            "drop folder: only S3 sends event notifications; empty crawl_notification_queue to list it"
        )
    folder_of(crawl_url)
    queue_endpoint(queue_url)


def lookup(fs: Any, bucket: str, prefix: str, name: str) -> sources.FileItem | None:
    """The file ``name`` of the folder as a listing sees it (the same ``ListObjectsV2`` request, so the
    same size and modification time), or None if it is not there any more. ``fs``: an s3fs filesystem;
    blocking, call it from a thread."""
    key = prefix + name
    page = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=1)
    for entry in page.get("Contents", []):
        if entry["Key"] == key:
            return sources.FileItem(f"s3://{bucket}/{key}", int(entry["Size"]), sources._mtime(entry))
    return None
