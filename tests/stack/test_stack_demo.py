"""``make demo`` in its CI form: ``DEMO_SECONDS=20 boxwatch demo`` runs to the end on its
own box root, bridge and free ports; its output shows the OOM alert and the answers of
both stores, and it leaves nothing running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from boxwatch import config
from boxwatch.stack import procs
from formats.influx import read_credentials
from tests.conftest import Box, box_links, free_subnet
from tests.stack.test_stack_updown import PORT_KEYS
from tests.support.servers import free_port

pytestmark = pytest.mark.slow  # the whole demo, about 30 s


def test_demo_runs_to_the_end_and_cleans_up(tmp_path: Path, box_session: Box) -> None:
    values = {"state_dir": str(tmp_path / "state"), **{k: free_port() for k in PORT_KEYS}}
    cfg = tmp_path / "boxwatch.toml"
    cfg.write_text(config.dumps(values))
    bridge = f"box-d{os.getpid() % 100000}"
    env = {**os.environ, "DEMO_SECONDS": "20", "BOX_ROOT": str(tmp_path / "root"),
           "BOX_EXEC_ROOT": str(tmp_path / "run"), "BOX_BRIDGE": bridge,
           "BOX_DEFAULT_SUBNET": free_subnet(skip={box_session.subnet}),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    web_port = free_port()
    proc = subprocess.run([sys.executable, "-m", "boxwatch.cli", "demo", "--config", str(cfg),
                           "--web-port", str(web_port)], capture_output=True, text=True,
                          env=env, timeout=180, stdin=subprocess.DEVNULL)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    # progress while the stack starts, then the containers with the commands that made them
    assert re.search(r"  influxd +http://127\.0\.0\.1:\d+ +healthy", out)
    assert f"box run -d --name web -p 127.0.0.1:{web_port}:80 --cpus 0.5 -m 32m" in out
    assert (
        "box run -d --name hog --network none -m 32m --memory-swap 32m --restart on-failure:3"
        in out
    )
    assert re.search(r"CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT", out)  # box stats
    # the alert
    assert "ALERT ContainerOOMKilled" in out and "container=hog" in out
    assert "Container hog was OOM-killed" in out
    assert re.search(r"OOMKilled=\w+ RestartCount=[1-3]", out)
    assert re.search(r"web answered [1-9]\d* requests \(0 failed\)", out)
    # the metrics answer: the hog's limit and at least one OOM kill, the burner throttled
    creds = tmp_path / "state" / "influxdb" / "credentials"
    assert f"curl -sG --netrc-file {creds} http://127.0.0.1:" in out
    assert "/query --data-urlencode db=boxwatch" in out
    hog = re.search(r"^  hog +(\d+\.\d) MiB +32 MiB +- +(\d+)$", out, re.M)
    assert hog and int(hog.group(2)) >= 1, out
    burner = re.search(r"^  burner +\S+ MiB +none +(\d+)% of periods", out, re.M)
    # how many periods were throttled depends on how much CPU a loaded machine gave it
    assert burner and 0 <= int(burner.group(1)) <= 100, out
    # the log search answer, with the command a user types
    assert f"$ boxwatch logs --config {cfg} --container hog --limit 4" in out
    assert re.search(r"^hog \| \d{4}-\d\d-\d\dT[\d:.]+Z hog: holding \d+ MiB$", out, re.M)
    assert re.search(r"^logger +\| .*Z warning: order \d+ retried$", out, re.M)
    assert re.search(r"^web +\| .*response:200$", out, re.M)
    assert "docker compose up -d" in out and "demo finished" in out
    password = read_credentials(str(creds))[1]  # shown by path, never by value
    assert password not in out and password not in proc.stderr
    # nothing left: processes, ports, containers, the demo's bridge
    assert not list((Path(values["state_dir"]) / "run").glob("*.pid"))
    assert all(procs.port_free("127.0.0.1", values[k]) for k in PORT_KEYS)
    assert procs.port_free("127.0.0.1", web_port)
    ps = subprocess.run([str(Path(sys.executable).parent / "box"), "ps", "-aq"], env=env,
                        capture_output=True, text=True, timeout=30)
    assert ps.stdout.strip() == ""
    assert bridge not in box_links()
