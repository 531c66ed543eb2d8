"""The HTTP delivery rules every sink follows, the collector's and the shipper's alike.

Kept in one place so both programs decide the same way: which answers are worth another
try (``retriable``), how long the server asked us to wait (``parse_retry_after``), how long
we wait between tries (``Backoff``), where credentials go (``split_userinfo`` takes them out
of the URL, ``basic_auth`` puts them in a header), how they are kept out of logs
(``redact``, ``redact_url``), whether a body is gzipped (``wants_gzip``) and the one error
for "this sink cannot be built from its options" (``SinkError``). Standard library only.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import random
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["GZIP_CHOICES", "RETRY_AFTER_CAP", "Backoff", "SinkError", "basic_auth",
           "parse_retry_after", "redact", "redact_url", "retriable", "split_userinfo",
           "wants_gzip"]

RETRY_AFTER_CAP = 300.0  # never sleep longer than this on a server's say-so


class SinkError(Exception):
    """A sink could not be built from its options (bad URL, missing option)."""

    def __init__(self, sink: str, reason: str) -> None:
        super().__init__(f"sink {sink}: {reason}")
        self.sink = sink
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter (AWS's "full jitter"), at least the
    server's Retry-After (itself capped at ``RETRY_AFTER_CAP``)."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.maximum, self.initial * 2 ** min(attempt - 1, 30))
        wait = random.uniform(0.0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, RETRY_AFTER_CAP))
        return wait


def retriable(status: int) -> bool:
    """Connection errors (0), timeouts, 429 and 5xx are worth retrying; other 4xx are not."""
    return status in (0, 408, 429) or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None if absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def redact_url(url: str) -> str:
    """``url`` without its userinfo, query and fragment (where secrets hide), for logs."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def split_userinfo(url: str) -> tuple[str, str, str]:
    """``http://u:p@host:8086/x/`` -> (``http://host:8086/x``, u, p): the base URL without
    userinfo, query or trailing ``/``, and the unquoted credentials ("" when absent).
    ValueError for anything but an http(s) URL with a host. Credentials must never travel
    in a URL we might log."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {redact(url, [parts.password or ''])}")
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    netloc = parts.netloc.rpartition("@")[2]
    base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return base, user, password


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


GZIP_CHOICES = ("auto", "always", "never")


def wants_gzip(url: str, mode: str = "auto") -> bool:
    """Whether to gzip request bodies to ``url``: ``always``/``never``, or ``auto``: only
    when the server is not on a loopback address (localhost, 127.0.0.0/8, ::1), since
    compression spends CPU on both ends to save bytes that cross a network (Telegraf's
    InfluxDB output does not compress by default at all). Names are not resolved."""
    if mode not in GZIP_CHOICES:
        raise ValueError(f"gzip must be one of {', '.join(GZIP_CHOICES)}: {mode!r}")
    if mode != "auto":
        return mode == "always"
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: assume it crosses a network
