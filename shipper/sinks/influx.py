"""Log records into InfluxDB as line protocol: ``--sink influxdb=URL``.

Measurement ``container_logs``; tags ``host``, ``container_name``, ``stream`` (and
``label_<key>`` for whitelisted labels, as the collector tags its series); fields
``message``, ``container_id``, ``image``, ``offset`` (integer) and ``partial`` /
``truncated`` / ``parse_error`` when true; time in ns. Escaping is the bottom layer's
(``formats.lineproto``), the collector's too, so both write the same dialect.

InfluxDB keeps one point per (series, timestamp): two entries of one stream stamped in
the same nanosecond would overwrite each other, so a later one is nudged forward by 1 ns
(as Fluent Bit's influx output does with its sequence tag, without the extra series).
The nudges of a batch are computed from the state before it and kept only once the batch
is accepted, so a retried batch is byte-identical and overwrites its earlier attempt.

Two APIs, as in the collector: v1 (``POST /write?db=&rp=&precision=ns``, InfluxDB 1.x, gzip, basic
auth; the requests are ``formats.influx.V1Write``, the collector's) over aiohttp, and v2 through
``influxdb-client``'s asyncio client (InfluxDB 2.x/3.x/1.8+, VictoriaMetrics). ``influxdb=URL``
picks v2 when an org, bucket or token is given (flags or ``?org=&bucket=`` in the URL), v1
otherwise; ``influxdb-v1`` and ``influxdb-v2`` force one. 429/5xx and unreachable servers are
retried (the pipeline backs off); any other 4xx rejects the batch (InfluxDB's message is logged and
counted)."""

from __future__ import annotations

import os
import urllib.parse
from argparse import ArgumentParser, Namespace
from typing import Any

from formats.delivery import parse_retry_after, redact, retriable, split_userinfo
from formats.influx import V1Write, read_credentials, server_message
from formats.lineproto import escape_string, tag_set
from shipper.sinks.base import (
    PARSE_ERROR,
    PARTIAL,
    TRUNCATED,
    Origin,
    Record,
    Result,
    Sink,
    SinkError,
)

MEASUREMENT = "container_logs"
MAX_SERIES_KEPT = 65536  # last timestamps remembered for the 1 ns nudge


def add_arguments(parser: ArgumentParser) -> None:
    env = os.environ
    parser.add_argument("--influx-db", default="logs", help="influxdb v1: database")
    parser.add_argument("--influx-rp", default="", help="influxdb v1: retention policy")
    parser.add_argument("--influx-user", default=env.get("BOXWATCH_INFLUX_USER", ""),
                        help="influxdb v1: user (basic auth)")
    parser.add_argument("--influx-password", default=env.get("BOXWATCH_INFLUX_PASSWORD", ""),
                        help="influxdb v1: password (or $BOXWATCH_INFLUX_PASSWORD)")
    parser.add_argument("--influx-credentials", default="", metavar="FILE",
                        help="influxdb v1: file with the user and password ('default login "
                             "USER password PASS', netrc form, what `boxwatch up` writes); "
                             "wins over --influx-user/--influx-password")
    parser.add_argument("--influx-org", default=env.get("BOXWATCH_INFLUX_ORG", ""),
                        help="influxdb v2: org")
    parser.add_argument("--influx-bucket", default="", help="influxdb v2: bucket (default logs)")
    parser.add_argument("--influx-token", default=env.get("BOXWATCH_INFLUX_TOKEN", ""),
                        help="influxdb v2: token (or $BOXWATCH_INFLUX_TOKEN)")
    parser.add_argument("--influx-timeout", type=float, default=10.0,
                        help="influxdb: seconds per request")
    parser.add_argument("--influx-gzip", action="store_true",
                        help="influxdb: gzip request bodies (saves network, costs CPU)")


def _tags(o: Origin, stream: str) -> str:
    pairs = [("host", o.host), ("container_name", o.container_name), ("stream", stream)]
    pairs += [(f"label_{k}", v) for k, v in o.labels.items()]
    return tag_set(pairs)


