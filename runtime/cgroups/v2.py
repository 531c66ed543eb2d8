"""cgroup v2: one directory ``<root>/box/<id>`` with the controllers enabled above it.

Files are opened with O_CREAT, which is a no-op on cgroupfs (the file exists once its
controller is enabled) and lets the same code fill a plain fixture directory.
"""

from __future__ import annotations

import os
import time

from runtime.cgroups.base import CgroupError, Resources
from runtime.cgroups.driver import Driver
from runtime.cgroups.files import (
    device_number,
    kill_until_empty,
    read_counter,
    read_pids,
    remove_group,
    translate,
    write_value,
)
from runtime.cgroups.limits import HostInfo, affinity_cpus, cfs_quota_period
from runtime.errors import BoxError

WANTED = ("cpuset", "cpu", "io", "memory", "pids")
# Docker feature -> the v2 controller that provides it (no OOM-kill disable in v2).
NEEDS = {
    "memory": "memory", "swap": "memory", "memory_reservation": "memory",
    "cpu_shares": "cpu", "cpu_cfs": "cpu", "cpuset": "cpuset", "pids": "pids",
    "blkio_weight": "io", "blkio_throttle": "io",
}


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], runc's mapping."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], runc's mapping."""
    return 1 + ((weight - 10) * 9999) // 990


class V2Driver(Driver):
    version = 2

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root.rstrip("/") or "/"
        self._enable = ""  # "+cpu +memory ..." for subtree_control, set by _make

    def _read(self, *parts: str) -> str:
        try:
            with open(os.path.join(self.root, *parts)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def controllers(self) -> list[str]:
        """The controllers we use that the root offers, in WANTED order."""
        available = set(self._read("cgroup.controllers").split())
        return [c for c in WANTED if c in available]

    def host(self) -> HostInfo:
        ctrls = set(self.controllers())
        features = frozenset(f for f, c in NEEDS.items() if c in ctrls)
        cpus = self._read("cpuset.cpus.effective") or affinity_cpus()
        return HostInfo(cpus, self._read("cpuset.mems.effective") or "0", features)

    def _make(self, group: str, created: list[str]) -> dict[str, str]:
        """One directory, our controllers enabled in every parent's subtree_control."""
        self._enable = " ".join("+" + c for c in self.controllers())
        return {"unified": self._make_levels(self.root, group, created)}

    def group_paths(self, group: str) -> dict[str, str]:
        return {"unified": os.path.join(self.root, group.strip("/"))}

    def _entering(self, parent: str) -> None:
        if self._enable:
            write_value(os.path.join(parent, "cgroup.subtree_control"), self._enable, True)

    def _apply(self, paths: dict[str, str], res: Resources) -> None:
        path = paths["unified"]

        def put(name: str, value: int | str) -> None:
            write_value(os.path.join(path, name), str(value), create=True)

        if res.cpuset_cpus:
            put("cpuset.cpus", res.cpuset_cpus)
        if res.cpuset_mems:
            put("cpuset.mems", res.cpuset_mems)
        if res.memory:
            put("memory.max", res.memory)
        if res.memory_swap:  # v2 limits swap alone; Docker's value is memory + swap
            put("memory.swap.max", "max" if res.memory_swap < 0 else res.memory_swap - res.memory)
        if res.memory_reservation:
            put("memory.low", res.memory_reservation)
        if res.cpu_shares:
            put("cpu.weight", shares_to_weight(res.cpu_shares))
        quota, period = cfs_quota_period(res)
        if quota > 0 or period:
            put("cpu.max", f"{quota if quota > 0 else 'max'} {period or 100000}")
        if res.pids_limit > 0:
            put("pids.max", res.pids_limit)
        if res.blkio_weight:
            if os.path.exists(os.path.join(path, "io.bfq.weight")):
                put("io.bfq.weight", res.blkio_weight)  # BFQ takes the v1 range as is
            else:
                put("io.weight", blkio_to_io_weight(res.blkio_weight))
        limits: dict[str, list[str]] = {}
        for key, rates in (
            ("rbps", res.blkio_device_read_bps),
            ("wbps", res.blkio_device_write_bps),
            ("riops", res.blkio_device_read_iops),
            ("wiops", res.blkio_device_write_iops),
        ):
            for rate in rates:
                limits.setdefault(device_number(rate.path), []).append(f"{key}={rate.rate}")
        for dev, keys in limits.items():  # the kernel takes one device per write
            put("io.max", f"{dev} {' '.join(keys)}")

    def attach(self, paths: dict[str, str], pid: int) -> None:
        try:
            write_value(os.path.join(paths["unified"], "cgroup.procs"), str(pid))
        except CgroupError as err:
            raise BoxError(str(err)) from None

    def pids(self, paths: dict[str, str]) -> list[int]:
        return sorted(read_pids(os.path.join(paths["unified"], "cgroup.procs")))

    def oom_kills(self, paths: dict[str, str]) -> int:
        return read_counter(os.path.join(paths["unified"], "memory.events"), "oom_kill")

    def oom_events(self, paths: dict[str, str]) -> int:
        """inotify on ``memory.events``: the kernel notifies a change after it counted
        (``oom_kill`` among the others), as containerd's v2 OOM watcher waits on it."""
        from runtime.syscalls import inotify_watch

        return inotify_watch(os.path.join(paths["unified"], "memory.events"))

    def freeze(self, paths: dict[str, str], frozen: bool) -> None:
        path = paths["unified"]
        try:
            write_value(os.path.join(path, "cgroup.freeze"), "1" if frozen else "0")
        except CgroupError as err:
            raise translate(err) from None
        deadline = time.monotonic() + 5.0
        while self.frozen(paths) != frozen:  # cgroup.events says when it is done
            if time.monotonic() > deadline:
                raise BoxError(f"cgroup {path}: not {'frozen' if frozen else 'thawed'} "
                               "after 5s")
            time.sleep(0.005)

    def frozen(self, paths: dict[str, str]) -> bool:
        return read_counter(os.path.join(paths["unified"], "cgroup.events"), "frozen") == 1

    def update(self, paths: dict[str, str], res: Resources, fields: frozenset[str]) -> None:
        path = paths["unified"]

        def put(name: str, value: int | str) -> None:
            write_value(os.path.join(path, name), str(value), create=True)

        if "cpuset_cpus" in fields:
            put("cpuset.cpus", res.cpuset_cpus)
        if "cpuset_mems" in fields:
            put("cpuset.mems", res.cpuset_mems)
        if fields & {"memory", "memory_swap"}:
            if res.memory_swap:  # runc: swap first, it is independent of memory.max on v2
                swap = res.memory_swap - res.memory if res.memory_swap > 0 and res.memory > 0 \
                    else "max"
                put("memory.swap.max", swap)
            put("memory.max", res.memory if res.memory > 0 else "max")
        if "memory_reservation" in fields:
            put("memory.low", res.memory_reservation if res.memory_reservation > 0 else 0)
        if "cpu_shares" in fields and res.cpu_shares:
            put("cpu.weight", shares_to_weight(res.cpu_shares))
        if fields & {"nano_cpus", "cpu_period", "cpu_quota"}:
            quota, period = cfs_quota_period(res)
            put("cpu.max", f"{quota if quota > 0 else 'max'} {period or 100000}")
        if "pids_limit" in fields:
            put("pids.max", res.pids_limit if res.pids_limit > 0 else "max")
        if "blkio_weight" in fields and res.blkio_weight:
            if os.path.exists(os.path.join(path, "io.bfq.weight")):
                put("io.bfq.weight", res.blkio_weight)
            else:
                put("io.weight", blkio_to_io_weight(res.blkio_weight))

    def destroy(self, paths: dict[str, str]) -> None:
        path = paths["unified"]
        if not os.path.isdir(path):
            return
        procs = [os.path.join(path, "cgroup.procs")]
        kill = os.path.join(path, "cgroup.kill")
        if os.path.exists(kill) and read_pids(procs[0]):
            try:
                write_value(kill, "1")  # kills the whole subtree, forks included, atomically
            except CgroupError as err:
                raise translate(err) from None
            deadline = time.monotonic() + 2.0
            while read_pids(procs[0]) and time.monotonic() < deadline:
                time.sleep(0.005)
        left = kill_until_empty(procs)
        if left:
            raise BoxError(f"cannot empty cgroup {path}: pids {left} survive SIGKILL")
        remove_group([path])
