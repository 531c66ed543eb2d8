"""Elasticsearch's ``_search`` for contract tests of ``boxwatch logs``, over what
:class:`ElasticsearchContract` stored from ``_bulk`` requests.

What it models (Elasticsearch reference, "Search API", "Query DSL", "Paginate search
results"):

- ``POST|GET /<target>/_search``: target a comma-separated list of index names or
  wildcard patterns; a concrete missing index is 404 ``index_not_found_exception`` unless
  ``ignore_unavailable=true``; a pattern matching nothing is an empty result.
- Query DSL subset: ``match_all``, ``bool.filter`` of ``term``, ``terms``, ``regexp``
  (Lucene regexes are anchored: the whole value must match) and ``range`` (``gt gte lt
  lte``, dates as RFC 3339 with up to 9 fraction digits); an unknown query type is 400
  ``parsing_exception``.
- ``sort`` on fields, ``asc``/``desc``; each hit carries its ``sort`` values and
  ``search_after`` continues strictly after them; ``size`` (default 10) with ``from`` over
  ``index.max_result_window`` (10000) is 400 ``illegal_argument_exception``.
- The answer: ``{"took", "timed_out", "_shards", "hits": {"total": {"value",
  "relation"}, "hits": [{"_index", "_id", "_score": null, "_source", "sort"}]}}``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import orjson
from aiohttp import web

from tests.support.contract_elasticsearch import ElasticsearchContract

MAX_RESULT_WINDOW = 10000
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z\Z")


class SearchError(Exception):
    def __init__(self, status: int, type_: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.type, self.reason = status, type_, reason


def _get(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _date_ns(value: str) -> int | None:
    import calendar
    import time

    m = _DATE.match(value)
    if not m:
        return None
    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int(((m.group(2) or "") + "000000000")[:9])


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        ns = _date_ns(value)
        return ns if ns is not None else value
    return value


def _matches(query: dict[str, Any], src: dict[str, Any]) -> bool:
    if len(query) != 1:
        raise SearchError(400, "parsing_exception", f"[_na] query malformed: {list(query)}")
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "bool":
        unknown = set(spec) - {"filter", "must"}
        if unknown:
            raise SearchError(400, "parsing_exception", f"[bool] unknown field {sorted(unknown)}")
        clauses = spec.get("filter", []) + spec.get("must", [])
        clauses = clauses if isinstance(clauses, list) else [clauses]
        return all(_matches(c, src) for c in clauses)
    (field, arg), = spec.items()
    value = _get(src, field)
    if kind == "term":
        want = arg["value"] if isinstance(arg, dict) else arg
        return value == want
    if kind == "terms":
        return value in arg
    if kind == "regexp":
        pattern = arg["value"] if isinstance(arg, dict) else arg
        return isinstance(value, str) and re.fullmatch(pattern, value) is not None
    if kind == "range":
        if value is None:
            return False
        have = _comparable(value)
        ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
               "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        return all(ops[op](have, _comparable(bound)) for op, bound in arg.items() if op in ops)
    raise SearchError(400, "parsing_exception", f"unknown query [{kind}]")


class ElasticsearchQueryContract(ElasticsearchContract):
    """:class:`ElasticsearchContract` plus ``_search``; ``searches`` records each body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.searches: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_route("*", "/{index}/_search", self._search)

    async def _search(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
            self.searches.append(body)
            with self._lock:
                answer = self._run(request.match_info["index"], dict(request.query), body)
            return web.json_response(answer)
        except SearchError as e:
            cause = {"type": e.type, "reason": e.reason}
            return web.json_response({"error": {"root_cause": [cause], **cause},
                                      "status": e.status}, status=e.status)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            cause = {"type": "parsing_exception", "reason": f"malformed search: {e}"}
            return web.json_response({"error": {"root_cause": [cause], **cause},
                                      "status": 400}, status=400)

    def _run(self, target: str, params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        names: list[str] = []
        for part in target.split(","):
            if any(c in part for c in "*?"):
                names += [n for n in self.indices if fnmatch.fnmatchcase(n, part)]
            elif part in self.indices:
                names.append(part)
            elif params.get("ignore_unavailable") != "true":
                raise SearchError(404, "index_not_found_exception", f"no such index [{part}]")
        size, start = int(body.get("size", 10)), int(body.get("from", 0))
        if size + start > MAX_RESULT_WINDOW:
            raise SearchError(400, "illegal_argument_exception",
                              f"Result window is too large, from + size must be less than or "
                              f"equal to: [{MAX_RESULT_WINDOW}] but was [{size + start}].")
        query = body.get("query", {"match_all": {}})
        sort = [next(iter(s.items())) if isinstance(s, dict) else (s, {"order": "asc"})
                for s in body.get("sort", [])]
        hits = []
        for name in dict.fromkeys(names):
            for doc_id, src in self.indices[name].docs.items():
                if _matches(query, src):
                    key = [_comparable(_get(src, f)) for f, _ in sort]
                    hits.append((key, name, doc_id, src))

        def order(h: tuple[list[Any], str, str, dict[str, Any]]) -> list[Any]:
            return [(-v if isinstance(v, int | float) and (o if isinstance(o, str) else
                     o.get("order", "asc")) == "desc" else v) for v, (_, o) in zip(h[0], sort,
                                                                                  strict=True)]
        hits.sort(key=order)
        if "search_after" in body:
            after = [_comparable(v) for v in body["search_after"]]
            marker = order((after, "", "", {}))
            hits = [h for h in hits if order(h) > marker]
        total = len(hits)
        page = hits[start:start + size]
        out = []
        for _key, name, doc_id, src in page:
            sort_values = [_get(src, f) for f, _ in sort]
            out.append({"_index": name, "_id": doc_id, "_score": None, "_source": src,
                        "sort": sort_values})
        return {"took": 1, "timed_out": False,
                "_shards": {"total": len(names), "successful": len(names), "skipped": 0,
                            "failed": 0},
                "hits": {"total": {"value": total, "relation": "eq"}, "max_score": None,
                         "hits": out}}
