"""V2Driver on a real pure-v2 root, controllers enabled: the limits land in the kernel's
files and the kernel enforces them (memory.max OOM-kills and counts in memory.events,
pids.max refuses a fork, cpu.max throttles), and destroy empties a group of forks with
cgroup.kill. Skipped on a hybrid host; node 1 (tests/nodes) runs them under its pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cgroups.base import DeviceRate, Resources
from runtime.cgroups.v2 import V2Driver, blkio_to_io_weight
from tests.support.cgroup2 import CGROUP, needs_v2

pytestmark = needs_v2
MiB = 1 << 20


def read(path: str, name: str) -> str:
    return Path(path, name).read_text().strip()


def root_device() -> str:
    """The block device holding / (the guest's /dev/vda): io.max needs a real disk."""
    dev = os.stat("/").st_dev
    for name in sorted(os.listdir("/sys/dev/block")):
        if name == f"{os.major(dev)}:{os.minor(dev)}":
            return "/dev/" + Path(f"/sys/dev/block/{name}/uevent").read_text().split(
                "DEVNAME=")[1].split()[0]
    pytest.skip(f"/ is on no block device ({os.major(dev)}:{os.minor(dev)})")


@pytest.fixture
def groups() -> Iterator[list[dict[str, str]]]:
    """The groups a test makes, destroyed after it (and ``box`` when it is left empty)."""
    made: list[dict[str, str]] = []
    yield made
    drv = V2Driver(str(CGROUP))
    for paths in made:
        drv.destroy(paths)
        assert not os.path.exists(paths["unified"]), f"leaked {paths['unified']}"
    try:
        os.rmdir(CGROUP / "box")
    except OSError:
        pass  # containers of someone else's live there


def make(groups: list[dict[str, str]], res: Resources) -> tuple[V2Driver, dict[str, str]]:
    drv = V2Driver(str(CGROUP))
    paths = drv.create(f"box/test-{uuid.uuid4().hex[:12]}", res)
    groups.append(paths)
    return drv, paths


def run_in(drv: V2Driver, paths: dict[str, str], argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: drv.attach(paths, os.getpid()))


def test_real_limits_land_in_the_v2_files(groups: list[dict[str, str]]) -> None:
    dev = root_device()
    rdev = os.stat(dev).st_rdev
    drv, paths = make(groups, Resources(
        memory=64 * MiB, memory_swap=128 * MiB, memory_reservation=16 * MiB,
        nano_cpus=500_000_000, cpu_shares=512, cpuset_cpus="0", pids_limit=50,
        blkio_weight=300, blkio_device_read_bps=(DeviceRate(dev, MiB),)))
    path = paths["unified"]
    assert set(drv.controllers()) >= {"cpu", "memory", "pids", "io"}, drv.controllers()
    enabled = set(read(str(CGROUP / "box"), "cgroup.subtree_control").split())
    assert enabled >= {"cpu", "memory", "pids", "io"}, enabled
    assert read(path, "memory.max") == str(64 * MiB)
    assert read(path, "memory.swap.max") == str(64 * MiB)  # v2 limits swap alone
    assert read(path, "memory.low") == str(16 * MiB)
    assert read(path, "cpu.max") == "50000 100000"
    assert read(path, "cpu.weight") == "20"
    assert read(path, "cpuset.cpus") == "0"
    assert read(path, "pids.max") == "50"
    if os.path.exists(f"{path}/io.bfq.weight"):
        assert read(path, "io.bfq.weight") == "default 300"
    else:
        assert read(path, "io.weight") == f"default {blkio_to_io_weight(300)}"
    assert read(path, "io.max") == (
        f"{os.major(rdev)}:{os.minor(rdev)} rbps={MiB} wbps=max riops=max wiops=max")


def test_real_memory_max_oom_kills_and_counts(groups: list[dict[str, str]]) -> None:
    drv, paths = make(groups, Resources(memory=16 * MiB, memory_swap=16 * MiB))
    proc = run_in(drv, paths, [sys.executable, "-I", "-S", "-c", "b = bytearray(64 << 20)"])
    assert proc.wait(timeout=60) == -9
    assert drv.oom_kills(paths) == 1
    events = dict(line.split() for line in read(paths["unified"], "memory.events").splitlines())
    assert events["oom_kill"] == "1" and int(events["max"]) > 0, events
    assert int(read(paths["unified"], "memory.peak")) <= 16 * MiB


FORKS = """
import os, time
kids = []
for _ in range(4):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
print(len(kids), flush=True)
time.sleep(30)
"""


def test_real_pids_max_refuses_the_fork_beyond_it(groups: list[dict[str, str]]) -> None:
    drv, paths = make(groups, Resources(pids_limit=3))
    proc = run_in(drv, paths, [sys.executable, "-I", "-S", "-c", FORKS])
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"2\n"
        assert len(drv.pids(paths)) == 3  # python and two children; the third fork failed
        assert read(paths["unified"], "pids.events") == "max 1"
    finally:
        drv.destroy(paths)
        proc.wait(timeout=10)


def test_real_cpu_max_throttles_a_busy_loop(groups: list[dict[str, str]]) -> None:
    drv, paths = make(groups, Resources(nano_cpus=200_000_000))
    proc = run_in(drv, paths, [sys.executable, "-I", "-S", "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        stat = dict(line.split() for line in read(paths["unified"], "cpu.stat").splitlines())
    finally:
        drv.destroy(paths)
        proc.wait(timeout=10)
    assert int(stat["nr_throttled"]) > 0 and int(stat["throttled_usec"]) > 0, stat
    assert int(stat["usage_usec"]) < 0.5 * 1.5e6 * 1.5, stat  # capped near 0.2 of a cpu


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (killed, its parent gone, not yet reaped by init) is
    dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_real_destroy_kills_forks_with_cgroup_kill(groups: list[dict[str, str]]) -> None:
    drv, paths = make(groups, Resources())
    proc = run_in(drv, paths, ["sh", "-c", "for i in 1 2 3 4 5; do sleep 60 & done; "
                                           "echo go; wait"])
    assert proc.stdout is not None and proc.stdout.readline() == b"go\n"
    pids = drv.pids(paths)
    assert len(pids) == 6 and os.path.exists(f"{paths['unified']}/cgroup.kill")
    t0 = time.monotonic()
    drv.destroy(paths)
    took = time.monotonic() - t0
    assert proc.wait(timeout=5) == -9
    assert not [p for p in pids if _alive(p)]
    assert not os.path.exists(paths["unified"])
    assert took < 2.0, f"destroy took {took:.2f} s: the kill was not one write"
