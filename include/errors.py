"""The one line between errors worth a retry and errors no retry can fix."""

from __future__ import annotations


class PermanentError(ValueError):
    """No retry can fix this: a bad request or param, an invalid configuration, an unusable candidate.
    Stages fail at once on it (with the message, and the failure mail); any other error is retried."""
