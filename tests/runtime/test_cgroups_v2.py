"""V2Driver: limit files on a pure-v2 fixture root; processes and removal on the real
unified mount (/sys/fs/cgroup/unified, which has cgroup.kill but no controllers here)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cgroups import driver_for, open_driver
from runtime.cgroups.base import DeviceRate, Resources
from runtime.cgroups.v1 import V1Driver
from runtime.cgroups.v2 import V2Driver, blkio_to_io_weight, shares_to_weight
from runtime.errors import Conflict, InvalidArgument
from tests.support.cgroup2 import unified_root

FIXTURE = Path(__file__).parent.parent / "fixtures" / "cgroup_v2_root"
# the v2 hierarchy as detected: the unified mount on this hybrid host, the root on pure v2
UNIFIED = str(unified_root() or "/sys/fs/cgroup/unified")
MiB = 1 << 20


def block_device() -> str:
    for name in sorted(os.listdir("/dev")):
        if stat.S_ISBLK(os.lstat(f"/dev/{name}").st_mode):
            return f"/dev/{name}"
    pytest.skip("no block device in /dev")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A writable copy of the pure-v2 root; the driver's writes become plain files."""
    shutil.copytree(FIXTURE, tmp_path / "cgroup")
    return tmp_path / "cgroup"


def read(path: str | Path, name: str) -> str:
    return Path(path, name).read_text().strip()


def test_open_driver_picks_v2_only_on_a_pure_v2_root(root: Path, tmp_path: Path) -> None:
    assert isinstance(open_driver(str(root)), V2Driver)
    assert isinstance(open_driver(str(tmp_path)), V1Driver)
    assert isinstance(open_driver(str(root), version=1), V1Driver)
    if os.path.isdir("/sys/fs/cgroup/memory"):  # this hybrid host: v1 beside a unified mount
        assert isinstance(open_driver("/sys/fs/cgroup"), V1Driver)
    with pytest.raises(ValueError, match="unknown cgroup version 3"):
        driver_for(3)


def test_weight_conversions_match_runc() -> None:
    assert (shares_to_weight(2), shares_to_weight(1024), shares_to_weight(262144)) == (1, 39, 10000)
    assert (blkio_to_io_weight(10), blkio_to_io_weight(500), blkio_to_io_weight(1000)) == (
        1,
        4950,
        10000,
    )


def test_create_writes_every_limit(root: Path) -> None:
    dev = block_device()
    rdev = os.stat(dev).st_rdev
    drv = V2Driver(str(root))
    res = Resources(
        memory=64 * MiB, memory_swap=96 * MiB, memory_reservation=32 * MiB, nano_cpus=1_500_000_000,
        cpu_shares=512, cpuset_cpus="1", cpuset_mems="0", pids_limit=64, blkio_weight=300,
        blkio_device_read_bps=(DeviceRate(dev, MiB),),
        blkio_device_write_iops=(DeviceRate(dev, 200),),
    )
    assert drv.warnings(res) == []
    paths = drv.create("box/test-a", res)
    group = root / "box/test-a"
    assert paths == {"unified": str(group)}
    enabled = "+cpuset +cpu +io +memory +pids"  # hugetlb, rdma, misc are not ours
    assert read(root, "cgroup.subtree_control") == enabled
    assert read(root / "box", "cgroup.subtree_control") == enabled
    assert not (group / "cgroup.subtree_control").exists()  # processes live here
    assert read(group, "memory.max") == str(64 * MiB)
    assert read(group, "memory.swap.max") == str(32 * MiB)  # v2 limits swap alone
    assert read(group, "memory.low") == str(32 * MiB)
    assert read(group, "cpu.weight") == "20"
    assert read(group, "cpu.max") == "150000 100000"
    assert read(group, "cpuset.cpus") == "1"
    assert read(group, "cpuset.mems") == "0"
    assert read(group, "pids.max") == "64"
    assert read(group, "io.weight") == str(blkio_to_io_weight(300))
    assert read(group, "io.max") == f"{os.major(rdev)}:{os.minor(rdev)} rbps={MiB} wiops=200"


