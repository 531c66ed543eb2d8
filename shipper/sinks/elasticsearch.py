"""Ship records to Elasticsearch or OpenSearch through the ``_bulk`` API.

Every record becomes a ``create`` action with a deterministic ``_id`` (``Record.uid``: file
device, inode, fingerprint and offset) in a daily index named from the entry's own UTC time
(``--es-index``, strftime, default ``boxwatch-logs-%Y.%m.%d``). So a batch sent twice, after
a crash or a lost answer, creates nothing twice: the second ``create`` is a 409
``version_conflict_engine_exception``, counted as already there (delivered).

Per-item outcomes are read from ``items`` (in request order): 201 stored; 409 already there;
429 (``es_rejected_execution_exception``) and 5xx -> only those records are retried; any
other item error (``mapper_parsing_exception``, an invalid index name) can never succeed as
is: the document is appended with the reason to the dead-letter file (``--es-dead-letter``,
NDJSON) and the record counted as rejected. A whole request answered 429/5xx/408, no answer,
or 401/403/404 (a configuration problem, not bad data) is retried; 413 halves the request
size first; another 4xx dead-letters the request's documents.

Document mapping (ECS field names where ECS has one, as Filebeat's container input writes):

    @timestamp            RFC 3339, UTC, 9 fraction digits   (date_nanos in the template)
    message               the line, without its terminator    (text)
    stream                stdout / stderr                     (keyword; Filebeat's field)
    container.id / .name / .image.name                        (keyword)
    host.name                                                 (keyword)
    labels.<name>         whitelisted container labels, dots -> "_" (ECS ``labels``; dots
                          would otherwise become object paths and collide)   (keyword)
    log.file.path         the file the entry was read from   (keyword)
    log.offset            byte offset past the entry          (long)
    log.flags             ["partial", "truncated", "parse_error"] when set (keyword)

Elasticsearch's dynamic mapping would guess types from the first document of each day
(a first ``message`` that looks like a date makes the field a date): install
:func:`index_template` (``PUT _index_template/boxwatch-logs``) before shipping.
Options are flags (``add_arguments``); basic auth may also come from the URL's userinfo.
Credentials are never logged.
"""

from __future__ import annotations

import logging
import os
import time
from argparse import ArgumentParser, Namespace
from pathlib import Path
from typing import Any

import orjson

from shipper.sinks.base import Record, Result, SinkError
from shipper.sinks.http import (
    HttpSink,
    authorization,
    read_secret,
    redact_url,
    retriable,
    split_url,
    verdict,
)

__all__ = ["ElasticsearchSink", "add_arguments", "document", "index_template"]

log = logging.getLogger(__name__)

DEFAULT_INDEX = "boxwatch-logs-%Y.%m.%d"
MAX_REQUEST = 5 * 1024 * 1024  # Elastic's advice: bulk requests of a few MB
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


def add_arguments(parser: ArgumentParser) -> None:
    """The Elasticsearch sink's flags; the URL comes from ``--sink elasticsearch=URL``."""
    g = parser.add_argument_group("Elasticsearch sink")
    g.add_argument("--es-index", default=DEFAULT_INDEX,
                   help="index name, strftime of the entry's UTC time (default %(default)s)")
    g.add_argument("--es-dead-letter", type=Path, default=None,
                   help="append documents Elasticsearch refuses (mapping errors...) to this "
                        "NDJSON file, with the reason")
    g.add_argument("--es-username", default=None,
                   help="basic auth user (or put user:password in the URL)")
    g.add_argument("--es-password-file", type=Path, default=None,
                   help="file holding the basic auth password")
    g.add_argument("--es-api-key-file", type=Path, default=None,
                   help="file holding an encoded API key (Authorization: ApiKey ...)")
    g.add_argument("--es-max-request-bytes", type=int, default=MAX_REQUEST,
                   help="split batches into bulk requests of at most this size (default 5 MiB)")
    g.add_argument("--es-timeout", type=float, default=60.0,
                   help="seconds one bulk request may take (default 60)")


def index_template(pattern: str = "boxwatch-logs-*") -> dict[str, Any]:
    """The composable index template for the documents this sink writes."""
    kw = {"type": "keyword", "ignore_above": 1024}
    return {"index_patterns": [pattern], "priority": 200, "template": {"mappings": {
        "dynamic_templates": [{"labels": {"path_match": "labels.*",
                                          "mapping": {"type": "keyword"}}}],
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": "match_only_text"},
            "stream": {"type": "keyword"},
            "container": {"properties": {"id": kw, "name": kw,
                                         "image": {"properties": {"name": kw}}}},
            "host": {"properties": {"name": kw}},
            "labels": {"type": "object"},
            "log": {"properties": {"file": {"properties": {"path": kw}},
                                   "offset": {"type": "long"}, "flags": kw}},
        }}}}


