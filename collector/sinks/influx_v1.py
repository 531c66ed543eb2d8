"""InfluxDB 1.x through its plain HTTP API: ``POST /write?db=&rp=&precision=ns``.

No client library: the 1.x API is one request, and owning it keeps the password in one
header (basic auth, never in a URL, a log line or an error message).
"""

from __future__ import annotations

import gzip
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from collector.sinks.buffer import LineSink, SendError
from formats.delivery import basic_auth, parse_retry_after, redact, split_userinfo, wants_gzip

__all__ = ["InfluxV1Sink", "V1Transport", "quote_ident", "server_message"]


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


class V1Transport:
    """POSTs line protocol to ``/write`` (gzipped unless ``gzip`` says not: see
    ``wants_gzip``); creates the database through ``/query``."""

    def __init__(
        self,
        url: str,
        db: str,
        rp: str = "",
        user: str = "",
        password: str = "",
        create_db: bool = True,
        timeout: float = 10.0,
        gzip: str = "auto",
    ) -> None:
        base, url_user, url_password = split_userinfo(url)
        self.gzip = wants_gzip(base, gzip)
        self.base = base
        self.db = db
        self.rp = rp
        self.user = user or url_user
        self.password = password or url_password
        self.create_db = create_db
        self.timeout = timeout
        params = {"db": db, "precision": "ns"}
        if rp:
            params["rp"] = rp
        self.write_url = f"{base}/write?{urllib.parse.urlencode(params)}"
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            self.headers["Content-Encoding"] = "gzip"
        if self.user or self.password:
            self.headers["Authorization"] = basic_auth(self.user, self.password)

    def __repr__(self) -> str:
        return f"V1Transport({self.base!r}, db={self.db!r}, user={self.user!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        auth = self.headers.get("Authorization", "").partition(" ")[2]
        return tuple(s for s in (self.password, auth) if s)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                message = server_message(exc.read())
            raise SendError(
                exc.code,
                redact(message or str(exc.reason), self.secrets),
                parse_retry_after(exc.headers.get("Retry-After")),
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise SendError(0, f"cannot reach {self.base}: {reason}") from None

    def prepare(self) -> None:
        """``CREATE DATABASE`` (a no-op when it exists) if allowed."""
        if not self.create_db:
            return
        body = urllib.parse.urlencode({"q": f"CREATE DATABASE {quote_ident(self.db)}"})
        headers = {k: v for k, v in self.headers.items() if k == "Authorization"}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        self._post(f"{self.base}/query", body.encode(), headers)

    def send(self, body: bytes) -> None:
        data = gzip.compress(body, compresslevel=1) if self.gzip else body
        try:
            self._post(self.write_url, data, self.headers)
        except SendError as exc:
            # The database was dropped (or the server wiped) since we created it.
            if exc.status == 404 and self.create_db and "database not found" in exc.message:
                self.prepare()
                self._post(self.write_url, data, self.headers)
                return
            raise

    def close(self) -> None:
        return None


class InfluxV1Sink(LineSink):
    """Samples and events into InfluxDB 1.x (``--sink influxdb-v1=URL``)."""

    name = "influxdb-v1"

    def __init__(
        self,
        url: str,
        db: str = "boxwatch",
        rp: str = "",
        user: str = "",
        password: str = "",
        create_db: bool = True,
        timeout: float = 10.0,
        gzip: str = "auto",
        **options: Any,
    ) -> None:
        transport = V1Transport(url, db, rp, user, password, create_db, timeout, gzip)
        super().__init__(transport, **options)
