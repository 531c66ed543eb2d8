"""Real servers for tests: ``influxd`` (InfluxDB 1.x), ``victoria-metrics``, and a
scripted aiohttp peer for protocol contract tests.

Each runs on free loopback ports in a temp dir, in its own process group, and can be
stopped and started again on the same port and data dir (to play "the server was down
for 20 s"). Used as context managers, they always kill their process group on exit, so a
failing test leaves nothing running.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from boxwatch.stack.influxd import argv as influxd_argv
from boxwatch.stack.influxd import config_text as influxd_config

INFLUXD = "/usr/bin/influxd"
VICTORIA = "/usr/bin/victoria-metrics"


class ServerError(Exception):
    """A test server did not become ready; the message carries its log tail."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One server process: ``start()``, ``stop()``, ``url``; restarts keep port and data."""

    name = "server"
    ready_path = "/"
    ready_status = (200,)

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until it answers ``ready_path``."""
        if self.proc is not None and self.proc.poll() is None:
            return
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as resp:
                    if resp.status in self.ready_status:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code in self.ready_status:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} not ready on {self.url} in {timeout}s: {self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers; the port is free after."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # stragglers in the group after the leader exited
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return ""


class Influxd(Server):
    """InfluxDB 1.x with the local stack's config (``boxwatch.stack.influxd``): http and
    rpc on loopback, no reporting, no graphite/udp/collectd/opentsdb, no _internal db."""

    name = "influxd"
    ready_path = "/ping"
    ready_status = (204, 200)

    def __init__(self, workdir: Path, port: int, rpc_port: int, auth: bool = False) -> None:
        super().__init__(workdir, port)
        self.rpc_port = rpc_port
        self.auth = auth
        self.config = workdir / "influxdb.conf"
        self.config.write_text(influxd_config(workdir, port, rpc_port, auth))

    def argv(self) -> list[str]:
        return influxd_argv(self.config, INFLUXD)


class Victoria(Server):
    """VictoriaMetrics single node: InfluxDB line protocol on /write and /api/v2/write."""

    name = "victoria-metrics"
    ready_path = "/health"

    def argv(self) -> list[str]:
        return [
            VICTORIA,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir}/data",
            "-retentionPeriod=1d",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ]


@contextmanager
def _running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@contextmanager
def influxd(auth: bool = False) -> Iterator[Influxd]:
    """A running influxd; with ``auth`` the http API requires users (create the first
    admin with ``CREATE USER ... WITH ALL PRIVILEGES``, which 1.x allows unauthenticated)."""
    workdir = Path(tempfile.mkdtemp(prefix="box-influxd-"))
    server = Influxd(workdir, free_port(), free_port(), auth)
    with _running(server):
        yield server


@contextmanager
def victoria_metrics() -> Iterator[Victoria]:
    """A running victoria-metrics with its data in a temp dir."""
    workdir = Path(tempfile.mkdtemp(prefix="box-vm-"))
    server = Victoria(workdir, free_port())
    with _running(server):
        yield server


# -- a scripted HTTP peer for contract tests ------------------------------------------


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 204
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    """One request as the server saw it (body gunzipped when it came compressed)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


class Scripted:
    """An aiohttp server on loopback that answers requests from a script, per path
    prefix, in order (then ``default``), and records every request. Runs its own event
    loop in a thread, so synchronous code under test can talk to it."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.scripts: dict[str, list[Reply]] = {}
        self.received: list[Received] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._lock = threading.Lock()

    def script(self, path_prefix: str, *replies: Reply) -> None:
        with self._lock:
            self.scripts.setdefault(path_prefix, []).extend(replies)

    def requests(self, path_prefix: str = "/") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.startswith(path_prefix)]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp already inflates a gzip Content-Encoding
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        with self._lock:
            self.received.append(Received(
                request.method, request.path, dict(request.query), dict(request.headers),
                body, time.monotonic(),
            ))
            reply = self.default
            for prefix, queue in self.scripts.items():
                if request.path.startswith(prefix) and queue:
                    reply = queue.pop(0)
                    break
        return web.Response(status=reply.status, text=reply.body or None, headers=reply.headers)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def scripted_http(default: Reply | None = None) -> Iterator[Scripted]:
    """A running ``Scripted`` server, stopped on exit."""
    server = Scripted(default)
    server.start()
    try:
        yield server
    finally:
        server.stop()
