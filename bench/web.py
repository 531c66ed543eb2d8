"""What the web UI costs its server: CPU seconds per second and bytes per second sent, for
one open container page and for the overview, measured on a real ``boxwatch web`` process.

The collector is a stand-in (FAKE ROWS, said so in the output): an aiohttp server that
answers ``/api/v1/containers`` with N containers in the collector's own JSON shape
(``collector.api.sample_to_dict`` fields, counters moving every second) and
``/api/v1/containers/{id}`` with 300 rows of history, so 100 containers need no 100 real
ones. InfluxDB is a real (empty) influxd: an open container page asks it for new events
every 2 s and the shared poller asks it for other hosts' containers every 5 s, so that
steady-state work is in the numbers; influxd's own CPU is reported beside the server's
(``store_cpu_percent``). Alertmanager is left unreachable (asked only when a page loads,
counted in ``load_bytes``). The client reads the page's Server-Sent Events stream as the
browser would.

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
import urllib.parse
import urllib.request
from dataclasses import asdict
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cgroupstats import model
from tests.support.servers import free_port, influxd

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


def remote_writer(influx_url: str, n: int, stop: threading.Event) -> threading.Thread:
    """Another host's collector, simulated: every second a state, cpu and memory point for
    each of ``n`` containers tagged ``host=node2``, written into the real influxd (with
    a minute of them written first)."""
    from formats.lineproto import line, tag_set

    def write(now: int) -> None:
        out = []
        for i in range(n):
            tags = tag_set([("host", "node2"), ("container_name", f"remote-{i:03d}"),
                            ("container_id", f"{i + 1000:064x}"), ("image", "busybox")])
            out += [line("container_state", tags, {"running": 1}, now),
                    line("container_cpu", tags, {"usage_total": int(now / 1e9 * 2e8)}, now),
                    line("container_mem", tags, {"working_set": (20 + i % 40) << 20,
                                                 "limit": 128 << 20}, now)]
        body = "\n".join(str(x) for x in out).encode()
        urllib.request.urlopen(influx_url + "/write?db=boxwatch&precision=ns", body,
                               timeout=10).close()

    now = time.time_ns()
    for back in range(60, 0, -1):
        write(now - back * 10**9)

    def run() -> None:
        while not stop.wait(1.0):
            write(time.time_ns())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(base: str, load: list[str], stream: str, seconds: float, pid: int,
                  store_pid: int) -> dict:
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
            t0, c0, s0 = time.monotonic(), cpu_seconds(pid), cpu_seconds(store_pid)
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
            store = cpu_seconds(store_pid) - s0
    return {"load_bytes": load_bytes, "cpu_percent": round(100 * used / elapsed, 2),
            "store_cpu_percent": round(100 * store / elapsed, 2),
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
    with influxd() as store:
        for q in ("CREATE DATABASE boxwatch", "CREATE DATABASE logs"):
            urllib.request.urlopen(store.url + "/query", urllib.parse.urlencode(
                {"q": q}).encode(), timeout=10).close()
        run(args.seconds, store.url, store.proc.pid if store.proc else 0)


def run(seconds: float, influx_url: str, store_pid: int) -> None:
    cport, wport = free_port(), free_port()
    count = [1]
    serve_fake_collector(cport, count)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: degraded, asked on load
    proc = subprocess.Popen([sys.executable, "-m", "boxwatch.cli", "web", "--listen",
                             f"127.0.0.1:{wport}", "--collector-url",
                             f"http://127.0.0.1:{cport}", "--influx-url", influx_url,
                             "--alertmanager-url", closed], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{wport}"
    results: dict = {"collector": "FAKE ROWS: a stand-in collector API serving N synthetic "
                                  "containers in the collector's JSON shape",
                     "influxdb": "a real influxd (empty)", "load_average": os.getloadavg()}
    try:
        wait_healthy(base + "/healthz")
        cid = f"{0:064x}"
        for n, page in ((1, "container"), (100, "container"), (100, "overview"),
                        (0, "overview")):
            count[0] = n
            if n == 0:  # the overview of 100 containers of another host, from the store
                stop = threading.Event()
                remote_writer(influx_url, 100, stop)
                results["overview_page_100_remote_containers"] = asyncio.run(
                    measure(base, ["/", "/api/overview"], "/api/overview/live", seconds,
                            proc.pid, store_pid))
                stop.set()
                continue
            if page == "container":
                load = [f"/c/{cid}", f"/api/containers/{cid}/history"]
                stream = f"/api/containers/{cid}/live"
            else:
                load, stream = ["/", "/api/overview"], "/api/overview/live"
            results[f"{page}_page_{n}_containers"] = asyncio.run(
                measure(base, load, stream, seconds, proc.pid, store_pid))
    finally:
        proc.terminate()
        proc.wait(10)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
