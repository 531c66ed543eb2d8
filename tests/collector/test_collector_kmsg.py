"""The kernel's OOM record (/dev/kmsg) as the instant alert's fallback: a real memcg OOM
kill is read back with its group and victim, and a container that died between two
scans with ``OOMKilled`` false in its state file (as Docker 20.10 on v2 sometimes leaves
it) is alerted from it. On the host's v1 memory controller here; on pure v2 (node 1,
tests/nodes, runs this file too) on a v2 group."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from cgroupstats.kmsg import KmsgOomKills, parse_record
from cgroupstats.model import ContainerRef
from collector.alert_sender import OomAlert
from collector.alerts import OomWatcher
from tests.collector.conftest import Group
from tests.support.cgroup2 import pure_v2
from tests.support.wait import wait_until as wait

MiB = 1 << 20
HOG = [sys.executable, "-I", "-S", "-c", "b = bytearray(64 << 20)"]
DOCKER_V2 = (b"3,1234,56789012,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
             b"cpuset=docker-ab.scope,mems_allowed=0,oom_memcg=/system.slice/docker-ab.scope,"
             b"task_memcg=/system.slice/docker-ab.scope,task=sh,pid=4321,uid=0\n")


def test_parse_record_reads_the_memcg_kill_and_nothing_else() -> None:
    kill = parse_record(DOCKER_V2)
    assert kill is not None
    assert (kill.oom_memcg, kill.task_memcg, kill.task, kill.pid, kill.monotonic_us) == (
        "/system.slice/docker-ab.scope", "/system.slice/docker-ab.scope", "sh", 4321, 56789012)
    glob = (b"3,9,1,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
            b"mems_allowed=0,global_oom,task_memcg=/user.slice,task=x,pid=1,uid=0\n")
    assert parse_record(glob) is None  # the host ran out, no container's limit
    assert parse_record(b"6,10,2,-;Memory cgroup out of memory: Killed process 4321 (sh)\n") is None
    assert parse_record(b"garbage") is None


needs_kmsg = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/kmsg"),
                                reason="needs root and /dev/kmsg")


@pytest.fixture
def memory_group(request: pytest.FixtureRequest) -> Iterator[Callable[[int], Group]]:
    """A real group limited to ``limit`` bytes: on the v1 memory controller, or on pure
    v2 with the controllers enabled."""
    if pure_v2():
        make_v2 = request.getfixturevalue("v2_real_group")

        def make(limit: int) -> Group:
            g = make_v2()
            g.write("unified", "memory.max", str(limit))
            g.write("unified", "memory.swap.max", "0")
            return g
    elif Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists():
        make_v1 = request.getfixturevalue("v1_group")

        def make(limit: int) -> Group:
            g = make_v1()
            g.write("memory", "memory.limit_in_bytes", str(limit))
            return g
    else:
        pytest.skip("no memory controller (neither v1 nor pure v2)")
    yield make


@needs_kmsg
def test_a_real_oom_kill_is_read_back_with_its_group(memory_group: Callable[[int], Group]
                                                     ) -> None:
    kmsg = KmsgOomKills()
    try:
        g = memory_group(16 * MiB)
        proc = g.spawn(HOG)
        assert proc.wait(60) == -9
        kill = wait(lambda: kmsg.killed(g.name), 10, f"an oom-kill line for {g.name}",
                    seen=lambda: list(kmsg.kills))
        assert kill.oom_memcg == g.name and kill.task_memcg == g.name
        assert kill.pid == proc.pid and kill.task.startswith("python")
        assert kmsg.killed(g.name + "-other") is None
        assert kmsg.killed("", g.name.rsplit("/", 1)[1]) == kill  # by the id in its name
        assert kmsg.killed("", g.name.rsplit("/", 1)[1][:8]) is None  # too short to say
    finally:
        kmsg.close()


def _ended_state(tmp: Path, name: str) -> str:
    """A config.v2.json of a container that ended with 137 and OOMKilled false."""
    log = tmp / f"{name}-json.log"
    log.write_bytes(orjson.dumps({"log": "grow\n", "stream": "stdout",
                                  "time": "2025-01-01T00:00:00.000000001Z"}) + b"\n")
    state = tmp / f"{name}.json"
    state.write_bytes(orjson.dumps({"LogPath": str(log), "State": {
        "Running": False, "ExitCode": 137, "OOMKilled": False}}))
    return str(state)


@needs_kmsg
def test_ended_without_oomkilled_is_alerted_from_the_kernel_log(
        memory_group: Callable[[int], Group], tmp_path: Path) -> None:
    alerts: list[OomAlert] = []
    watcher = OomWatcher(alerts.append, host="node1")
    kmsg = KmsgOomKills()  # to wait for the kernel's line (it is written before the reap)
    try:
        hog, calm = memory_group(16 * MiB), memory_group(16 * MiB)
        assert hog.spawn(HOG).wait(60) == -9
        assert calm.spawn(["true"]).wait(60) == 0
        # as discovery hands an ending over: no group, no paths; the id names the group
        refs = [ContainerRef(g.name.rsplit("/", 1)[1], name, "busybox", "", 2, {},
                             state_file=_ended_state(tmp_path, name))
                for name, g in (("hog", hog), ("calm", calm))]
        wait(lambda: kmsg.killed(hog.name), 10, "the kernel's oom-kill line")
        watcher.ended(refs)
        watcher.ended(refs)  # handed over again: alerted once
    finally:
        watcher.close()
        kmsg.close()
    assert [(a.ref.name, a.oom_kills) for a in alerts] == [("hog", 1)]
    assert [e["log"] for e in alerts[0].logs] == ["grow"]
