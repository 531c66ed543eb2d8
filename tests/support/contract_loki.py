"""A Loki push endpoint on loopback that follows Loki's documented behaviour, for contract tests.

Loki does not run on the development machines, so the shipper's Loki sink is tested against
this server. What it models, from grafana/loki:

- ``POST /loki/api/v1/push``, ``Content-Type: application/json``, optional
  ``Content-Encoding: gzip`` (pkg/loghttp/push/push.go); an entry is ``["<ns as string>",
  "line"]`` or ``["<ns>", "line", {"key": "value"}]`` with structured metadata
  (pkg/loghttp/entry.go). Success is ``204 No Content``.
- Label names follow Prometheus' rule ``[a-zA-Z_][a-zA-Z0-9_]*``, ``__`` names are reserved,
  at least one label per stream, at most 15 names, name <= 1024 and value <= 2048 bytes.
- Distributor validation (pkg/validation/validate.go messages): ``max_line_size`` (256 KB),
  ``reject_old_samples_max_age`` (168 h), ``creation_grace_period`` (10 m). Invalid entries
  are dropped, the valid rest of the same push is still stored, and the answer is 400 with
  Loki's message, e.g. ``entry for stream '{...}' has timestamp too old: ...``.
- Ingester ordering: with ``unordered_writes`` (default since 2.4) an entry older than
  ``newest - max_chunk_age/2`` is ``entry too far behind``; with ordered writes anything
  older than the newest is ``entry out of order``. An entry equal in time and line to one
  already stored is a duplicate and silently ignored (what makes a re-push harmless).
- Per-tenant ingestion rate limit: 429 with ``Ingestion rate limit exceeded for user ...``
  and nothing of the push stored. Multi-tenancy: with ``auth_enabled`` a push without
  ``X-Scope-OrgID`` is 401 ``no org id``; without it the tenant is ``fake``.

Beyond Loki, every request body is checked against the sink's contract (gzip, JSON shape,
string timestamps, sorted entries per stream, size caps); a breach is recorded in
``violations`` (and answered 400) so a test can assert the list stays empty.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.support.aioserver import ThreadedApp

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
HOUR_NS = 3600 * 10**9


def rfc3339(ns: int) -> str:
    """Go's time.RFC3339 of a ns timestamp, as Loki prints it in messages."""
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def label_string(labels: dict[str, str]) -> str:
    """Prometheus ``labels.String()``: sorted, ``{a="b", c="d"}``; Loki's stream identity."""
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class Entry:
    """One stored entry of a stream."""

    ts: int
    line: str
    metadata: dict[str, str]


@dataclass
class Request:
    """What one push carried, as the server saw it (headers keep their case-insensitivity)."""

    headers: dict[str, str]
    compressed_bytes: int
    body: dict[str, Any] | None
    status: int
    message: str


@dataclass
class LokiLimits:
    """Loki's per-tenant limits that the push path enforces, at their defaults."""

    max_line_size: int = 256 * 1000  # flagext.ByteSize "256KB"
    reject_old_samples: bool = True
    reject_old_samples_max_age_ns: int = 168 * HOUR_NS
    creation_grace_period_ns: int = 10 * 60 * 10**9
    unordered_writes: bool = True
    max_chunk_age_ns: int = 2 * HOUR_NS
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    ingestion_rate_bytes: float | None = None  # None: unlimited (Loki's default is 4 MB/s)
    ingestion_burst_bytes: float = 6 * 1024 * 1024


