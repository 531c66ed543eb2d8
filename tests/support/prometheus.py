"""A real ``prometheus`` (the Debian package) for tests, and ``promtool``.

``Prometheus`` runs on a free loopback port in a temp dir, in its own process group,
scraping the given targets every ``scrape_interval``; used as a context manager it
always kills its group and removes its dir. ``query`` and ``series`` talk to its HTTP
API; ``wait_for`` polls until an instant query returns something.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Self

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


class PrometheusError(Exception):
    """Prometheus did not start, or its API answered an error; carries the log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def promtool_check_metrics(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` over an exposition; returncode 0 means it lints clean."""
    return subprocess.run([PROMTOOL, "check", "metrics"], input=exposition.decode(),
                          capture_output=True, text=True, timeout=60)


# cAdvisor's names that ``promtool check metrics`` objects to: a counter without
# ``_total`` and gauges whose names end in it. cAdvisor's name and TYPE win (dashboards
# and rules query them), so these objections, and only these, are expected.
CADVISOR_LINT = {
    ("container_memory_failcnt", 'counter metrics should have "_total" suffix'),
    ("container_hugetlb_failcnt", 'counter metrics should have "_total" suffix'),
    ("container_fs_inodes_total", 'non-counter metrics should not have "_total" suffix'),
    ("container_network_tcp_usage_total", 'non-counter metrics should not have "_total" suffix'),
    ("container_network_tcp6_usage_total", 'non-counter metrics should not have "_total" suffix'),
    ("container_network_udp_usage_total", 'non-counter metrics should not have "_total" suffix'),
    ("container_network_udp6_usage_total", 'non-counter metrics should not have "_total" suffix'),
    ("container_cpu_load_d_average_10s", "metric names should not contain abbreviated units"),
    ("machine_node_hugepages_count",
     'non-histogram and non-summary metrics should not have "_count" suffix'),
    ("machine_thread_siblings_count",
     'non-histogram and non-summary metrics should not have "_count" suffix'),
}


def promtool_objections(exposition: bytes) -> tuple[set[tuple[str, str]], str]:
    """``promtool check metrics``'s (metric, problem) pairs, and anything else it said
    (an error that is not a lint problem: a parse failure)."""
    check = promtool_check_metrics(exposition)
    found, other = set(), []
    for line in (check.stdout + check.stderr).splitlines():
        name, _, problem = line.strip().partition(" ")
        if name.startswith(("container_", "boxwatch_", "machine_")) and problem:
            found.add((name, problem))
        elif line.strip():
            other.append(line)
    if check.returncode not in (0, 3):  # 3: lint problems only
        other.append(f"promtool exit {check.returncode}")
    return found, "\n".join(other)


def promtool_unexpected(exposition: bytes) -> list[str]:
    """What promtool objects to beyond cAdvisor's own names (``CADVISOR_LINT``)."""
    found, other = promtool_objections(exposition)
    return sorted(f"{n} {p}" for n, p in found - CADVISOR_LINT) + ([other] if other else [])


class LoopbackServer:
    """One of the Prometheus project's servers on a free loopback port, in a temp dir and
    its own process group: ``start`` writes ``config()`` and waits for ``/-/ready``;
    ``close`` kills the group and removes the dir. Subclasses name the binary and its flags."""

    name = ""
    binary = ""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"box-{self.name}-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        raise NotImplementedError

    def argv(self, config_file: Path) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        cfg = self.workdir / f"{self.name}.yml"
        cfg.write_text(self.config())
        log = open(self.workdir / f"{self.name}.log", "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv(cfg), cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"{self.name} exited {self.proc.returncode}: "
                                      f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise PrometheusError(f"{self.name} not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.workdir / f"{self.name}.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc is not None:
            proc.wait(30)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Prometheus(LoopbackServer):
    name = "prometheus"
    binary = PROMETHEUS

    def __init__(self, targets: list[str], scrape_interval: str = "1s") -> None:
        self.targets = targets
        self.scrape_interval = scrape_interval
        super().__init__()

    def config(self) -> str:
        targets = ", ".join(f'"{t}"' for t in self.targets)
        return (
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  scrape_timeout: {self.scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: boxwatch\n"
            f"    static_configs:\n      - targets: [{targets}]\n"
        )

    def argv(self, config_file: Path) -> list[str]:
        return [self.binary, f"--config.file={config_file}",
                f"--storage.tsdb.path={self.workdir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}"]


    # -- HTTP API ---------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                doc = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"{path} {params}: {exc.code} {exc.read()[:500]!r}") from None
        if doc.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {doc}")
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        return self.api("query", query=promql)["result"]

    def series(self, match: str) -> list[dict[str, str]]:
        return self.api("series", **{"match[]": match})

    def targets_health(self) -> list[str]:
        return [t["health"] for t in self.api("targets")["activeTargets"]]

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until ``promql`` returns a non-empty vector; PrometheusError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"no result for {promql!r} after {timeout}s; "
                                      f"targets {self.api('targets')['activeTargets']}")
            time.sleep(0.5)
