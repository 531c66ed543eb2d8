"""The v2 readers on a real pure-v2 root with the controllers enabled: cpu.max throttling,
the memory files (memory.peak, memory.events oom_kill), io.stat, pids and PSI as the
kernel writes them. Skipped on a hybrid host (its unified mount has no controllers);
node 1 (tests/nodes) runs them under its pytest and the host reports each.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cgroupstats import open_reader
from cgroupstats.model import ContainerRef
from cgroupstats.v2.cpu import weight_to_shares
from tests.support.cgroup2 import needs_v2
from tests.support.wait import wait_until as wait_for

if TYPE_CHECKING:
    from tests.collector.conftest import Group

pytestmark = needs_v2
PY = [sys.executable, "-I", "-S", "-c"]
BUSY = [*PY, "while True: pass"]
MiB = 1 << 20


def ref_of(group: Group, pid: int = 0) -> ContainerRef:
    return ContainerRef(id=group.name, name="", image="", cgroup=group.name, cgroup_version=2,
                        cgroup_paths=dict(group.paths), pid=pid)


def test_v2_cpu_max_throttles_a_busy_loop(v2_real_group: Callable[..., Group]) -> None:
    g = v2_real_group()
    g.write("unified", "cpu.max", "50000 100000")
    proc = g.spawn(BUSY)
    reader = open_reader(ref_of(g, pid=proc.pid))
    try:
        first = reader.read()
        time.sleep(1.5)
        second = reader.read()
    finally:
        reader.close()
    used = second.cpu.usage_ns - first.cpu.usage_ns
    wall = second.timestamp_ns - first.timestamp_ns
    assert 0.05 * wall < used < 0.65 * wall  # it ran, and was capped at half a cpu
    assert second.cpu.nr_throttled > 0 and second.cpu.throttled_ns > 0
    assert second.cpu.nr_periods >= second.cpu.nr_throttled
    assert second.cpu.usage_ns >= second.cpu.user_ns > 0
    assert (second.spec.cpu_quota_us, second.spec.cpu_period_us) == (50000, 100000)
    assert second.pids.current == 1
    assert second.psi.cpu is not None and second.psi.cpu.some.total_us > 0


def test_v2_memory_limits_and_peak_read_back(v2_real_group: Callable[..., Group]) -> None:
    g = v2_real_group()
    g.write("unified", "memory.max", str(256 * MiB))
    g.write("unified", "memory.low", str(64 * MiB))
    g.write("unified", "memory.swap.max", str(32 * MiB))
    g.write("unified", "cpu.weight", "20")
    g.write("unified", "pids.max", "50")
    proc = g.spawn([*PY, "b = bytearray(32 << 20)\nb[::4096] = b'x' * len(b[::4096])\n"
                         "import time\ntime.sleep(60)"])
    reader = open_reader(ref_of(g, pid=proc.pid))
    try:
        wait_for(lambda: reader.read().memory.rss >= 32 * MiB, what="32 MiB of anon")
        s = reader.read()
    finally:
        reader.close()
    assert s.spec.memory_limit == 256 * MiB
    assert s.spec.memory_reservation == 64 * MiB
    assert s.spec.swap_limit == 32 * MiB  # v2's swap alone
    assert s.spec.cpu_shares == weight_to_shares(20) and s.spec.pids_max == 50
    assert s.spec.cpuset_cpus and s.spec.cpuset_mems
    assert s.memory.usage >= s.memory.working_set >= 32 * MiB
    assert s.memory.max_usage >= s.memory.usage  # memory.peak
    assert s.memory.pgfault > 0
    assert s.psi.memory is not None and s.psi.io is not None


def test_v2_oom_kill_is_counted_from_memory_events(v2_real_group: Callable[..., Group]) -> None:
    g = v2_real_group()
    g.write("unified", "memory.max", str(16 * MiB))
    g.write("unified", "memory.swap.max", "0")
    proc = g.spawn([*PY, "b = bytearray(64 << 20)"])
    proc.wait(timeout=60)
    reader = open_reader(ref_of(g))
    try:
        s = reader.read()
    finally:
        reader.close()
    assert proc.returncode == -9
    assert s.memory.events_oom_kill == 1 and s.memory.events_oom >= 1
    assert s.memory.failcnt > 0  # memory.events "max", as runc reports it
    assert 0 < s.memory.max_usage <= 16 * MiB


def test_v2_io_stat_counts_the_bytes_written(v2_real_group: Callable[..., Group]) -> None:
    g = v2_real_group()
    # on the root disk (/var/tmp), not a tmpfs: io.stat counts block devices only
    fd, path = tempfile.mkstemp(prefix="box-io-", dir="/var/tmp")
    os.close(fd)
    try:
        proc = g.spawn(["dd", "if=/dev/zero", f"of={path}", "bs=1M", "count=4", "conv=fsync"])
        assert proc.wait(timeout=120) == 0
        reader = open_reader(ref_of(g))
        try:
            s = reader.read()
        finally:
            reader.close()
    finally:
        os.unlink(path)
    wrote = sum(d.write_bytes for d in s.blkio.values())
    assert wrote >= 4 * MiB, s.blkio
    assert sum(d.write_ops for d in s.blkio.values()) > 0
    dev = os.stat("/var/tmp").st_dev
    assert f"{os.major(dev)}:{os.minor(dev)}" in s.blkio, (dev, s.blkio)