def test_swap_defaults_and_unlimited(root: Path) -> None:
    drv = V2Driver(str(root))
    drv.create("box/test-b", Resources(memory=64 * MiB, cpu_period=50_000))
    assert read(root / "box/test-b", "memory.swap.max") == str(64 * MiB)  # Docker's 2 x memory
    assert read(root / "box/test-b", "cpu.max") == "max 50000"
    drv.create("box/test-c", Resources(memory=64 * MiB, memory_swap=-1))
    assert read(root / "box/test-c", "memory.swap.max") == "max"
    assert not (root / "box/test-c/cpu.max").exists()


def test_oom_kill_disable_is_warned_and_dropped(root: Path) -> None:
    drv = V2Driver(str(root))
    res = Resources(memory=64 * MiB, oom_kill_disable=True)
    assert drv.warnings(res) == [
        "Your kernel does not support OomKillDisable. OomKillDisable discarded."
    ]
    drv.create("box/test-d", res)
    assert sorted(os.listdir(root / "box/test-d")) == ["memory.max", "memory.swap.max"]


def test_oom_kills_read_memory_events(root: Path) -> None:
    drv = V2Driver(str(root))
    paths = drv.create("box/test-e", Resources())
    assert drv.oom_kills(paths) == 0
    (root / "box/test-e/memory.events").write_text(
        "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"
    )
    assert drv.oom_kills(paths) == 2


def test_validate_uses_the_roots_cpus(root: Path) -> None:
    drv = V2Driver(str(root))
    with pytest.raises(
        InvalidArgument, match=r"^Requested CPUs are not available - requested 2-3, available: 0-1$"
    ):
        drv.validate(Resources(cpuset_cpus="2-3"))
    with pytest.raises(
        InvalidArgument,
        match=r"^Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available$",
    ):
        drv.validate(Resources(nano_cpus=3 * 10**9))
    drv.validate(Resources(cpuset_cpus="0-1", nano_cpus=2 * 10**9))


def test_existing_group_is_a_conflict(root: Path) -> None:
    drv = V2Driver(str(root))
    drv.create("box/test-f", Resources(pids_limit=3))
    with pytest.raises(Conflict, match="box/test-f already exists"):
        drv.create("box/test-f", Resources())
    assert read(root / "box/test-f", "pids.max") == "3"


# --- the real unified mount -------------------------------------------------------------

real = pytest.mark.skipif(
    not os.path.isfile(f"{UNIFIED}/cgroup.controllers") or os.geteuid() != 0,
    reason="needs root and a cgroup2 hierarchy (pure v2, or the hybrid's unified mount)",
)


@pytest.fixture
def unified() -> Iterator[tuple[V2Driver, dict[str, str]]]:
    drv = V2Driver(UNIFIED)
    paths = drv.create(f"box/test-{uuid.uuid4().hex[:12]}", Resources())
    yield drv, paths
    drv.destroy(paths)
    assert not os.path.exists(paths["unified"]), f"leaked {paths['unified']}"


@real
def test_real_group_attach_pids_and_cgroup_kill(unified: tuple[V2Driver, dict[str, str]]) -> None:
    drv, paths = unified
    path = paths["unified"]
    assert os.path.isfile(f"{path}/cgroup.kill")
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 30 & sleep 30 & echo go; wait"],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: drv.attach(paths, os.getpid()),
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"go\n"
    pids = drv.pids(paths)
    assert proc.pid in pids and len(pids) == 3
    assert read(path, "cgroup.events").splitlines()[0] == "populated 1"
    drv.destroy(paths)
    assert proc.wait(timeout=5) == -9
    assert not os.path.exists(path)
    drv.destroy(paths)  # already gone: fine


@real
def test_real_limits_without_controllers_are_warned_and_dropped() -> None:
    drv = V2Driver(UNIFIED)
    missing = set(drv.controllers())
    if {"memory", "pids"} & missing:
        pytest.skip("this unified mount has memory/pids controllers")
    res = Resources(memory=64 * MiB, pids_limit=10)
    assert drv.warnings(res) == [
        "Your kernel does not support memory limit capabilities or the cgroup is not mounted. "
        "Limitation discarded.",
        "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs "
        "limit discarded.",
    ]
    paths = drv.create(f"box/test-{uuid.uuid4().hex[:12]}", res)
    try:
        assert not os.path.exists(f"{paths['unified']}/memory.max")
    finally:
        drv.destroy(paths)
    assert not os.path.exists(paths["unified"])
