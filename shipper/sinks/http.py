"""What the shipper's HTTP sinks (Loki, Elasticsearch) share: endpoint and credentials,
one aiohttp session, one POST, the retry verdict, and logging a failure once per outage.

The rules themselves (what is retriable, Retry-After, redaction) are the bottom layer's
(``formats.delivery``, the collector's too), so both programs treat a server alike. One difference
on purpose: a push answered 401/403/404 is retried here, since that is a configuration
problem rather than bad data, and dropping logs for it would lose them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from formats import delivery as http
from formats.delivery import basic_auth, parse_retry_after, redact_url
from shipper.sinks.base import HEALTH_KEYS, Result, Sink, SinkError

__all__ = ["HttpSink", "authorization", "read_secret", "redact_url", "retriable",
           "split_url", "verdict"]

T = TypeVar("T")


def retriable(status: int) -> bool:
    """Whether a request answered ``status`` may succeed later unchanged (0: no answer)."""
    return http.retriable(status) or status in (401, 403, 404)


def split_url(sink: str, url: str, form: str) -> tuple[str, str, str, str]:
    """(base URL without userinfo, query, user, password) of an http(s) ``url``; SinkError
    naming the expected ``form`` otherwise."""
    try:
        base, user, password = http.split_userinfo(url)
    except ValueError:
        raise SinkError(sink, f"URL must be {form}: {redact_url(url)!r}") from None
    return base, urlsplit(url).query, user, password


def authorization(sink: str, username: str | None, password: str | None,
                  scheme: str, token: str | None, token_name: str) -> dict[str, str]:
    """The ``Authorization`` header: ``<scheme> <token>`` or basic auth, not both."""
    if token and username:
        raise SinkError(sink, f"give either {token_name} or basic auth, not both")
    if token:
        return {"Authorization": f"{scheme} {token}"}
    if username:
        return {"Authorization": basic_auth(username, password or "")}
    return {}


def read_secret(sink: str, path: Path | None) -> str | None:
    """The content of a secret file (password, token), stripped; None without a file."""
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as e:
        raise SinkError(sink, f"cannot read secret file {str(path)!r}: {e.strerror}") from e


def verdict(acked: Sequence[bool], retry: Sequence[bool], after: float | None,
            reasons: list[str]) -> Result:
    """The ``Result`` of a batch from what happened to each record."""
    reason = "; ".join(reasons)[:4000]
    if all(acked):
        return Result.ok()
    if not any(acked) and all(retry):
        return Result.retry(after, reason)
    if not any(acked) and not any(retry):
        return Result.fail(reason)
    return Result.partial(list(acked), list(retry), after, reason)


class HttpSink(Sink):
    """A sink that POSTs bodies to one URL. Subclasses set ``server`` (the product, for
    messages) and ``request_name`` (what a request is called in logs: "pushes"...)."""

    server = "the server"
    request_name = "requests"

    def __init__(self, url: str, headers: dict[str, str], timeout: float,
                 counters: Sequence[str] = ()) -> None:
        self.url = url
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._failing = False
        self._counters = dict.fromkeys((*HEALTH_KEYS, "requests", *counters), 0.0)
        self._log = logging.getLogger(type(self).__module__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.url)!r})"

    def health(self) -> dict[str, float]:
        return dict(self._counters)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, body: bytes, decode: Callable[[bytes], T]
                       ) -> tuple[int, T | str, float | None]:
        """One POST: (status, the decoded answer, Retry-After); (0, why, None) when no
        answer came."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._counters["requests"] += 1
        try:
            async with self._session.post(self.url, data=body, headers=self._headers) as resp:
                answer = decode(await resp.read())
                return resp.status, answer, parse_retry_after(resp.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            return 0, f"no answer from {self.server}: {type(e).__name__}: {e}"[:500], None

    def _fail_once(self, status: int, text: str) -> None:
        """Log the first failure of a run of failures, not every retry."""
        if not self._failing:
            self._failing = True
            self._log.warning("%s %s unavailable (HTTP %s), will retry: %s", self.name,
                              redact_url(self.url), status or "-", text[:500])

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            self._log.info("%s %s accepting %s again", self.name, redact_url(self.url),
                           self.request_name)

    @staticmethod
    def _retry_rest(retry: list[bool], requests: Sequence[tuple[list[int], Any]]) -> None:
        """Mark every record of ``requests`` for retry (after one failed retriably, the
        later ones wait too, so entries never overtake each other)."""
        for indices, _ in requests:
            for i in indices:
                retry[i] = True
