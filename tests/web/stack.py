"""A live local stack for the web tests: ``boxwatch up`` (InfluxDB, collector, shipper,
Prometheus and Alertmanager when installed, and the web UI with the exec console on) on
free loopback ports, over the session's box root with real containers, and Chromium
driven by Playwright (Debian's binary: ``playwright install`` cannot download here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boxwatch import config
from tests.conftest import Box
from tests.support.servers import free_port
from tests.support.wait import wait_until as wait

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "build" / "test-output" / "web"
PORT_KEYS = ("influxdb.port", "influxdb.rpc_port", "collector.port", "shipper.port",
             "prometheus.port", "alertmanager.port", "web.port")

# a logger whose lines are numbered (to prove no gap and no duplicate) and coloured (ANSI)
CHAT = ("i=0; while :; do i=$((i+1)); printf '\\033[32mchat line %d\\033[0m\\n' $i; "
        "if [ $((i % 10)) = 0 ]; then echo \"chat err $i\" >&2; fi; sleep 0.2; done")
BURN = "while :; do :; done"


@dataclass
class Stack:
    cfg: Path
    values: dict[str, Any]
    box: Box
    url: str
    ids: dict[str, str]

    @property
    def state(self) -> Path:
        return Path(self.values["state_dir"])

    def bw(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "boxwatch.cli", *args, "--config",
                               str(self.cfg)], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=self.box.env)

    def status(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.bw("status", "--json").stdout)["components"]
        return {r["name"]: r for r in rows}

    def logs(self) -> list[Path]:
        return [self.state / "logs" / f"{p}.log" for p in ("collector", "shipper", "web")]


def start(tmp: Path, box: Box) -> Stack:
    values: dict[str, Any] = {"state_dir": str(tmp / "state"), "roots": [str(box.root)],
                              "prometheus.scrape_interval": "1s", "web.enable_exec": "true"}
    values.update({k: free_port() for k in PORT_KEYS})
    path = tmp / "boxwatch.toml"
    path.write_text(config.dumps(values))
    ids = {}
    for name, argv in (("wchat", ["sh", "-c", CHAT]),
                       ("wburn", ["--cpus", "0.5", "-m", "64m", "sh", "-c", BURN])):
        opts, cmd = argv[:-3], argv[-3:]
        ids[name] = box.ok("run", "-d", "--name", name, "--network", "none", *opts,
                           "busybox", *cmd).strip()
    stack = Stack(path, values, box, f"http://127.0.0.1:{values['web.port']}", ids)
    up = stack.bw("up")
    if up.returncode != 0:
        stack.bw("down")
        raise AssertionError(f"boxwatch up failed:\n{up.stdout}{up.stderr}")
    return stack


def stop(stack: Stack) -> None:
    """The stack down, the containers removed, and their cgroups verified gone (the
    session's leak check also sees other sessions' containers; these are ours)."""
    stack.bw("down")
    ids = list(stack.ids.values())
    stack.box("rm", "-f", *ids, timeout=120)

    def mine() -> list[str]:
        return [str(p) for cid in ids for p in Path("/sys/fs/cgroup").glob(f"*/box/{cid}")]

    wait(lambda: not mine(), 15, "our containers' cgroups removed", seen=mine)


def browser_args() -> dict[str, Any]:
    return {"executable_path": CHROMIUM, "args": ["--no-sandbox"],
            "env": {**os.environ, "HOME": str(SHOTS)}}
