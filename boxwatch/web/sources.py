"""The parts of the stack the web UI reads, as small async clients: the collector's JSON
API (latest sample and the last minutes at 1 s), InfluxDB (everything the store knows, in
InfluxQL) and Alertmanager (firing alerts). Each failure becomes one ``SourceDown`` naming
the part, which pages show as a message instead of a broken view."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

TIMEOUT = aiohttp.ClientTimeout(total=10)


class SourceDown(Exception):
    """A part of the stack did not answer usefully; ``str()`` is the page's message."""

    def __init__(self, part: str, why: str) -> None:
        super().__init__(f"{part} unavailable: {why}")
        self.part = part


class Sources:
    """One HTTP session shared by every request; URLs "" mean "not configured"."""

    def __init__(self, collector_url: str, influx_url: str, metrics_db: str, logs_db: str,
                 alertmanager_url: str, influx_auth: dict[str, str] | None = None) -> None:
        self.collector_url = collector_url.rstrip("/")
        self.influx_url = influx_url.rstrip("/")
        self.metrics_db, self.logs_db = metrics_db, logs_db
        self.alertmanager_url = alertmanager_url.rstrip("/")
        self.influx_auth = influx_auth or {}  # the Authorization header, never logged
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, part: str, base: str, path: str,
                   params: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> Any:
        if not base:
            raise SourceDown(part, "not configured")
        try:
            async with self.session.get(base + path, params=params, headers=headers) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    text = body.decode("utf-8", "replace").strip()[:200]
                    raise SourceDown(part, f"HTTP {resp.status} {text}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SourceDown(part, f"cannot reach {base} ({type(exc).__name__})") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SourceDown(part, f"{base}{path} did not answer JSON") from None

    async def latest(self) -> list[dict[str, Any]]:
        """The collector's newest sample of every container it watches."""
        return list(await self._get("collector", self.collector_url, "/api/v1/containers"))

    async def detail(self, key: str) -> dict[str, Any]:
        """One container's newest sample and its 1 s history (oldest first)."""
        return dict(await self._get("collector", self.collector_url,
                                    f"/api/v1/containers/{quote(key, safe='')}"))

    async def influx(self, statement: str, db: str | None = None) -> list[dict[str, Any]]:
        """The series of one InfluxQL statement (epoch ms)."""
        doc = await self._get("InfluxDB", self.influx_url, "/query",
                              {"db": db or self.metrics_db, "q": statement, "epoch": "ms"},
                              self.influx_auth)
        result = (doc.get("results") or [{}])[0]
        if "error" in result:
            raise SourceDown("InfluxDB", str(result["error"]))
        return list(result.get("series") or [])

    async def alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's active, unsilenced alerts."""
        return list(await self._get("Alertmanager", self.alertmanager_url, "/api/v2/alerts",
                                    {"active": "true", "silenced": "false",
                                     "inhibited": "false"}))


def string(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
