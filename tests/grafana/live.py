"""One live boxwatch stack for the Grafana proof tests: real `box` containers (one at
~95% of its memory limit, throttled and near pids.max; one at ~10%; one crash-looping;
one whose child is OOM-killed), a real ``boxwatch collector`` writing to a real influxd
and serving /metrics, the real shipper writing ``container_logs``, Prometheus evaluating
a ``for: 0s`` copy of grafana/prometheus/rules.yml, Alertmanager and webhook receivers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import Box
from tests.grafana.stack import Alertmanager, RulesPrometheus
from tests.support.prometheus import free_port
from tests.support.servers import Influxd, Scripted, influxd, scripted_http
from tests.support.wait import wait_until as wait

REPO = Path(__file__).resolve().parents[2]
BOXWATCH = str(Path(sys.executable).parent / "boxwatch")
RULES = REPO / "grafana" / "prometheus" / "rules.yml"
METRICS_DB = "boxwatch"
LOGS_DB = "logs"
MiB = 1 << 20

# name -> box run flags and command
CONTAINERS: dict[str, list[str]] = {
    "hot": ["-m", "64m", "--memory-swap", "64m", "--cpus", "0.2", "--pids-limit", "20", "busybox",
            "sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=57 2>/dev/null; "
            "for i in $(seq 18); do sleep 600 & done; echo hot ready; while :; do :; done"],
    "calm": ["-m", "64m", "--cpus", "1", "--pids-limit", "100", "--network", "host", "busybox",
             "sh", "-c", "dd if=/dev/zero of=/tmp/blk bs=1M count=4 oflag=direct 2>/dev/null; "
             "dd if=/tmp/blk of=/dev/null bs=1M iflag=direct 2>/dev/null; "
             "dd if=/dev/zero of=/dev/shm/fill bs=1M count=6 2>/dev/null; echo calm ready; "
             "while :; do echo calm tick; echo calm warn >&2; sleep 1; done"],
    "flappy": ["--restart", "always", "busybox", "sh", "-c", "echo flap; sleep 1; exit 3"],
    "oom": ["-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c",
            "echo before the hog; sleep 2; (x=a; while true; do x=$x$x; done); "
            "echo child killed; sleep 600"],
}


def for_zero(rules: str) -> str:
    """The shipped rules with every ``for:`` at 0s (the e2e test must not wait minutes;
    promtool's unit tests cover the durations)."""
    return re.sub(r"(?m)^(\s+for:\s*)\S+$", r"\g<1>0s", rules)


def influx_query(server: Influxd, db: str, statement: str) -> list[dict[str, Any]]:
    """The series of one statement; AssertionError with InfluxDB's message on error."""
    url = server.url + "/query?" + urllib.parse.urlencode({"db": db, "q": statement, "epoch": "ns"})
    with urllib.request.urlopen(url, timeout=30) as resp:
        doc = json.load(resp)
    result = doc["results"][0]
    if "error" in result:
        raise AssertionError(f"InfluxDB: {result['error']}\n{statement}")
    return result.get("series", [])


def influx_write(server: Influxd, db: str, lines: list[str]) -> None:
    req = urllib.request.Request(f"{server.url}/write?db={db}&precision=ns",
                                 data="\n".join(lines).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30):
        pass


@dataclass
class Live:
    box: Box
    influx: Influxd
    hook: Scripted  # /instant (collector), /am (alertmanager)
    prometheus: RulesPrometheus
    alertmanager: Alertmanager
    host: str
    ids: dict[str, str]
    collector_log: Path
    shipper_log: Path

    def query(self, statement: str, db: str = METRICS_DB) -> list[dict[str, Any]]:
        return influx_query(self.influx, db, statement)

    def am_alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager posted to the webhook so far."""
        out = []
        for r in self.hook.requests("/am"):
            out.extend(json.loads(r.body)["alerts"])
        return out

    def flappy_events(self) -> list[list[Any]]:
        rows = self.query("SELECT \"action\", \"exit_code\" FROM \"container_events\" WHERE "
                          "\"container_name\" = 'flappy'")
        return rows[0]["values"] if rows else []

    def restarts(self) -> int:
        rows = self.query("SELECT count(\"exit_code\") FROM \"container_events\" WHERE "
                          "\"action\" = 'restart' AND \"container_name\" = 'flappy'")
        return int(rows[0]["values"][0][1]) if rows else 0


@contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            return False
    wait(up, 60, url, logs=[log], step=0.1)


@contextmanager
def live_stack(box: Box) -> Iterator[Live]:
    work = Path(tempfile.mkdtemp(prefix="box-grafana-"))
    env = {**os.environ, **box.env}
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        influx = stack.enter_context(influxd())
        hook = stack.enter_context(scripted_http())
        for db in (METRICS_DB, LOGS_DB):  # idempotent; the shipper's v1 sink expects its db
            influx_query(influx, "", f"CREATE DATABASE {db}")
        am = stack.enter_context(Alertmanager(hook.url + "/am"))
        cport, sport = free_port(), free_port()
        collector = stack.enter_context(_process([
            BOXWATCH, "collector", "--root", str(box.root), "--listen", f"127.0.0.1:{cport}",
            "--interval", "1s", "--influx-url", influx.url, "--influx-api", "v1",
            "--influx-db", METRICS_DB, "--alert-webhook", hook.url + "/instant"],
            work / "collector.log", env))
        shipper = stack.enter_context(_process([
            sys.executable, "-m", "shipper.cli", "--root", str(box.root), "--sink",
            f"influxdb={influx.url}", "--influx-db", LOGS_DB, "--registry",
            str(work / "registry.json"), "--listen", f"127.0.0.1:{sport}"],
            work / "shipper.log", env))
        _wait_http(f"http://127.0.0.1:{cport}/metrics", collector, work / "collector.log")
        _wait_http(f"http://127.0.0.1:{sport}/metrics", shipper, work / "shipper.log")
        prom = RulesPrometheus([f"127.0.0.1:{cport}", f"127.0.0.1:{sport}"],
                               for_zero(RULES.read_text()), f"127.0.0.1:{am.port}")
        stack.enter_context(prom)
        time.sleep(1.5)  # the collector's baseline scan, so the containers' starts are events
        ids = {}
        for name, args in CONTAINERS.items():
            ids[name] = box.ok("run", "-d", "--name", name, *args).strip()
        stack.callback(lambda: box("rm", "-f", *ids.values(), timeout=120))
        live = Live(box, influx, hook, prom, am, socket.gethostname(), ids,
                    work / "collector.log", work / "shipper.log")
        logs = (live.collector_log, live.shipper_log)
        wait(lambda: live.restarts() >= 4, 60, "4 restarts of flappy in InfluxDB",
             seen=lambda: (box.inspect("flappy", "{{.RestartCount}} {{.State.Status}}"),
                           live.flappy_events()), logs=logs)
        wait(lambda: any(a["labels"].get("alertname") == "ContainerOOMKilled"
                         for a in live.am_alerts()), 60, "the OOM alert through Alertmanager",
             seen=live.am_alerts, logs=logs)
        wait(lambda: any(a["labels"].get("alertname") == "ContainerMemoryNearLimit"
                         for a in live.am_alerts()), 60, "the memory alert through Alertmanager",
             seen=live.am_alerts, logs=logs)
        wait(lambda: live.query('SELECT count("message") FROM "container_logs"', LOGS_DB),
             60, "container_logs from the shipper", logs=logs)
        # block I/O is counted once the kernel submitted calm's direct I/O to the device
        wait(lambda: live.query('SELECT max("read_bytes") FROM "container_blkio" WHERE '
                                '"container_name" = \'calm\' AND "read_bytes" > 0'),
             60, "calm's block reads in InfluxDB", logs=logs,
             seen=lambda: live.query('SELECT * FROM "container_blkio" WHERE '
                                     '"container_name" = \'calm\' ORDER BY time DESC LIMIT 3'))
        yield live
