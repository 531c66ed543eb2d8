"""The overview's data: every container the store knows (InfluxDB, any host) joined with
what the local collector sees right now, the last 5 minutes of CPU and memory for the
sparklines, and the firing alerts (Alertmanager's, plus OOM kills the collector recorded
in the last 15 minutes: its instant alerts, visible even without Alertmanager). A part
that is down leaves its columns empty and adds one message to ``errors``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from boxwatch.web.live import Tick
from boxwatch.web.sources import SourceDown, Sources

STORE_WINDOW = "7d"
SPARK_WINDOW = "5m"
SPARK_STEP = "10s"
OOM_WINDOW = "15m"


def _series_rows(series: list[dict[str, Any]]) -> list[tuple[dict[str, str], list[dict]]]:
    out = []
    for s in series:
        cols = s["columns"]
        out.append((s.get("tags") or {}, [dict(zip(cols, v, strict=True)) for v in s["values"]]))
    return out


async def store_containers(src: Sources, here: str = "") -> dict[str, dict[str, Any]]:
    """id -> row for every container with a state point in the store's window, on any
    host (``here`` is this host's name: its rows are ``local``)."""
    window = f"time > now() - {STORE_WINDOW}"
    series, starts, restarts, limits = await asyncio.gather(
        src.influx(f'SELECT last("running") AS "running" FROM "container_state" WHERE '
                   f'{window} GROUP BY "host", "container_name", "container_id", "image"'),
        src.influx(f'SELECT last("exit_code") FROM "container_events" WHERE ("action" = '
                   f"'start' OR \"action\" = 'restart') AND {window} GROUP BY "
                   f'"container_id"'),
        src.influx(f'SELECT count("exit_code") AS "n" FROM "container_events" WHERE '
                   f'"action" = \'restart\' AND {window} GROUP BY "container_id"'),
        src.influx(f'SELECT last("limit") AS "limit" FROM "container_mem" WHERE {window} '
                   f'GROUP BY "container_id"'))
    extra: dict[str, dict[str, Any]] = {}
    for key, found in (("started_at", starts), ("restarts", restarts), ("limit", limits)):
        for tags, values in _series_rows(found):
            v = values[-1] if values else {}
            extra.setdefault(tags.get("container_id", ""), {})[key] = (
                v.get("time", 0) / 1000 if key == "started_at" else v.get("n", v.get(key)))
    rows: dict[str, dict[str, Any]] = {}
    for tags, values in _series_rows(series):
        cid = tags.get("container_id", "")
        last = values[-1] if values else {}
        seen = (last.get("time") or 0) / 1000
        old = rows.get(cid)
        if old is not None and old["last_seen"] >= seen:
            continue
        rows[cid] = {"id": cid, "name": tags.get("container_name", ""),
                     "host": tags.get("host", ""), "image": tags.get("image", ""),
                     "state": "running" if last.get("running") and time.time() - seen < 30
                     else "exited", "last_seen": seen, "started_at": 0, "restarts": None,
                     "labels": {}, "local": tags.get("host", "") == here, "limit": 0}
        rows[cid].update(extra.get(cid, {}))
        if rows[cid]["started_at"] and rows[cid]["restarts"] is None:
            rows[cid]["restarts"] = 0  # its start is in the store, and no restart
        rows[cid]["limit"] = rows[cid]["limit"] or 0
    return rows


async def sparklines(src: Sources) -> dict[str, dict[str, list]]:
    """id -> {"t": [...], "cpu": [... % of a core], "mem": [... bytes]} at SPARK_STEP."""
    cpu, mem = await asyncio.gather(
        src.influx(f'SELECT non_negative_derivative(last("usage_total"), 1s) / 10000000 AS '
                   f'"cpu" FROM "container_cpu" WHERE time > now() - {SPARK_WINDOW} GROUP BY '
                   f'time({SPARK_STEP}), "container_id"'),
        src.influx(f'SELECT last("working_set") AS "mem" FROM "container_mem" WHERE time > '
                   f'now() - {SPARK_WINDOW} GROUP BY time({SPARK_STEP}), "container_id" '
                   f'fill(none)'))
    out: dict[str, dict[str, list]] = {}
    for key, series in (("cpu", cpu), ("mem", mem)):
        for tags, values in _series_rows(series):
            line = out.setdefault(tags.get("container_id", ""), {})
            pts = [v for v in values if v.get(key) is not None]
            line[key] = [[v["time"] / 1000, round(v[key], 3)] for v in pts]
    return out


async def alerts(src: Sources) -> tuple[list[dict[str, Any]], list[str]]:
    """Firing alerts, newest first, and the messages of the parts that did not answer."""
    found: list[dict[str, Any]] = []
    errors: list[str] = []
    am, oom = await asyncio.gather(src.alerts(), src.influx(
        f'SELECT "exit_code" FROM "container_events" WHERE "action" = \'oom_kill\' AND '
        f'time > now() - {OOM_WINDOW} GROUP BY "container_name", "host"'),
        return_exceptions=True)
    if isinstance(am, SourceDown):
        errors.append(str(am))
    elif isinstance(am, list):
        for a in am:
            labels = a.get("labels") or {}
            found.append({"source": "alertmanager", "name": labels.get("alertname", "?"),
                          "container": labels.get("name") or labels.get("container_name", ""),
                          "since": a.get("startsAt", ""),
                          "summary": (a.get("annotations") or {}).get("summary", "")})
    if isinstance(oom, SourceDown):
        errors.append(str(oom))
    elif isinstance(oom, list):
        for tags, values in _series_rows(oom):
            for v in values:
                found.append({"source": "collector", "name": "ContainerOOMKilled",
                              "container": tags.get("container_name", ""),
                              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                     time.gmtime(v["time"] / 1000)),
                              "summary": "killed by the kernel's OOM killer"})
    found.sort(key=lambda a: a["since"], reverse=True)
    return found, errors


