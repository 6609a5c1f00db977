"""What every stage shares: a request no retry can fix fails the task at once."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.layout import InvalidIdError, check_id
from mlpipe.stages import no_retry_on


def test_a_listed_error_fails_for_good_with_its_message():
    expected = r"InvalidIdError: invalid batch id '\.\./x'"
    with pytest.raises(AirflowFailException, match=expected) as info, no_retry_on(InvalidIdError):
        check_id("../x", "batch id")
    assert isinstance(info.value.__cause__, InvalidIdError)


def test_any_other_error_is_left_to_the_retries():
    with pytest.raises(ConnectionError), no_retry_on(InvalidIdError):
        raise ConnectionError("try again")
