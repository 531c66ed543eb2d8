"""Ship records to Grafana Loki's push API (``POST /loki/api/v1/push``, gzipped JSON).

Format (grafana/loki pkg/loghttp): ``{"streams":[{"stream":{labels},"values":[["<ns>",
"line",{structured metadata}]]}]}``. A stream is keyed by the labels ``host``,
``container_name``, ``stream`` plus the container's whitelisted labels, their names
sanitised to Loki's ``[a-zA-Z_][a-zA-Z0-9_]*``; the container id and image (high
cardinality) go into structured metadata, beside ``partial``/``truncated``/``parse_error``
flags. Entries are sorted by time per stream, since Loki refuses lines too far behind the
newest of a stream.

Limits honoured on our side so one bad line cannot sink a whole request: lines are cut at
``--loki-max-line-bytes`` (Loki's ``max_line_size``, 256 KB by default; the entry is then
flagged ``truncated``), and a batch is split into requests of at most 1 MiB compressed and
3 MiB raw (below the 4 MiB gRPC message limit between distributor and ingester). Requests
go out one after the other; the first one to fail retriably stops the rest, so a stream's
entries never overtake each other.

Outcome per request: 2xx stored; 429, 5xx, 408 and connection errors -> retry (the
``Retry-After`` hint is passed on); 401/403/404 -> retry too, since they are a
configuration problem, not bad data, and dropping logs for it would lose them; any other
4xx (Loki's 400: too old, too long, bad labels) -> rejected, logged once per request with
Loki's message. Loki stores the valid rest of a push it answers 400 to, and ignores exact
duplicates, so nothing is resent after a 400.

Options are flags (``add_arguments``); credentials may also come from the URL's userinfo.
Secrets are never logged: the URL is shown without userinfo and headers are never printed.
"""

from __future__ import annotations

import gzip
import logging
import re
from argparse import ArgumentParser, Namespace
from pathlib import Path

import orjson

from shipper.sinks.base import Origin, Record, Result
from shipper.sinks.http import (
    HttpSink,
    authorization,
    read_secret,
    redact_url,
    retriable,
    split_url,
    verdict,
)

__all__ = ["LokiSink", "add_arguments", "sanitize_label_name", "stream_labels"]

log = logging.getLogger(__name__)

PUSH_PATH = "/loki/api/v1/push"
MAX_COMPRESSED = 1024 * 1024
MAX_RAW = 3 * 1024 * 1024
DEFAULT_MAX_LINE = 256_000  # Loki's max_line_size default "256KB"
MAX_LABELS = 15  # Loki's max_label_names_per_series default
MAX_LABEL_VALUE = 2048  # Loki's max_label_value_length default
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_FIXED = ("host", "container_name", "stream")


def add_arguments(parser: ArgumentParser) -> None:
    """The Loki sink's flags; the URL comes from ``--sink loki=URL``."""
    g = parser.add_argument_group("Loki sink")
    g.add_argument("--loki-tenant", default=None,
                   help="tenant sent as X-Scope-OrgID (multi-tenant Loki)")
    g.add_argument("--loki-username", default=None,
                   help="basic auth user (or put user:password in the URL)")
    g.add_argument("--loki-password-file", type=Path, default=None,
                   help="file holding the basic auth password")
    g.add_argument("--loki-bearer-token-file", type=Path, default=None,
                   help="file holding a bearer token (Authorization: Bearer ...)")
    g.add_argument("--loki-max-line-bytes", type=int, default=DEFAULT_MAX_LINE,
                   help="cut longer lines (flagged truncated); 0 keeps them whole "
                        "(default: Loki's max_line_size, 256000)")
    g.add_argument("--loki-timeout", type=float, default=30.0,
                   help="seconds one push may take (default 30)")


