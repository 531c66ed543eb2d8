"""The InfluxDB sink, its flags, and building it from parsed options.

One sink (``InfluxSink``: line protocol, batching, gzip off loopback, retries, a bounded buffer that
drops the oldest) over two transports: ``influx_v1.V1Transport`` (plain ``/write``, InfluxDB 1.x)
and ``influx_v2.V2Transport`` (``influxdb-client``, InfluxDB 2.x/3.x/1.8+ and VictoriaMetrics).
``--sink influxdb-v1=URL`` / ``influxdb-v2=URL`` pick one (``InfluxV1Sink``, ``InfluxV2Sink``); so
does ``--influx-url`` with ``--influx-api``. Secrets can come from a credentials file
(``--influx-credentials``, netrc form, what ``boxwatch up`` writes) or the environment
(``BOXWATCH_INFLUX_PASSWORD``, ``BOXWATCH_INFLUX_TOKEN``) so they need not appear in a process
listing."""

from __future__ import annotations

import argparse
import os
from collections.abc import Collection
from typing import Any

from cgroupstats.model import ContainerRef, Sample
from collector.lineproto import Encoder
from collector.records import Event
from collector.sinks.base import Sink
from collector.sinks.buffer import Sender, Transport
from collector.sinks.influx_v1 import V1Transport
from formats.delivery import GZIP_CHOICES, Backoff, SinkError
from formats.influx import read_credentials
from formats.units import parse_duration

__all__ = ["InfluxSink", "InfluxV1Sink", "InfluxV2Sink", "add_arguments", "from_args"]


def duration(text: str | float | int) -> float:
    """Seconds from ``1.5``, ``500ms``, ``10s``, ``2m`` or ``1h`` (``formats.units``)."""
    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None


def _add(parser: Any, *names: str, **kw: Any) -> None:
    """``add_argument`` unless another module already registered the flag (the shared
    ``--batch-size`` / ``--buffer-max-points``)."""
    known = getattr(parser, "_option_string_actions", {})
    if any(n in known for n in names):
        return
    parser.add_argument(*names, **kw)


def add_arguments(parser: Any) -> None:
    """The InfluxDB flags (an ``argparse`` parser or group)."""
    env = os.environ
    _add(parser, "--influx-url", default=None,
         help="InfluxDB URL; enables the InfluxDB sink (e.g. http://127.0.0.1:8086)")
    _add(parser, "--influx-api", choices=("v1", "v2"), default="v2",
         help="v1: plain /write for InfluxDB 1.x; v2: influxdb-client (2.x/3.x/1.8+)")
    _add(parser, "--influx-db", default="boxwatch", help="v1 database")
    _add(parser, "--influx-rp", default="", help="v1 retention policy (default: the db's)")
    _add(parser, "--influx-user", default=env.get("BOXWATCH_INFLUX_USER", ""),
         help="v1 user (basic auth)")
    _add(parser, "--influx-password", default=env.get("BOXWATCH_INFLUX_PASSWORD", ""),
         help="v1 password (or $BOXWATCH_INFLUX_PASSWORD); never logged")
    _add(parser, "--influx-credentials", default="", metavar="FILE",
         help="file with the user and password ('default login USER password PASS', "
              "netrc form; the local stack's is <state_dir>/influxdb/credentials); wins over "
              "--influx-user/--influx-password, keeps the password out of argv and env")
    _add(parser, "--influx-org", default=env.get("BOXWATCH_INFLUX_ORG", ""), help="v2 org")
    _add(parser, "--influx-bucket", default="boxwatch", help="v2 bucket")
    _add(parser, "--influx-token", default=env.get("BOXWATCH_INFLUX_TOKEN", ""),
         help="v2 token (or $BOXWATCH_INFLUX_TOKEN); never logged")
    _add(parser, "--influx-create-db", action=argparse.BooleanOptionalAction, default=True,
         help="create the database (v1) or bucket (v2) when missing")
    _add(parser, "--influx-gzip", choices=GZIP_CHOICES, default="auto",
         help="gzip request bodies: auto = unless the server is on loopback (auto)")
    _add(parser, "--influx-timeout", type=duration, default=10.0, help="per request")
    _add(parser, "--influx-retry-max", type=duration, default=30.0,
         help="cap of the exponential backoff between retries")
    _add(parser, "--batch-size", type=int, default=5000, help="points per write request")
    _add(parser, "--buffer-max-points", type=int, default=100_000,
         help="points held while the server is unreachable; the oldest go first")


def _get(args: argparse.Namespace, name: str, default: Any) -> Any:
    value = getattr(args, name, None)
    return default if value is None else value


