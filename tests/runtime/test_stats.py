"""``box stats`` on real containers: docker's columns, CPU % of a burner under
``--cpus 0.5``, the memory limit of ``-m``, zero rows for stopped containers, streaming."""

from __future__ import annotations

import json
import re
import subprocess
import time

from runtime.commands.stats import host_cpu, human3

HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
          "BLOCK I/O", "PIDS"]


def test_stats_cpu_and_memory_limit(box) -> None:
    cid = box.ok("run", "-d", "--name", "hot", "--cpus", "0.5", "-m", "48m", "busybox", "sh",
                 "-c", "while :; do :; done").strip()
    time.sleep(1)
    out = box.ok("stats", "--no-stream", "hot")
    lines = out.splitlines()
    assert re.split(r" {2,}", lines[0].strip()) == HEADER
    assert lines[1].startswith(cid[:12]) and len(lines) == 2
    percents = []
    for _ in range(3):  # other processes on the host may steal a sample's share
        fields = json.loads(box.ok("stats", "--no-stream", "--format", "json", "hot"))
        percents.append(float(fields["CPUPerc"].rstrip("%")))
        if 30.0 <= percents[-1] <= 70.0:
            break
    assert 30.0 <= percents[-1] <= 70.0, percents
    usage, limit = fields["MemUsage"].split(" / ")
    assert limit == "48MiB" and usage.endswith(("KiB", "MiB", "B"))
    assert fields["ID"] == cid[:12] and fields["Name"] == "hot" and fields["PIDs"] == "1"
    mem_perc = float(fields["MemPerc"].rstrip("%"))
    assert 0.0 < mem_perc < 100.0


def test_stats_all_shows_stopped_as_zero(box) -> None:
    box.ok("run", "--name", "done", "busybox", "true")
    box.ok("run", "-d", "--name", "live", "busybox", "sleep", "30")
    fmt = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}"
    running = box.ok("stats", "--no-stream", "--format", fmt).splitlines()
    assert [r.split("|")[0] for r in running] == ["live"]
    rows = {
        r.split("|")[0]: r
        for r in box.ok("stats", "--no-stream", "-a", "--format", fmt).splitlines()
    }
    assert rows["done"] == "done|0.00%|0B / 0B|0B / 0B|0B / 0B|0"
    live = rows["live"].split("|")
    assert live[5] == "1" and not live[2].endswith(" / 0B")  # host MemTotal when unlimited


def test_stats_unknown_container(box) -> None:
    proc = box("stats", "--no-stream", "nope")
    assert proc.returncode == 1 and "No such container: nope" in proc.stderr


def test_stats_streams_until_interrupted(box) -> None:
    box.ok("run", "-d", "--name", "streamer", "busybox", "sleep", "30")
    from tests.conftest import BOX

    proc = subprocess.Popen([BOX, "stats", "streamer"], stdout=subprocess.PIPE, text=True,
                            env=box.env, stdin=subprocess.DEVNULL)
    try:
        time.sleep(3.6)
    finally:
        proc.terminate()
        out, _ = proc.communicate(10)
    assert out.count("CONTAINER ID") >= 2  # redrawn every second
    assert "\033[2J" not in out  # not a terminal: no screen clearing


def test_stats_units_and_host_cpu() -> None:
    assert [human3(x) for x in (0, 999, 1000, 1536, 12_345_678)] == [
        "0B", "999B", "1kB", "1.54kB", "12.3MB"]
    ns, online = host_cpu()
    assert ns > 0 and online >= 1
