"""The bounded point buffer, retry loop and sender thread of the InfluxDB sink.

The pipeline hands lines over and returns at once; one background thread per sink sends
them in batches, so a slow or dead server never stalls sampling. Policy, in Fluent Bit's
spirit, lives here once: a transport only says what happened (``SendError`` with the
status), ``retriable`` decides, and the sender owns backoff (capped exponential with full
jitter, at least the server's Retry-After). A batch stays at the head of the buffer until
it is acknowledged, so when the buffer is full it is always the oldest points that go,
and every point ends up counted exactly once as written or dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from formats.delivery import Backoff, redact, retriable

__all__ = ["UNEXPECTED", "PointBuffer", "SendError", "Sender", "Transport"]

log = logging.getLogger(__name__)


class SendError(Exception):
    """One failed request: the HTTP status (0 for no response), the server's message and
    its Retry-After in seconds (None if absent). Messages must already be redacted."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


UNEXPECTED = -1  # SendError status of an exception no transport expected: not retried


class Transport(Protocol):
    """The backend-specific part of a sink: make sure the target exists, post a body."""

    base: str  # the server's URL, without credentials (shown in logs and repr)
    secrets: tuple[str, ...]  # what must never appear in a log line or an error

    def prepare(self) -> None:
        """Create the database / bucket if allowed; SendError when the server is down."""
        ...

    def send(self, body: bytes) -> None:
        """POST one body of line protocol (compressing it on the wire); SendError on
        anything but success."""
        ...

    def close(self) -> None: ...