class Encoder:
    """Records -> line protocol, with the per-series 1 ns nudge described above."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}  # series (tag string) -> last timestamp written
        self._tags: dict[tuple[int, str], tuple[Origin, str, str]] = {}

    def _prefix(self, o: Origin, stream: str) -> tuple[str, str]:
        key = (id(o), stream)
        hit = self._tags.get(key)
        if hit is None or hit[0] is not o:
            if len(self._tags) > 8192:
                self._tags.clear()
            tags = _tags(o, stream)
            fixed = (f'container_id="{escape_string(o.container_id)}",'
                     f'image="{escape_string(o.image)}",')
            hit = self._tags[key] = (o, MEASUREMENT + tags, fixed)
        return hit[1], hit[2]

    def encode(self, batch: list[Record]) -> tuple[bytes, dict[str, int]]:
        """The body, and the last-timestamp updates to keep if it is accepted."""
        last = self.last
        new: dict[str, int] = {}
        lines = []
        for r in batch:
            series, fixed = self._prefix(r.origin, r.stream)
            ts = r.time_ns
            prev = new.get(series)
            if prev is None:
                prev = last.get(series)
            if prev is not None and ts <= prev:
                ts = prev + 1
            new[series] = ts
            flags = ""
            if r.flags:
                flags = "".join(s for bit, s in ((PARTIAL, ",partial=true"),
                                                 (TRUNCATED, ",truncated=true"),
                                                 (PARSE_ERROR, ",parse_error=true"))
                                if r.flags & bit)
            lines.append(f'{series} {fixed}message="{escape_string(r.text)}",'
                         f"offset={r.offset}i{flags} {ts}")
        lines.append("")
        return "\n".join(lines).encode("utf-8", "replace"), new

    def commit(self, new: dict[str, int]) -> None:
        if len(self.last) + len(new) > MAX_SERIES_KEPT:
            self.last.clear()
        self.last.update(new)


class InfluxSink(Sink):
    """``container_logs`` points through the v1 or v2 write API."""

    name = "influxdb"
    API: str | None = None  # the API from_args uses; None: picked from the options

    def __init__(self, url: str, api: str = "v1", db: str = "logs", rp: str = "",
                 user: str = "", password: str = "", org: str = "", bucket: str = "logs",
                 token: str = "", timeout: float = 10.0, use_gzip: bool = False) -> None:
        try:
            self.base, url_user, url_password = split_userinfo(url)
        except ValueError as exc:
            raise SinkError("influxdb", str(exc)) from None
        if api not in ("v1", "v2"):
            raise SinkError("influxdb", f"unknown API {api!r} (v1 or v2)")
        self.api, self.db, self.rp, self.org, self.bucket = api, db, rp, org, bucket
        self.user = user or url_user
        self.password = password or url_password
        # the v1 requests, as the collector makes them (formats.influx)
        self.v1 = V1Write(self.base, db, rp, self.user, self.password,
                          "always" if use_gzip else "never")
        self.token = token
        self.timeout = timeout
        self.use_gzip = use_gzip
        self.encoder = Encoder()
        self.counters = {"sent_batches": 0.0, "sent_records": 0.0, "errors": 0.0}
        self._session: Any = None
        self._client: Any = None
        self._db_ready = False

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> Sink:
        """``--sink KIND=URL`` and the ``--influx-*`` flags; options in the URL's query
        (``?org=&bucket=&token=&db=&rp=&u=&p=&api=``) win over the flags."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        url = urllib.parse.urlsplit(url)._replace(query="").geturl()

        def opt(key: str, flag: str, default: str = "") -> str:
            return query.get(key) or getattr(args, flag, None) or default

        org, bucket, token = opt("org", "influx_org"), opt("bucket", "influx_bucket"), \
            opt("token", "influx_token")
        api = cls.API or query.get("api") or ("v2" if org or bucket or token else "v1")
        user, password = opt("u", "influx_user"), opt("p", "influx_password")
        if getattr(args, "influx_credentials", None):
            try:
                user, password = read_credentials(args.influx_credentials)
            except ValueError as exc:
                raise SinkError("influxdb", str(exc)) from None
        return cls(url, api, db=opt("db", "influx_db", "logs"), rp=opt("rp", "influx_rp"),
                   user=user, password=password,
                   org=org, bucket=bucket or "logs", token=token,
                   timeout=float(getattr(args, "influx_timeout", 10.0) or 10.0),
                   use_gzip=bool(getattr(args, "influx_gzip", False)))

    @property
    def _secrets(self) -> list[str]:
        return [self.password, self.token]

    async def send(self, batch: list[Record]) -> Result:
        body, new = self.encoder.encode(batch)
        try:
            if self.api == "v1":
                result = await self._send_v1(body)
            else:
                result = await self._send_v2(body)
        except Exception as exc:  # unreachable, reset, timeout: all worth another try
            result = Result.retry(None, redact(f"{self.base}: {type(exc).__name__}: {exc}",
                                               self._secrets))
        if result.kind == "ok":
            self.encoder.commit(new)
            self.counters["sent_batches"] += 1
            self.counters["sent_records"] += len(batch)
        else:
            self.counters["errors"] += 1
        return result

    # --- v1 -------------------------------------------------------------------------------

    async def _http(self) -> Any:
        if self._session is None:
            import aiohttp
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def _send_v1(self, body: bytes) -> Result:
        """The requests of ``formats.influx.V1Write`` (the collector's too), over aiohttp."""
        session = await self._http()
        write = self.v1
        if not self._db_ready:
            async with session.post(write.create_url, data=write.create_body,
                                    headers=write.create_headers) as resp:
                await resp.read()
                if resp.status < 300:
                    self._db_ready = True
        async with session.post(write.write_url, data=write.body(body),
                                headers=write.headers) as resp:
            text = server_message(await resp.read())
            return self._verdict(resp.status, text, resp.headers.get("Retry-After"))

    def _verdict(self, status: int, text: str, retry_after: str | None) -> Result:
        if status < 300:
            return Result.ok()
        message = redact(f"HTTP {status}: {text.strip()}", self._secrets)
        if status == 404 and "database not found" in text:
            self._db_ready = False
            return Result.retry(None, message)
        if retriable(status):
            return Result.retry(parse_retry_after(retry_after), message)
        return Result.fail(message)

    # --- v2 -------------------------------------------------------------------------------

    async def _send_v2(self, body: bytes) -> Result:
        from influxdb_client.client.exceptions import InfluxDBError

        if self._client is None:
            from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
            self._client = InfluxDBClientAsync(url=self.base, token=self.token, org=self.org,
                                               timeout=int(self.timeout * 1000),
                                               enable_gzip=self.use_gzip)
        try:
            await self._client.write_api().write(bucket=self.bucket, org=self.org, record=body)
        except InfluxDBError as exc:
            status = int(getattr(exc, "status", 0) or 0)
            if not status:
                raise
            return self._verdict(status, str(exc.message or ""), getattr(exc, "retry_after", None))
        return Result.ok()

    def health(self) -> dict[str, float]:
        return dict(self.counters)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._client is not None:
            await self._client.close()
            self._client = None


class InfluxV1Sink(InfluxSink):
    """``--sink influxdb-v1=URL``: the v1 API whatever the flags say."""

    name = "influxdb-v1"
    API = "v1"


class InfluxV2Sink(InfluxSink):
    """``--sink influxdb-v2=URL``: influxdb-client's v2 API."""

    name = "influxdb-v2"
    API = "v2"
