"""The live tail of a container on another host: its entries exist here only in the log
store (that host's shipper puts them there), so the tail polls the store with a cursor.

Why a watermark: the store receives an entry a little after it was written (the remote
shipper's batch, the network). A poll hands out only entries older than ``SETTLE``; newer
ones wait for the next poll. The view's history ends at such a watermark too, so the live
part starts exactly where the history stopped.

Why ``(t, n)``: a position is the time of the last entry handed out and how many entries
with exactly that time were handed out (entries of different streams, containers or hosts
may share a nanosecond; their order is fixed: host, container, stream, message). A resume
from ``(t, n)`` asks for ``time >= t`` and skips those ``n``: no gap and no duplicate, as
long as an entry reaches the store within ``SETTLE`` of its timestamp."""

from __future__ import annotations

import time
from dataclasses import dataclass

from boxwatch.logs.query import LogEntry, LogQuery, LogStore, Match

SETTLE_NS = 2 * 10**9
POLL = 1.0
BATCH = 5000  # entries per query; a bigger burst is read in narrower windows


@dataclass(frozen=True)
class Selection:
    """What a remote tail follows: a container name, on one host or on any ("")."""

    name: str
    host: str = ""

    def query(self, stream: str | None, grep: str | None, since_ns: int | None,
              until_ns: int | None, limit: int) -> LogQuery:
        return LogQuery(container=Match(self.name, False),
                        host=Match(self.host, False) if self.host else None, stream=stream,
                        since_ns=since_ns, until_ns=until_ns, grep=grep, limit=limit)


def order(e: LogEntry) -> tuple[int, str, str, str, str]:
    return (e.time_ns, e.host, e.container, e.stream, e.message)


def watermark(now_ns: int | None = None) -> int:
    """The newest time the store is trusted to hold everything up to."""
    return (time.time_ns() if now_ns is None else now_ns) - SETTLE_NS


class StoreTail:
    """Entries of ``sel`` after ``position``, read from ``store`` (a blocking client: call
    ``read`` from an executor)."""

    def __init__(self, store: LogStore, sel: Selection, position: tuple[int, int],
                 stream: str | None = None, grep: str | None = None) -> None:
        self.store, self.sel = store, sel
        self.stream, self.grep = stream, grep
        self.t, self.n = position

    @property
    def position(self) -> tuple[int, int]:
        return (self.t, self.n)

    def read(self, now_ns: int | None = None) -> list[tuple[LogEntry, tuple[int, int]]]:
        """New entries up to the watermark, oldest first, each with the position just after
        it."""
        until = watermark(now_ns)
        if until < self.t:
            return []
        while True:
            got = self.store.search(self.sel.query(self.stream, self.grep, self.t, until,
                                                   BATCH))
            if len(got) < BATCH or until - self.t <= 1:
                break
            until = self.t + (until - self.t) // 2  # a burst: the older half first
        got.sort(key=order)
        out = []
        skip = self.n
        for e in got:
            if e.time_ns == self.t and skip > 0:
                skip -= 1
                continue
            if e.time_ns == self.t:
                self.n += 1
            else:
                self.t, self.n = e.time_ns, 1
            out.append((e, (self.t, self.n)))
        if self.t <= until:  # everything up to the watermark is out: start after it
            self.t, self.n = until + 1, 0
        return out
