"""Node 1: cgroup v2, systemd as PID 1, Docker with its default systemd cgroup driver
(containers in ``/system.slice/docker-<id>.scope``). ``box`` on real v2 files under
systemd, and the collector on Docker's root (names, numbers, events). The shipper and the
interop checks, which do not depend on the cgroup layout, run on node 2
(tests/nodes/guest/engine_checks.py), which has spare time while this one boots."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.nodes.guest import common, docker_view
from tests.nodes.guest.common import box_inspect
from tests.nodes.guest.docker_view import HOG
from tests.nodes.guest.suite import (
    BOX,
    BOXWATCH,
    Suite,
    collector_once,
    fetch,
    main,
    out,
    sh,
    wait_for,
)

SUITE = Suite()
CG = Path("/sys/fs/cgroup")
# the host's kernel tests that need real v2 files (``needs_v2``): run here under pytest,
# with the conftests and pyproject.toml's pytest settings they need
PYTEST_FILES = ("tests/runtime/test_cgroups_v2_real.py",
                "tests/collector/test_collector_kernel_v2.py",
                "tests/collector/test_collector_kmsg.py")
PAYLOAD_FILES = ("pyproject.toml", "tests/conftest.py", "tests/collector/conftest.py",
                 *PYTEST_FILES)
RUN = """#!/bin/sh
export PATH=/mnt/payload/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PYTHONPATH=/mnt/payload/src:/mnt/payload/site
cd /mnt/payload/src && python3 -m tests.nodes.guest.node1
rc=$?
cp /tmp/collector-events.log /mnt/payload/results/ 2>/dev/null
journalctl -b -o short-monotonic --no-pager | grep -E "Start|Reached" \
    > /mnt/payload/results/boot.txt
