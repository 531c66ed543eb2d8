"""The demo's moving parts: the containers it runs under ``box``, the traffic against the
web server (loopback only, bounded), and a webhook receiver for the alerts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOG = ("c=x; for i in $(seq 20); do c=\"$c$c\"; done; x=; n=0; "
       "echo \"hog: growing by 1 MiB every 0.4s towards its 32 MiB limit\"; "
       "while :; do x=\"$x$c\"; n=$((n+1)); echo \"hog: holding $n MiB\"; sleep 0.4; done")
LOGGER = ("i=0; while :; do i=$((i+1)); echo \"order $i shipped in $((i % 7 + 1))ms\"; "
          "[ $((i % 5)) -eq 0 ] && echo \"warning: order $i retried\" >&2; sleep 0.2; done")
WEB = ("mkdir -p /www && echo '<h1>hello from box</h1>' > /www/index.html && "
       "exec httpd -f -v -p 80 -h /www")


def containers(image: str, web_port: int) -> dict[str, list[str]]:
    """name -> ``box run -d`` arguments."""
    return {
        "web": ["-p", f"127.0.0.1:{web_port}:80", "--cpus", "0.5", "-m", "32m",
                "--restart", "on-failure:3", image, "sh", "-c", WEB],
        "burner": ["--network", "none", "--cpus", "0.5", image, "sh", "-c",
                   "echo burning cpu under a 0.5 cpu quota; while :; do :; done"],
        "hog": ["--network", "none", "-m", "32m", "--memory-swap", "32m",
                "--restart", "on-failure:3", image, "sh", "-c", HOG],
        "logger": ["--network", "none", "--pids-limit", "20", image, "sh", "-c", LOGGER],
    }


def box_binary() -> str:
    """``box`` beside this interpreter (the venv), else on PATH."""
    near = os.path.join(os.path.dirname(sys.executable), "box")
    return near if os.access(near, os.X_OK) else (shutil.which("box") or "box")


@dataclass
class Box:
    """Runs ``box`` against the demo's state root."""

    root: str
    exec_root: str
    binary: str = field(default_factory=box_binary)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "BOX_ROOT": self.root, "BOX_EXEC_ROOT": self.exec_root}

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout, stdin=subprocess.DEVNULL)

    def ok(self, *args: str, timeout: float = 120) -> str:
        proc = self(*args, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"box {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
        return proc.stdout


class Traffic(threading.Thread):
    """GET ``url`` every ``every`` seconds until stopped or ``max_requests`` sent."""

    def __init__(self, url: str, every: float = 0.25, max_requests: int = 2000) -> None:
        super().__init__(daemon=True, name="demo-traffic")
        self.url = url
        self.every = every
        self.max_requests = max_requests
        self.ok = 0
        self.failed = 0
        self._halt = threading.Event()

    def run(self) -> None:
        for _ in range(self.max_requests):
            if self._halt.wait(self.every):
                return
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    resp.read()
                    self.ok += 1
            except (urllib.error.URLError, OSError):
                self.failed += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class Receiver:
    """A webhook receiver on loopback: keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        lock = self.lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {"raw": body.decode("utf-8", "replace")}
                with lock:
                    received.append(doc)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts received so far, as {"alertname", "container", "summary",
        "description"}: Alertmanager's webhook body or the collector's plain JSON."""
        out = []
        with self.lock:
            docs = list(self.received)
        for doc in docs:
            if isinstance(doc, dict) and "alerts" in doc:  # Alertmanager webhook
                for a in doc["alerts"]:
                    labels, ann = a.get("labels", {}), a.get("annotations", {})
                    out.append({"alertname": labels.get("alertname", ""), "via": "Alertmanager",
                                "status": a.get("status", ""),
                                "container": labels.get("container_name") or labels.get("name", ""),
                                "summary": ann.get("summary", ""),
                                "description": ann.get("description", "")})
            elif isinstance(doc, dict) and doc.get("alert") == "oom_kill":  # collector
                out.append({"alertname": "ContainerOOMKilled", "via": "collector",
                            "status": "firing", "container": doc["container"]["name"],
                            "summary": doc.get("summary", ""),
                            "description": doc.get("description", "")})
        return out


def wait_for(cond: Any, timeout: float, step: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
