"""What the web UI costs its server: CPU seconds per second and bytes per second sent, for
one open container page and for the overview, measured on a real ``boxwatch web`` process.

The collector is a stand-in (FAKE ROWS, said so in the output): an aiohttp server that
answers ``/api/v1/containers`` with N containers in the collector's own JSON shape
(``collector.api.sample_to_dict`` fields, counters moving every second) and
``/api/v1/containers/{id}`` with 300 rows of history, so 100 containers need no 100 real
ones. InfluxDB and Alertmanager are left unreachable: they are asked once when a page
loads (the cost counted in ``load_bytes``), not in the steady state measured here. The
client reads the page's Server-Sent Events stream as the browser would.

    .venv/bin/python bench/web.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cgroupstats import model
from tests.support.servers import free_port

HISTORY_FIELDS = ("timestamp_ns", "cpu_usage_ns", "cpu_throttled_ns", "memory_usage",
                  "memory_working_set", "rx_bytes", "tx_bytes", "blkio_read_bytes",
                  "blkio_write_bytes", "pids")


def fake_sample(i: int, now_ns: int) -> dict:
    """One container in the collector's JSON shape, counters a function of time."""
    secs = now_ns // 10**9
    cpu = asdict(model.CpuStats())
    cpu.update(usage_ns=secs * 2 * 10**8 * (1 + i % 5), throttled_ns=secs * 10**7)
    mem = asdict(model.MemoryStats())
    mem.update(working_set=(20 + i % 40) * 2**20 + (secs % 60) * 2**16, max_usage=64 * 2**20)
    io, net = asdict(model.IoStats()), asdict(model.NetStats())
    io.update(read_bytes=secs * 4096, write_bytes=secs * 8192)
    net.update(rx_bytes=secs * 1500 * (i + 1), tx_bytes=secs * 900)
    spec = asdict(model.Spec())
    spec.update(memory_limit=128 * 2**20)
    cid = f"{i:064x}"
    return {"id": cid, "name": f"fake-{i:03d}", "image": "busybox", "cgroup": f"/box/{cid}",
            "cgroup_version": 1, "labels": {"app": f"a{i % 7}"}, "pid": 1000 + i,
            "source": "box", "started_at": "2026-01-01T00:00:00Z", "restart_count": 0,
            "timestamp_ns": secs * 10**9, "cpu": cpu, "memory": mem, "blkio": {"8:0": io},
            "network": {"eth0": net}, "pids": {"current": 3, "max": 0},
            "psi": asdict(model.Psi()), "spec": spec}


def history(i: int, now_ns: int) -> list[dict]:
    rows = []
    for back in range(300, 0, -1):
        s = fake_sample(i, now_ns - back * 10**9)
        rows.append(dict(zip(HISTORY_FIELDS, (
            s["timestamp_ns"], s["cpu"]["usage_ns"], s["cpu"]["throttled_ns"],
            s["memory"]["working_set"], s["memory"]["working_set"],
            s["network"]["eth0"]["rx_bytes"], s["network"]["eth0"]["tx_bytes"],
            s["blkio"]["8:0"]["read_bytes"], s["blkio"]["8:0"]["write_bytes"], 3), strict=True)))
    return rows


def serve_fake_collector(port: int, count: list[int]) -> None:
    async def containers(request: web.Request) -> web.Response:
        now = time.time_ns()
        return web.json_response([fake_sample(i, now) for i in range(count[0])])

    async def container(request: web.Request) -> web.Response:
        i = int(request.match_info["name"], 16)
        now = time.time_ns()
        return web.json_response({"latest": fake_sample(i, now), "history": history(i, now)})

    app = web.Application()
    app.router.add_get("/api/v1/containers", containers)
    app.router.add_get("/api/v1/containers/{name}", container)
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(base: str, load: list[str], stream: str, seconds: float, pid: int) -> dict:
    async with aiohttp.ClientSession() as http:
        load_bytes = 0
        for path in load:
            async with http.get(base + path) as resp:
                load_bytes += len(await resp.read())
        got = 0
        events = 0
        async with http.get(base + stream) as resp:
            await resp.content.readline()  # the stream is up
            await asyncio.sleep(2)  # warm: the poller running, first rates derived
            t0, c0 = time.monotonic(), cpu_seconds(pid)
            deadline = t0 + seconds
            while time.monotonic() < deadline:
                try:
                    chunk = await asyncio.wait_for(resp.content.readany(), deadline -
                                                   time.monotonic())
                except TimeoutError:
                    break
                got += len(chunk)
                events += chunk.count(b"\n\n")
            elapsed, used = time.monotonic() - t0, cpu_seconds(pid) - c0
    return {"load_bytes": load_bytes, "cpu_percent": round(100 * used / elapsed, 2),
            "bytes_per_second": round(got / elapsed), "events_per_second":
            round(events / elapsed, 2), "seconds": round(elapsed, 1)}


def wait_healthy(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"boxwatch web did not answer {url}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    cport, wport = free_port(), free_port()
    count = [1]
    serve_fake_collector(cport, count)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: degraded, asked on load
    proc = subprocess.Popen([sys.executable, "-m", "boxwatch.cli", "web", "--listen",
                             f"127.0.0.1:{wport}", "--collector-url",
                             f"http://127.0.0.1:{cport}", "--influx-url", closed,
                             "--alertmanager-url", closed], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{wport}"
    results = {"collector": "FAKE ROWS: a stand-in collector API serving N synthetic "
                            "containers in the collector's JSON shape"}
    try:
        wait_healthy(base + "/healthz")
        cid = f"{0:064x}"
        for n, page in ((1, "container"), (100, "container"), (100, "overview")):
            count[0] = n
            if page == "container":
                load = [f"/c/{cid}", f"/api/containers/{cid}/history"]
                stream = f"/api/containers/{cid}/live"
            else:
                load, stream = ["/", "/api/overview"], "/api/overview/live"
            results[f"{page}_page_{n}_containers"] = asyncio.run(
                measure(base, load, stream, args.seconds, proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
