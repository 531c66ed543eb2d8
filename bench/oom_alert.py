"""How fast an OOM kill reaches a webhook: the collector's instant alert (eventfd on
memory.oom_control) against the scrape-and-evaluate path (Prometheus scrapes /metrics,
evaluates ``grafana/prometheus/rules.yml``, Alertmanager posts).

Each run starts a real `box` container under ``-m 16m`` whose child process eats memory
after a short pause and is OOM-killed (the container's shell survives, so the counter
stays visible to Prometheus). The moment of the kill is taken independently of the
collector, by polling the group's ``memory.oom_control`` every millisecond. Prints JSON.

    .venv/bin/python bench/oom_alert.py [--runs 10] [--scrape-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.alerts import OomWatcher, Sender
from collector.discover import Discovery
from collector.pipeline import Pipeline
from collector.sinks.prometheus import PrometheusSink
from tests.support.busybox import build_busybox_tar
from tests.support.servers import scripted_http

BOX = str(Path(sys.executable).parent / "box")
CGROUP_MEMORY = "/sys/fs/cgroup/memory"
HOG = "sleep {pause}; (x=a; while true; do x=$x$x; done); echo child-killed; sleep 600"


def box(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([BOX, *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"box {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def wait_kill(cid: str, timeout: float = 30.0) -> float:
    """time.monotonic() of the first ``oom_kill`` rise, polled every millisecond."""
    path = f"{CGROUP_MEMORY}/box/{cid}/memory.oom_control"
    deadline = time.monotonic() + timeout
    fd = -1
    while time.monotonic() < deadline:
        if fd < 0:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                time.sleep(0.001)
                continue
        data = os.pread(fd, 4096, 0)
        if b"oom_kill 0" not in data:
            now = time.monotonic()
            os.close(fd)
            return now
        time.sleep(0.001)
    raise SystemExit(f"no OOM kill in {cid[:12]} after {timeout}s")


def wait_request(hook, needle: bytes, after: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in hook.requests("/"):
            if needle in r.body and r.at >= after:
                return r.at
        time.sleep(0.002)
    raise SystemExit(f"webhook never got {needle!r} in {timeout}s")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {"n": len(latencies_ms), "p50_ms": round(statistics.median(latencies_ms), 1),
            "p95_ms": round(pct(latencies_ms, 0.95), 1), "max_ms": round(max(latencies_ms), 1)}


def instant(env: dict[str, str], root: Path, runs: int) -> list[float]:
    """Kill -> webhook through the collector's OomWatcher (plain JSON webhook)."""
    out = []
    with scripted_http() as hook:
        discovery = Discovery([root], "/sys/fs/cgroup")
        pipeline = Pipeline(discovery, [], interval=1.0, history=0)
        watcher = OomWatcher(Sender(hook.url + "/hook"))
        pipeline.on_scan.append(watcher.sync)
        watcher.start()
        loop = threading.Thread(target=pipeline.run, daemon=True)
        loop.start()
        try:
            for i in range(runs):
                name = f"oombench{os.getpid()}x{i}"
                cid = box(env, "run", "-d", "--name", name, "-m", "16m", "--memory-swap", "16m",
                          "--network", "none",  # kill -> alert only: no bridge to clean up
                          "busybox", "sh", "-c", HOG.format(pause=1))
                killed = wait_kill(cid)
                got = wait_request(hook, f'"name":"{name}"'.encode(), killed - 1.0, 30)
                out.append((got - killed) * 1000)
                box(env, "rm", "-f", cid)
        finally:
            pipeline.close()
            loop.join(10)
            watcher.close()
    return out


def scraped(env: dict[str, str], root: Path, runs: int, interval: str) -> list[float]:
    """Kill -> webhook through Prometheus (scrape + evaluation every ``interval``) and
    Alertmanager (group_wait 0s) over the shipped rules."""
    from collector.api import Server
    from tests.grafana.stack import Alertmanager, RulesPrometheus

    rules = (Path(__file__).resolve().parent.parent / "grafana/prometheus/rules.yml").read_text()
    out = []
    with scripted_http() as hook:
        discovery = Discovery([root], "/sys/fs/cgroup")
        prom_sink = PrometheusSink()
        pipeline = Pipeline(discovery, [prom_sink], interval=1.0, history=0)
        prom_sink.self_metrics = pipeline.self_metrics
        server = Server(pipeline, prom_sink, "127.0.0.1", 0)
        server.start()
        loop = threading.Thread(target=pipeline.run, daemon=True)
        loop.start()
        try:
            with Alertmanager(hook.url + "/am") as am, RulesPrometheus(
                [f"127.0.0.1:{server.port}"], rules, f"127.0.0.1:{am.port}",
                scrape_interval=interval, evaluation_interval=interval,
            ):
                for i in range(runs):
                    name = f"oomscrape{os.getpid()}x{i}"
                    cid = box(env, "run", "-d", "--name", name, "-m", "16m", "--memory-swap",
                              "16m", "--network", "none", "busybox", "sh", "-c",
                              HOG.format(pause=3))
                    killed = wait_kill(cid)
                    got = wait_request(hook, f'"name":"{name}"'.encode(), killed - 1.0, 180)
                    out.append((got - killed) * 1000)
                    box(env, "rm", "-f", cid)
        finally:
            pipeline.close()
            loop.join(10)
            server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--scrape-runs", type=int, default=3, help="0 skips the slow path")
    parser.add_argument("--scrape-interval", default="15s",
                        help="Prometheus scrape and evaluation interval (15s, a common setting)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="box-oombench-"))
    env = {**os.environ, "BOX_ROOT": str(base / "root"), "BOX_EXEC_ROOT": str(base / "run")}
    try:
        build_busybox_tar(base / "busybox.tar")
        box(env, "import", str(base / "busybox.tar"), "busybox")
        fast = instant(env, base / "root", args.runs)
        result: dict[str, object] = {"instant_webhook": summary(fast), **summary(fast)}
        if args.scrape_runs:
            slow = scraped(env, base / "root", args.scrape_runs, args.scrape_interval)
            result["scrape_and_evaluate"] = {**summary(slow),
                                             "scrape_interval": args.scrape_interval,
                                             "evaluation_interval": args.scrape_interval,
                                             "alertmanager_group_wait": "0s"}
        print(json.dumps(result, indent=2))
    finally:
        ids = subprocess.run([BOX, "ps", "-aq", "--no-trunc"], env=env, capture_output=True,
                             text=True).stdout.split()
        if ids:
            subprocess.run([BOX, "rm", "-f", *ids], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
