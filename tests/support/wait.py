"""Waiting for asynchronous pipelines (collector -> InfluxDB, shipper -> store, restarts).

One deadline-based poll for every test: it returns as soon as the condition holds, so a
generous deadline costs nothing on a quiet machine and holds on a loaded 2-core one; on
the deadline it says what it waited for, what it saw last and the tail of the
components' logs, so a red CI run explains itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def poll(cond: Callable[[], T], timeout: float = 10.0, step: float = 0.05) -> T:
    """``cond()``'s first truthy value, or its last (falsy) value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def wait_until(cond: Callable[[], T], timeout: float = 30.0, what: str = "the condition", *,
               seen: Callable[[], Any] | None = None, logs: Iterable[Path] = (),
               step: float = 0.05) -> T:
    """``cond()``'s first truthy value; AssertionError on the deadline naming ``what``,
    ``seen()``'s last answer and the tail of each log."""
    value = poll(cond, timeout, step)
    if value:
        return value
    lines = [f"timed out after {timeout}s waiting for {what}"]
    if seen is not None:
        lines.append(f"last seen: {seen()!r}"[:4000])
    for log in logs:
        tail = log.read_text(errors="replace")[-2500:] if log.exists() else "(no log)"
        lines.append(f"--- tail of {log} ---\n{tail}")
    raise AssertionError("\n".join(lines))