_second: tuple[int, str] = (-1, "")  # consecutive entries share their second


def _rfc3339(ns: int) -> str:
    """RFC 3339 UTC with all 9 fraction digits (sorts as text, parses as date_nanos)."""
    global _second
    secs, frac = divmod(ns, 1_000_000_000)
    if secs != _second[0]:
        _second = (secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)))
    return f"{_second[1]}.{frac:09d}Z"


def document(rec: Record) -> dict[str, Any]:
    """The Elasticsearch document of one record (see the module docstring for the fields)."""
    o = rec.origin
    container: dict[str, Any] = {"id": o.container_id, "name": o.container_name}
    if o.image:
        container["image"] = {"name": o.image}
    logf: dict[str, Any] = {"offset": rec.offset}
    if o.path:
        logf["file"] = {"path": o.path}
    if rec.flags:
        logf["flags"] = [name for name, on in (("partial", rec.partial),
                                               ("truncated", rec.truncated),
                                               ("parse_error", rec.parse_error)) if on]
    doc: dict[str, Any] = {"@timestamp": _rfc3339(rec.time_ns), "message": rec.text,
                           "stream": rec.stream, "container": container,
                           "host": {"name": o.host}, "log": logf}
    if o.labels:
        doc["labels"] = {k.replace(".", "_"): v for k, v in o.labels.items()}
    return doc


