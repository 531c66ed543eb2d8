"""Logs from InfluxDB in InfluxQL (``GET /query``): the shipper's ``container_logs``
measurement (tags ``host``, ``container_name``, ``stream``; field ``message``). Works on
InfluxDB 1.x and, through its v1 compatibility API with a token, on 2.x (the database is
the bucket's DBRP mapping; 2.2+ maps every bucket to a database of its name)."""

from __future__ import annotations

from boxwatch.logs import http
from boxwatch.logs.query import LogEntry, LogQuery, LogStoreError, Match, newest

MEASUREMENT = "container_logs"


def string(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def regex(pattern: str) -> str:
    """An InfluxQL regex literal: ``/`` escaped, and an escaped backslash written as
    ``\\x5c`` (InfluxQL's scanner mis-reads ``\\\\`` before the closing ``/``)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\x5c" if nxt == "\\" else "\\/" if nxt == "/" else ch + nxt)
            i += 2
            continue
        out.append("\\/" if ch == "/" else ch)
        i += 1
    return "/" + "".join(out) + "/"


def _match(tag: str, m: Match) -> str:
    if m.regex:
        return f'"{tag}" =~ {regex("^(?:" + m.text + ")$")}'
    return f'"{tag}" = {string(m.text)}'


def statement(q: LogQuery) -> str:
    """The InfluxQL of ``q``: newest first, ``LIMIT`` the newest ``q.limit``."""
    where = []
    if q.since_ns is not None:
        where.append(f"time >= {q.since_ns}")
    if q.until_ns is not None:
        where.append(f"time <= {q.until_ns}")
    if q.container is not None:
        where.append(_match("container_name", q.container))
    if q.host is not None:
        where.append(_match("host", q.host))
    if q.stream is not None:
        where.append(f'"stream" = {string(q.stream)}')
    if q.grep is not None:
        where.append(f'"message" =~ {regex(q.grep)}')
    text = f'SELECT "message", "container_name", "host", "stream" FROM "{MEASUREMENT}"'
    if where:
        text += " WHERE " + " AND ".join(where)
    text += " ORDER BY time DESC"
    if q.limit > 0:
        text += f" LIMIT {q.limit}"
    return text


class InfluxLogs:
    def __init__(self, url: str, database: str, token: str = "", username: str = "",
                 password: str = "", timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.headers = ({"Authorization": f"Token {token}"} if token
                        else http.basic_auth(username, password))
        self.timeout = timeout

    def search(self, q: LogQuery) -> list[LogEntry]:
        doc = http.call("GET", self.url + "/query", {"db": self.database, "q": statement(q),
                                                     "epoch": "ns"}, headers=self.headers,
                        timeout=self.timeout)
        result = ((doc or {}).get("results") or [{}])[0]
        if "error" in result:
            raise LogStoreError(f"InfluxDB {self.url}: {result['error']}")
        out = []
        for series in result.get("series", []):
            cols = series["columns"]
            i = {c: cols.index(c) for c in ("time", "message", "container_name", "host", "stream")}
            for row in series["values"]:
                out.append(LogEntry(int(row[i["time"]]), row[i["container_name"]] or "",
                                    row[i["host"]] or "", row[i["stream"]] or "",
                                    row[i["message"]] or ""))
        return newest(out, q.limit)
