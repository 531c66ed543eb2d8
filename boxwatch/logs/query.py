"""What ``boxwatch logs`` asks a log store, and what it gets back, whatever the store.

A name filter (``--container``, ``--host``) is a plain name, matched exactly, or else a
regular expression that must match the whole name (``web-.*``). ``--grep`` is a regular
expression searched anywhere in the line (RE2 syntax on the server; the common subset
with Python's ``re`` is safe). Times are a duration back from now (``90s``, ``30m``,
``1h``, ``2d``), RFC 3339 (``2024-05-01T10:00:00Z``, a missing zone means UTC), a date,
or Unix seconds. Every store returns the *newest* ``limit`` matching entries, oldest
first, as ``docker logs --tail`` would.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Protocol

from formats.units import parse_duration_ns, parse_rfc3339

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)\Z")


class QueryError(ValueError):
    """A filter or time that cannot be used; carries the value."""

    def __init__(self, what: str, value: object) -> None:
        super().__init__(f"{what}: {value!r}")
        self.value = value


class LogStoreError(Exception):
    """The store could not answer (unreachable, HTTP error, bad reply); one line."""


@dataclass(frozen=True)
class Match:
    """An exact name or an anchored regular expression."""

    text: str
    regex: bool

    @classmethod
    def parse(cls, value: str, what: str) -> Match:
        if NAME.match(value):
            return cls(value, False)
        try:
            re.compile(value)
        except re.error as exc:
            raise QueryError(f"{what} is not a name or a valid regex ({exc})", value) from None
        return cls(value, True)

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.text, name) is not None if self.regex else name == self.text


@dataclass(frozen=True, order=True)
class LogEntry:
    time_ns: int
    container: str
    host: str
    stream: str
    message: str


@dataclass(frozen=True)
class LogQuery:
    container: Match | None = None
    host: Match | None = None
    stream: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    grep: str | None = None
    limit: int = 1000

    def accepts(self, e: LogEntry) -> bool:
        """The same filters, applied on our side (for stores that cannot apply one)."""
        return ((self.container is None or self.container.matches(e.container))
                and (self.host is None or self.host.matches(e.host))
                and (self.stream is None or e.stream == self.stream)
                and (self.since_ns is None or e.time_ns >= self.since_ns)
                and (self.until_ns is None or e.time_ns <= self.until_ns)
                and (self.grep is None or re.search(self.grep, e.message) is not None))


class LogStore(Protocol):
    def search(self, q: LogQuery) -> list[LogEntry]:
        """The newest ``q.limit`` entries matching ``q``, oldest first."""


def parse_time(text: str, now_ns: int | None = None) -> int:
    """``text`` (see the module docstring) as ns since the epoch; the units are the bottom
    layer's (``formats.units``)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    value = text.strip()
    if _DURATION.match(value):
        return now_ns - parse_duration_ns(value, days=True)
    if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
        return int(float(value) * 1e9)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        value += "T00:00:00Z"
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise QueryError("not a time (1h, 30m, 2024-05-01T10:00:00Z, unix seconds)",
                         text) from None


def rfc3339(ns: int) -> str:
    """Docker's ``logs -t`` format: UTC, 9 fraction digits, ``Z``."""
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def newest(entries: list[LogEntry], limit: int) -> list[LogEntry]:
    """The newest ``limit`` of ``entries``, oldest first."""
    entries.sort()
    return entries[-limit:] if limit > 0 else entries
