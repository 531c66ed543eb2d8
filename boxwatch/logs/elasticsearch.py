"""Logs from Elasticsearch/OpenSearch: ``POST /<index pattern>/_search`` over the
shipper's documents (``@timestamp``, ``message``, ``stream``, ``container.name``,
``host.name``; see ``shipper/sinks/elasticsearch.py``). Names and stream are keyword
filters (a regex name becomes a ``regexp`` query: Lucene's syntax, always anchored);
``--grep`` is applied here, on the lines, because ``message`` is analysed text: pages
sorted newest first are read with ``search_after`` until ``limit`` lines matched."""

from __future__ import annotations

import re
from typing import Any

from boxwatch.logs import http
from boxwatch.logs.query import (
    LogEntry,
    LogQuery,
    LogStoreError,
    Match,
    newest,
    parse_time,
    rfc3339,
)

PAGE = 1000
MAX_PAGES = 50


def _filter(field: str, m: Match) -> dict[str, Any]:
    if m.regex:
        return {"regexp": {field: {"value": m.text.removeprefix("^").removesuffix("$")}}}
    return {"term": {field: m.text}}


def body(q: LogQuery, size: int, after: list[Any] | None = None) -> dict[str, Any]:
    """The ``_search`` request of one page."""
    filters: list[dict[str, Any]] = []
    rng: dict[str, Any] = {}
    if q.since_ns is not None:
        rng["gte"] = rfc3339(q.since_ns)
    if q.until_ns is not None:
        rng["lte"] = rfc3339(q.until_ns)
    if rng:
        rng["format"] = "strict_date_optional_time_nanos"
        filters.append({"range": {"@timestamp": rng}})
    if q.container is not None:
        filters.append(_filter("container.name", q.container))
    if q.host is not None:
        filters.append(_filter("host.name", q.host))
    if q.stream is not None:
        filters.append({"term": {"stream": q.stream}})
    doc: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"filter": filters}} if filters else {"match_all": {}},
        "sort": [{"@timestamp": {"order": "desc", "format": "strict_date_optional_time_nanos"}},
                 {"log.offset": {"order": "desc", "unmapped_type": "long"}}],
        "_source": ["@timestamp", "message", "stream", "container.name", "host.name"],
    }
    if after is not None:
        doc["search_after"] = after
    return doc


class ElasticsearchLogs:
    def __init__(self, url: str, index: str = "boxwatch-logs-*", api_key: str = "",
                 username: str = "", password: str = "", timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.index = index
        self.headers = {"Authorization": f"ApiKey {api_key}"} if api_key else \
            http.basic_auth(username, password)
        self.timeout = timeout

    def search(self, q: LogQuery) -> list[LogEntry]:
        want = q.limit if q.limit > 0 else 10**9
        grep = re.compile(q.grep) if q.grep is not None else None
        out: list[LogEntry] = []
        after = None
        for _ in range(MAX_PAGES):
            size = PAGE if grep is not None else min(PAGE, want - len(out))
            hits = self._page(body(q, size, after))
            for hit in hits:
                entry = self._entry(hit)
                if grep is None or grep.search(entry.message):
                    out.append(entry)
            if len(out) >= want or len(hits) < size:
                break
            after = hits[-1].get("sort")
            if after is None:
                break
        return newest(out[:want], q.limit)

    def _page(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            answer = http.call("POST", f"{self.url}/{self.index}/_search", {
                "ignore_unavailable": "true", "allow_no_indices": "true"}, doc,
                headers=self.headers, timeout=self.timeout)
        except LogStoreError as exc:
            if "index_not_found_exception" in str(exc):
                return []
            raise
        try:
            return list(answer["hits"]["hits"])
        except (KeyError, TypeError):
            raise LogStoreError(
                f"Elasticsearch {self.url}: no hits in {str(answer)[:200]}"
            ) from None

    @staticmethod
    def _entry(hit: dict[str, Any]) -> LogEntry:
        src = hit.get("_source") or {}
        return LogEntry(parse_time(str(src.get("@timestamp", "1970-01-01T00:00:00Z"))),
                        str((src.get("container") or {}).get("name", "")),
                        str((src.get("host") or {}).get("name", "")),
                        str(src.get("stream", "")), str(src.get("message", "")))
