"""V1Driver on the real /sys/fs/cgroup v1 controllers: limits land, processes die, dirs go."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.cgroups import open_driver
from runtime.cgroups.base import DeviceRate, Resources
from runtime.cgroups.v1 import V1Driver
from runtime.errors import Conflict, InvalidArgument

ROOT = "/sys/fs/cgroup"
MiB = 1 << 20

pytestmark = pytest.mark.skipif(
    not os.path.isfile(f"{ROOT}/memory/memory.limit_in_bytes") or os.geteuid() != 0,
    reason="needs root and cgroup v1 controllers",
)

Make = Callable[..., dict[str, str]]


@pytest.fixture
def driver() -> V1Driver:
    drv = open_driver(ROOT)
    assert isinstance(drv, V1Driver)
    return drv


@pytest.fixture
def make(driver: V1Driver) -> Iterator[Make]:
    """create() under a fresh ``box/test-<random>``; destroyed and leak-checked afterwards."""
    groups: list[str] = []

    def _make(res: Resources | None = None, group: str | None = None) -> dict[str, str]:
        group = group or f"box/test-{uuid.uuid4().hex[:12]}"
        groups.append(group)
        return driver.create(group, res or Resources())

    yield _make
    for group in groups:
        paths = {c: os.path.join(m, group) for c, m in driver.mounts.items()}
        driver.destroy(paths)
        assert not [p for p in paths.values() if os.path.exists(p)], f"leaked {group}"


def block_device() -> str:
    for name in sorted(os.listdir("/dev")):
        if stat.S_ISBLK(os.lstat(f"/dev/{name}").st_mode):
            return f"/dev/{name}"
    pytest.skip("no block device in /dev")


def read(path: str, name: str) -> str:
    return Path(path, name).read_text().strip()


def attached(
    driver: V1Driver, paths: dict[str, str], argv: list[str], **kw: object
) -> subprocess.Popen:
    """Start ``argv`` already inside the group (joined between fork and exec)."""
    return subprocess.Popen(argv, preexec_fn=lambda: driver.attach(paths, os.getpid()), **kw)


def test_discovers_every_controller(driver: V1Driver) -> None:
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer"):
        assert driver.mounts[ctrl] == f"{ROOT}/{ctrl}"


def test_create_writes_every_limit(driver: V1Driver, make: Make) -> None:
    dev = block_device()
    majmin = f"{os.major(os.stat(dev).st_rdev)}:{os.minor(os.stat(dev).st_rdev)}"
    res = Resources(
        memory=64 * MiB, memory_swap=128 * MiB, memory_reservation=32 * MiB, oom_kill_disable=True,
        nano_cpus=500_000_000, cpu_shares=512, cpuset_cpus="0", cpuset_mems="0", pids_limit=64,
        blkio_device_read_bps=(DeviceRate(dev, MiB),),
        blkio_device_write_bps=(DeviceRate(dev, 2 * MiB),),
        blkio_device_read_iops=(DeviceRate(dev, 100),),
        blkio_device_write_iops=(DeviceRate(dev, 200),),
    )
    driver.validate(res)
    paths = make(res)
    assert set(paths) == set(driver.mounts)
    assert all(p.endswith("/box/test-" + paths["memory"].rsplit("-", 1)[1]) for p in paths.values())
    mem, cpu, blkio = paths["memory"], paths["cpu"], paths["blkio"]
    assert read(mem, "memory.limit_in_bytes") == str(64 * MiB)
    assert read(mem, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert read(mem, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert "oom_kill_disable 1" in read(mem, "memory.oom_control").splitlines()
    assert read(cpu, "cpu.shares") == "512"
    assert read(cpu, "cpu.cfs_period_us") == "100000"
    assert read(cpu, "cpu.cfs_quota_us") == "50000"
    assert read(paths["cpuset"], "cpuset.cpus") == "0"
    assert read(paths["cpuset"], "cpuset.mems") == "0"
    assert read(os.path.dirname(paths["cpuset"]), "cpuset.cpus") != ""  # box/ inherited
    assert read(paths["pids"], "pids.max") == "64"
    assert read(blkio, "blkio.throttle.read_bps_device") == f"{majmin} {MiB}"
    assert read(blkio, "blkio.throttle.write_bps_device") == f"{majmin} {2 * MiB}"
    assert read(blkio, "blkio.throttle.read_iops_device") == f"{majmin} 100"
    assert read(blkio, "blkio.throttle.write_iops_device") == f"{majmin} 200"


def test_defaults_swap_to_twice_memory_and_cfs_period(make: Make) -> None:
    paths = make(Resources(memory=32 * MiB, cpu_period=50_000, cpu_quota=25_000))
    assert read(paths["memory"], "memory.memsw.limit_in_bytes") == str(64 * MiB)
    assert read(paths["cpu"], "cpu.cfs_period_us") == "50000"
    assert read(paths["cpu"], "cpu.cfs_quota_us") == "25000"


def test_unlimited_swap_and_untouched_defaults(make: Make) -> None:
    paths = make(Resources(memory=32 * MiB, memory_swap=-1))
    assert int(read(paths["memory"], "memory.memsw.limit_in_bytes")) > 1 << 60
    assert read(paths["cpu"], "cpu.cfs_quota_us") == "-1"
    assert read(paths["pids"], "pids.max") == "max"


def test_blkio_weight_without_file_is_a_docker_warning(driver: V1Driver, make: Make) -> None:
    if os.path.exists(f"{driver.mounts['blkio']}/blkio.weight"):
        pytest.skip("this kernel has blkio.weight")
    res = Resources(blkio_weight=300)
    assert driver.warnings(res) == [
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight "
        "discarded."
    ]
    paths = make(res)  # discarded, not an error
    assert os.path.isdir(paths["blkio"])


def test_oom_kill_disable_without_memory_warns(driver: V1Driver) -> None:
    assert driver.warnings(Resources(oom_kill_disable=True)) == [
        "OOM killer is disabled for the container, but no memory limit is set, "
        "this can result in the system running out of resources."
    ]
    assert driver.warnings(Resources(memory=32 * MiB, oom_kill_disable=True)) == []


def test_attach_pids_destroy_kills_forks_and_removes_dirs(driver: V1Driver, make: Make) -> None:
    paths = make()
    proc = attached(
        driver, paths, ["sh", "-c", "sleep 30 & sleep 30 & echo go; wait"], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"go\n"
    pids = driver.pids(paths)
    assert proc.pid in pids and len(pids) == 3
    for path in set(paths.values()):
        assert proc.pid in map(int, read(path, "cgroup.procs").split())
    driver.destroy(paths)
    assert proc.wait(timeout=5) == -9
    assert not [p for p in paths.values() if os.path.exists(p)]
    driver.destroy(paths)  # already gone: fine


def test_attach_plain_popen(driver: V1Driver, make: Make) -> None:
    paths = make()
    proc = subprocess.Popen(["sleep", "30"])
    try:
        driver.attach(paths, proc.pid)
        assert driver.pids(paths) == [proc.pid]
    finally:
        driver.destroy(paths)
    assert proc.wait(timeout=5) == -9


def test_oom_kill_is_counted(driver: V1Driver, make: Make) -> None:
    paths = make(Resources(memory=16 * MiB, memory_swap=16 * MiB))
    code = "import sys; print('ready', flush=True); b = bytearray(64 << 20); print('survived')"
    proc = attached(driver, paths, [sys.executable, "-I", "-S", "-c", code], stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    assert out == b"ready\n"
    assert proc.returncode == -9
    assert driver.oom_kills(paths) == 1


@pytest.mark.parametrize(
    ("res", "message"),
    [
        (Resources(cpuset_cpus="99"), "Requested CPUs are not available - requested 99, available: "
                                      "{cpus}"),
        (Resources(cpuset_mems="7"), "Requested memory nodes are not available - requested 7, "
                                     "available: {mems}"),
        (Resources(cpuset_cpus="a"), "Invalid value a for cpuset cpus"),
        (Resources(memory=4 * MiB), "Minimum memory limit allowed is 6MB"),
        (Resources(memory=64 * MiB, memory_swap=32 * MiB), "Minimum memoryswap limit should be "
                                                           "larger than memory limit, see usage"),
        (Resources(memory_swap=32 * MiB), "You should always set the Memory limit when using "
                                          "Memoryswap limit, see usage"),
        (Resources(memory=64 * MiB, memory_reservation=128 * MiB), "Minimum memory limit can not "
                                                                   "be less than memory "
                                                                   "reservation limit, see usage"),
        (Resources(nano_cpus=500_000_000, cpu_period=100_000), "Conflicting options: Nano CPUs and "
                                                               "CPU Period cannot both be set"),
        (Resources(nano_cpus=500_000_000, cpu_quota=50_000), "Conflicting options: Nano CPUs and "
                                                             "CPU Quota cannot both be set"),
        (Resources(nano_cpus=99_000_000_000), "Range of CPUs is from 0.01 to {n}.00, as there are "
                                              "only {n} CPUs available"),
        (Resources(nano_cpus=1_000_000), "Range of CPUs is from 0.01 to {n}.00, as there are only "
                                         "{n} CPUs available"),
        (Resources(cpu_period=500), "CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                                    "than 1s (i.e. 1000000)"),
        (Resources(cpu_quota=500), "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        (Resources(blkio_weight=5), "Range of blkio weight is from 10 to 1000"),
    ],
)
def test_validate_refuses_like_docker(driver: V1Driver, res: Resources, message: str) -> None:
    host = driver.host()
    with pytest.raises(InvalidArgument) as err:
        driver.validate(res)
    assert str(err.value) == message.format(cpus=host.cpus, mems=host.mems, n=host.ncpu)


def test_validate_accepts_what_the_host_has(driver: V1Driver) -> None:
    host = driver.host()
    driver.validate(
        Resources(cpuset_cpus=host.cpus, cpuset_mems=host.mems, nano_cpus=host.ncpu * 10**9)
    )


def test_kernel_refusal_rolls_back_and_names_path_and_value(driver: V1Driver) -> None:
    group = f"box/test-{uuid.uuid4().hex[:12]}"
    # Skips validate on purpose: the kernel refuses memsw below the memory limit.
    with pytest.raises(InvalidArgument) as err:
        driver.create(group, Resources(memory=64 * MiB, memory_swap=32 * MiB))
    assert f"{driver.mounts['memory']}/{group}/memory.memsw.limit_in_bytes" in str(err.value)
    assert repr(str(32 * MiB)) in str(err.value)
    assert not [m for m in driver.mounts.values() if os.path.exists(f"{m}/{group}")]


def test_existing_group_is_a_conflict_and_stays(driver: V1Driver, make: Make) -> None:
    group = f"box/test-{uuid.uuid4().hex[:12]}"
    paths = make(Resources(pids_limit=7), group=group)
    with pytest.raises(Conflict, match="already exists"):
        driver.create(group, Resources())
    assert read(paths["pids"], "pids.max") == "7"


def test_comounted_cpu_cpuacct_from_mountinfo(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    for name in ("cpu,cpuacct", "memory"):
        (root / name).mkdir(parents=True)
        (root / name / "cgroup.procs").write_text("")
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        f"30 23 0:26 / {root} rw - tmpfs tmpfs rw\n"
        f"32 30 0:28 / {root}/cpu,cpuacct rw,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct\n"
        f"35 30 0:31 / {root}/memory rw,relatime shared:16 - cgroup cgroup rw,memory\n"
        "40 23 0:38 / /elsewhere/pids rw - cgroup cgroup rw,pids\n"
    )
    drv = V1Driver(str(root), str(tmp_path / "proc"))
    assert drv.mounts == {
        "cpu": f"{root}/cpu,cpuacct", "cpuacct": f"{root}/cpu,cpuacct", "memory": f"{root}/memory"
    }
    (tmp_path / "proc/self/mountinfo").write_text("")  # no mountinfo: list the root instead
    assert V1Driver(str(root), str(tmp_path / "proc")).mounts == drv.mounts
    paths = drv.create("box/test-x", Resources())
    assert paths["cpu"] == paths["cpuacct"] and os.path.isdir(paths["cpu"])