class ElasticsearchSink(HttpSink):
    """One Elasticsearch/OpenSearch endpoint; ``url`` is the cluster's base URL."""

    name = "elasticsearch"
    server = "Elasticsearch"
    request_name = "bulk requests"

    def __init__(self, url: str, *, index: str = DEFAULT_INDEX, dead_letter: Path | None = None,
                 username: str | None = None, password: str | None = None,
                 api_key: str | None = None, max_request_bytes: int = MAX_REQUEST,
                 timeout: float = 60.0) -> None:
        base, _, url_user, url_password = split_url("elasticsearch", url,
                                                    "http(s)://host[:port]")
        sample = time.strftime(index, time.gmtime(0))
        if not sample or sample != sample.lower() or set(sample) & _BAD_INDEX_CHARS \
                or sample[0] in "_-+" or "%" in sample:
            raise SinkError("elasticsearch", f"--es-index gives an invalid index name: {index!r}")
        headers = {"Content-Type": "application/x-ndjson"}
        headers |= authorization("elasticsearch", username or url_user or None,
                                 password or url_password or None, "ApiKey", api_key,
                                 "an API key")
        super().__init__(base + "/_bulk", headers, timeout,
                         ("already_there", "retried_records", "rejected_records",
                          "dead_lettered"))
        self.index = index
        self.dead_letter = dead_letter
        self.max_request_bytes = max_request_bytes
        self._index_cache: tuple[int, str] = (-1, "")

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> ElasticsearchSink:
        return cls(url, index=getattr(args, "es_index", DEFAULT_INDEX),
                   dead_letter=getattr(args, "es_dead_letter", None),
                   username=getattr(args, "es_username", None),
                   password=read_secret("elasticsearch", getattr(args, "es_password_file", None)),
                   api_key=read_secret("elasticsearch", getattr(args, "es_api_key_file", None)),
                   max_request_bytes=getattr(args, "es_max_request_bytes", MAX_REQUEST),
                   timeout=getattr(args, "es_timeout", 60.0))

    def index_name(self, time_ns: int) -> str:
        """The index of an entry: ``--es-index`` formatted with its UTC time."""
        secs = time_ns // 1_000_000_000
        if self._index_cache[0] != secs:
            self._index_cache = (secs, time.strftime(self.index, time.gmtime(secs)))
        return self._index_cache[1]

    # ---- sending --------------------------------------------------------------------------

    async def send(self, batch: list[Record]) -> Result:
        if not batch:
            return Result.ok()
        acked = [False] * len(batch)
        retry = [False] * len(batch)
        after: float | None = None
        reasons: list[str] = []
        requests = self._requests(batch)
        for n, (indices, body) in enumerate(requests):
            status, reply, hint = await self._post(body)
            if status == 200 and isinstance(reply, dict) and \
                    len(reply.get("items", ())) == len(indices):
                self._recovered()
                reasons.extend(self._items(batch, indices, reply["items"], acked, retry))
                continue
            if status == 200:
                status, reply = 0, f"bulk answer without one item per action: {str(reply)[:300]}"
            text = _error_text(reply)
            if status == 413 and self.max_request_bytes > 64 * 1024:
                self.max_request_bytes //= 2
                status = 0
                text = f"413 request too large, sending at most {self.max_request_bytes} bytes"
            self._counters["errors"] += 1
            reasons.append(f"HTTP {status}: {text}" if status else text)
            if retriable(status):
                after = hint
                self._fail_once(status, text)
                self._retry_rest(retry, requests[n:])
                break
            log.warning("elasticsearch %s refused a bulk request of %d documents (HTTP %d, not "
                        "retried): %s", redact_url(self.url), len(indices), status, text)
            failed = self._dead_letter(batch, [(i, status, reply) for i in indices])
            for i in failed:
                retry[i] = True
        self._counters["retried_records"] += sum(retry)
        return verdict(acked, retry, after, reasons)

    def _items(self, batch: list[Record], indices: list[int], items: list[dict[str, Any]],
               acked: list[bool], retry: list[bool]) -> list[str]:
        """Read per-item results into ``acked``/``retry``; dead-letter the refused."""
        refused: list[tuple[int, int, Any]] = []
        for i, item in zip(indices, items, strict=True):
            result = next(iter(item.values()), {})
            status = int(result.get("status", 0))
            if status in (200, 201) or status == 409:
                acked[i] = True
                self._counters["sent_records"] += 1
                if status == 409:
                    self._counters["already_there"] += 1
            elif status == 429 or status >= 500 or status == 0:
                retry[i] = True
            else:
                refused.append((i, status, result.get("error")))
        self._counters["sent_batches"] += 1
        if not refused:
            return []
        first = refused[0]
        log.warning("elasticsearch %s refused %d documents (not retried), first: HTTP %d %s",
                    redact_url(self.url), len(refused), first[1], _error_text(first[2]))
        for i in self._dead_letter(batch, refused):
            retry[i] = True
        return [f"{len(refused)} documents refused, first: {_error_text(first[2])}"]

    def _dead_letter(self, batch: list[Record], refused: list[tuple[int, int, Any]]) -> list[int]:
        """Count the refused as rejected and append them to the dead-letter file; the indices
        that could not be written there (to be retried rather than lost)."""
        if self.dead_letter is None:
            self._counters["rejected_records"] += len(refused)
            return []
        now = _rfc3339(time.time_ns())
        lines = b"".join(orjson.dumps({
            "dead_lettered_at": now, "index": self.index_name(batch[i].time_ns),
            "_id": batch[i].uid, "status": status, "error": error,
            "document": document(batch[i])}) + b"\n" for i, status, error in refused)
        try:
            fd = os.open(self.dead_letter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, lines)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            log.error("cannot write dead letters to %s (%s): retrying those documents",
                      self.dead_letter, e.strerror)
            return [i for i, _, _ in refused]
        self._counters["rejected_records"] += len(refused)
        self._counters["dead_lettered"] += len(refused)
        return []

    async def _post(self, body: bytes) -> tuple[int, Any, float | None]:
        """One bulk request: (status, parsed JSON answer or text, Retry-After)."""
        return await self._request(body, _json_or_text)

    def _requests(self, batch: list[Record]) -> list[tuple[list[int], bytes]]:
        """NDJSON bodies (``create`` + document per record, trailing newline), size-bounded."""
        out: list[tuple[list[int], bytes]] = []
        indices: list[int] = []
        parts: list[bytes] = []
        size = 0
        for i, rec in enumerate(batch):
            action = orjson.dumps({"create": {"_index": self.index_name(rec.time_ns),
                                              "_id": rec.uid}})
            pair = action + b"\n" + orjson.dumps(document(rec)) + b"\n"
            if parts and size + len(pair) > self.max_request_bytes:
                out.append((indices, b"".join(parts)))
                indices, parts, size = [], [], 0
            indices.append(i)
            parts.append(pair)
            size += len(pair)
        out.append((indices, b"".join(parts)))
        return out


def _json_or_text(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")[:2000]


def _error_text(error: Any) -> str:
    """``type: reason`` of an Elasticsearch error object (or whatever came instead)."""
    if isinstance(error, dict) and "error" in error:
        error = error["error"]
    if isinstance(error, dict):
        text = f"{error.get('type', '?')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text[:1000]
    return str(error)[:1000]
