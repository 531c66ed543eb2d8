"""Loki's query side for contract tests of ``boxwatch logs``: ``GET /loki/api/v1/query_range``
over what :class:`LokiContract` stored from pushes.

What it models (grafana/loki docs, "Query logs within a range of time" and LogQL):

- Parameters ``query``, ``start`` (ns, inclusive; default an hour ago), ``end`` (ns,
  exclusive; default now), ``limit`` (default 100; over ``max_entries_limit_per_query``,
  5000, is 400 ``max entries limit per query exceeded``), ``direction`` ``backward``
  (default, newest first) or ``forward``. ``limit`` caps the entries of all streams together.
- LogQL subset: a stream selector ``{name op "value", ...}`` with ``=``, ``!=``, ``=~``,
  ``!~`` (regexes anchored at both ends) and line filters ``|= != |~ !~``. A selector
  needs one matcher that cannot match the empty string, else 400 (Loki's message).
- The answer: ``{"status": "success", "data": {"resultType": "streams", "result":
  [{"stream": {labels}, "values": [["<ns>", "line"], ...]}], "stats": {}}}``; a parse
  error is 400 with a plain-text message.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from tests.support.contract_loki import LokiContract

MAX_ENTRIES = 5000
_STRING = r'"((?:[^"\\]|\\.)*)"'
_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*" + _STRING + r"\s*(,|\})")
_FILTER = re.compile(r"\s*(\|=|!=|\|~|!~)\s*" + _STRING)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
EMPTY_COMPATIBLE = ("queries require at least one regexp or equality matcher that does not "
                    'have an empty-compatible value. For instance, app=~".*" does not meet '
                    'this requirement, but app=~".+" will')


class LogQLError(ValueError):
    pass


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def parse(query: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(matchers, line filters) of a LogQL log query; LogQLError for anything else."""
    text = query.strip()
    if not text.startswith("{"):
        raise LogQLError(f"parse error at line 1, col 1: syntax error: unexpected {text[:1]!r}")
    pos, matchers = 1, []
    while True:
        m = _MATCHER.match(text, pos)
        if not m:
            raise LogQLError(f"parse error at line 1, col {pos + 1}: syntax error in {text!r}")
        name, op, value = m.group(1), m.group(2), _unquote(m.group(3))
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as e:
                raise LogQLError(f"parse error : error parsing regexp: {e}") from None
        matchers.append((name, op, value))
        pos = m.end()
        if m.group(4) == "}":
            break
    filters = []
    while pos < len(text):
        m = _FILTER.match(text, pos)
        if not m:
            raise LogQLError(f"parse error at line 1, col {pos + 1}: syntax error in {text!r}")
        filters.append((m.group(1), _unquote(m.group(2))))
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    if not any(_cannot_match_empty(op, v) for _, op, v in matchers):
        raise LogQLError(f"parse error : {EMPTY_COMPATIBLE}")
    return matchers, filters


def _cannot_match_empty(op: str, value: str) -> bool:
    if op == "=":
        return value != ""
    if op == "=~":
        return re.fullmatch(value, "") is None
    return False


def _label_ok(labels: dict[str, str], name: str, op: str, value: str) -> bool:
    have = labels.get(name, "")
    return {"=": have == value, "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None}[op]


def _line_ok(line: str, op: str, value: str) -> bool:
    return {"|=": value in line, "!=": value not in line,
            "|~": re.search(value, line) is not None,
            "!~": re.search(value, line) is None}[op]


class LokiQueryContract(LokiContract):
    """:class:`LokiContract` plus ``query_range``; ``queries`` records each one's params."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queries: list[dict[str, str]] = []

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/loki/api/v1/query_range", self._query_range)

    async def _query_range(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.queries.append(params)
        if self.auth_enabled and not request.headers.get("X-Scope-OrgID"):
            return web.Response(status=401, text="no org id\n")
        tenant = request.headers.get("X-Scope-OrgID", "fake")
        try:
            matchers, filters = parse(params.get("query", ""))
            now = time.time_ns()
            end = int(params.get("end", now))
            start = int(params.get("start", end - 3600 * 10**9))
            limit = int(params.get("limit", 100))
            direction = params.get("direction", "backward")
        except (LogQLError, ValueError) as e:
            return web.Response(status=400, text=f"{e}\n")
        if direction not in ("forward", "backward"):
            return web.Response(status=400, text=f"invalid direction {direction!r}\n")
        if limit > MAX_ENTRIES:
            return web.Response(status=400, text="max entries limit per query exceeded, limit > "
                                f"max_entries_limit ({limit} > {MAX_ENTRIES})\n")
        hits: list[tuple[int, str, str, dict[str, str]]] = []
        with self._lock:
            for key, entries in self.streams.get(tenant, {}).items():
                labels = {k: _unquote(v) for k, v in _LABEL.findall(key)}
                if not all(_label_ok(labels, *m) for m in matchers):
                    continue
                for e in entries:
                    if start <= e.ts < end and all(_line_ok(e.line, *f) for f in filters):
                        hits.append((e.ts, e.line, key, labels))
        hits.sort(key=lambda h: h[0], reverse=direction == "backward")
        hits = hits[:limit]
        streams: dict[str, dict[str, Any]] = {}
        for ts, line, key, labels in hits:
            streams.setdefault(key, {"stream": labels, "values": []})["values"].append(
                [str(ts), line])
        return web.json_response({"status": "success", "data": {
            "resultType": "streams", "result": list(streams.values()), "stats": {}}})
