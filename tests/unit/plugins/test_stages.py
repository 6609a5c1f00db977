"""What every stage shares: what no retry can fix fails the task at once; everything else is retried."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.errors import BadRequestError, ConfigurationError, PermanentError, UnusableCandidateError
from include.layout import InvalidIdError, check_id
from include.registry import IntegrityError
from include.settings import SettingError
from mlpipe.stages import no_retry_on


def test_a_listed_error_fails_for_good_with_its_message():
    expected = r"InvalidIdError: invalid batch id '\.\./x'"
    with pytest.raises(AirflowFailException, match=expected) as info, no_retry_on(InvalidIdError):
        check_id("../x", "batch id")
    assert isinstance(info.value.__cause__, InvalidIdError)


def test_any_other_error_is_left_to_the_retries():
    with pytest.raises(ConnectionError), no_retry_on(InvalidIdError):
        raise ConnectionError("try again")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidIdError, BadRequestError),
        (SettingError, ConfigurationError),
        (IntegrityError, UnusableCandidateError),
    ],
)
def test_the_pipeline_errors_no_retry_can_fix_are_permanent_errors(error, kind):
    assert issubclass(error, kind)
    assert issubclass(kind, PermanentError)
    assert issubclass(PermanentError, ValueError), "code catching bad values still catches them"


@pytest.mark.parametrize("error", [BadRequestError, ConfigurationError, UnusableCandidateError, SettingError])
def test_by_default_every_permanent_error_fails_for_good(error):
    with pytest.raises(AirflowFailException, match=f"{error.__name__}: no"), no_retry_on():
        raise error("no")


@pytest.mark.parametrize("error", [FileNotFoundError, ConnectionError, TimeoutError, ValueError])
def test_by_default_anything_else_is_retried(error):
    with pytest.raises(error), no_retry_on():
        raise error("try again")


FAIL_FAST_DAG = """
from datetime import timedelta

from airflow.sdk import DAG, task
from mlpipe.stages import fail_fast

with DAG("fail_fast_test", schedule=None, default_args={"retries": 1, "retry_delay": timedelta(0)}) as dag:

    @task
    def bad_request(*, params=None, run_id=None):
        from include.layout import check_id

        assert run_id, "the task still gets the context it asks for"
        check_id("../x", "batch id")

    @task
    def flaky(*, ti=None):
        if ti.try_number == 1:
            raise ConnectionError("the store did not answer")

    bad_request()
    flaky()

fail_fast(dag)
"""


def test_fail_fast_fails_a_stage_task_at_once_on_a_permanent_error_and_retries_the_rest(load_dag):
    run = load_dag("fail_fast_test", FAIL_FAST_DAG).test()

    tries = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert tries["bad_request"] == ("failed", 1), "no retry for what no retry can fix"
    assert tries["flaky"] == ("success", 2), "a transient error is retried"
