"""The container page's chart data, as columns uPlot draws directly (``t`` in seconds,
one list per line): the last minutes at 1 s from the collector's history, a longer range
from InfluxDB downsampled in the query (``GROUP BY time``), and the container's events.

Lines: ``cpu`` and ``throttled`` (% of one core), ``mem`` (working set), ``peak`` and
``limit`` (bytes), ``rx``/``tx`` and ``read``/``write`` (bytes per second), ``pids``."""

from __future__ import annotations

import asyncio
from typing import Any

from boxwatch.web.live import rates
from boxwatch.web.sources import Sources, string

LINES = ("cpu", "throttled", "mem", "peak", "limit", "rx", "tx", "read", "write", "pids")
# range -> GROUP BY step: about 360 points whatever the range
RANGES = {"1h": "10s", "6h": "1m", "24h": "4m", "7d": "30m"}


def seconds(rng: str) -> float:
    """"5m", "1h", "7d" as seconds."""
    return float(rng[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[rng[-1]]


class RangeError(ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"range must be one of {', '.join(RANGES)}, got {value!r}")


def columns(points: list[dict[str, float]]) -> dict[str, list[float | None]]:
    cols: dict[str, list[float | None]] = {"t": [p["t"] for p in points]}
    for line in LINES:
        cols[line] = [p.get(line) for p in points]
    return cols


def from_history(detail: dict[str, Any]) -> dict[str, Any]:
    """The collector's rows (absolute counters, oldest first) as per-second columns."""
    latest = detail.get("latest") or {}
    limit = (latest.get("spec") or {}).get("memory_limit", 0)
    peak = (latest.get("memory") or {}).get("max_usage", 0)
    points, before = [], None
    for row in detail.get("history") or []:
        now = {"t": row["timestamp_ns"] / 1e9, "cpu_ns": row["cpu_usage_ns"],
               "throttled_ns": row["cpu_throttled_ns"], "rx": row["rx_bytes"],
               "tx": row["tx_bytes"], "read": row["blkio_read_bytes"],
               "write": row["blkio_write_bytes"], "mem": row["memory_working_set"],
               "peak": peak, "limit": limit, "pids": row["pids"]}
        r = rates(now, before)
        if r is not None:
            points.append(r)
        before = now
    return columns(points)


def _by_time(series: list[dict[str, Any]], into: dict[float, dict[str, float]]) -> None:
    """Rows of every series into ``into[t]``; the same line in several series (one per
    interface or device) is summed."""
    for s in series:
        cols = s["columns"]
        for values in s["values"]:
            row = dict(zip(cols, values, strict=True))
            point = into.setdefault(row.pop("time") / 1000, {})
            for key, v in row.items():
                if v is not None:
                    point[key] = point.get(key, 0) + v


async def from_store(src: Sources, cid: str, rng: str, step: str = "") -> dict[str, Any]:
    """``rng`` back from now, downsampled by InfluxDB to RANGES[rng] steps; ``step="raw"``
    is every sample, rates between consecutive samples (another host's 5 minutes and its
    live points: exact whatever the jitter of its collector, which 1 s buckets are not)."""
    step = step or RANGES.get(rng, "")
    if not step:
        raise RangeError(rng)
    where = f'"container_id" = {string(cid)} AND time > now() - {rng}'
    raw = step == "raw"
    group = "" if raw else f"GROUP BY time({step})"
    fill = "" if raw else "fill(none)"

    def by(tag: str) -> str:
        return f'GROUP BY "{tag}"' if raw else f'{group}, "{tag}"'

    def rate(field: str, name: str, scale: str = "") -> str:
        arg = f'"{field}"' if raw else f'max("{field}")'
        return f'non_negative_derivative({arg}, 1s){scale} AS "{name}"'

    def top(field: str, name: str) -> str:
        return f'"{field}" AS "{name}"' if raw else f'max("{field}") AS "{name}"'

    statements = [
        f'SELECT {rate("usage_total", "cpu", " / 10000000")}, '
        f'{rate("throttled_time", "throttled", " / 10000000")} FROM "container_cpu" '
        f"WHERE {where} {group} {fill}",
        f'SELECT {top("working_set", "mem")}, {top("max_usage", "peak")}, '
        f'{top("limit", "limit")} FROM "container_mem" WHERE {where} {group} {fill}',
        f'SELECT {rate("rx_bytes", "rx")}, {rate("tx_bytes", "tx")} FROM "container_net" '
        f'WHERE {where} {by("interface")} {fill}',
        f'SELECT {rate("read_bytes", "read")}, {rate("write_bytes", "write")} FROM '
        f'"container_blkio" WHERE {where} {by("device")} {fill}',
        f'SELECT {top("current", "pids")} FROM "container_pids" WHERE {where} {group} {fill}',
    ]
    results = await asyncio.gather(*(src.influx(s) for s in statements))
    points: dict[float, dict[str, float]] = {}
    for series in results:
        _by_time(series, points)
    return columns([{"t": t, **points[t]} for t in sorted(points)])


async def events(src: Sources, cid: str, rng: str) -> list[dict[str, Any]]:
    """The container's events in the range, oldest first: {t, action, exit_code}."""
    series = await src.influx(
        f'SELECT "exit_code" FROM "container_events" WHERE "container_id" = {string(cid)} '
        f'AND time > now() - {rng} GROUP BY "action"')
    out = []
    for s in series:
        action = (s.get("tags") or {}).get("action", "")
        for t, code in s["values"]:
            out.append({"t": t / 1000, "action": action, "exit_code": code})
    out.sort(key=lambda e: e["t"])
    return out
