"""Every limit flag lands in its cgroup v1 file, read back from the real tree while the
container runs; and the limits bite: an OOM kill, a capped fork bomb."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Box

CGROUP = Path("/sys/fs/cgroup")
MB = 1024 * 1024


def root_block_device() -> tuple[str, str]:
    """(``/dev/<name>``, ``major:minor``) of the disk holding ``/``, from mountinfo."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            majmin = fields[2]
            break
    else:
        raise AssertionError("no / in mountinfo")
    uevent = Path(f"/sys/dev/block/{majmin}/uevent").read_text()
    name = dict(ln.split("=", 1) for ln in uevent.splitlines())["DEVNAME"]
    return f"/dev/{name}", majmin


def read(ctrl: str, cid: str, name: str) -> str:
    return (CGROUP / ctrl / "box" / cid / name).read_text().strip()


@pytest.fixture
def run_sleeping(box: Box) -> Iterator:
    def start(*flags: str) -> str:
        proc = box("run", "-d", *flags, "busybox", "sleep", "60")
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()
    yield start


@pytest.mark.parametrize("flags, ctrl, name, expected", [
    (("-m", "64m"), "memory", "memory.limit_in_bytes", str(64 * MB)),
    (("--memory", "1g"), "memory", "memory.limit_in_bytes", str(1024 * MB)),
    (("-m", "64m", "--memory-swap", "128m"), "memory", "memory.memsw.limit_in_bytes",
     str(128 * MB)),
    (("-m", "64m"), "memory", "memory.memsw.limit_in_bytes", str(128 * MB)),  # docker: 2x
    (("--memory-reservation", "32m"), "memory", "memory.soft_limit_in_bytes", str(32 * MB)),
    (("--cpus", "0.5"), "cpu", "cpu.cfs_quota_us", "50000"),
    (("--cpus", "0.5"), "cpu", "cpu.cfs_period_us", "100000"),
    (("--cpus", "1.5"), "cpu", "cpu.cfs_quota_us", "150000"),
    (("--cpu-shares", "512"), "cpu", "cpu.shares", "512"),
    (("-c", "2048"), "cpu", "cpu.shares", "2048"),
    (("--cpu-period", "50000", "--cpu-quota", "25000"), "cpu", "cpu.cfs_period_us", "50000"),
    (("--cpu-period", "50000", "--cpu-quota", "25000"), "cpu", "cpu.cfs_quota_us", "25000"),
    (("--cpuset-cpus", "0"), "cpuset", "cpuset.cpus", "0"),
    (("--cpuset-mems", "0"), "cpuset", "cpuset.mems", "0"),
    (("--pids-limit", "50"), "pids", "pids.max", "50"),
])
def test_limit_lands_in_its_file(box: Box, run_sleeping, flags: tuple[str, ...],
                                 ctrl: str, name: str, expected: str) -> None:
    cid = run_sleeping(*flags)
    assert read(ctrl, cid, name) == expected


def test_no_flags_means_no_limits(box: Box, run_sleeping) -> None:
    cid = run_sleeping()
    assert int(read("memory", cid, "memory.limit_in_bytes")) > 1 << 60
    assert read("cpu", cid, "cpu.cfs_quota_us") == "-1"
    assert read("pids", cid, "pids.max") == "max"
    assert read("cpu", cid, "cpu.shares") == "1024"


def test_oom_kill_disable(box: Box, run_sleeping) -> None:
    cid = run_sleeping("-m", "64m", "--oom-kill-disable")
    assert "oom_kill_disable 1" in read("memory", cid, "memory.oom_control").splitlines()
    cid = run_sleeping("-m", "64m")
    assert "oom_kill_disable 0" in read("memory", cid, "memory.oom_control").splitlines()


def test_container_runs_inside_its_cgroups(box: Box, run_sleeping) -> None:
    cid = run_sleeping("-m", "64m")
    pid = box.inspect(cid, "{{.State.Pid}}")
    for ctrl in ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices"):
        assert pid in read(ctrl, cid, "cgroup.procs").split(), ctrl


def test_cgroup_paths_are_recorded_in_the_state(box: Box, run_sleeping) -> None:
    cid = run_sleeping()
    paths = json.loads(box.inspect(cid, "{{json .Box.CgroupPaths}}"))
    assert set(paths) >= {"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio"}
    for ctrl, path in paths.items():
        assert path == str(CGROUP / ctrl / "box" / cid)
        assert Path(path).is_dir()
    on_disk = json.loads((box.root / "containers" / cid / "config.v2.json").read_text())
    assert on_disk["Box"]["CgroupPaths"] == paths


def test_blkio_weight_is_dropped_with_docker_s_warning(box: Box) -> None:
    """This kernel has no blkio.weight at the blkio root (BFQ only): docker warns."""
    proc = box("run", "--blkio-weight", "300", "busybox", "true")
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [
        "WARNING: Your kernel does not support Block I/O weight or the cgroup is not "
        "mounted. Weight discarded."]
    cid = box.ok("ps", "-alq", "--no-trunc").strip()
    assert box.inspect(cid, "{{.HostConfig.BlkioWeight}}") == "0"


@pytest.mark.parametrize("flag, name, value, expected", [
    ("--device-read-bps", "blkio.throttle.read_bps_device", "1mb", 1 * MB),
    ("--device-write-bps", "blkio.throttle.write_bps_device", "2m", 2 * MB),
    ("--device-read-iops", "blkio.throttle.read_iops_device", "100", 100),
    ("--device-write-iops", "blkio.throttle.write_iops_device", "200", 200),
])
def test_device_throttle(box: Box, run_sleeping, flag: str, name: str, value: str,
                         expected: int) -> None:
    dev, majmin = root_block_device()
    cid = run_sleeping(flag, f"{dev}:{value}")
    assert read("blkio", cid, name) == f"{majmin} {expected}"


def test_memory_hog_is_oom_killed(box: Box) -> None:
    proc = box("run", "--name", "hog", "-m", "32m", "--memory-swap", "32m", "busybox", "sh",
               "-c", "x=a; while true; do x=$x$x; done")
    assert proc.returncode == 137
    assert box.inspect("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}") == "true 137"


def test_a_plain_exit_is_not_an_oom_kill(box: Box) -> None:
    assert box("run", "--name", "calm", "-m", "32m", "busybox", "sh", "-c",
               "kill -9 $$ ; exit 137").returncode == 137
    assert box.inspect("calm", "{{.State.OOMKilled}}") == "false"


def test_fork_bomb_is_capped_by_pids_limit(box: Box) -> None:
    script = ("for i in $(seq 30); do sleep 5 & done; "
              "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null; ps -o pid | wc -l")
    proc = box("run", "--pids-limit", "10", "busybox", "sh", "-c", script, timeout=30)
    assert "can't fork" in proc.stderr
    assert proc.returncode != 0
    # the same script without the limit forks all 30
    proc = box("run", "busybox", "sh", "-c", "for i in $(seq 30); do sleep 5 & done; "
               "ps -o pid | wc -l")
    assert proc.returncode == 0
    assert int(proc.stdout.split()[-1]) >= 32