journalctl -b -u docker --no-pager | tail -n 50 > /mnt/payload/results/docker.log
exit $rc
"""


def _read(path: Path) -> str:
    return path.read_text().strip()


def _box_group(name: str) -> Path:
    return CG / "box" / box_inspect(name, "{{.Id}}")


common.register(SUITE, systemd=True, cgroup_driver="systemd")


@SUITE.check("box_limits_in_v2_files")
def limits(ctx: dict[str, Any]) -> str:
    from runtime.cgroups.v2 import blkio_to_io_weight

    sh(BOX, "run", "-d", "--name", "lim", "--network", "none", "-m", "64m", "--memory-swap",
       "128m", "--cpus", "0.5", "--cpuset-cpus", "1", "--pids-limit", "50", "--blkio-weight",
       "300", "--device-read-bps", "/dev/vda:1mb", "busybox", "sleep", "3600")
    group = _box_group("lim")
    dev = os.stat("/dev/vda").st_rdev
    want = {
        "memory.max": str(64 << 20),
        "memory.swap.max": str(64 << 20),  # v2 limits swap alone: 128m - 64m
        "cpu.max": "50000 100000",
        "cpuset.cpus": "1",
        "pids.max": "50",
    }
    got = {name: _read(group / name) for name in want}
    if (group / "io.bfq.weight").exists():
        want["io.bfq.weight"], got["io.bfq.weight"] = "default 300", _read(group / "io.bfq.weight")
    else:
        want["io.weight"] = f"default {blkio_to_io_weight(300)}"
        got["io.weight"] = _read(group / "io.weight")
    want["io.max"] = f"{os.major(dev)}:{os.minor(dev)} rbps=1048576 wbps=max riops=max wiops=max"
    got["io.max"] = _read(group / "io.max")
    assert got == want, f"got {got}, want {want}"
    return json.dumps(got)


@SUITE.check("box_group_placement")
def placement(ctx: dict[str, Any]) -> str:
    pid = box_inspect("lim", "{{.State.Pid}}")
    cid = box_inspect("lim", "{{.Id}}")
    line = _read(Path(f"/proc/{pid}/cgroup"))
    assert line == f"0::/box/{cid}", f"/proc/{pid}/cgroup: {line}"
    sub = _read(CG / "box/cgroup.subtree_control")
    return f"/proc/{pid}/cgroup = {line}; /box enables '{sub}' (beside systemd's slices)"


@SUITE.check("box_oom_kill_exit_137")
def oom_exit(ctx: dict[str, Any]) -> str:
    proc = sh(BOX, "run", "--name", "oom1", "--network", "none", "-m", "32m", "busybox", "sh",
              "-c", HOG, check=False, timeout=120)
    assert proc.returncode == 137, f"exit {proc.returncode}: {proc.stderr[-300:]}"
    oom = box_inspect("oom1", "{{.State.OOMKilled}} {{.State.ExitCode}}")
    assert oom == "true 137", f"State: {oom}"
    return "exit 137, OOMKilled true"


@SUITE.check("box_oom_memory_events_and_alert")
def oom_events(ctx: dict[str, Any]) -> str:
    rx = docker_view.Receiver()
    argv = [BOXWATCH, "collector", "--root", "/var/lib/box", "--interval", "1s", "--rescan",
            "1s", "--listen", "127.0.0.1:9182", "--alert-webhook",
            f"http://127.0.0.1:{rx.server_address[1]}/alert"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(
            "the collector's /healthz", lambda: fetch("http://127.0.0.1:9182/healthz"), 60, 0.2
        )
        # the hog is a child: the kernel kills it, the container lives on with the count
        sh(BOX, "run", "-d", "--name", "oom2", "--network", "none", "-m", "32m", "busybox",
           "sh", "-c", f"sleep 2; ({HOG}); sleep 3600")
        events = _box_group("oom2") / "memory.events"
        t_kill = wait_for(
            "oom_kill in memory.events",
            lambda: "oom_kill 0" not in _read(events) and time.time(),
            60,
            0.05,
        )
        posts = wait_for(
            "the alert webhook", lambda: [b for p, b in rx.posts if p == "/alert"], 30, 0.05
        )
        delay = time.time() - t_kill
        assert b"oom2" in posts[0], posts[0][:300]
        sample = [s for s in collector_once("/var/lib/box") if s["name"] == "oom2"][0]
        assert sample["memory"]["events_oom_kill"] >= 1, sample["memory"]
        return f"memory.events: {_read(events).replace(chr(10), ', ')}; alert {delay:.2f} s after"
    finally:
        proc.terminate()
        proc.wait(10)
        rx.shutdown()


@SUITE.check("box_rm_f_uses_cgroup_kill")
def rm_kill(ctx: dict[str, Any]) -> str:
    sh(BOX, "run", "-d", "--name", "forks", "--network", "none", "busybox", "sh", "-c",
       "sleep 1000 & sleep 1000 & sleep 1000 & wait")
    group = _box_group("forks")
    pids = wait_for("four processes", lambda: len(_read(group / "cgroup.procs").split()) >= 4
                    and _read(group / "cgroup.procs").split(), 30)
    assert (group / "cgroup.kill").exists(), "no cgroup.kill on this kernel"
    t0 = time.monotonic()
    sh(BOX, "rm", "-f", "forks")
    took = time.monotonic() - t0
    alive = [p for p in pids if Path(f"/proc/{p}").exists()]
    assert not alive and not group.exists(), f"alive {alive}, group left: {group.exists()}"
    return f"{len(pids)} processes gone with their group in {took:.2f} s"


@SUITE.check("box_stats_and_collector_read_v2")
def stats(ctx: dict[str, Any]) -> str:
    sh(BOX, "run", "-d", "--name", "busy", "--network", "none", "-m", "48m", "busybox", "sh",
       "-c", "dd if=/dev/zero of=/f bs=1M count=4 conv=fsync; cat /f > /dev/null; "
       "while :; do :; done")

    def written() -> dict[str, Any] | None:
        s = [s for s in collector_once("/var/lib/box") if s["name"] == "busy"][0]
        done = sum(d["write_bytes"] for d in s["blkio"].values()) >= 4 << 20
        return s if done and s["psi"]["cpu"] and s["psi"]["cpu"]["some"]["total_us"] > 0 else None

    s = wait_for("busy's 4 MiB written and cpu stalls counted", written, 60, 0.3)
    table = out(
        BOX, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "busy"
    )
    assert "/ 48MiB" in table, table
    assert s["cgroup"].startswith("/box/") and s["cgroup_version"] == 2, s["cgroup"]
    psi = s["psi"]
    assert psi["cpu"] and psi["memory"] and psi["io"], f"PSI missing: {psi}"
    assert psi["cpu"]["some"]["total_us"] > 0, psi["cpu"]
    peak = int(_read(_box_group("busy") / "memory.peak"))
    assert 0 < s["memory"]["max_usage"] <= peak, (s["memory"]["max_usage"], peak)
    wrote = sum(d["write_bytes"] for d in s["blkio"].values())
    assert wrote >= 4 << 20, f"io.stat write bytes {wrote}: {s['blkio']}"
    assert s["spec"]["memory_limit"] == 48 << 20 and s["cpu"]["usage_ns"] > 0, s["spec"]
    sh(BOX, "rm", "-f", "busy")
    return (f"box stats: {table}; collector: PSI cpu {psi['cpu']['some']}, "
            f"peak {s['memory']['max_usage']}, io write {wrote}")


@SUITE.check("v2_kernel_tests_under_pytest")
def kernel_tests(ctx: dict[str, Any]) -> str:
    """The host's kernel tests that need real v2 files (``needs_v2``, skipped on the hybrid
    host), under pytest here; the host reads the JUnit file back and reports each test
    (tests/nodes/test_node1_v2.py). Exit 1 is a failed test: the host names it."""
    results = Path("/mnt/payload/results")
    proc = sh("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
              f"--junitxml={results}/v2-junit.xml", *PYTEST_FILES, check=False, timeout=600)
    (results / "v2-pytest.log").write_text(proc.stdout + proc.stderr)
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    assert proc.returncode in (0, 1), f"pytest exit {proc.returncode}: {proc.stdout[-1500:]}"
    return summary


docker_view.register(SUITE, "/system.slice/docker-{id}.scope")
docker_view.register_events(SUITE)

if __name__ == "__main__":
    main(SUITE)
