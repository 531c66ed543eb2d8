"""box pause / unpause (the freezer, the paused state in ps and inspect, stop/kill/rm of a
paused container) and box update (live cgroup limits, hostconfig.json, the kernel's
refusal, docker's conflicts and messages), on real containers; the v2 side of both on
the real unified mount and on a fixture root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from runtime.cgroups.base import Resources
from runtime.cgroups.v2 import V2Driver
from tests.conftest import Box
from tests.support.wait import wait_until

TRAP = 'trap "exit 0" TERM; while true; do sleep 0.05; done'
UNIFIED = "/sys/fs/cgroup/unified"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "cgroup_v2_root"
MiB = 1 << 20


def run(box: Box, *args: str) -> str:
    return box.ok("run", "-d", "--network", "none", *args).strip()


def group(box: Box, cid: str, ctrl: str) -> Path:
    paths = json.loads((box.root / "containers" / cid / "config.v2.json").read_text())
    return Path(paths["Box"]["CgroupPaths"][ctrl])


def hostconfig(box: Box, cid: str) -> dict:
    return json.loads((box.root / "containers" / cid / "hostconfig.json").read_text())


# --- pause / unpause ---------------------------------------------------------------------

def test_pause_freezes_and_shows_paused_everywhere(box: Box) -> None:
    cid = run(box, "--name", "pz1", "busybox", "sh", "-c", TRAP)
    assert box.ok("pause", "pz1") == "pz1\n"
    freezer = group(box, cid, "freezer") / "freezer.state"
    assert freezer.read_text().strip() == "FROZEN"
    assert box.inspect("pz1", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}") == \
        "paused true true"
    status = box.ok("ps", "--filter", "name=pz1", "--format", "{{.Status}}|{{.State}}").strip()
    assert status.startswith("Up ") and status.endswith("(Paused)|paused")
    assert box.ok("ps", "-q", "--filter", "status=paused") == cid[:12] + "\n"
    assert box.ok("info", "--format", "{{.ContainersPaused}}").strip() == "1"
    # frozen: the shell's loop makes no progress (its sleep children are not replaced)
    pids = (group(box, cid, "pids") / "cgroup.procs").read_text().split()
    time.sleep(0.3)
    assert (group(box, cid, "pids") / "cgroup.procs").read_text().split() == pids
    assert box.ok("unpause", "pz1") == "pz1\n"
    assert freezer.read_text().strip() == "THAWED"
    assert box.inspect("pz1", "{{.State.Status}} {{.State.Paused}}") == "running false"
    assert "(Paused)" not in box.ok("ps", "--filter", "name=pz1", "--format", "{{.Status}}")


def test_pause_and_unpause_refusals_are_dockers(box: Box) -> None:
    cid = box.ok("create", "--network", "none", "--name", "pz2", "busybox", "true").strip()
    proc = box("pause", "pz2")
    assert proc.returncode == 1
    assert proc.stderr == f"box: Error response from daemon: Container {cid} is not running\n"
    box.ok("start", "pz2")
    box.ok("wait", "pz2")
    assert box("pause", "pz2").stderr.endswith(f"Container {cid} is not running\n")
    run_id = run(box, "--name", "pz3", "busybox", "sleep", "30")
    proc = box("unpause", "pz3")
    assert proc.returncode == 1 and proc.stderr.endswith(f"Container {run_id} is not paused\n")
    box.ok("pause", "pz3")
    proc = box("pause", "pz3", "nosuch")
    assert proc.returncode == 1
    assert f"Container {run_id} is already paused" in proc.stderr
    assert "No such container: nosuch" in proc.stderr and len(proc.stderr.splitlines()) == 2
    proc = box("start", "pz3")
    assert proc.returncode == 1
    assert proc.stderr.endswith("cannot start a paused container, try unpause instead\n")
    proc = box("exec", "pz3", "true")
    assert proc.returncode != 0 and "is paused, unpause the container before exec" in proc.stderr


def test_stop_of_a_paused_container_thaws_and_stops_it(box: Box) -> None:
    run(box, "--name", "pz4", "busybox", "sh", "-c", TRAP)
    box.ok("pause", "pz4")
    t0 = time.monotonic()
    assert box.ok("stop", "pz4") == "pz4\n"
    assert time.monotonic() - t0 < 5, "the trap ran: SIGTERM reached the thawed shell"
    assert box.inspect("pz4", "{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}") == \
        "exited false 0"


@pytest.mark.parametrize("verb", [("kill",), ("rm", "-f")])
def test_kill_and_rm_force_of_a_paused_container(box: Box, verb: tuple[str, ...]) -> None:
    cid = run(box, "busybox", "sleep", "30")
    box.ok("pause", cid)
    cgroups = list(Path("/sys/fs/cgroup").glob(f"*/box/{cid}"))
    box.ok(*verb, cid)
    if verb == ("kill",):
        wait_until(lambda: box.inspect(cid, "{{.State.Status}}") == "exited", timeout=10)
        assert box.inspect(cid, "{{.State.ExitCode}} {{.State.Paused}}") == "137 false"
    else:
        assert box("inspect", cid).returncode == 1
    wait_until(lambda: not any(p.exists() for p in cgroups), timeout=10)


# --- update ------------------------------------------------------------------------------

def test_update_applies_to_the_live_cgroup_and_hostconfig(box: Box) -> None:
    cid = run(box, "--name", "up1", "-m", "32m", "busybox", "sleep", "60")
    out = box.ok("update", "-m", "64m", "--memory-swap", "128m", "--memory-reservation",
                 "16m", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "40",
                 "--cpuset-cpus", "0", "--restart", "on-failure:2", "up1")
    assert out == "up1\n"
    mem, cpu = group(box, cid, "memory"), group(box, cid, "cpu")
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 * MiB)
    assert (mem / "memory.memsw.limit_in_bytes").read_text().strip() == str(128 * MiB)
    assert (mem / "memory.soft_limit_in_bytes").read_text().strip() == str(16 * MiB)
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (cpu / "cpu.shares").read_text().strip() == "512"
    assert (group(box, cid, "pids") / "pids.max").read_text().strip() == "40"
    assert (group(box, cid, "cpuset") / "cpuset.cpus").read_text().strip() == "0"
    host = hostconfig(box, cid)
    assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"]) == \
        (64 * MiB, 128 * MiB, 16 * MiB)
    assert (host["NanoCpus"], host["CpuShares"], host["PidsLimit"], host["CpusetCpus"]) == \
        (500_000_000, 512, 40, "0")
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert box.inspect("up1", "{{.HostConfig.Memory}}") == str(64 * MiB)
    # lowering again, and unlimited pids
    box.ok("update", "-m", "48m", "--memory-swap", "96m", "--pids-limit", "-1", "up1")
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(48 * MiB)
    assert (mem / "memory.memsw.limit_in_bytes").read_text().strip() == str(96 * MiB)
    assert (group(box, cid, "pids") / "pids.max").read_text().strip() == "max"
    assert hostconfig(box, cid)["PidsLimit"] is None


def test_update_below_the_usage_reports_the_kernels_answer(box: Box) -> None:
    cid = run(box, "--name", "up2", "-m", "64m", "busybox", "sh", "-c",
              "head -c 20000000 /dev/zero > /dev/shm/fill; echo ok; sleep 60")
    mem = group(box, cid, "memory")
    wait_until(lambda: int((mem / "memory.usage_in_bytes").read_text()) > 18_000_000,
               timeout=10)
    before = hostconfig(box, cid)
    proc = box("update", "-m", "8m", "--memory-swap", "16m", "up2")
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert len(proc.stderr.splitlines()) == 1
    assert line.startswith(f"box: Error response from daemon: Cannot update container {cid}: "
                           f"unable to set memory limit to {8 * MiB} (current usage: ")
    assert "peak usage: " in line
    assert hostconfig(box, cid) == before  # nothing recorded that the kernel refused
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 * MiB)


def test_update_refusals_are_dockers(box: Box) -> None:
    cid = run(box, "--name", "up3", "-m", "32m", "busybox", "sleep", "60")
    proc = box("update", "-m", "100m", "up3")  # above the recorded 2 x 32m memory+swap
    assert proc.returncode == 1
    assert proc.stderr == (f"box: Error response from daemon: Cannot update container {cid}: "
                           "Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time\n")
    proc = box("update", "-m", "3m", "up3")
    assert proc.returncode == 1 and proc.stderr.endswith("Minimum memory limit allowed is 6MB\n")
    proc = box("update", "--blkio-weight", "5", "up3")
    assert (proc.returncode, proc.stderr) == (
        1, "box: Error response from daemon: Range of blkio weight is from 10 to 1000\n")
    if not Path("/sys/fs/cgroup/blkio/blkio.weight").exists():  # this host: no BFQ weight
        proc = box("update", "--blkio-weight", "500", "--pids-limit", "9", "up3")
        assert proc.returncode == 0 and proc.stdout == "up3\n"
        assert proc.stderr == ("WARNING: Your kernel does not support Block I/O weight or the "
                               "cgroup is not mounted. Weight discarded.\n")
        assert (hostconfig(box, cid)["BlkioWeight"], hostconfig(box, cid)["PidsLimit"]) == \
            (0, 9)
    proc = box("update", "--cpus", "1", "nosuch")
    assert (proc.returncode, proc.stderr) == (
        1, "box: Error response from daemon: No such container: nosuch\n")
    proc = box("update", "up3")
    assert proc.returncode == 125 and "you must provide one or more flags" in proc.stderr
    proc = box("update", "--cpus", "lots", "up3")
    assert proc.returncode == 125 and '"lots"' in proc.stderr and "--cpus" in proc.stderr
    box.ok("rm", "-f", "up3")
    proc = box("update", "--cpus", "1", cid)  # removed
    assert (proc.returncode, proc.stderr) == (
        1, f"box: Error response from daemon: No such container: {cid}\n")
    rm_id = run(box, "--rm", "busybox", "sleep", "30")
    proc = box("update", "--restart", "always", rm_id)
    assert proc.returncode == 1 and "Restart policy cannot be updated because AutoRemove is " \
        "enabled for the container" in proc.stderr


def test_update_of_a_stopped_container_applies_at_its_next_start(box: Box) -> None:
    cid = box.ok("create", "--network", "none", "--name", "up4", "busybox", "sleep",
                 "60").strip()
    assert box.ok("update", "--pids-limit", "33", "--cpu-shares", "300", "up4") == "up4\n"
    box.ok("start", "up4")
    assert (group(box, cid, "pids") / "pids.max").read_text().strip() == "33"
    assert (group(box, cid, "cpu") / "cpu.shares").read_text().strip() == "300"


def test_update_of_a_paused_container(box: Box) -> None:
    cid = run(box, "busybox", "sleep", "60")
    box.ok("pause", cid)
    box.ok("update", "--pids-limit", "20", cid)
    assert (group(box, cid, "pids") / "pids.max").read_text().strip() == "20"
    assert box.inspect(cid, "{{.State.Status}}") == "paused"


# --- cgroup v2 -----------------------------------------------------------------------------

real_v2 = pytest.mark.skipif(not os.path.isfile(f"{UNIFIED}/cgroup.freeze")
                             and not os.path.isfile(f"{UNIFIED}/cgroup.controllers"),
                             reason="needs a cgroup2 mount at /sys/fs/cgroup/unified")


@real_v2
def test_v2_freeze_and_thaw_on_the_real_unified_mount() -> None:
    drv = V2Driver(UNIFIED)
    paths = drv.create(f"box/test-{uuid.uuid4().hex[:12]}", Resources())
    proc = None
    try:
        proc = subprocess.Popen(["sh", "-c", "echo go; while true; do echo x; sleep 0.02; done"],
                                stdout=subprocess.PIPE,
                                preexec_fn=lambda: drv.attach(paths, os.getpid()))
        assert proc.stdout is not None and proc.stdout.readline() == b"go\n"
        drv.freeze(paths, True)
        assert drv.frozen(paths)
        assert "frozen 1" in Path(paths["unified"], "cgroup.events").read_text()
        drv.freeze(paths, False)
        assert not drv.frozen(paths)
        assert proc.stdout.readline() == b"x\n"
    finally:
        drv.destroy(paths)
        if proc is not None:
            proc.wait(5)
    assert not os.path.exists(paths["unified"])


def test_v2_update_writes_the_unified_files(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    shutil.copytree(FIXTURE, root)
    group_dir = root / "box" / "c1"
    group_dir.mkdir(parents=True)
    drv = V2Driver(str(root))
    paths = {"unified": str(group_dir)}
    res = Resources(memory=64 * MiB, memory_swap=96 * MiB, memory_reservation=8 * MiB,
                    nano_cpus=1_500_000_000, cpu_shares=1024, pids_limit=0)
    drv.update(paths, res, frozenset({"memory", "memory_swap", "memory_reservation",
                                      "nano_cpus", "cpu_shares", "pids_limit"}))

    def read(name: str) -> str:
        return (group_dir / name).read_text()

    assert (read("memory.max"), read("memory.swap.max"), read("memory.low")) == \
        (str(64 * MiB), str(32 * MiB), str(8 * MiB))
    assert read("cpu.max") == "150000 100000" and read("cpu.weight") == "39"
    assert read("pids.max") == "max"
    drv.update(paths, Resources(memory=0, memory_swap=-1), frozenset({"memory"}))
    assert (read("memory.max"), read("memory.swap.max")) == ("max", "max")


def test_first_memory_limit_needs_the_swap_too_as_in_docker(box: Box) -> None:
    cid = run(box, "busybox", "sleep", "60")  # no limit: no memory+swap recorded
    proc = box("update", "-m", "64m", cid)
    assert proc.returncode == 1 and "update the memoryswap at the same time" in proc.stderr
    box.ok("update", "-m", "64m", "--memory-swap", "-1", cid)
    mem = group(box, cid, "memory")
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 * MiB)
    assert int((mem / "memory.memsw.limit_in_bytes").read_text()) > 1 << 60  # unlimited
    assert (hostconfig(box, cid)["Memory"], hostconfig(box, cid)["MemorySwap"]) == (64 * MiB, -1)