class PointBuffer:
    """A FIFO of lines bounded to ``max_points``: appending past the bound drops the
    oldest. Points are numbered so the sender can acknowledge a batch that was partly
    dropped while in flight (those count as written, not dropped)."""

    def __init__(self, max_points: int) -> None:
        if max_points < 1:
            raise ValueError(f"buffer size must be >= 1: {max_points}")
        self.max_points = max_points
        self.lines: deque[str] = deque()
        self.head = 0  # sequence number of lines[0]
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.lines)

    def extend(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        over = len(self.lines) - self.max_points
        if over > 0:
            for _ in range(over):
                self.lines.popleft()
            self.head += over
            self.dropped += over

    def peek(self, n: int) -> tuple[int, list[str]]:
        """The sequence number of the head and up to ``n`` lines from it."""
        if n >= len(self.lines):
            return self.head, list(self.lines)
        return self.head, [self.lines[i] for i in range(n)]

    def ack(self, start: int, n: int) -> int:
        """Acknowledge the batch ``[start, start+n)``; returns how many of it were still
        buffered (the rest had been dropped meanwhile and are taken off ``dropped``)."""
        end = start + n
        still = max(0, end - self.head)
        gone = n - still
        for _ in range(min(still, len(self.lines))):
            self.lines.popleft()
        self.head += still
        self.dropped -= gone
        return still


class Sender:
    """The background thread that drains a ``PointBuffer`` through a ``Transport``."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        max_points: int = 100_000,
        backoff: Backoff | None = None,
        close_timeout: float = 5.0,
        secrets: Iterable[str] = (),
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1: {batch_size}")
        self.name = name
        self.transport = transport
        self.batch_size = batch_size
        self.flush_interval = max(0.01, flush_interval)
        self.backoff = backoff or Backoff()
        self.close_timeout = close_timeout
        self.secrets = tuple(s for s in secrets if s)
        self.buffer = PointBuffer(max_points)
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = float("inf")  # monotonic time after which close gives up
        self._prepared = False
        self._last_error = ""
        self._failing = False
        self._force = False  # flush() asked for everything now
        self._next_flush = time.monotonic() + self.flush_interval
        self.counters = {"written": 0, "write_errors": 0, "retries": 0, "batches": 0}
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._thread.start()

    # -- the pipeline's side ---------------------------------------------------------

    def push(self, lines: list[str]) -> None:
        if not lines:
            return
        with self._cond:
            self.buffer.extend(lines)
            if len(self.buffer) >= self.batch_size:
                self._cond.notify()

    def health(self) -> dict[str, float]:
        with self._cond:
            return {
                **{k: float(v) for k, v in self.counters.items()},
                "buffered_points": float(len(self.buffer)),
                "dropped_points": float(self.buffer.dropped),
            }

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the buffer is empty (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._force = True
            self._cond.notify_all()
            while len(self.buffer):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        """Send what can be sent within ``close_timeout``, then stop the thread."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + self.close_timeout
            self._cond.notify_all()
        self._thread.join(self.close_timeout + 5.0)
        self.transport.close()

    # -- the thread ------------------------------------------------------------------

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (cut short by the close deadline); False once it passed."""
        end = time.monotonic() + seconds
        with self._cond:
            while True:
                now = time.monotonic()
                if now >= self._deadline:
                    return False
                left = min(end, self._deadline) - now
                if left <= 0:
                    return True
                self._cond.wait(left)

    def _next_batch(self, retrying: bool) -> tuple[int, list[str]] | None:
        """Block until a batch is due (full, the flush tick passed, a flush was asked
        for, or closing); None when the thread should end."""
        with self._cond:
            while not retrying and not self._closing and len(self.buffer) < self.batch_size:
                now = time.monotonic()
                if len(self.buffer) and (self._force or now >= self._next_flush):
                    break
                if now >= self._next_flush:
                    self._next_flush = now + self.flush_interval
                self._cond.wait(self._next_flush - now if len(self.buffer) else self.flush_interval)
            if self._closing and (not len(self.buffer) or time.monotonic() >= self._deadline):
                return None
            if not len(self.buffer):
                return self.buffer.head, []
            return self.buffer.peek(self.batch_size)

    def _run(self) -> None:
        attempt = 0
        while True:
            got = self._next_batch(retrying=attempt > 0)
            if got is None:
                return
            start, batch = got
            if not batch:
                attempt = 0
                continue
            err: SendError | None = None
            try:
                self._prepare()
                self.transport.send(("\n".join(batch) + "\n").encode())
            except SendError as exc:
                err = exc
            except Exception as exc:  # a client library's surprise must not kill the thread
                err = SendError(UNEXPECTED, f"{type(exc).__name__}: {exc}")
            if err is not None:
                attempt = self._failed(err, start, len(batch), attempt)
                if attempt and not self._wait(self.backoff.delay(attempt, err.retry_after)):
                    return
                continue
            with self._cond:
                self.buffer.ack(start, len(batch))
                self.counters["written"] += len(batch)
                self.counters["batches"] += 1
                if not len(self.buffer):
                    self._force = False
                if len(self.buffer) < self.batch_size:
                    self._next_flush = time.monotonic() + self.flush_interval
                self._cond.notify_all()
            if self._failing:
                log.info("sink %s: delivering again", self.name)
                self._failing = False
            attempt = 0

    def _prepare(self) -> None:
        """Create the target once; a refusal is logged and writes go ahead (they will
        report their own error), an unreachable server is retried like a write."""
        if self._prepared:
            return
        try:
            self.transport.prepare()
        except SendError as exc:
            if retriable(exc.status):
                raise
            log.warning("sink %s: could not create the target, writing anyway: %s",
                        self.name, redact(str(exc), self.secrets))
        except Exception as exc:  # e.g. a buckets API answering something odd
            log.warning("sink %s: could not create the target, writing anyway: %s: %s",
                        self.name, type(exc).__name__, redact(str(exc), self.secrets))
        self._prepared = True

    def _failed(self, exc: SendError, start: int, n: int, attempt: int) -> int:
        """Count and log a failure; the next attempt number, or 0 if the batch is dropped."""
        message = redact(str(exc), self.secrets)
        again = retriable(exc.status)
        with self._cond:
            self.counters["write_errors"] += 1
            if again:
                self.counters["retries"] += 1
            else:  # give up on the batch: every point of it counts as dropped, once
                self.buffer.ack(start, n)
                self.buffer.dropped += n
                self._cond.notify_all()
        if again:
            if not self._failing:
                log.warning("sink %s: write failed, retrying with backoff: %s", self.name, message)
                self._failing = True
            return attempt + 1
        if message != self._last_error:
            log.error("sink %s: write rejected, batch of %d points dropped: %s",
                      self.name, n, message)
            self._last_error = message
        return 0
