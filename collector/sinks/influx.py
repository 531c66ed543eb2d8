"""InfluxDB sinks: the collector's flags for them and building them from parsed options.

Two backends behind one behaviour (batching, gzip off loopback, retries, a bounded buffer that drops
the oldest): ``InfluxV1Sink`` (plain ``/write``, InfluxDB 1.x) and ``InfluxV2Sink``
(``influxdb-client``, InfluxDB 2.x/3.x/1.8+ and VictoriaMetrics). Secrets can come from
the environment (``BOXWATCH_INFLUX_PASSWORD``, ``BOXWATCH_INFLUX_TOKEN``) so they need not
appear in a process listing.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from collector.sinks.base import Sink
from collector.sinks.influx_v1 import InfluxV1Sink
from collector.sinks.influx_v2 import InfluxV2Sink
from formats.delivery import GZIP_CHOICES, Backoff, SinkError

__all__ = ["KINDS", "InfluxV1Sink", "InfluxV2Sink", "add_arguments", "from_args"]

KINDS: dict[str, type[Sink]] = {"influxdb-v1": InfluxV1Sink, "influxdb-v2": InfluxV2Sink}
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str | float | int) -> float:
    """Seconds from ``1.5``, ``500ms``, ``10s``, ``2m`` or ``1h``."""
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


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
    }


def build(kind: str, url: str, args: argparse.Namespace) -> Sink:
    """The sink of ``kind`` ("influxdb-v1"/"influxdb-v2") at ``url``; SinkError if unusable."""
    options = common_options(args)
    create = bool(_get(args, "influx_create_db", True))
    options["gzip"] = _get(args, "influx_gzip", "auto")
    try:
        if kind == "influxdb-v1":
            return InfluxV1Sink(
                url, db=_get(args, "influx_db", "boxwatch"), rp=_get(args, "influx_rp", ""),
                user=_get(args, "influx_user", ""), password=_get(args, "influx_password", ""),
                create_db=create, **options,
            )  # fmt: skip
        if kind == "influxdb-v2":
            return InfluxV2Sink(
                url, org=_get(args, "influx_org", ""), bucket=_get(args, "influx_bucket", "boxwatch"),
                token=_get(args, "influx_token", ""), create_bucket=create, **options,
            )  # fmt: skip
    except ValueError as exc:
        raise SinkError(kind, str(exc)) from None
    raise SinkError(kind, f"unknown InfluxDB sink (known: {', '.join(KINDS)})")


def from_args(args: argparse.Namespace) -> list[Sink]:
    """The InfluxDB sink ``--influx-url``/``--influx-api`` ask for, or none."""
    url = getattr(args, "influx_url", None)
    if not url:
        return []
    return [build(f"influxdb-{_get(args, 'influx_api', 'v2')}", url, args)]

