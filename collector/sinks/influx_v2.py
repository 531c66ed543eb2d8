"""The v2 transport: InfluxDB's v2 write API (InfluxDB 2.x/3.x, 1.8+, VictoriaMetrics) via
``influxdb-client``.

Only the client's synchronous write is used: buffering, batching and retries are ours
(``buffer.Sender``), so both sinks behave alike and the client never retries behind our
back. The token lives in the client's Authorization header and is redacted from every
message we log or raise.
"""

from __future__ import annotations

import logging

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from collector.sinks.buffer import SendError
from formats.delivery import parse_retry_after, redact, split_userinfo, wants_gzip

log = logging.getLogger(__name__)

# Answers of a server without the buckets API (VictoriaMetrics: 400, InfluxDB 1.8: 404).
NO_BUCKET_API = (400, 404, 405, 501)


def _message(exc: InfluxDBError) -> str:
    message = exc.message
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    text = str(message or getattr(exc, "reason", "") or "").strip()
    return text.splitlines()[0][:500] if text else ""


class V2Transport:
    """Writes through ``WriteApi.write`` (gzipped by the client unless ``gzip`` says not:
    see ``wants_gzip``); ensures the bucket."""

    def __init__(
        self,
        url: str,
        org: str,
        bucket: str,
        token: str = "",
        create_bucket: bool = True,
        timeout: float = 10.0,
        gzip: str = "auto",
    ) -> None:
        base, _, _ = split_userinfo(url)
        self.base = base
        self.org = org
        self.bucket = bucket
        self.token = token
        self.create_bucket = create_bucket
        self.client = InfluxDBClient(
            url=base, token=token, org=org, timeout=int(timeout * 1000),
            enable_gzip=wants_gzip(base, gzip),
            retries=False,
        )
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)

    def __repr__(self) -> str:
        return f"V2Transport({self.base!r}, org={self.org!r}, bucket={self.bucket!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.token,) if self.token else ()

    def _error(self, exc: Exception) -> SendError:
        """The client's exception as a redacted SendError."""
        if isinstance(exc, InfluxDBError) and getattr(exc, "status", None):
            return SendError(
                int(exc.status),
                redact(_message(exc), self.secrets),
                parse_retry_after(exc.retry_after),
            )
        return SendError(0, redact(f"cannot reach {self.base}: {exc}", self.secrets))

    def prepare(self) -> None:
        """Create the bucket if it is missing and allowed; a server without the buckets
        API (VictoriaMetrics, InfluxDB 1.8) is fine: it writes without one."""
        if not self.create_bucket:
            return
        api = self.client.buckets_api()
        try:
            if api.find_bucket_by_name(self.bucket) is None:
                api.create_bucket(bucket_name=self.bucket, org=self.org)
                log.info("created bucket %s in org %s", self.bucket, self.org)
        except (InfluxDBError, urllib3.exceptions.HTTPError, OSError) as exc:
            err = self._error(exc)
            if err.status in NO_BUCKET_API:
                log.info("%s has no buckets API (HTTP %d): writing without creating %s",
                         self.base, err.status, self.bucket)
                return
            raise err from None

    def send(self, body: bytes) -> None:
        try:
            self.write_api.write(
                bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.NS
            )
        except (InfluxDBError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        self.write_api.close()
        self.client.close()
