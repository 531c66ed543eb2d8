"""The collector's HTTP face (aiohttp): /metrics, /healthz, and the JSON API.

``sample_to_dict`` is the one JSON shape of a sample; ``--once`` prints the same. The
pipeline runs in its own thread and replaces ``latest`` whole each tick, so handlers read
it without locks. aiohttp is imported only when the server starts, so ``--once`` and
``box stats`` stay cheap.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson

from cgroupstats.model import Extras, Sample

if TYPE_CHECKING:
    from aiohttp import web

    from collector.pipeline import Pipeline
    from collector.sinks.prometheus import PrometheusSink

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def sample_to_dict(s: Sample) -> dict[str, Any]:
    """One sample as JSON-ready data: the container's identity, then its counters."""
    ref = s.ref
    return {
        "id": ref.id,
        "name": ref.name,
        "image": ref.image,
        "cgroup": ref.cgroup,
        "cgroup_version": ref.cgroup_version,
        "labels": dict(ref.labels),
        "pid": ref.pid,
        "source": ref.source,
        "started_at": ref.started_at,
        "restart_count": ref.restart_count,
        "timestamp_ns": s.timestamp_ns,
        "cpu": asdict(s.cpu),
        "memory": asdict(s.memory),
        "created_at": ref.created_at,
        "health": ref.health,
        "blkio": {dev: {**asdict(io), "has": sorted(io.has)} for dev, io in s.blkio.items()},
        "network": {name: asdict(n) for name, n in s.network.items()},
        "pids": asdict(s.pids),
        "psi": asdict(s.psi),
        "spec": asdict(s.spec),
        # the last walk of the writable layer (device, usage, limit); None until one ended
        "writable_layer": asdict(s.writable_layer) if s.writable_layer is not None else None,
        **({"kubernetes": {"pod": ref.pod, "namespace": ref.namespace,
                           "container": ref.container}} if ref.pod else {}),
        **({"extra": _extra(s.extra)} if s.extra is not None else {}),
    }


def _extra(ex: Extras) -> dict[str, Any]:
    """The opt-in groups read (cAdvisor's categories), JSON-ready."""
    out = asdict(ex)
    out["numa"] = {"/".join(k): v for k, v in ex.numa.items()}  # "file/hierarchy/0"
    out["hugetlb"] = {size: dict(zip(("usage", "max_usage", "failcnt"), v, strict=True))
                      for size, v in ex.hugetlb.items()}
    return out


def dumps(data: object) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def make_app(pipeline: Pipeline, prometheus: PrometheusSink) -> web.Application:
    """The routes over a running pipeline and its Prometheus sink."""
    from aiohttp import web

    started = time.time()

    async def metrics(request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, prometheus.render)
        return web.Response(body=body, headers={"Content-Type": METRICS_TYPE})

    async def healthz(request: web.Request) -> web.Response:
        # healthy once the loop has ticked and keeps ticking
        stats = pipeline.stats
        ok = stats.ticks_total > 0
        body = {
            "status": "ok" if ok else "starting",
            "uptime_seconds": round(time.time() - started, 3),
            "containers": stats.containers,
            "samples_total": stats.samples_total,
            "read_errors_total": stats.read_errors_total,
            "sinks": {s.name: s.health() for s in pipeline.sinks},
        }
        return web.Response(body=dumps(body), status=200 if ok else 503,
                            content_type="application/json")

    async def containers(request: web.Request) -> web.Response:
        latest = pipeline.latest
        data = [sample_to_dict(s) for s in sorted(latest.values(), key=lambda s: s.ref.id)]
        return web.Response(body=dumps(data), content_type="application/json")

    async def container(request: web.Request) -> web.Response:
        key = request.match_info["name"]
        cid = pipeline.find(key)
        if cid is None:
            body = dumps({"error": f"no such container: {key}"})
            return web.Response(body=body, status=404, content_type="application/json")
        latest = pipeline.latest.get(cid)
        body = {
            "latest": sample_to_dict(latest) if latest is not None else None,
            "history": pipeline.history.rows(cid),
        }
        return web.Response(body=dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/containers", containers)
    app.router.add_get("/api/v1/containers/{name:.+}", container)
    return app


class Server:
    """The app on HOST:PORT in a background thread with its own event loop (so the
    pipeline's thread and the caller stay synchronous)."""

    def __init__(
        self, pipeline: Pipeline, prometheus: PrometheusSink, host: str, port: int
    ) -> None:
        self.pipeline, self.prometheus = pipeline, prometheus
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    async def start_async(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(make_app(self.pipeline, self.prometheus), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:  # the port the kernel picked
            server = site._server
            self.port = server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> None:
        """Start serving in a daemon thread; returns once the socket listens."""
        import threading

        loop = self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="collector-api", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()
        self._loop = None
