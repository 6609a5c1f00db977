"""The S3 event notification rule: which new files of a drop folder one SQS message names, and which
records it ignores and why; a queue URL's endpoint; which sources a queue can feed."""

from __future__ import annotations

import json

import pytest

from include import s3_events
from include.errors import ConfigurationError


def record(key: str, event: str = "ObjectCreated:Put", bucket: str = "drops") -> dict:
    """One record as S3 sends it (keys URL-encoded, spaces as ``+``)."""
    from urllib.parse import quote_plus

    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 4}},
    }


def parse(*records: dict) -> s3_events.Notification:
    return s3_events.parse(json.dumps({"Records": list(records)}), bucket="drops", prefix="in/")


def test_created_files_directly_in_the_folder_are_named_in_order_each_once():
    notification = parse(
        record("in/b.csv"),
        record("in/a b+c.csv", "ObjectCreated:CompleteMultipartUpload"),
        record("in/b.csv", "ObjectCreated:Copy"),
    )
    assert notification.names == ("b.csv", "a b+c.csv")
    assert notification.ignored == ()


@pytest.mark.parametrize(
    ("rec", "reason"),
    [
        (record("in/a.csv", "ObjectRemoved:Delete"), "not an ObjectCreated event"),
        (record("in/a.csv", bucket="other"), "in bucket other, not drops"),
        (record("out/a.csv"), "not directly under s3://drops/in/"),
        (record("in/sub/a.csv"), "not directly under s3://drops/in/"),
        (record("in/"), "not directly under s3://drops/in/"),
        (record("in/.a.csv.tmp"), "a hidden name"),
        (record("in/_SUCCESS"), "a hidden name"),
    ],
)
def test_other_records_are_ignored_with_the_reason(rec, reason):
    notification = parse(rec, record("in/kept.csv"))
    assert notification.names == ("kept.csv",)
    [ignored] = notification.ignored
    assert reason in ignored


def test_the_test_event_names_nothing():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "drops"})
    notification = s3_events.parse(body, bucket="drops", prefix="in/")
    assert notification.names == ()
    assert "test event" in notification.ignored[0]


def test_a_notification_through_sns_is_unwrapped():
    inner = json.dumps({"Records": [record("in/a.csv")]})
    body = json.dumps({"Type": "Notification", "Message": inner})
    assert s3_events.parse(body, bucket="drops", prefix="in/").names == ("a.csv",)


def test_a_folder_at_the_bucket_root():
    body = json.dumps({"Records": [record("a.csv"), record("in/a.csv")]})
    notification = s3_events.parse(body, bucket="drops", prefix="")
    assert notification.names == ("a.csv",)
    assert len(notification.ignored) == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("hello", "not JSON"),
        ("[1, 2]", "not an S3 event notification"),
        ('{"detail-type": "Object Created"}', "no Records"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "without eventName, bucket or key"),
    ],
)
def test_a_message_that_is_not_a_notification_is_an_error_naming_the_problem(body, problem):
    with pytest.raises(s3_events.NotificationError, match=problem):
        s3_events.parse(body, bucket="drops", prefix="in/")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://drops/in/", ("drops", "in/")),
        ("s3://drops/in", ("drops", "in/")),
        ("s3://drops/a/b/", ("drops", "a/b/")),
        ("s3://drops", ("drops", "")),
    ],
)
def test_folder_of(url, expected):
    assert s3_events.folder_of(url) == expected


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/drops",
            ("https://sqs.eu-west-1.amazonaws.com", "eu-west-1"),
        ),
        ("http://127.0.0.1:5000/123456789012/drops", ("http://127.0.0.1:5000", None)),
    ],
)
def test_queue_endpoint(queue, expected):
    assert s3_events.queue_endpoint(queue) == expected


@pytest.mark.parametrize(
    "queue", ["drops", "arn:aws:sqs:us-east-1:123456789012:drops", "https://sqs.x/drops"]
)
def test_a_value_that_is_not_a_queue_url_is_a_configuration_error(queue):
    with pytest.raises(ConfigurationError, match="is not an SQS queue URL"):
        s3_events.queue_endpoint(queue)


@pytest.mark.parametrize("source", ["http://127.0.0.1:8000/iris.csv", "file:///srv/drop/", "/srv/drop"])
def test_a_queue_feeds_only_an_s3_folder(source):
    with pytest.raises(ConfigurationError, match="not an s3:// drop folder"):
        s3_events.check_source(source, "http://127.0.0.1:5000/123456789012/drops")
    s3_events.check_source("s3://drops/in/", "http://127.0.0.1:5000/123456789012/drops")
