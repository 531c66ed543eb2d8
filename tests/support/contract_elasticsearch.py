"""An Elasticsearch ``_bulk`` endpoint on loopback that follows the documented behaviour, for
contract tests of the shipper's Elasticsearch sink (Elasticsearch does not run here).

What it models (Elasticsearch reference, "Bulk API"):

- ``POST /_bulk`` and ``POST /<index>/_bulk``: NDJSON, action/metadata line then source
  line; the body must end with ``\\n`` (else 400 ``illegal_argument_exception`` "The bulk
  request must be terminated by a newline [\\n]"); ``Content-Type`` ``application/x-ndjson``
  (``application/json`` is tolerated by Elasticsearch, anything else is 406);
  ``Content-Encoding: gzip`` is accepted.
- Malformed action lines, unknown actions or metadata parameters, and ``_id`` longer than
  512 bytes fail the whole request with 400.
- Per item: ``create`` of an existing ``_id`` is 409 ``version_conflict_engine_exception``;
  an invalid index name is 400 ``invalid_index_name_exception``; a value that does not fit
  the index's mapping is 400 ``mapper_parsing_exception``. Dynamic mapping as Elasticsearch
  does it: the first value of a field fixes its type (strings that look like dates become
  ``date``, with date detection on), objects and concrete values cannot swap, an index holds
  at most 1000 fields. Index templates (``PUT /_index_template/<name>``) preset mappings.
- The response: ``{"took", "errors", "items": [{"create": {"_index", "_id", "status",
  "result"|"error"}}]}``, items in request order; whole-request errors as
  ``{"error": {"root_cause", "type", "reason"}, "status"}``.
- Faults to inject: a whole-request status (429 ``es_rejected_execution_exception``, 503),
  and per-item 429s for the documents a predicate picks.

Beyond Elasticsearch, the sink's contract is checked on every request (``create`` only,
``_index`` and ``_id`` given, x-ndjson, the document's ECS fields) and breaches recorded in
``violations``.
"""

from __future__ import annotations

import fnmatch
import gzip
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.aioserver import ThreadedApp

DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?)?(Z|[+-]\d{2}:?\d{2})?\Z"
)
RFC3339_NANO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z\Z")
BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')
TOTAL_FIELDS_LIMIT = 1000
REJECTED = ("rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
            "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, "
            "max_coordinating_and_primary_bytes=104857600]")


@dataclass
class Index:
    name: str
    uuid: str
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # "a.b.c" -> type, "a" -> object


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    response: dict[str, Any]