def merge_local(rows: dict[str, dict[str, Any]], tick: Tick | None, here: str = "") -> None:
    """What the collector sees now wins over the store (state, uptime, restarts, labels)."""
    if tick is None:
        return
    for cid, s in tick.samples.items():
        row = rows.setdefault(cid, {"id": cid, "host": here, "last_seen": tick.time})
        row.update({"name": s.get("name", ""), "image": s.get("image", ""), "state": "running",
                    "started_at": s.get("started_at") or 0,
                    "restarts": s.get("restart_count"), "labels": s.get("labels") or {},
                    "local": True, "limit": (s.get("spec") or {}).get("memory_limit", 0),
                    "last_seen": tick.time})


async def snapshot(src: Sources, tick: Tick | None, here: str = "") -> dict[str, Any]:
    """Everything the overview shows on load; ``here`` is this host's name."""
    errors: list[str] = []
    stored, spark, (found, alert_errors) = await asyncio.gather(
        store_containers(src, here), sparklines(src), alerts(src), return_exceptions=True)
    rows: dict[str, dict[str, Any]] = {}
    for part in (stored, spark):
        if isinstance(part, SourceDown):
            errors.append(str(part))
        elif isinstance(part, BaseException):
            raise part
    if isinstance(stored, dict):
        rows = stored
    if tick is not None and tick.error:
        errors.append(tick.error)
    merge_local(rows, tick, here)
    return {"containers": sorted(rows.values(), key=lambda r: (r["name"], r["host"])),
            "spark": spark if isinstance(spark, dict) else {},
            "alerts": found, "errors": sorted(set(errors + alert_errors)), "now": time.time(),
            "host": here}


def compact(tick: Tick) -> dict[str, Any]:
    """One live tick for the overview: id -> [cpu %, working set, limit] (small on purpose:
    it goes to every open overview each second)."""
    v = {cid: [round(r["cpu"], 2), int(r["mem"]), int(r["limit"])]
         for cid, r in tick.rates.items()}
    v.update({cid: [round(c, 2), int(m), int(lim)] for cid, (c, m, lim) in tick.remote.items()})
    return {"t": round(tick.time, 3), "error": tick.error, "v": v}
