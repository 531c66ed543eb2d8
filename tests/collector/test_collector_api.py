"""The collector's HTTP API over a running pipeline and a real box container, and the
``boxwatch collector`` process: it serves, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from collector.api import Server
from collector.discover import Discovery
from collector.pipeline import Pipeline
from collector.sinks.prometheus import PrometheusSink
from formats.listen import ListenError, parse_listen

BOXWATCH = str(Path(sys.executable).parent / "boxwatch")


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_collector_api_routes(box) -> None:
    cid = box.ok("run", "-d", "--name", "apiweb", "-m", "32m", "busybox", "sleep", "60").strip()
    prom = PrometheusSink()
    pipeline = Pipeline(Discovery([box.root], "/sys/fs/cgroup"), [prom], interval=0.2,
                        jitter=0.0, history=1.0)
    prom.self_metrics = pipeline.self_metrics
    server = Server(pipeline, prom, "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        status, _, body = _get(base + "/healthz")
        assert status == 503 and json.loads(body)["status"] == "starting"  # not ticked yet
        thread = threading.Thread(target=pipeline.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while pipeline.stats.ticks_total < 8 and time.monotonic() < deadline:
            time.sleep(0.1)
        status, _, body = _get(base + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"

        status, ctype, body = _get(base + "/api/v1/containers")
        assert status == 200 and ctype.startswith("application/json")
        mine = [c for c in json.loads(body) if c["id"] == cid]
        assert len(mine) == 1 and mine[0]["spec"]["memory_limit"] == 32 << 20
        assert mine[0]["name"] == "apiweb" and mine[0]["memory"]["usage"] > 0

        for key in ("apiweb", cid, cid[:12], f"/box/{cid}"):
            status, _, body = _get(f"{base}/api/v1/containers/{key}")
            assert status == 200, key
            doc = json.loads(body)
            assert doc["latest"]["id"] == cid
            history = doc["history"]
            assert 2 <= len(history) <= 5  # 1 s of history at 0.2 s
            stamps = [h["timestamp_ns"] for h in history]
            assert stamps == sorted(stamps) and history[-1]["pids"] >= 1

        status, _, body = _get(base + "/api/v1/containers/no-such-thing")
        assert status == 404 and "no-such-thing" in json.loads(body)["error"]

        status, ctype, body = _get(base + "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        # values as prometheus_client (and Go's client) print them: 33554432 -> 3.3554432e+07
        limit = (
            f'container_spec_memory_limit_bytes{{id="/box/{cid}",image="busybox",name="apiweb"}}'
        )
        assert f"{limit} 3.3554432e+07\n".encode() in body
    finally:
        pipeline.stop()
        server.stop()
        pipeline.close()


def test_collector_listen_parsing() -> None:
    assert parse_listen("127.0.0.1:9180") == ("127.0.0.1", 9180)
    assert parse_listen(":9180") == ("127.0.0.1", 9180)  # loopback, as the shipper's
    assert parse_listen("0.0.0.0:9180") == ("0.0.0.0", 9180)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("9180", "host:", "host:99999", "host:http"):
        with pytest.raises(ListenError, match="HOST:PORT"):
            parse_listen(bad)


def test_collector_command_serves_and_stops(box) -> None:
    cid = box.ok("run", "-d", "--name", "cmdweb", "busybox", "sleep", "60").strip()
    port = _free_port()
    proc = subprocess.Popen([BOXWATCH, "collector", "--root", str(box.root), "--listen",
                             f"127.0.0.1:{port}", "--interval", "200ms"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        body = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and cid.encode() not in body:
            try:
                body = _get(f"http://127.0.0.1:{port}/metrics")[2]
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        assert b'name="cmdweb"' in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_collector_umbrella_command() -> None:
    out = subprocess.run([BOXWATCH, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "collector" in out.stdout
    out = subprocess.run([BOXWATCH, "nope"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "unknown command 'nope'" in out.stderr
    out = subprocess.run([BOXWATCH, "collector", "--interval", "soon", "--once"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "not a duration" in out.stderr