class BulkError(Exception):
    """A whole-request error: status, type and reason as Elasticsearch reports them."""

    def __init__(self, status: int, type_: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.type, self.reason = status, type_, reason


class ElasticsearchContract(ThreadedApp):
    """The _bulk API in a background thread; ``with ElasticsearchContract() as es: es.url``."""

    name = "Elasticsearch"
    max_body = 100 * 1024 * 1024  # http.max_content_length

    def __init__(self, *, expect_authorization: str | None = None,
                 check_documents: bool = True) -> None:
        self.expect_authorization = expect_authorization
        self.check_documents = check_documents
        self.indices: dict[str, Index] = {}
        self.templates: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._faults: list[tuple[int, str, str, dict[str, str]]] = []
        self._item_faults: list[tuple[Callable[[dict[str, Any]], bool], int, int,
                                      dict[str, int]]] = []
        self._fault_headers: dict[str, str] = {}
        self._lock = threading.Lock()
        self._seq = 0
        super().__init__()

    # ---- lifecycle ------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._info)
        app.router.add_route("*", "/_bulk", self._bulk)
        app.router.add_route("*", "/{index}/_bulk", self._bulk)
        app.router.add_put("/_index_template/{name}", self._put_template)

    # ---- test controls --------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, *, retry_after: str | None = None) -> None:
        """Answer the next ``count`` bulk requests with a whole-request error."""
        type_ = (
            "es_rejected_execution_exception" if status == 429 else "unavailable_shards_exception"
        )
        headers = {"Retry-After": retry_after} if retry_after else {}
        with self._lock:
            self._faults.extend((status, type_, REJECTED if status == 429 else
                                 "primary shard is not active Timeout: [1m]", headers)
                                for _ in range(count))

    def reject_items(self, pick: Callable[[dict[str, Any]], bool], times: int = 1,
                     status: int = 429) -> None:
        """Answer ``status`` (429: es_rejected_execution_exception) for each document ``pick``
        selects, the first ``times`` times its ``_id`` is sent."""
        with self._lock:
            self._item_faults.append((pick, status, times, {}))

    def put_template(self, patterns: list[str], properties: dict[str, str]) -> None:
        """Preset field types ("a.b" -> "keyword"/"long"/"date"...) for new matching indices."""
        with self._lock:
            self.templates[f"t{len(self.templates)}"] = (patterns, dict(properties))

    def docs(self, pattern: str = "*") -> dict[str, dict[str, Any]]:
        """``_id`` -> source of every stored document in indices matching ``pattern``."""
        with self._lock:
            return {i: d for idx in self.indices.values() if fnmatch.fnmatch(idx.name, pattern)
                    for i, d in idx.docs.items()}

    def index_names(self) -> list[str]:
        with self._lock:
            return sorted(self.indices)

    # ---- handlers -------------------------------------------------------------------------

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response({"name": "contract", "cluster_name": "boxwatch-test",
                                  "version": {"number": "8.15.0", "distribution": None},
                                  "tagline": "You Know, for Search"})

    async def _put_template(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        props: dict[str, str] = {}
        _flatten_properties(body.get("template", {}).get("mappings", {}).get("properties", {}),
                            "", props)
        with self._lock:
            self.templates[request.match_info["name"]] = (list(body["index_patterns"]), props)
        return web.json_response({"acknowledged": True})

    async def _bulk(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        with self._lock:
            try:
                status, response = 200, self._handle(request, raw)
            except BulkError as e:
                status = e.status
                cause = {"type": e.type, "reason": e.reason}
                response = {"error": {"root_cause": [cause], **cause}, "status": e.status}
            self.requests.append(Request(request.path, headers, raw, status, response))
        extra = {}
        if status == 401:
            extra["WWW-Authenticate"] = 'Basic realm="security", charset="UTF-8", ApiKey'
        extra.update(self._fault_headers)
        return web.Response(status=status, body=orjson.dumps(response), headers=extra,
                            content_type="application/json")

    def _handle(self, request: web.Request, raw: bytes) -> dict[str, Any]:
        """Validate and apply one bulk request; called with the lock held."""
        self._fault_headers = {}
        if request.method not in ("POST", "PUT"):
            raise BulkError(405, "method_not_allowed", f"Incorrect HTTP method for uri "
                            f"[{request.path}] and method [{request.method}], allowed: [POST, PUT]")
        if self.expect_authorization is not None and \
                request.headers.get("Authorization") != self.expect_authorization:
            raise BulkError(401, "security_exception", "missing authentication credentials "
                            f"for REST request [{request.path}]")
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype != "application/x-ndjson":
            self.violations.append(f"bulk Content-Type {ctype!r}, not application/x-ndjson")
            if ctype != "application/json":
                raise BulkError(406, "media_type_header_exception",
                                f"Content-Type header [{ctype}] is not supported")
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        if not raw:
            raise BulkError(400, "parse_exception", "request body is required")
        if not raw.endswith(b"\n"):
            self.violations.append("bulk body does not end with a newline")
            raise BulkError(400, "illegal_argument_exception",
                            "The bulk request must be terminated by a newline [\\n]")
        ops = self._parse(raw, request.match_info.get("index"))
        if self._faults:
            status, type_, reason, headers = self._faults.pop(0)
            self._fault_headers = headers
            raise BulkError(status, type_, reason)
        items = [self._apply(*op) for op in ops]
        return {"took": 1, "errors": any("error" in it["create"] for it in items), "items": items}

    def _parse(self, raw: bytes, path_index: str | None) -> list[tuple[str, str, Any]]:
        lines = raw.split(b"\n")[:-1]
        ops: list[tuple[str, str, Any]] = []
        n = 0
        while n < len(lines):
            try:
                action = orjson.loads(lines[n])
            except orjson.JSONDecodeError as e:
                raise BulkError(400, "x_content_parse_exception",
                                f"[{n + 1}:1] Malformed action/metadata line: {e}") from e
            if not isinstance(action, dict) or len(action) != 1:
                raise BulkError(400, "illegal_argument_exception", f"Malformed action/metadata "
                                f"line [{n + 1}], expected START_OBJECT or END_OBJECT")
            (verb, meta), = action.items()
            if verb not in ("create", "index", "update", "delete"):
                raise BulkError(400, "illegal_argument_exception", f"Malformed action/metadata "
                                f"line [{n + 1}], expected field [create], [delete], [index] or "
                                f"[update] but found [{verb}]")
            for key in meta:
                if key not in ("_index", "_id", "routing", "pipeline", "require_alias",
                               "dynamic_templates", "op_type", "version", "version_type",
                               "if_seq_no", "if_primary_term", "retry_on_conflict", "_source"):
                    raise BulkError(400, "illegal_argument_exception", f"Action/metadata line "
                                    f"[{n + 1}] contains an unknown parameter [{key}]")
            doc_id = meta.get("_id")
            if doc_id is not None and len(str(doc_id).encode()) > 512:
                raise BulkError(400, "action_request_validation_exception", "Validation Failed: "
                                f"1: id [{doc_id}] is too long, must be no longer than 512 bytes "
                                f"but was: {len(str(doc_id).encode())};")
            index = meta.get("_index", path_index)
            if index is None:
                raise BulkError(400, "action_request_validation_exception",
                                "Validation Failed: 1: index is missing;")
            if verb != "create" or "_id" not in meta or "_index" not in meta:
                self.violations.append(f"line {n + 1}: expected create with _index and _id: {meta}")
            if verb == "delete":
                n += 1
                continue
            if n + 1 >= len(lines):
                raise BulkError(400, "illegal_argument_exception",
                                "The bulk request must be terminated by a newline [\\n]")
            source_line = lines[n + 1]
            n += 2
            try:
                source = orjson.loads(source_line)
            except orjson.JSONDecodeError:
                source = source_line
            ops.append((index, "" if doc_id is None else str(doc_id), source))
        if not ops:
            raise BulkError(400, "action_request_validation_exception",
                            "Validation Failed: 1: no requests added;")
        return ops

    def _apply(self, index: str, doc_id: str, source: Any) -> dict[str, Any]:
        """One create item: 201, or its per-item error."""
        def error(status: int, type_: str, reason: str, **more: Any) -> dict[str, Any]:
            err = {"type": type_, "reason": reason, "index": index, "shard": "0",
                   "index_uuid": idx.uuid if idx else "_na_", **more}
            return {"create": {"_index": index, "_id": doc_id, "status": status, "error": err}}

        idx = self.indices.get(index)
        bad = _index_name_error(index)
        if bad:
            return error(
                400, "invalid_index_name_exception", f"Invalid index name [{index}], {bad}"
            )
        if not doc_id:
            doc_id = uuid.uuid4().hex[:20]
        if self.check_documents:
            self._check_document(doc_id, source)
        for pick, status, times, seen in self._item_faults:
            if isinstance(source, dict) and pick(source) and seen.get(doc_id, 0) < times:
                seen[doc_id] = seen.get(doc_id, 0) + 1
                return error(status, "es_rejected_execution_exception", REJECTED)
        if idx is None:
            idx = Index(index, uuid.uuid4().hex[:22])
            for patterns, props in self.templates.values():
                if any(fnmatch.fnmatch(index, p) for p in patterns):
                    idx.mapping.update(props)
        if doc_id in idx.docs:
            return error(409, "version_conflict_engine_exception",
                         f"[{doc_id}]: version conflict, document already exists "
                         "(current version [1])")
        if not isinstance(source, dict):
            return error(400, "mapper_parsing_exception", "failed to parse", caused_by={
                "type": "not_x_content_exception", "reason": "Compressor detection can only "
                "be called on some xcontent bytes or compressed xcontent bytes"})
        new: dict[str, str] = {}
        problem = _map(source, "", idx.mapping, new, doc_id)
        if problem is None and len(idx.mapping) + len(new) > TOTAL_FIELDS_LIMIT:
            problem = ("illegal_argument_exception", f"Limit of total fields "
                       f"[{TOTAL_FIELDS_LIMIT}] has been exceeded while adding new fields "
                       f"[{len(new)}]")
        if problem:
            return error(400, *problem)
        idx.mapping.update(new)
        idx.docs[doc_id] = source
        self.indices[index] = idx
        self._seq += 1
        return {"create": {"_index": index, "_id": doc_id, "_version": 1, "result": "created",
                           "_shards": {"total": 2, "successful": 1, "failed": 0},
                           "_seq_no": self._seq, "_primary_term": 1, "status": 201}}

    def _check_document(self, doc_id: str, doc: Any) -> None:
        """The sink's document contract (ECS-ish fields), recorded as violations."""
        if not isinstance(doc, dict):
            self.violations.append(f"{doc_id}: document is not an object")
            return
        ts = doc.get("@timestamp")
        if not isinstance(ts, str) or not RFC3339_NANO.match(ts):
            self.violations.append(f"{doc_id}: @timestamp {ts!r} is not RFC 3339 UTC")
        for path, kind in (("message", str), ("stream", str), ("container.id", str),
                           ("container.name", str), ("host.name", str), ("log.offset", int)):
            value: Any = doc
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if not isinstance(value, kind):
                self.violations.append(f"{doc_id}: {path} is {value!r}, not {kind.__name__}")


def _index_name_error(name: str) -> str:
    if name != name.lower():
        return "must be lowercase"
    if any(c in BAD_INDEX_CHARS for c in name):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    if name[:1] in ("_", "-", "+"):
        return "must not start with '_', '-', or '+'"
    if name in (".", "..") or len(name.encode()) > 255:
        return "must not be '.' or '..' or longer than 255 bytes"
    return ""


def _flatten_properties(props: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for name, spec in props.items():
        path = prefix + name
        if "properties" in spec:
            out[path] = "object"
            _flatten_properties(spec["properties"], path + ".", out)
        else:
            out[path] = spec.get("type", "object")


def _map(obj: dict[str, Any], prefix: str, mapping: dict[str, str], new: dict[str, str],
         doc_id: str) -> tuple[str, str] | None:
    """Dynamic mapping of ``obj``: new field types into ``new``; the first conflict, if any."""
    for key, value in obj.items():
        if key == "":
            return "mapper_parsing_exception", "field name cannot be an empty string"
        path = prefix + key
        if "." in key:  # dots in field names are object paths
            head, _, rest = key.partition(".")
            problem = _map({head: {rest: value}}, prefix, mapping, new, doc_id)
            if problem:
                return problem
            continue
        known = mapping.get(path) or new.get(path)
        if isinstance(value, dict):
            if known not in (None, "object", "flattened"):
                return ("mapper_parsing_exception", f"failed to parse field [{path}] of type "
                        f"[{known}] in document with id '{doc_id}'. Preview of field's value: "
                        f"'{value}'")
            if known == "flattened":
                continue
            if known is None:
                new[path] = "object"
            problem = _map(value, path + ".", mapping, new, doc_id)
            if problem:
                return problem
            continue
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if known == "object":
                return ("mapper_parsing_exception", f"object mapping for [{path}] tried to parse "
                        f"field [{path}] as object, but found a concrete value")
            guessed = _guess(item)
            if known is None:
                new[path] = known = guessed
                continue
            if not _fits(known, item):
                return ("mapper_parsing_exception", f"failed to parse field [{path}] of type "
                        f"[{known}] in document with id '{doc_id}'. Preview of field's value: "
                        f"'{item}'")
    return None


def _guess(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and DATE.match(value):
        return "date"
    return "text"


def _fits(kind: str, value: Any) -> bool:
    if kind in ("text", "keyword", "wildcard", "match_only_text"):
        return not isinstance(value, dict)
    if kind in ("long", "integer", "short", "byte"):
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float):
            return True
        return isinstance(value, str) and re.fullmatch(r"-?\d+(\.0*)?", value) is not None
    if kind in ("float", "double", "half_float", "scaled_float"):
        try:
            float(value)
            return not isinstance(value, bool)
        except (TypeError, ValueError):
            return False
    if kind in ("date", "date_nanos"):
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, str) and DATE.match(value) is not None)
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false", "")
    return True
