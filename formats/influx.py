"""The InfluxDB 1.x write API as both programs speak it: ``POST /write?db=&rp=&precision=ns``
with line protocol, ``CREATE DATABASE`` through ``/query``, basic auth in a header.

No I/O here: ``V1Write`` builds the requests and reads the answers; the collector sends
them with urllib from its sender thread, the shipper with aiohttp from its event loop, so
both write, authenticate, compress, create the database and judge an answer the same way.
Credentials never appear in a URL, a log line or an error (``secrets`` lists what to
redact).
"""

from __future__ import annotations

import json
import urllib.parse

from formats.delivery import basic_auth, parse_retry_after, redact, split_userinfo, wants_gzip


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_message(body: bytes) -> str:
    """InfluxDB's ``{"error": "..."}``, or the body's first line."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:500] if text else ""
    if isinstance(doc, dict):
        return str(doc.get("error") or doc.get("message") or text)[:500]
    return text[:500]


class Refused(Exception):
    """The server answered a request with an error: the status, its message (redacted),
    its Retry-After in seconds (None if absent) and whether the database is missing."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @property
    def database_missing(self) -> bool:
        """InfluxDB 1.x lost the database (dropped, or the server wiped): create it again."""
        return self.status == 404 and "database not found" in self.message


class V1Write:
    """One database on one InfluxDB 1.x server. ``gzip``: ``auto`` (only off loopback),
    ``always`` or ``never`` (see ``formats.delivery.wants_gzip``); ValueError for a URL
    that is not http(s)."""

    def __init__(self, url: str, db: str, rp: str = "", user: str = "", password: str = "",
                 gzip: str = "auto") -> None:
        base, url_user, url_password = split_userinfo(url)
        self.base = base
        self.db = db
        self.rp = rp
        self.user = user or url_user
        self.password = password or url_password
        self.gzip = wants_gzip(base, gzip)
        params = {"db": db, "precision": "ns"}
        if rp:
            params["rp"] = rp
        self.write_url = f"{base}/write?{urllib.parse.urlencode(params)}"
        self.auth: dict[str, str] = {}
        if self.user or self.password:
            self.auth["Authorization"] = basic_auth(self.user, self.password)
        self.headers = {"Content-Type": "text/plain; charset=utf-8", **self.auth}
        if self.gzip:
            self.headers["Content-Encoding"] = "gzip"
        self.create_url = f"{base}/query"
        self.create_body = urllib.parse.urlencode(
            {"q": f"CREATE DATABASE {quote_ident(db)}"}).encode()
        self.create_headers = {**self.auth, "Content-Type": "application/x-www-form-urlencoded"}

    def __repr__(self) -> str:
        return f"V1Write({self.base!r}, db={self.db!r}, user={self.user!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        auth = self.auth.get("Authorization", "").partition(" ")[2]
        return tuple(s for s in (self.password, auth) if s)

    def body(self, lines: bytes) -> bytes:
        """What to POST to ``write_url`` for ``lines`` of line protocol."""
        if not self.gzip:
            return lines
        import gzip

        return gzip.compress(lines, compresslevel=1)

    def check(self, status: int, body: bytes, retry_after: str | None = None) -> None:
        """Nothing for a 2xx answer; ``Refused`` (message redacted) otherwise."""
        if status < 300:
            return
        message = redact(server_message(body) or f"HTTP {status}", self.secrets)
        raise Refused(status, message, parse_retry_after(retry_after))
