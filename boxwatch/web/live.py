"""The one poller of the collector's newest samples, shared by every open page.

Each tick (1 s, only while someone listens) it fetches ``/api/v1/containers`` once,
derives rates from the previous sample of each container (CPU % of one core, throttled %,
bytes per second) and hands the same :class:`Tick` to every subscriber's queue. A slow
page drops ticks instead of growing memory; one fetch serves any number of pages.

Containers of other hosts have no collector here: every ``STORE_EVERY`` the same poller
asks InfluxDB once for their newest CPU rate and memory (``Tick.remote``), so their
overview rows move too, a few seconds behind."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from boxwatch.web.sources import SourceDown, Sources, string

QUEUE_SIZE = 8
STORE_EVERY = 5.0


def totals(sample: dict[str, Any]) -> dict[str, float]:
    """The counters a chart needs from one collector sample (sums over devices/links)."""
    net = sample.get("network") or {}
    io = sample.get("blkio") or {}
    mem, cpu = sample["memory"], sample["cpu"]
    return {
        "t": sample["timestamp_ns"] / 1e9,
        "cpu_ns": cpu.get("usage_ns", 0), "throttled_ns": cpu.get("throttled_ns", 0),
        "rx": sum(n.get("rx_bytes", 0) for n in net.values()),
        "tx": sum(n.get("tx_bytes", 0) for n in net.values()),
        "read": sum(d.get("read_bytes", 0) for d in io.values()),
        "write": sum(d.get("write_bytes", 0) for d in io.values()),
        "mem": mem.get("working_set", 0), "peak": mem.get("max_usage", 0),
        "limit": (sample.get("spec") or {}).get("memory_limit", 0),
        "pids": (sample.get("pids") or {}).get("current", 0),
    }


def rates(now: dict[str, float], before: dict[str, float] | None) -> dict[str, float] | None:
    """Per-second rates between two ``totals`` (None without an earlier sample)."""
    if before is None or now["t"] <= before["t"]:
        return None
    dt = now["t"] - before["t"]

    def rate(key: str) -> float:
        return max(0.0, (now[key] - before[key]) / dt)

    return {"t": now["t"], "cpu": rate("cpu_ns") / 1e7, "throttled": rate("throttled_ns") / 1e7,
            "rx": rate("rx"), "tx": rate("tx"), "read": rate("read"), "write": rate("write"),
            "mem": now["mem"], "peak": now["peak"], "limit": now["limit"], "pids": now["pids"]}


@dataclass
class Tick:
    """What one poll saw: samples by id, their rates (when derivable) or the error."""

    time: float
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str = ""
    remote: dict[str, list[float]] = field(default_factory=dict)  # id -> [cpu, mem, limit]


class Hub:
    def __init__(self, sources: Sources, interval: float = 1.0, host: str = "") -> None:
        self.sources = sources
        self.interval = interval
        self.host = host
        self._store_due = 0.0
        self.subscribers: set[asyncio.Queue[Tick]] = set()
        self.last: Tick | None = None
        self._before: dict[str, dict[str, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    def subscribe(self) -> asyncio.Queue[Tick]:
        q: asyncio.Queue[Tick] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return q

    def unsubscribe(self, q: asyncio.Queue[Tick]) -> None:
        self.subscribers.discard(q)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self.subscribers:
            started = time.monotonic()
            if started >= self._store_due:
                self._store_due = started + STORE_EVERY
                tick, remote = await asyncio.gather(self.poll(), self.poll_store())
                tick.remote = {c: v for c, v in remote.items() if c not in tick.samples}
            else:
                tick = await self.poll()
            for q in list(self.subscribers):
                if q.full():
                    q.get_nowait()  # a slow page loses its oldest tick, not our memory
                q.put_nowait(tick)
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))

    async def poll_store(self) -> dict[str, list[float]]:
        """Other hosts' containers: the CPU rate over their last few raw samples (exact
        whatever the store's bucket boundaries) and their newest memory."""
        where = f'"host" != {string(self.host)} AND time > now() - 30s'
        try:
            cpu, mem = await asyncio.gather(
                self.sources.influx(f'SELECT "usage_total" FROM "container_cpu" WHERE {where} '
                                    f'GROUP BY "container_id" ORDER BY time DESC LIMIT 6'),
                self.sources.influx(f'SELECT last("working_set") AS "mem", last("limit") AS '
                                    f'"limit" FROM "container_mem" WHERE {where} GROUP BY '
                                    f'"container_id"'))
        except SourceDown:
            return {}
        out: dict[str, list[float]] = {}
        for s in cpu:
            pts = [v for v in s["values"] if v[1] is not None]
            if len(pts) >= 2 and pts[0][0] > pts[-1][0]:
                rate = (pts[0][1] - pts[-1][1]) / ((pts[0][0] - pts[-1][0]) / 1000) / 1e7
                out[(s.get("tags") or {}).get("container_id", "")] = [max(0.0, rate), 0, 0]
        for s in mem:
            cid = (s.get("tags") or {}).get("container_id", "")
            if cid in out and s["values"]:
                out[cid][1:] = [s["values"][-1][1] or 0, s["values"][-1][2] or 0]
        return out

    async def poll(self) -> Tick:
        self.polls += 1
        tick = Tick(time.time())
        try:
            samples = await self.sources.latest()
        except SourceDown as exc:
            tick.error = str(exc)
            self.last = tick
            return tick
        before, fresh = self._before, {}
        for s in samples:
            cid = s["id"]
            tick.samples[cid] = s
            now = fresh[cid] = totals(s)
            r = rates(now, before.get(cid))
            if r is not None:
                tick.rates[cid] = r
            elif self.last is not None and cid in self.last.rates and before.get(cid) == now:
                tick.rates[cid] = self.last.rates[cid]  # the collector has not sampled again
                fresh[cid] = before[cid]
        self._before = fresh
        self.last = tick
        return tick
