"""Logs from Grafana Loki: ``GET /loki/api/v1/query_range`` with a LogQL query over the
shipper's stream labels (``host``, ``container_name``, ``stream``). ``direction=backward``
gives the newest entries first; past Loki's per-query cap (``max_entries_limit_per_query``,
5000 by default) the next page ends where the last one began (``end`` is exclusive)."""

from __future__ import annotations

import time

from boxwatch.logs import http
from boxwatch.logs.query import LogEntry, LogQuery, LogStoreError, Match, newest

PAGE = 5000
DEFAULT_SINCE_NS = 3600 * 10**9  # Loki's own default window


def quote(value: str) -> str:
    """A LogQL double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _matcher(label: str, m: Match) -> str:
    # Loki's regex matchers are anchored at both ends already
    return f"{label}=~{quote(m.text)}" if m.regex else f"{label}={quote(m.text)}"


def logql(q: LogQuery) -> str:
    """The stream selector (at least one matcher that cannot match empty, as Loki
    requires) and a line filter for ``--grep``."""
    matchers = []
    if q.container is not None:
        matchers.append(_matcher("container_name", q.container))
    if q.host is not None:
        matchers.append(_matcher("host", q.host))
    if q.stream is not None:
        matchers.append(f"stream={quote(q.stream)}")
    if not any("=~" not in m for m in matchers):
        matchers.insert(0, 'container_name=~".+"')
    text = "{" + ", ".join(matchers) + "}"
    if q.grep is not None:
        text += f" |~ {quote(q.grep)}"
    return text


class LokiLogs:
    def __init__(self, url: str, tenant: str = "", username: str = "", password: str = "",
                 token: str = "", timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else \
            http.basic_auth(username, password)
        if tenant:
            self.headers["X-Scope-OrgID"] = tenant
        self.timeout = timeout

    def search(self, q: LogQuery) -> list[LogEntry]:
        end = (q.until_ns + 1) if q.until_ns is not None else time.time_ns() + 10**9
        start = q.since_ns if q.since_ns is not None else end - DEFAULT_SINCE_NS
        query = logql(q)
        out: list[LogEntry] = []
        want = q.limit if q.limit > 0 else 10**9
        while len(out) < want:
            page = min(PAGE, want - len(out))
            got = self._page(query, start, end, page)
            out.extend(got)
            if len(got) < page:
                break
            end = min(e.time_ns for e in got)
        return newest(out, q.limit)

    def _page(self, query: str, start: int, end: int, limit: int) -> list[LogEntry]:
        doc = http.call("GET", self.url + "/loki/api/v1/query_range",
                        {"query": query, "start": str(start), "end": str(end),
                         "limit": str(limit), "direction": "backward"},
                        headers=self.headers, timeout=self.timeout)
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise LogStoreError(f"Loki {self.url}: unexpected answer {str(doc)[:200]}")
        data = doc.get("data") or {}
        if data.get("resultType") != "streams":
            raise LogStoreError(f"Loki {self.url}: resultType {data.get('resultType')!r}, "
                                "not streams")
        out = []
        for stream in data.get("result") or []:
            labels = stream.get("stream") or {}
            for value in stream.get("values") or []:
                out.append(LogEntry(int(value[0]), labels.get("container_name", ""),
                                    labels.get("host", ""), labels.get("stream", ""),
                                    str(value[1])))
        out.sort(reverse=True)
        return out[:limit]
