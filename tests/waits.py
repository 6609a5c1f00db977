"""Bounded waits for tests that watch real processes: a hung child or a stuck stack fails the test
with what it waited for, instead of hanging the run or racing a fixed sleep."""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import IO, TypeVar

import pytest

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def first_line(stream: IO[str], timeout: float = 30) -> str:
    """The first line a child writes to its ``stdout`` pipe; a failure after ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        pytest.fail(f"the child printed nothing within {timeout:.0f} s")
    return stream.readline()