def common_options(args: argparse.Namespace) -> dict[str, Any]:
    """What both sinks take from the shared flags; flushes at least every ``--interval``."""
    batch = int(_get(args, "batch_size", 5000))
    max_points = int(_get(args, "buffer_max_points", 100_000))
    if batch < 1 or max_points < 1:
        raise SinkError("influxdb", f"batch size and buffer must be >= 1: {batch}, {max_points}")
    return {
        "batch_size": batch,
        "max_points": max_points,
        "flush_interval": duration(_get(args, "interval", 1.0)),
        "backoff": Backoff(maximum=duration(_get(args, "influx_retry_max", 30.0))),
        "timeout": duration(_get(args, "influx_timeout", 10.0)),
        "host": _get(args, "host", "") or None,  # the host tag (--host; default hostname)
    }


def build(kind: str, url: str, args: argparse.Namespace) -> Sink:
    """The sink of ``kind`` ("influxdb-v1"/"influxdb-v2") at ``url``; SinkError if unusable."""
    options = common_options(args)
    create = bool(_get(args, "influx_create_db", True))
    options["gzip"] = _get(args, "influx_gzip", "auto")
    options["categories"] = _get(args, "categories", None)
    user, password = _get(args, "influx_user", ""), _get(args, "influx_password", "")
    token = _get(args, "influx_token", "")
    try:
        if _get(args, "influx_credentials", ""):
            user, password = read_credentials(args.influx_credentials)
            token = token or f"{user}:{password}"  # 1.8+'s v2 API takes USER:PASSWORD
        if kind == "influxdb-v1":
            return InfluxV1Sink(
                url, db=_get(args, "influx_db", "boxwatch"), rp=_get(args, "influx_rp", ""),
                user=user, password=password, create_db=create, **options,
            )
        if kind == "influxdb-v2":
            return InfluxV2Sink(
                url, org=_get(args, "influx_org", ""),
                bucket=_get(args, "influx_bucket", "boxwatch"),
                token=token, create_bucket=create, **options,
            )
    except ValueError as exc:
        raise SinkError(kind, str(exc)) from None
    raise SinkError(kind, "unknown InfluxDB sink (known: influxdb-v1, influxdb-v2)")


def from_args(args: argparse.Namespace) -> list[Sink]:
    """The InfluxDB sink ``--influx-url``/``--influx-api`` ask for, or none: the flag's
    spelling of ``--sink influxdb-<api>=URL``."""
    url = getattr(args, "influx_url", None)
    if not url:
        return []
    kind = InfluxV1Sink if _get(args, "influx_api", "v2") == "v1" else InfluxV2Sink
    return [kind.from_args(url, args)]


class InfluxSink(Sink):
    """The InfluxDB sink: encodes samples and events as line protocol and leaves delivery
    to a ``Sender`` over a v1 or v2 transport. ``sender_options`` are the ``Sender``'s
    (batch_size, flush_interval, max_points, backoff, close_timeout); the transport's
    secrets are redacted from every message."""

    name = "influxdb"

    def __init__(self, transport: Transport, host: str | None = None,
                 categories: Collection[str] | None = None, **sender_options: Any) -> None:
        """``categories``: cAdvisor's metric categories (the measurements of the others
        are not written); None for the default set."""
        self.url = transport.base
        self.encoder = Encoder(host, categories)
        sender_options.setdefault("secrets", transport.secrets)
        self.sender = Sender(self.name, transport, **sender_options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @classmethod
    def from_args(cls, url: str, args: argparse.Namespace) -> Sink:
        """``--sink KIND=URL`` with the ``--influx-*`` flags."""
        return build(cls.name, url, args)

    def write(self, samples: list[Sample]) -> None:
        """Encode this interval's samples and queue them; never blocks on the server."""
        encode = self.encoder.sample
        lines: list[str] = []
        for s in samples:
            lines.extend(encode(s))
        self.sender.push(lines)

    def write_events(self, events: list[Event]) -> None:
        """Queue ``container_events`` points."""
        self.sender.push(
            [self.encoder.event(e.time_ns, e.ref, e.action, e.exit_code) for e in events]
        )

    def write_states(self, refs: list[ContainerRef], time_ns: int) -> None:
        """Queue one ``container_state`` point per container whose state says running."""
        if refs:
            self.sender.push([self.encoder.state(ref, time_ns) for ref in refs])

    def health(self) -> dict[str, float]:
        return self.sender.health()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every buffered point was sent (True) or ``timeout`` passed."""
        return self.sender.flush(timeout)

    def close(self) -> None:
        self.sender.close()


class InfluxV1Sink(InfluxSink):
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


class InfluxV2Sink(InfluxSink):
    """Samples and events through the v2 write API (``--sink influxdb-v2=URL``)."""

    name = "influxdb-v2"

    def __init__(
        self,
        url: str,
        org: str = "",
        bucket: str = "boxwatch",
        token: str = "",
        create_bucket: bool = True,
        timeout: float = 10.0,
        gzip: str = "auto",
        **options: Any,
    ) -> None:
        from collector.sinks.influx_v2 import V2Transport  # influxdb-client: ~150 ms

        transport = V2Transport(url, org, bucket, token, create_bucket, timeout, gzip)
        super().__init__(transport, **options)