def sanitize_label_name(name: str) -> str:
    """A Loki/Prometheus label name for ``name``: invalid characters become ``_``, a
    leading digit gets a ``_`` prefix, and the reserved ``__`` prefix is cut to one ``_``."""
    out = _INVALID.sub("_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    while out.startswith("__"):
        out = out[1:]
    return out


def stream_labels(origin: Origin, stream: str) -> dict[str, str]:
    """The Loki stream labels of a record: the fixed three win over container labels that
    sanitise to the same name; empty values are left out (Loki drops them anyway)."""
    labels = {"host": origin.host, "container_name": origin.container_name, "stream": stream}
    room = MAX_LABELS - len(labels)
    for name in sorted(origin.labels):
        clean = sanitize_label_name(name)
        value = origin.labels[name][:MAX_LABEL_VALUE]
        if clean in labels or not value:
            continue
        if room == 0:
            break
        labels[clean] = value
        room -= 1
    return {k: v for k, v in labels.items() if v}


class LokiSink(HttpSink):
    """One Loki endpoint. ``url`` is the base (``http://loki:3100``) or the full push URL."""

    name = "loki"
    server = "Loki"
    request_name = "pushes"

    def __init__(self, url: str, *, tenant: str | None = None, username: str | None = None,
                 password: str | None = None, bearer_token: str | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE, timeout: float = 30.0,
                 max_compressed: int = MAX_COMPRESSED, max_raw: int = MAX_RAW) -> None:
        base, query, url_user, url_password = split_url(
            "loki", url, "http(s)://host[:port][/path]")
        if not base.endswith(PUSH_PATH):
            base += PUSH_PATH
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        headers |= authorization("loki", username or url_user or None,
                                 password or url_password or None, "Bearer", bearer_token,
                                 "a bearer token")
        super().__init__(f"{base}?{query}" if query else base, headers, timeout,
                         ("rejected_records", "retried_requests", "truncated_records"))
        self.max_line_bytes = max_line_bytes
        self.max_compressed = max_compressed
        self.max_raw = max_raw
        self._labels: dict[tuple[int, str], tuple[Origin, bytes]] = {}

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> LokiSink:
        return cls(url, tenant=getattr(args, "loki_tenant", None),
                   username=getattr(args, "loki_username", None),
                   password=read_secret("loki", getattr(args, "loki_password_file", None)),
                   bearer_token=read_secret("loki", getattr(args, "loki_bearer_token_file",
                                                            None)),
                   max_line_bytes=getattr(args, "loki_max_line_bytes", DEFAULT_MAX_LINE),
                   timeout=getattr(args, "loki_timeout", 30.0))

    # ---- sending --------------------------------------------------------------------------

    async def send(self, batch: list[Record]) -> Result:
        if not batch:
            return Result.ok()
        acked = [False] * len(batch)
        retry = [False] * len(batch)
        after: float | None = None
        reasons: list[str] = []
        groups = self._groups(batch)
        for n, (indices, body) in enumerate(groups):
            status, text, hint = await self._post(body)
            if 200 <= status < 300:
                for i in indices:
                    acked[i] = True
                self._counters["sent_batches"] += 1
                self._counters["sent_records"] += len(indices)
                self._recovered()
                continue
            if retriable(status):
                self._counters["retried_requests"] += 1
                self._counters["errors"] += 1
                after = hint
                reasons.append(f"HTTP {status}: {text}" if status else text)
                self._fail_once(status, text)
                self._retry_rest(retry, groups[n:])
                break
            self._counters["errors"] += 1
            self._counters["rejected_records"] += len(indices)
            reasons.append(f"HTTP {status}: {text}")
            log.warning("loki %s rejected %d entries (HTTP %d, not retried): %s",
                        redact_url(self.url), len(indices), status, text[:2000])
        return verdict(acked, retry, after, reasons)

    async def _post(self, body: bytes) -> tuple[int, str, float | None]:
        """One push: (status, Loki's message, Retry-After); status 0 for no answer."""
        return await self._request(body, _text)

    # ---- building requests ----------------------------------------------------------------

    def _groups(self, batch: list[Record]) -> list[tuple[list[int], bytes]]:
        """Split the batch (in order) into gzipped push bodies within the size limits."""
        chunks: list[list[int]] = []
        current: list[int] = []
        size = 0
        for i, rec in enumerate(batch):
            n = len(rec.message) + 120
            if current and size + n > self.max_raw:
                chunks.append(current)
                current, size = [], 0
            current.append(i)
            size += n
        chunks.append(current)
        out: list[tuple[list[int], bytes]] = []
        while chunks:
            indices = chunks.pop(0)
            raw = self._body(batch, indices)
            body = gzip.compress(raw, compresslevel=3, mtime=0)
            if (len(body) > self.max_compressed or len(raw) > self.max_raw) and len(indices) > 1:
                half = len(indices) // 2
                chunks[:0] = [indices[:half], indices[half:]]
                continue
            out.append((indices, body))
        return out

    def _body(self, batch: list[Record], indices: list[int]) -> bytes:
        """The push JSON of ``batch[indices]``: one stream per label set, sorted by time."""
        streams: dict[bytes, list[tuple[int, int, list[object]]]] = {}
        for i in indices:
            rec = batch[i]
            key = self._stream_key(rec)
            streams.setdefault(key, []).append((rec.time_ns, i, self._value(rec)))
        parts = []
        for key, entries in streams.items():
            entries.sort(key=lambda e: (e[0], e[1]))
            values = orjson.dumps([e[2] for e in entries])
            parts.append(b'{"stream":' + key + b',"values":' + values + b"}")
        return b'{"streams":[' + b",".join(parts) + b"]}"

    def _stream_key(self, rec: Record) -> bytes:
        """The stream labels as JSON, cached per (origin, stream)."""
        ck = (id(rec.origin), rec.stream)
        hit = self._labels.get(ck)
        if hit is not None and hit[0] is rec.origin:
            return hit[1]
        if len(self._labels) > 4096:
            self._labels.clear()
        key = orjson.dumps(stream_labels(rec.origin, rec.stream), option=orjson.OPT_SORT_KEYS)
        self._labels[ck] = (rec.origin, key)
        return key

    def _value(self, rec: Record) -> list[object]:
        line = rec.text
        meta = {"container_id": rec.container_id, "image": rec.image}
        truncated = rec.truncated
        if self.max_line_bytes and len(line) * 4 > self.max_line_bytes:
            raw = line.encode()
            if len(raw) > self.max_line_bytes:
                line = raw[:self.max_line_bytes].decode("utf-8", "ignore")
                truncated = True
                self._counters["truncated_records"] += 1
        if rec.partial:
            meta["partial"] = "true"
        if truncated:
            meta["truncated"] = "true"
        if rec.parse_error:
            meta["parse_error"] = "true"
        return [str(rec.time_ns), line, {k: v for k, v in meta.items() if v}]


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace").strip()
