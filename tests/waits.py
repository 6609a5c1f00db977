"""Bounded waits for tests that watch real processes: a hung child or a stuck stack fails the test
with what it waited for, instead of hanging the run or racing a fixed sleep."""

from __future__ import annotations

import os
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


class Lines:
    """The lines a child writes to a pipe, read from the pipe's file descriptor with a deadline.

    Not through the pipe's file object: its buffer can hold lines that ``select()`` then no longer
    sees, and its ``readline()`` blocks on a partial line. Whole lines are kept here, in order."""

    def __init__(self, stream: IO) -> None:
        self._fd = stream.fileno()
        self._pending = b""
        self._closed = False
        self.seen: list[str] = []  # every whole line read so far, oldest first
        self._handed = 0  # how many of them next() has returned

    def next(self, timeout: float = 30) -> str:
        """The next whole line (without its newline); a failure after ``timeout`` seconds."""
        self._read_until(lambda: len(self.seen) > self._handed, timeout, "a line")
        self._handed += 1
        return self.seen[self._handed - 1]

    def wait_for(self, line: str, timeout: float = 30) -> None:
        """Return once the child has printed ``line`` (now or before); a failure after ``timeout``."""
        self._read_until(lambda: line in self.seen, timeout, repr(line))

    def _read_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if self._closed or remaining <= 0:
                ended = "closed its output" if self._closed else f"printed no more within {timeout:.0f} s"
                pytest.fail(f"waiting for {what}, the child {ended}: {self.seen}, then {self._pending!r}")
            if select.select([self._fd], [], [], remaining)[0]:
                self._take(os.read(self._fd, 1 << 16))

    def _take(self, data: bytes) -> None:
        if not data:
            self._closed = True
            return
        *whole, self._pending = (self._pending + data).split(b"\n")
        self.seen.extend(line.decode(errors="replace") for line in whole)