@dataclass
class _Fault:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class LokiContract(ThreadedApp):
    """A Loki push API in a background thread; ``with LokiContract() as loki: loki.url``.

    Contract checks (beyond Loki): ``require_gzip``, ``max_request_bytes`` (compressed),
    ``require_sorted`` (entries of a stream in time order within a push).
    """

    name = "Loki"

    def __init__(self, limits: LokiLimits | None = None, *, auth_enabled: bool = False,
                 require_gzip: bool = True, max_request_bytes: int = 1024 * 1024,
                 require_sorted: bool = True, now_ns: int | None = None,
                 expect_authorization: str | None = None) -> None:
        self.limits = limits or LokiLimits()
        self.auth_enabled = auth_enabled
        self.require_gzip = require_gzip
        self.max_request_bytes = max_request_bytes
        self.require_sorted = require_sorted
        self.fixed_now_ns = now_ns
        self.expect_authorization = expect_authorization
        self.streams: dict[str, dict[str, list[Entry]]] = {}  # tenant -> labels -> entries
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._faults: list[_Fault | None] = []
        self._lock = threading.Lock()
        self._bucket: dict[str, tuple[float, float]] = {}
        super().__init__()

    # ---- lifecycle ------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/loki/api/v1/push", self._push)
        app.router.add_get("/ready", self._ready)

    # ---- test controls --------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, *, retry_after: str | None = None,
                  body: str | None = None, skip: int = 0) -> None:
        """Answer ``count`` pushes, after letting ``skip`` through, with ``status`` (nothing
        stored), as an overloaded distributor (429) or a restarting ingester (503) would."""
        if body is None:
            body = (_rate_limited("fake", 4194304, 1, 1) if status == 429
                    else "rpc error: code = Unavailable desc = at least 2 live replicas required")
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._faults.extend([None] * skip)
            self._faults.extend(_Fault(status, body, headers) for _ in range(count))

    def entries(self, tenant: str = "fake", **selector: str) -> list[Entry]:
        """Stored entries of every stream whose labels include ``selector``, in time order."""
        with self._lock:
            found = [e for labels, es in self.streams.get(tenant, {}).items()
                     if all(f'{k}="{_escape(v)}"' in labels for k, v in selector.items())
                     for e in es]
        return sorted(found, key=lambda e: e.ts)

    def stream_labels(self, tenant: str = "fake") -> list[str]:
        with self._lock:
            return sorted(self.streams.get(tenant, {}))

    def now_ns(self) -> int:
        return self.fixed_now_ns if self.fixed_now_ns is not None else time.time_ns()

    # ---- the push path --------------------------------------------------------------------

    async def _ready(self, request: web.Request) -> web.Response:
        return web.Response(text="ready\n")

    async def _push(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = dict(request.headers)
        status, message, body = self._handle(request, raw)
        fault_headers: dict[str, str] = {}
        with self._lock:
            fault = self._faults.pop(0) if status == 204 and self._faults else None
            if fault is not None:
                status, message, fault_headers = fault.status, fault.body, fault.headers
            elif body is not None:
                status, message = self._store(headers, body, status, message)
            self.requests.append(Request(headers, len(raw), body, status, message))
        if status == 204:
            return web.Response(status=204)
        return web.Response(status=status, text=message + "\n", headers=fault_headers)

    def _handle(self, request: web.Request,
                raw: bytes) -> tuple[int, str, dict[str, Any] | None]:
        """Decode and check the format; 204 and the body if it may be stored."""
        if self.expect_authorization is not None and \
                request.headers.get("Authorization") != self.expect_authorization:
            return 401, "Unauthorized", None
        if self.auth_enabled and not request.headers.get("X-Scope-OrgID"):
            return 401, "no org id", None
        if len(raw) > self.max_request_bytes:
            self._violate(f"push of {len(raw)} compressed bytes over {self.max_request_bytes}")
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            try:
                data = gzip.decompress(raw)
            except (OSError, EOFError) as e:
                return 400, f"gzip: invalid header: {e}", None
        elif encoding == "":
            if self.require_gzip:
                self._violate("push body not gzip-compressed")
            data = raw
        else:
            return 400, f'Content-Encoding "{encoding}" not supported', None
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype != "application/json":
            self._violate(f"push Content-Type {ctype!r}, not application/json")
            return 400, "snappy: corrupt input", None  # Loki would parse it as protobuf
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            self._violate(f"push body is not JSON: {e}")
            return 400, f"loghttp.PushRequest.Streams: {e}", None
        problem = _shape_error(body)
        if problem:
            self._violate(problem)
            return 400, problem, None
        return 204, "", body

    def _store(self, headers: dict[str, str], body: dict[str, Any], status: int,
               message: str) -> tuple[int, str]:
        """Distributor then ingester; called with the lock held."""
        tenant = headers.get("X-Scope-OrgID") or "fake"
        lim, now = self.limits, self.now_ns()
        errors: list[str] = []
        accepted: list[tuple[str, dict[str, str], list[Entry]]] = []
        total_bytes = total_lines = 0
        for stream in body["streams"]:
            labels: dict[str, str] = {k: v for k, v in stream["stream"].items() if v != ""}
            key = label_string(labels)
            label_error = self._label_error(key, labels)
            if label_error:
                errors.append(label_error)
                continue
            good: list[Entry] = []
            previous = -1
            for value in stream["values"]:
                ts, line = int(value[0]), value[1]
                meta = value[2] if len(value) == 3 else {}
                if self.require_sorted and ts < previous:
                    self._violate(f"entries of stream {key} not sorted: {ts} after {previous}")
                previous = max(previous, ts)
                if lim.reject_old_samples and ts < now - lim.reject_old_samples_max_age_ns:
                    errors.append(f"entry for stream '{key}' has timestamp too old: "
                                  f"{rfc3339(ts)}, oldest acceptable timestamp is: "
                                  f"{rfc3339(now - lim.reject_old_samples_max_age_ns)}")
                    continue
                if ts > now + lim.creation_grace_period_ns:
                    errors.append(f"entry for stream '{key}' has timestamp too new: {rfc3339(ts)}")
                    continue
                if lim.max_line_size and len(line.encode()) > lim.max_line_size:
                    errors.append(f"Max entry size '{lim.max_line_size}' bytes exceeded for stream "
                                  f"'{key}' while adding an entry with length "
                                  f"'{len(line.encode())}' bytes")
                    continue
                good.append(Entry(ts, line, dict(meta)))
                total_bytes += len(line.encode()) + sum(len(k) + len(v) for k, v in meta.items())
                total_lines += 1
            accepted.append((key, labels, good))
        if lim.ingestion_rate_bytes is not None and total_lines:
            if not self._take(tenant, total_bytes):
                return 429, _rate_limited(tenant, int(lim.ingestion_rate_bytes), total_lines,
                                          total_bytes)
        for key, _labels, good in accepted:
            errors.extend(self._ingest(tenant, key, good))
        if errors:
            return 400, "\n".join(errors)
        return status, message

    def _label_error(self, key: str, labels: dict[str, str]) -> str:
        lim = self.limits
        if not labels:
            return "error at least one label pair is required per stream"
        if len(labels) > lim.max_label_names_per_series:
            return (f"entry for stream '{key}' has {len(labels)} label names; "
                    f"limit {lim.max_label_names_per_series}")
        for name, value in labels.items():
            if not LABEL_NAME.match(name) or name.startswith("__"):
                return f"error parsing labels '{key}' with error: invalid label name {name!r}"
            if len(name) > lim.max_label_name_length:
                return f"stream '{key}' has label name too long: '{name}'"
            if len(value) > lim.max_label_value_length:
                return f"stream '{key}' has label value too long: '{value}'"
        return ""

    def _ingest(self, tenant: str, key: str, entries: list[Entry]) -> list[str]:
        """The ingester's append: ordering window and duplicate suppression per stream."""
        stored = self.streams.setdefault(tenant, {}).setdefault(key, [])
        newest = max((e.ts for e in stored), default=None)
        seen = {(e.ts, e.line) for e in stored}
        failed: list[str] = []
        for entry in entries:
            if (entry.ts, entry.line) in seen:
                continue
            reason = ""
            if newest is not None:
                if not self.limits.unordered_writes and entry.ts < newest:
                    reason = "entry out of order"
                elif self.limits.unordered_writes and \
                        entry.ts < newest - self.limits.max_chunk_age_ns // 2:
                    reason = (f"entry too far behind, entry timestamp is: {rfc3339(entry.ts)}, "
                              "oldest acceptable timestamp is: "
                              f"{rfc3339(newest - self.limits.max_chunk_age_ns // 2)}")
            if reason:
                failed.append(f"entry with timestamp {rfc3339(entry.ts)} ignored, "
                              f"reason: '{reason}',")
                continue
            stored.append(entry)
            seen.add((entry.ts, entry.line))
            newest = entry.ts if newest is None else max(newest, entry.ts)
        if not stored:
            del self.streams[tenant][key]
        if failed:
            failed.append(f"user '{tenant}', total ignored: {len(failed)} out of "
                          f"{len(entries)} for stream: {key}")
        return failed

    def _take(self, tenant: str, n: int) -> bool:
        """Token bucket per tenant, like the distributor's local rate limiter."""
        lim = self.limits
        assert lim.ingestion_rate_bytes is not None
        now = time.monotonic()
        tokens, last = self._bucket.get(tenant, (lim.ingestion_burst_bytes, now))
        tokens = min(lim.ingestion_burst_bytes, tokens + (now - last) * lim.ingestion_rate_bytes)
        if n > tokens:
            self._bucket[tenant] = (tokens, now)
            return False
        self._bucket[tenant] = (tokens - n, now)
        return True

    def _violate(self, what: str) -> None:
        self.violations.append(what)


def _rate_limited(tenant: str, limit: int, lines: int, size: int) -> str:
    return (f"Ingestion rate limit exceeded for user {tenant} (limit: {limit} bytes/sec) while "
            f"attempting to ingest '{lines}' lines totaling '{size}' bytes, reduce log volume or "
            "contact your Loki administrator to see if the limit can be increased")


def _shape_error(body: Any) -> str:
    """The JSON push format, as pkg/loghttp decodes it; "" if the body fits."""
    if (
        not isinstance(body, dict)
        or set(body) != {"streams"}
        or not isinstance(body["streams"], list)
    ):
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        return f'push body must be {{"streams": [...]}}, got keys {keys}'
    for i, stream in enumerate(body["streams"]):
        if not isinstance(stream, dict) or set(stream) != {"stream", "values"}:
            return f"streams[{i}] must have exactly 'stream' and 'values'"
        labels = stream["stream"]
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            return f"streams[{i}].stream must map label names to strings: {labels!r}"
        values = stream["values"]
        if not isinstance(values, list) or not values:
            return f"streams[{i}].values must be a non-empty list"
        for j, value in enumerate(values):
            where = f"streams[{i}].values[{j}]"
            if not isinstance(value, list) or len(value) not in (2, 3):
                return f"{where} must be [ts, line] or [ts, line, metadata]: {value!r}"[:300]
            if not isinstance(value[0], str) or not value[0].isdigit() or len(value[0]) > 19:
                return f"{where}[0] must be a string of ns since the epoch: {value[0]!r}"
            if not isinstance(value[1], str):
                return f"{where}[1] (the line) must be a string: {value[1]!r}"[:300]
            if len(value) == 3:
                meta = value[2]
                if not isinstance(meta, dict) or not all(
                        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
                    return f"{where}[2] (structured metadata) must map strings to strings: {meta!r}"
    return ""
