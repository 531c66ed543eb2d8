"""Fixtures the browser tests share: one live stack (``boxwatch up`` over real containers)
for the whole session, one Chromium, a fresh page per test, and small helpers (the JSON
API, the collector's row count, a writer of another host's points into the stack's
InfluxDB)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Box
from tests.web.stack import SHOTS, Stack, browser_args, start, stop


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, box_session: Box) -> Iterator[Stack]:
    s = start(tmp_path_factory.mktemp("web"), box_session)
    try:
        yield s
    finally:
        stop(s)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not os.access("/usr/bin/chromium", os.X_OK):
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap installs it)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(**browser_args())
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def api(stack: Stack, path: str) -> dict:
    with urllib.request.urlopen(stack.url + path, timeout=10) as resp:
        return json.load(resp)


def collector_rows(stack: Stack, name: str) -> int:
    port = stack.values["collector.port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/containers/{name}",
                                timeout=10) as resp:
        return len(json.load(resp)["history"])


class OtherHost:
    """A second host, simulated: every second it writes what that host's collector and
    shipper would (``container_state``/``_cpu``/``_mem`` points and numbered log lines,
    tagged ``host=NAME``) into the stack's real InfluxDB."""

    def __init__(self, stack: Stack, host: str, name: str, cid: str) -> None:
        from boxwatch.stack.credentials import credentials_path
        from formats.delivery import basic_auth
        from formats.influx import read_credentials

        self.url = f"http://127.0.0.1:{stack.values['influxdb.port']}/write"
        user, password = read_credentials(str(credentials_path(stack.state)))
        self.auth = {"Authorization": basic_auth(user, password)}
        self.host, self.name, self.cid = host, name, cid
        self.lines = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def write(self, db: str, text: str) -> None:
        req = urllib.request.Request(self.url + "?" + urllib.parse.urlencode(
            {"db": db, "precision": "ns"}), data=text.encode(), headers=self.auth,
            method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def tick(self, now: int = 0) -> None:
        from formats.lineproto import line, tag_set

        now = now or time.time_ns()
        tags = tag_set([("host", self.host), ("container_name", self.name),
                        ("container_id", self.cid), ("image", "busybox")])
        secs = now / 1e9
        metrics = [line("container_state", tags, {"running": 1}, now),
                   line("container_cpu", tags, {"usage_total": int(secs * 3e8),
                                                "throttled_time": 0}, now),
                   line("container_mem", tags, {"working_set": 30 << 20, "limit": 96 << 20,
                                                "max_usage": 40 << 20}, now)]
        self.write("boxwatch", "\n".join(str(m) for m in metrics))
        self.lines += 1
        log_tags = tag_set([("host", self.host), ("container_name", self.name),
                            ("stream", "stdout")])
        self.write("logs", str(line("container_logs", log_tags,
                                    {"message": f"remote line {self.lines}"}, now)))

    def _run(self) -> None:
        while not self.stopping.wait(1.0):
            self.tick()

    def __enter__(self) -> OtherHost:
        from formats.lineproto import line, tag_set

        tags = tag_set([("host", self.host), ("container_name", self.name),
                        ("container_id", self.cid), ("image", "busybox")])
        self.write("boxwatch", str(line("container_events", tags + ",action=start",
                                        {"exit_code": -1, "message": "start"},
                                        time.time_ns() - 90 * 10**9)))
        now = time.time_ns()
        for back in range(60, 0, -1):  # a minute of history already in the store
            self.tick(now - back * 10**9)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)


REMOTE_ID = "fe" * 32


@pytest.fixture(scope="session")
def node2(stack: Stack) -> Iterator[OtherHost]:
    """A second host "node2" running a "wchat" of its own (named like the local one)."""
    with OtherHost(stack, "node2", "wchat", REMOTE_ID) as other:
        yield other
