"""Node 1: cgroup v2, systemd as PID 1, Docker with its default systemd cgroup driver
(containers in ``/system.slice/docker-<id>.scope``). ``box`` on real v2 files, the
collector and the shipper on Docker's root, and interop with the real engine."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.nodes.guest import docker_view
from tests.nodes.guest.common import box_inspect, import_images, node_facts
from tests.nodes.guest.suite import (
    BOX,
    BOXWATCH,
    Suite,
    collector_once,
    engine,
    fetch,
    main,
    out,
    sh,
    wait_for,
)

SUITE = Suite()
CG = Path("/sys/fs/cgroup")
RUN = """#!/bin/sh
export PATH=/mnt/payload/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /mnt/payload/src && PYTHONPATH=/mnt/payload/src:/mnt/payload/site python3 -m tests.nodes.guest.node1
rc=$?
cp /tmp/collector-events.log /tmp/shipper.log /mnt/payload/results/ 2>/dev/null
journalctl -b -o short-monotonic --no-pager | grep -E "Start|Reached" > /mnt/payload/results/boot.txt
journalctl -b -u docker --no-pager | tail -n 50 > /mnt/payload/results/docker.log
exit $rc
"""
HOG = "x=a; while :; do x=$x$x; done"


def _read(path: Path) -> str:
    return path.read_text().strip()


def _box_group(name: str) -> Path:
    return CG / "box" / box_inspect(name, "{{.Id}}")


@SUITE.check("node_layout")
def layout(ctx: dict[str, Any]) -> str:
    facts = node_facts()
    assert facts["pid1"] == "systemd", facts
    driver = out("docker", "info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}")
    assert driver == "systemd 2", f"docker info: {driver}"
    return f"{facts}; docker {driver}"


@SUITE.check("images")
def images(ctx: dict[str, Any]) -> str:
    return import_images(box=True)


@SUITE.check("box_limits_in_v2_files")
def limits(ctx: dict[str, Any]) -> str:
    from runtime.cgroups.v2 import blkio_to_io_weight

    sh(BOX, "run", "-d", "--name", "lim", "--network", "none", "-m", "64m", "--memory-swap",
       "128m", "--cpus", "0.5", "--cpuset-cpus", "1", "--pids-limit", "50", "--blkio-weight",
       "300", "--device-read-bps", "/dev/vda:1mb", "busybox", "sleep", "3600")  # fmt: skip
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
              "-c", HOG, check=False, timeout=120)  # fmt: skip
    assert proc.returncode == 137, f"exit {proc.returncode}: {proc.stderr[-300:]}"
    oom = box_inspect("oom1", "{{.State.OOMKilled}} {{.State.ExitCode}}")
    assert oom == "true 137", f"State: {oom}"
    return "exit 137, OOMKilled true"


@SUITE.check("box_oom_memory_events_and_alert")
def oom_events(ctx: dict[str, Any]) -> str:
    rx = docker_view.Receiver()
    argv = [BOXWATCH, "collector", "--root", "/var/lib/box", "--interval", "1s", "--rescan",
            "1s", "--listen", "127.0.0.1:9182", "--alert-webhook",
            f"http://127.0.0.1:{rx.server_address[1]}/alert"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("the collector's /healthz", lambda: fetch("http://127.0.0.1:9182/healthz"), 60, 0.2)
        # the hog is a child: the kernel kills it, the container lives on with the count
        sh(BOX, "run", "-d", "--name", "oom2", "--network", "none", "-m", "32m", "busybox",
           "sh", "-c", f"sleep 2; ({HOG}); sleep 3600")  # fmt: skip
        events = _box_group("oom2") / "memory.events"
        t_kill = wait_for("oom_kill in memory.events",
                          lambda: "oom_kill 0" not in _read(events) and time.time(), 60, 0.05)
        posts = wait_for("the alert webhook", lambda: [b for p, b in rx.posts if p == "/alert"], 30, 0.05)
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
       "sleep 1000 & sleep 1000 & sleep 1000 & wait")  # fmt: skip
    group = _box_group("forks")
    pids = wait_for("four processes", lambda: len(_read(group / "cgroup.procs").split()) >= 4
                    and _read(group / "cgroup.procs").split(), 30)  # fmt: skip
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
       "while :; do :; done")  # fmt: skip

    def written() -> dict[str, Any] | None:
        s = [s for s in collector_once("/var/lib/box") if s["name"] == "busy"][0]
        done = sum(d["write_bytes"] for d in s["blkio"].values()) >= 4 << 20
        return s if done and s["psi"]["cpu"] and s["psi"]["cpu"]["some"]["total_us"] > 0 else None

    s = wait_for("busy's 4 MiB written and cpu stalls counted", written, 60, 0.3)
    table = out(BOX, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "busy")
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
    return f"box stats: {table}; collector: PSI cpu {psi['cpu']['some']}, peak {s['memory']['max_usage']}, io write {wrote}"


docker_view.register(SUITE, "/system.slice/docker-{id}.scope")
docker_view.register_events(SUITE)

# -- the shipper on Docker's root ---------------------------------------------------------
LINES = 12000  # ~2.4 MB of json-file: two rotations at max-size=1m, all kept by max-file=3
LOGGER = (f"sleep 2; awk 'BEGIN {{ pad = sprintf(\"%0100d\", 0); "
          f"for (i = 1; i <= {LINES}; i++) {{ "
          "if (i % 10 == 0) print \"err \" i > \"/dev/stderr\"; else print \"out \" i \" \" pad; "
          "if (i == 5000) { s = \"\"; for (j = 0; j < 40000; j++) s = s \"L\"; print \"long \" s } "
          "if (i % 500 == 0) { fflush(); system(\"sleep 0.3\") } } }'")  # fmt: skip


def _shipped(path: Path, name: str) -> tuple[dict[str, list[str]], int]:
    """Per stream, the shipped messages in order, replays removed; and the replay count."""
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    seen: set[tuple[int, str, str]] = set()
    dups = 0
    for raw in path.read_bytes().splitlines():
        try:
            e = json.loads(raw)
        except ValueError:
            continue  # a line torn by the SIGKILL; its batch is sent again
        if e.get("container_name") != name:
            continue
        key = (e["time_ns"], e["stream"], e["message"])
        if key in seen:
            dups += 1
            continue
        seen.add(key)
        streams[e["stream"]].append(e["message"])
    return streams, dups


@SUITE.check("shipper_ships_what_docker_logs_shows")
def shipper(ctx: dict[str, Any]) -> str:
    sink = Path("/tmp/shipped.ndjson")
    argv = [BOXWATCH, "shipper", "--root", "/var/lib/docker", "--sink", f"file={sink}",
            "--registry", "/tmp/shipper.registry", "--listen", "127.0.0.1:9181"]  # fmt: skip
    log = open("/tmp/shipper.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        wait_for("the shipper's /healthz", lambda: fetch("http://127.0.0.1:9181/healthz"), 60, 0.2)
        cid = out("docker", "run", "-d", "--name", "logger", "--log-opt", "max-size=1m",
                  "--log-opt", "max-file=3", "busybox", "sh", "-c", LOGGER)  # fmt: skip
        wait_for("some lines shipped", lambda: sink.exists() and sink.stat().st_size > 200_000, 120, 0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        running = engine(f"/containers/{cid}/json")["State"]["Running"]
        at_kill = sink.stat().st_size
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        wait_for("the logger's end", lambda: not engine(f"/containers/{cid}/json")["State"]["Running"], 240)
        logs = sh("docker", "logs", "logger", timeout=60)
        want = {"stdout": logs.stdout.split("\n")[:-1], "stderr": logs.stderr.split("\n")[:-1]}
        assert len(want["stdout"]) + len(want["stderr"]) == LINES + 1, (len(want["stdout"]), len(want["stderr"]))

        def caught_up() -> bool:
            # a count of the raw lines first (cheap), the full parse only when it can pass
            if sink.read_bytes().count(b'"container_name":"logger"') < LINES + 1:
                return False
            return sum(map(len, _shipped(sink, "logger")[0].values())) >= LINES + 1

        wait_for("the shipper to catch up", caught_up, 120, 0.5)
        time.sleep(0.5)  # anything beyond the lines docker logs shows would arrive now
        got, dups = _shipped(sink, "logger")
        for stream in want:
            if got[stream] != want[stream]:
                diff = next((i for i, (a, b) in enumerate(zip(got[stream], want[stream], strict=False)) if a != b),
                            min(len(got[stream]), len(want[stream])))
                raise AssertionError(f"{stream} differs at line {diff}: shipped "
                                     f"{got[stream][diff:diff + 1]!r:.200} vs docker logs "
                                     f"{want[stream][diff:diff + 1]!r:.200} "
                                     f"({len(got[stream])} vs {len(want[stream])} lines)")
        files = sorted(p.name.split("-json.log")[1] or "current"
                       for p in Path(f"/var/lib/docker/containers/{cid}").glob("*-json.log*"))
        assert len(files) == 3, f"rotation: {files}"
        longest = max(map(len, want["stdout"]))
        assert longest > 40000, longest
        assert running, "the logger had finished before the SIGKILL: not mid-stream"
        return (f"{LINES + 1} lines equal per stream (longest {longest} bytes, files {files}); "
                f"SIGKILL at {at_kill} bytes shipped, mid-stream; {dups} replayed after restart")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


# -- interop with the engine --------------------------------------------------------------
@SUITE.check("interop_box_save_docker_load_run")
def box_to_docker(ctx: dict[str, Any]) -> str:
    sh(BOX, "tag", "busybox", "boxmade:1")
    sh(BOX, "save", "-o", "/tmp/boxmade.tar", "boxmade:1")
    sh("docker", "load", "-i", "/tmp/boxmade.tar")
    said = out("docker", "run", "--rm", "--network", "none", "boxmade:1", "echo", "from-box")
    assert said == "from-box", said
    return "box save -> docker load -> docker run: from-box"


@SUITE.check("interop_docker_save_box_load_run")
def docker_to_box(ctx: dict[str, Any]) -> str:
    sh("docker", "tag", "busybox", "dockermade:1")
    sh("docker", "save", "-o", "/tmp/dockermade.tar", "dockermade:1")
    sh(BOX, "load", "-i", "/tmp/dockermade.tar")
    said = out(BOX, "run", "--rm", "--network", "none", "dockermade:1", "echo", "from-docker")
    assert said == "from-docker", said
    return "docker save -> box load -> box run: from-docker"


PROGRAM = ("echo one; echo two >&2; head -c 40000 /dev/zero | tr '\\0' y; echo; "
           "echo three >&2; printf 'no newline'")
# Go's RFC3339Nano: UTC, "Z", the fraction without trailing zeros
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")


def _jsonfile(path: str) -> dict[str, list[tuple[list[str], str]]]:
    """Per stream, each line's (keys in order, log); times checked against TIME."""
    streams: dict[str, list[tuple[list[str], str]]] = {"stdout": [], "stderr": []}
    for raw in Path(path).read_bytes().splitlines():
        e = json.loads(raw)
        assert TIME.match(e["time"]), f"{path}: time {e['time']!r}"
        streams[e["stream"]].append((list(e), e["log"]))
    return streams


@SUITE.check("interop_jsonfile_same_as_dockerd")
def same_log(ctx: dict[str, Any]) -> str:
    sh("docker", "run", "--name", "jf", "--network", "none", "busybox", "sh", "-c", PROGRAM)
    sh(BOX, "run", "--name", "jf", "--network", "none", "busybox", "sh", "-c", PROGRAM)
    theirs = _jsonfile(engine("/containers/jf/json")["LogPath"])
    ours = _jsonfile(box_inspect("jf", "{{.LogPath}}"))
    for stream in theirs:
        assert ours[stream] == theirs[stream], (
            f"{stream}: box {[(k, v[:40]) for k, v in ours[stream]]} vs dockerd "
            f"{[(k, v[:40]) for k, v in theirs[stream]]}")
    partials = sum(1 for _, v in theirs["stdout"] if not v.endswith("\n"))
    return f"{sum(map(len, theirs.values()))} lines equal ({partials} without newline: partials and the last)"


if __name__ == "__main__":
    main(SUITE)
