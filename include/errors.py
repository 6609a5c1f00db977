"""The one line between errors a retry may fix and errors it cannot.

Every stage retries a failed task (``mlpipe.stages.stage_dag_args``), except on a ``PermanentError``:
the same input fails the same way however often it is tried, so the task fails for good at once and
the failure mail says why. Anything else (a timeout, a refused connection, a file not there yet) is
retried. Raise one of the subclasses, or derive a module's own error from one.
"""

from __future__ import annotations


class PermanentError(ValueError):
    """No retry can fix this. A ``ValueError``, so code that catches bad values still catches it."""


class BadRequestError(PermanentError):
    """A run asked for something malformed or impossible: an id of the wrong form, a param combination
    that means nothing."""


class ConfigurationError(PermanentError):
    """A setting or a hyperparameter that cannot be used as it is."""


class UnusableCandidateError(PermanentError):
    """A model candidate or version that must not be served: its files do not match its record."""


class NothingToDo(Exception):  # noqa: N818 (not an error: a run without work)
    """A run that finds no work (a timetable run with no new data, a backtest before any data): it ends
    skipped, publishing nothing and mailing no one."""
