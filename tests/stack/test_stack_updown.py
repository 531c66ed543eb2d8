"""``boxwatch up`` / ``status`` / ``down`` for real: influxd, the collector, the shipper,
Prometheus and Alertmanager on free loopback ports in a temp state dir, a container's
metrics and logs queryable within 5 s, a killed component restarted, and nothing left
running afterwards."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from boxwatch import config
from boxwatch.stack import procs
from boxwatch.stack.influxd import query
from formats.influx import read_credentials
from tests.conftest import Box
from tests.support.servers import free_port
from tests.support.wait import wait_until as wait

pytestmark = pytest.mark.slow  # the whole local stack up and down

PORT_KEYS = ("influxdb.port", "influxdb.rpc_port", "collector.port", "shipper.port",
             "prometheus.port", "alertmanager.port", "web.port")


def write_config(tmp: Path, box: Box, **extra: Any) -> tuple[Path, dict[str, Any]]:
    values: dict[str, Any] = {"state_dir": str(tmp / "state"), "roots": [str(box.root)]}
    values.update({k: free_port() for k in PORT_KEYS})
    values["prometheus.scrape_interval"] = "1s"
    values.update(extra)
    path = tmp / "boxwatch.toml"
    path.write_text(config.dumps(values))
    return path, values


def bw(cfg: Path, *args: str, env: dict[str, str] | None = None,
       timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "boxwatch.cli", *args, "--config", str(cfg)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def status(cfg: Path) -> dict[str, dict[str, Any]]:
    proc = bw(cfg, "status", "--json")
    return {r["name"]: r for r in json.loads(proc.stdout)["components"]}


def assert_all_gone(pids: list[int], values: dict[str, Any], state: Path) -> None:
    left = [p for p in pids if procs.alive(p)]
    assert not left, f"still running after down: {left}"
    busy = [k for k in PORT_KEYS if not procs.port_free("127.0.0.1", values[k])]
    assert not busy, f"ports still in use after down: {busy}"
    assert not list((state / "run").glob("*.pid"))


def test_up_status_data_restart_down(tmp_path: Path, box: Box) -> None:
    cfg, values = write_config(tmp_path, box)
    state = Path(values["state_dir"])
    up = bw(cfg, "up")
    pids: list[int] = []
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        for name in ("influxd", "collector", "shipper", "prometheus", "alertmanager", "web"):
            assert f"  {name} " in up.stdout and "healthy" in up.stdout
        rows = status(cfg)
        pids = [r["pid"] for r in rows.values()]
        assert all(r["health"] == "healthy" for n, r in rows.items() if n != "supervisor"), rows
        assert rows["supervisor"]["health"] == "running" and all(pids)
        assert bw(cfg, "status").returncode == 0
        assert rows["influxd"]["port"] == values["influxdb.port"]

        influx = f"http://127.0.0.1:{values['influxdb.port']}"
        auth = read_credentials(str(state / "influxdb" / "credentials"))
        for db in ("boxwatch", "logs"):
            rps = query(influx, f'SHOW RETENTION POLICIES ON "{db}"', auth=auth)[0]["values"]
            assert ["boxwatch", "168h0m0s", "24h0m0s", 1, True] in rps

        # a container's metrics and logs become queryable (how soon is a benchmark's
        # business, not a test's: this machine may be loaded)
        box.ok("run", "-d", "--name", "stk-chat", "--network", "none", "busybox", "sh", "-c",
               "i=0; while :; do i=$((i+1)); echo stack line $i; sleep 0.2; done")
        part_logs = [state / "logs" / f"{part}.log" for part in ("collector", "shipper")]

        def metrics() -> bool:
            rows = query(influx, "SELECT count(\"usage_total\") FROM \"container_cpu\" WHERE "
                         "\"container_name\" = 'stk-chat'", "boxwatch", auth=auth)
            return bool(rows) and rows[0]["values"][0][1] > 0

        def logs() -> list[str]:
            proc = bw(cfg, "logs", "--container", "stk-chat", "--since", "1m")
            return [line for line in proc.stdout.splitlines() if "stack line" in line]

        wait(metrics, 60, "the container's metrics in InfluxDB", logs=part_logs)
        lines = wait(logs, 60, "the container's logs via boxwatch logs", logs=part_logs,
                     seen=lambda: bw(cfg, "logs", "--container", "stk-chat", "--since", "1m"))
        assert lines[0].startswith("stk-chat | ") and lines[0].endswith("stack line 1")

        prom = f"http://127.0.0.1:{values['prometheus.port']}/api/v1/"

        def targets_up() -> bool:
            with urllib.request.urlopen(prom + "targets", timeout=5) as resp:
                active = json.load(resp)["data"]["activeTargets"]
            return len(active) == 2 and all(t["health"] == "up" for t in active)

        wait(targets_up, 60, "Prometheus scraping the collector and the shipper",
             logs=[state / "logs" / "prometheus.log"])
        with urllib.request.urlopen(prom + "rules", timeout=5) as resp:
            groups = json.load(resp)["data"]["groups"]
        assert "ContainerOOMKilled" in {r["name"] for g in groups for r in g["rules"]}

        # supervised: a collector killed -9 is started again
        os.kill(rows["collector"]["pid"], signal.SIGKILL)
        fresh = wait(lambda: (r := status(cfg)["collector"])["health"] == "healthy"
                     and r["pid"] != rows["collector"]["pid"] and r, 60, "collector restarted",
                     seen=lambda: status(cfg))
        assert fresh["restarts"] == 1
        pids.append(fresh["pid"])
    finally:
        down = bw(cfg, "down")
    assert down.returncode == 0 and "stopped supervisor" in down.stdout
    assert_all_gone(pids, values, state)
    assert bw(cfg, "status").returncode == 3
    assert "not running" in bw(cfg, "down").stdout


def test_down_after_the_supervisor_was_killed(tmp_path: Path, box: Box) -> None:
    cfg, values = write_config(tmp_path, box, **{"prometheus.enabled": "false",
                                                 "alertmanager.enabled": "false"})
    up = bw(cfg, "up")
    rows = status(cfg)
    try:
        assert up.returncode == 0, up.stderr
        assert "prometheus    skipped (disabled)" in up.stdout
        assert set(rows) == {"influxd", "collector", "shipper", "web", "supervisor"}
        os.kill(rows["supervisor"]["pid"], signal.SIGKILL)
        wait(lambda: not procs.alive(rows["supervisor"]["pid"]), 30, "supervisor gone")
        assert all(procs.alive(r["pid"]) for n, r in rows.items() if n != "supervisor")
    finally:
        down = bw(cfg, "down")
    assert down.returncode == 0
    assert_all_gone([r["pid"] for r in rows.values()], values, Path(values["state_dir"]))


def test_a_port_in_use_is_one_clear_line(tmp_path: Path, box: Box) -> None:
    cfg, values = write_config(tmp_path, box)
    with socket.socket() as s:
        s.bind(("127.0.0.1", values["shipper.port"]))
        s.listen()
        up = bw(cfg, "up")
    assert up.returncode == 1
    assert up.stderr.count("\n") == 1, up.stderr
    assert f"port 127.0.0.1:{values['shipper.port']} for shipper is already in use by pid " \
           f"{os.getpid()}" in up.stderr
    assert "--shipper-port / BOXWATCH_SHIPPER_PORT / [shipper] port" in up.stderr
    assert not (Path(values["state_dir"]) / "run" / "supervisor.pid").exists()


def test_a_missing_binary_says_how_to_install_it(tmp_path: Path, box: Box) -> None:
    cfg, values = write_config(tmp_path, box)
    up = bw(cfg, "up", env={"BOXWATCH_INFLUXDB_BINARY": str(tmp_path / "no-influxd")})
    assert up.returncode == 1 and up.stderr.count("\n") == 1
    assert f"{tmp_path}/no-influxd not found" in up.stderr
    assert "apt-get install influxdb" in up.stderr and "--influxdb-binary" in up.stderr
    forced = bw(cfg, "up", env={"BOXWATCH_PROMETHEUS_ENABLED": "true",
                                "BOXWATCH_PROMETHEUS_BINARY": "/nonexistent/prometheus"})
    assert forced.returncode == 1 and "apt-get install prometheus" in forced.stderr


@pytest.mark.parametrize("bad", ["[influxdb]\nport = 'x'\n", "[influxdb]\nprot = 1\n", "a = ["])
def test_a_bad_config_file_is_exit_2_with_the_value(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "boxwatch.toml"
    path.write_text(bad)
    proc = subprocess.run([sys.executable, "-m", "boxwatch.cli", "up", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and str(path) in proc.stderr
    assert proc.stderr.count("\n") == 1
