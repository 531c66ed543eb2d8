"""The v1 transport: InfluxDB 1.x through its plain HTTP API (``POST /write``), sent with
urllib from the sender thread.

The requests and what an answer means are the bottom layer's ``formats.influx.V1Write``,
which the shipper's InfluxDB sink speaks too; this module only carries them.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request

from collector.sinks.buffer import SendError
from formats.influx import Refused, V1Write, quote_ident, server_message

__all__ = ["V1Transport", "quote_ident", "server_message"]


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
        self.api = V1Write(url, db, rp, user, password, gzip)
        self.base = self.api.base
        self.db, self.user, self.password = self.api.db, self.api.user, self.api.password
        self.create_db = create_db
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"V1Transport({self.base!r}, db={self.db!r}, user={self.user!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.api.secrets

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                answer = exc.read()
            try:
                self.api.check(exc.code, answer, exc.headers.get("Retry-After"))
            except Refused as refused:
                raise SendError(refused.status, refused.message, refused.retry_after) from None
            raise SendError(exc.code, str(exc.reason)) from None  # an HTTPError below 300
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise SendError(0, f"cannot reach {self.base}: {reason}") from None

    def prepare(self) -> None:
        """``CREATE DATABASE`` (a no-op when it exists) if allowed."""
        if self.create_db:
            self._post(self.api.create_url, self.api.create_body, self.api.create_headers)

    def send(self, body: bytes) -> None:
        data = self.api.body(body)
        try:
            self._post(self.api.write_url, data, self.api.headers)
        except SendError as exc:
            # The database was dropped (or the server wiped) since we created it.
            if exc.status == 404 and self.create_db and "database not found" in exc.message:
                self.prepare()
                self._post(self.api.write_url, data, self.api.headers)
                return
            raise

    def close(self) -> None:
        return None
