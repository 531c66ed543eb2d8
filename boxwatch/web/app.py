"""The web UI's routes: three pages (static HTML and JS, no build step), their JSON API,
Server-Sent Events for live data, and the exec console's WebSocket.

Pages: ``/`` overview, ``/c/{id}`` container, ``/logs?c=NAME...`` logs. Every API answer
that depends on a part of the stack says which part is down (``errors``) rather than
failing the page. A container the local collector does not sample (another host's, or
one that stopped) is drawn from InfluxDB; an open container page's stream carries its
live points and, as ``event: events``, every new event (the store's, and the health
changes of a local container's state file)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from boxwatch.logs.query import LogStore
from boxwatch.web import auth, charts, overview, stateevents
from boxwatch.web.console import Console
from boxwatch.web.live import Hub
from boxwatch.web.logs import LogsView
from boxwatch.web.sources import SourceDown, Sources
from boxwatch.web.tail import LocalContainer, find_local

STATIC = Path(__file__).parent / "static"
EVENT_RANGES = {"5m", *charts.RANGES}
STORE_EVERY = 2.0  # s between an open page's questions to InfluxDB (events, remote points)


@dataclass
class Settings:
    sources: Sources
    roots: list[str]
    log_store: LogStore | None
    token: str = ""
    enable_exec: bool = False
    interval: float = 1.0
    host: str = ""  # this host's name in the store (the shipper's and collector's host tag)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _page(name: str) -> Any:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})
    return handler


async def _sse(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    await resp.write(b"retry: 1000\n\n")
    return resp


def make_app(s: Settings) -> web.Application:
    app = web.Application(middlewares=[auth.middleware(s.token)])
    hub = Hub(s.sources, s.interval, s.host)
    logs = LogsView(s.log_store, s.roots, s.host)
    console = Console(s.roots)
    app["hub"] = hub

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def config(request: web.Request) -> web.Response:
        return _json({"exec": s.enable_exec})

    async def overview_data(request: web.Request) -> web.Response:
        tick = hub.last if hub.last and time.time() - hub.last.time < 5 else await hub.poll()
        return _json(await overview.snapshot(s.sources, tick, s.host))

    async def overview_live(request: web.Request) -> web.StreamResponse:
        resp = await _sse(request)
        q = hub.subscribe()
        try:
            while True:
                tick = await q.get()
                await resp.write(b"data: " + orjson.dumps(overview.compact(tick)) + b"\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.unsubscribe(q)
        return resp

    async def history(request: web.Request) -> web.Response:
        key = request.match_info["name"]
        body: dict[str, Any] = {"errors": []}
        try:
            detail = await s.sources.detail(key)
        except SourceDown as exc:
            if "HTTP 404" not in str(exc):
                body["errors"].append(str(exc))
            detail = {}
        latest = detail.get("latest") or {}
        body.update(charts.from_history(detail))
        body["container"] = {k: latest.get(k) for k in ("id", "name", "image", "labels",
                                                         "started_at", "restart_count")}
        body["container"]["host"] = s.host
        if not latest:  # not sampled here: another host's (or gone), from the store
            await _from_store(key, body)
        cid = body["container"]["id"] = latest.get("id") or body["container"].get("id") or key
        body["events"] = await _events(cid, "5m", body["errors"])
        return _json(body)

    async def _from_store(key: str, body: dict[str, Any]) -> None:
        """The 5 minutes at 1 s and the container's name, image and host from InfluxDB."""
        try:
            rows = await overview.store_containers(s.sources, s.host)
            row = rows.get(key) or next((r for r in rows.values() if r["name"] == key), None)
            if row is None:
                body["errors"].append(f"no container {key!r} on this host or in the store")
                return
            body.update(await charts.from_store(s.sources, row["id"], "5m", "raw"))
            body["container"].update(id=row["id"], name=row["name"], image=row["image"],
                                     host=row["host"], started_at=row["started_at"],
                                     restart_count=row["restarts"])
            body["remote"] = not row["local"]
        except SourceDown as exc:
            body["errors"].append(str(exc))

    async def _events(cid: str, rng: str, errors: list[str], local: LocalContainer | None
                      = None, look: bool = True) -> list[dict[str, Any]]:
        """The store's events (start, die, oom_kill, restart) and, for a container of this
        host (``local``, looked up unless ``look`` is false), the health status changes its
        state file holds."""
        if look:
            local = find_local(s.roots, cid)
        found = _health(local, time.time() - charts.seconds(rng))
        try:
            found += await charts.events(s.sources, cid, rng)
        except SourceDown as exc:
            errors.append(str(exc))
        return sorted(found, key=lambda e: e["t"])

    def _health(local: LocalContainer | None, since: float = 0.0) -> list[dict[str, Any]]:
        if local is None:
            return []
        return [e for e in stateevents.read_health(local.root, local.id) if e["t"] >= since]

    async def store_range(request: web.Request) -> web.Response:
        cid, rng = request.match_info["name"], request.query.get("range", "1h")
        if rng not in charts.RANGES:
            return _json({"error": str(charts.RangeError(rng))}, 400)
        body: dict[str, Any] = {"errors": []}
        try:
            body.update(await charts.from_store(s.sources, cid, rng))
        except SourceDown as exc:
            body["errors"].append(str(exc))
        body["events"] = await _events(cid, rng, body["errors"])
        return _json(body)

    async def container_events(request: web.Request) -> web.Response:
        rng = request.query.get("range", "5m")
        if rng not in EVENT_RANGES:
            return _json({"error": f"range must be one of {', '.join(sorted(EVENT_RANGES))}"},
                         400)
        errors: list[str] = []
        found = await _events(request.match_info["name"], rng, errors)
        return _json({"events": found, "errors": errors})

    async def container_live(request: web.Request) -> web.StreamResponse:
        """Live points (the collector's, or the store's for another host's container) and
        new events (``event: events``) as they happen."""
        key = request.match_info["name"]
        resp = await _sse(request)
        q = hub.subscribe()
        feed, last_t, due = stateevents.Feed(), 0.0, 0.0
        remote: str | None = None
        local: LocalContainer | None = None
        looked = False
        try:
            while True:
                tick = await q.get()
                cid = next((c for c, smp in tick.samples.items()
                            if key in (c, smp.get("name"))), None)
                out = []
                if time.monotonic() >= due:  # the store is asked every STORE_EVERY
                    due = time.monotonic() + STORE_EVERY
                    if not looked:  # the state roots are scanned once
                        local, looked = find_local(s.roots, cid or key), True
                    fresh = feed.new(await _events(cid or key, "5m", [], local, False))
                    if fresh:
                        out.append(b"event: events\ndata: " + orjson.dumps(fresh) + b"\n\n")
                    if cid is None:
                        if remote is None:  # asked once: another host's container?
                            remote = await _remote_id(key) or ""
                        for p in await _store_points(remote, last_t) if remote else []:
                            last_t = p["t"]
                            out.append(b"data: " + orjson.dumps(p) + b"\n\n")
                elif cid is not None:
                    fresh = feed.new(_health(local))  # one small file: every tick
                    if fresh:
                        out.append(b"event: events\ndata: " + orjson.dumps(fresh) + b"\n\n")
                r = tick.rates.get(cid or "")
                if r is not None and r["t"] > last_t:
                    last_t = r["t"]
                    out.append(b"data: " + orjson.dumps(r) + b"\n\n")
                elif r is None and not remote:
                    why = tick.error or "not sampled by the collector now (stopped?)"
                    out.append(b"event: down\ndata: " + orjson.dumps(why) + b"\n\n")
                if out:
                    await resp.write(b"".join(out))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.unsubscribe(q)
        return resp

    async def _remote_id(key: str) -> str | None:
        try:
            rows = await overview.store_containers(s.sources, s.host)
        except SourceDown:
            return None
        row = rows.get(key) or next((r for r in rows.values() if r["name"] == key), None)
        return row["id"] if row is not None and not row["local"] else None

    async def _store_points(cid: str, after: float) -> list[dict[str, Any]]:
        """The store's points of ``cid`` newer than ``after``, one dict each."""
        try:
            cols = await charts.from_store(s.sources, cid, "1m", "raw")
        except SourceDown:
            return []
        return [{k: cols[k][i] for k in cols} for i, t in enumerate(cols["t"]) if t > after]

    async def exec_ws(request: web.Request) -> web.StreamResponse:
        if not s.enable_exec:
            return web.Response(status=403, text="exec console is off (--enable-exec)\n")
        return await console.handle(request)

    async def on_cleanup(app: web.Application) -> None:
        await hub.close()
        await s.sources.close()

    app.on_cleanup.append(on_cleanup)
    r = app.router
    r.add_get("/", _page("overview.html"))
    r.add_get("/c/{name}", _page("container.html"))
    r.add_get("/logs", _page("logs.html"))
    r.add_static("/static/", STATIC, append_version=False)
    r.add_get("/healthz", healthz)
    r.add_get("/api/config", config)
    r.add_get("/api/overview", overview_data)
    r.add_get("/api/overview/live", overview_live)
    r.add_get("/api/containers/{name}/history", history)
    r.add_get("/api/containers/{name}/range", store_range)
    r.add_get("/api/containers/{name}/live", container_live)
    r.add_get("/api/containers/{name}/events", container_events)
    r.add_get("/api/logs", logs.history)
    r.add_get("/api/logs/live", logs.live)
    r.add_get("/ws/exec/{name}", exec_ws)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Run until cancelled (SIGTERM/SIGINT)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
