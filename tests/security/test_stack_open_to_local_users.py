"""Attack: another local user reads or drives the local stack. Before, the state dir (data,
configs, logs) was 0755, influxd ran without auth (any local process could read every
metric and log line, write points or drop databases on 127.0.0.1:8086) and Prometheus
ran with ``--web.enable-lifecycle`` (anyone could POST /-/quit or /-/reload). Now the
state dir is 0700 (an existing one tightened), influxd requires the admin user that the
first ``boxwatch up`` created with a random password kept in a 0600 credentials file,
which the collector, the shipper and ``boxwatch logs`` read by path (the password is in
no argv and no log), and the lifecycle API is off.

One real stack (``boxwatch up``: influxd, collector, shipper, Prometheus) serves the
module; its state dir sits in a world-traversable dir, so only its own mode can keep
another user out."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from boxwatch import config
from boxwatch.stack import influxd
from formats.delivery import basic_auth
from formats.influx import read_credentials
from tests.conftest import Box
from tests.support.servers import free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # a whole stack up and down

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PORT_KEYS = ("influxdb.port", "influxdb.rpc_port", "collector.port", "shipper.port",
             "prometheus.port", "alertmanager.port")


@dataclass
class Stack:
    cfg: Path
    state: Path
    values: dict[str, Any]
    up: subprocess.CompletedProcess[str]

    @property
    def influx(self) -> str:
        return f"http://127.0.0.1:{self.values['influxdb.port']}"

    @property
    def credentials(self) -> Path:
        return self.state / "influxdb" / "credentials"

    def auth(self) -> tuple[str, str]:
        return read_credentials(str(self.credentials))

    def logs(self) -> list[Path]:
        return sorted((self.state / "logs").glob("*.log"))


def bw(cfg: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "boxwatch.cli", *args, "--config", str(cfg)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def stack(box_session: Box) -> Iterator[Stack]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    if not os.access("/usr/bin/prometheus", os.X_OK):
        pytest.skip("prometheus is not installed (scripts/bootstrap installs it)")
    base = Path(tempfile.mkdtemp(prefix="box-stack-users-"))
    os.chmod(base, 0o755)  # others may walk up to the state dir: only its mode stops them
    state = base / "state"
    state.mkdir(mode=0o755)  # a state dir made by an earlier, looser version: tightened
    (state / "logs").mkdir(mode=0o755)
    values: dict[str, Any] = {"state_dir": str(state), "roots": [str(box_session.root)],
                              "alertmanager.enabled": "false", "prometheus.enabled": "true",
                              "prometheus.scrape_interval": "1s"}
    values.update({k: free_port() for k in PORT_KEYS})
    cfg = base / "boxwatch.toml"
    cfg.write_text(config.dumps(values))
    try:
        up = bw(cfg, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield Stack(cfg, state, values, up)
    finally:
        bw(cfg, "down")
        shutil.rmtree(base, ignore_errors=True)


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, timeout=30)


def http(method: str, url: str, data: dict[str, str] | bytes | None = None,
         auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
    headers = {"Authorization": basic_auth(*auth)} if auth else {}
    if isinstance(data, dict):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_another_user_cannot_list_or_read_the_state_dir(stack: Stack) -> None:
    assert stat.S_IMODE(stack.state.stat().st_mode) == 0o700
    for sub in ("influxdb", "logs", "run", "prometheus", "shipper"):
        assert stat.S_IMODE((stack.state / sub).stat().st_mode) == 0o700, sub
    assert stat.S_IMODE(stack.credentials.stat().st_mode) == 0o600
    assert stack.credentials.stat().st_uid == os.geteuid()
    assert as_nobody("ls", "/").returncode == 0  # the probe itself works
    for argv in (["ls", str(stack.state)], ["ls", str(stack.state / "influxdb")],
                 ["cat", str(stack.credentials)], ["cat", str(stack.state / "run" / "plan.json")],
                 ["cat", str(stack.state / "logs" / "collector.log")]):
        proc = as_nobody(*argv)
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, (argv, proc)


def test_influxdb_refuses_requests_without_the_credentials(stack: Stack) -> None:
    user, password = stack.auth()
    show = {"q": "SHOW DATABASES"}
    assert http("POST", stack.influx + "/query", show)[0] == 401
    assert http("POST", stack.influx + "/query", show, (user, password + "x"))[0] == 401
    assert http("POST", stack.influx + "/query", {"q": 'DROP DATABASE "logs"'})[0] == 401
    assert http("POST", stack.influx + "/write?db=boxwatch", b"forged v=1")[0] == 401
    status, body = http("POST", stack.influx + "/query", show, (user, password))
    assert status == 200
    names = {row[0] for row in json.loads(body)["results"][0]["series"][0]["values"]}
    assert {"boxwatch", "logs"} <= names


def test_collector_and_shipper_write_and_boxwatch_logs_reads_through_auth(
        stack: Stack, box: Box) -> None:
    box.ok("run", "-d", "--name", "sec-auth", "--network", "none", "busybox", "sh", "-c",
           "i=0; while :; do i=$((i+1)); echo authed line $i; sleep 0.2; done")
    auth = stack.auth()

    def metrics() -> bool:
        rows = influxd.query(stack.influx, 'SELECT count("usage_total") FROM "container_cpu" '
                             "WHERE \"container_name\" = 'sec-auth'", "boxwatch", auth=auth)
        return bool(rows) and rows[0]["values"][0][1] > 0

    wait_until(metrics, 60, "the collector's points, written with the credentials",
               logs=stack.logs())

    def logs() -> list[str]:
        proc = bw(stack.cfg, "logs", "--container", "sec-auth", "--since", "1m")
        return [line for line in proc.stdout.splitlines() if "authed line" in line]

    wait_until(logs, 60, "boxwatch logs reading what the shipper wrote, with the credentials",
               logs=stack.logs(), seen=lambda: bw(stack.cfg, "logs", "--container", "sec-auth"))
    other = stack.state.parent / "no-credentials.toml"  # the same stack, no credentials
    other.write_text(stack.cfg.read_text().replace(str(stack.state), str(stack.state) + "-x"))
    refused = bw(other, "logs", "--container", "sec-auth", "--since", "1m")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "authed line" not in refused.stdout


def test_prometheus_lifecycle_api_is_off(stack: Stack) -> None:
    prom = f"http://127.0.0.1:{stack.values['prometheus.port']}"
    for path in ("/-/reload", "/-/quit"):
        status, body = http("POST", prom + path, b"")
        assert status == 403 and b"Lifecycle API is not enabled" in body, (path, status, body)
    assert http("GET", prom + "/-/ready")[0] == 200  # still running


def test_the_password_is_in_no_command_line_and_no_log(stack: Stack) -> None:
    password = stack.auth()[1]
    rows = json.loads(bw(stack.cfg, "status", "--json").stdout)["components"]
    pids = [r["pid"] for r in rows if r["pid"]]
    assert {r["name"] for r in rows if r["pid"]} == {"influxd", "collector", "shipper",
                                                      "prometheus", "web", "supervisor"}
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert password.encode() not in cmdline, pid
        assert password.encode() not in Path(f"/proc/{pid}/environ").read_bytes(), pid
    for path in stack.state.rglob("*"):
        if path.is_file() and path != stack.credentials and path.suffix in (
                ".log", ".json", ".conf", ".yml"):
            assert password not in path.read_text(errors="replace"), path
    for text in (stack.up.stdout, stack.up.stderr):
        assert password not in text


def test_a_second_up_keeps_the_password_and_a_lost_one_is_refused(stack: Stack) -> None:
    """The admin exists from the first start: a restart reuses it; credentials that do not
    match the server's users stop ``up`` with one line instead of running unauthenticated."""
    before = stack.credentials.read_bytes()
    assert bw(stack.cfg, "down").returncode == 0
    again = bw(stack.cfg, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert stack.credentials.read_bytes() == before
    assert bw(stack.cfg, "down").returncode == 0
    stack.credentials.write_text("default login boxwatch password not-the-one\n")
    try:
        lost = bw(stack.cfg, "up")
        assert lost.returncode == 1 and lost.stderr.count("\n") == 1, lost.stderr
        assert "are not one of them" in lost.stderr and "not-the-one" not in lost.stderr
    finally:
        stack.credentials.write_bytes(before)
    assert bw(stack.cfg, "up").returncode == 0


def test_a_local_user_racing_the_first_start_is_not_trusted() -> None:
    """While influxd has no user, anyone may create its first admin: if someone beats the
    stack to it, ``ensure_admin`` refuses to go on rather than run beside their admin."""
    from tests.support.servers import influxd as running_influxd

    ours = ("boxwatch", "pw-of-the-stack")
    with running_influxd(auth=True) as server:
        assert influxd.ensure_admin(server.url, ours) is True  # first start: created
        assert influxd.ensure_admin(server.url, ours) is False  # later starts: checked
        assert http("POST", server.url + "/query", {"q": "SHOW USERS"})[0] == 401
    with running_influxd(auth=True) as server:
        influxd.query(server.url, "CREATE USER mallory WITH PASSWORD 'x' WITH ALL PRIVILEGES")
        with pytest.raises(influxd.InfluxInitError, match="are not one of them") as err:
            influxd.ensure_admin(server.url, ours)
        assert ours[1] not in str(err.value)


@pytest.mark.parametrize("argv", [
    ["collector", "--influx-url", "http://127.0.0.1:9", "--influx-api", "v1"],
    ["shipper", "--sink", "influxdb-v1=http://127.0.0.1:9"],
])
def test_an_unreadable_credentials_file_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("default login boxwatch password the-secret extra-token\n")
    proc = subprocess.run([sys.executable, "-m", "boxwatch.cli", *argv, "--root", str(tmp_path),
                           "--listen", "127.0.0.1:0", "--influx-credentials", str(creds)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"credentials file {str(creds)!r}: line 1: not netrc" in proc.stderr
    assert "the-secret" not in proc.stderr
