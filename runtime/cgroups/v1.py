"""cgroup v1: one directory per controller, ``<mount>/box/<id>``, limits written per file.

Controllers are found from ``<proc>/self/mountinfo`` (mounts under ``root``), else by
listing ``root`` (fixture trees); a co-mounted ``cpu,cpuacct`` gives both names one path.
"""

from __future__ import annotations

import os
import time

from runtime.cgroups.base import CgroupError, Resources
from runtime.cgroups.driver import Driver
from runtime.cgroups.files import (
    device_number,
    kill_all,
    kill_until_empty,
    read_counter,
    read_counter_file,
    read_pids,
    remove_group,
    translate,
    write_value,
)
from runtime.cgroups.limits import HostInfo, affinity_cpus, cfs_quota_period
from runtime.errors import BoxError

CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "pids", "blkio", "devices", "freezer")


class V1Driver(Driver):
    version = 1

    def __init__(self, root: str = "/sys/fs/cgroup", proc_root: str = "/proc") -> None:
        self.root = root.rstrip("/") or "/"
        self.proc_root = proc_root
        self.mounts = self._discover()

    def _discover(self) -> dict[str, str]:
        mounts: dict[str, str] = {}
        try:
            with open(os.path.join(self.proc_root, "self/mountinfo")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            fields = line.split()
            sep = fields.index("-")
            point = fields[4]
            if fields[sep + 1] != "cgroup" or not point.startswith(self.root + "/"):
                continue
            for opt in fields[sep + 3].split(","):
                if opt in CONTROLLERS:
                    mounts.setdefault(opt, point)
        if not mounts and os.path.isdir(self.root):
            for name in sorted(os.listdir(self.root)):
                path = os.path.join(self.root, name)
                if os.path.islink(path) or not os.path.isfile(os.path.join(path, "cgroup.procs")):
                    continue
                for ctrl in name.split(","):
                    if ctrl in CONTROLLERS:
                        mounts.setdefault(ctrl, path)
        return mounts

    def _has(self, ctrl: str, *files: str) -> bool:
        mount = self.mounts.get(ctrl)
        return mount is not None and any(os.path.exists(os.path.join(mount, f)) for f in files)

    def host(self) -> HostInfo:
        """Online cpus/mems from the cpuset root, and the features this host's files offer."""
        has = {
            "memory": self._has("memory", "memory.limit_in_bytes"),
            "swap": self._has("memory", "memory.memsw.limit_in_bytes"),
            "memory_reservation": self._has("memory", "memory.soft_limit_in_bytes"),
            "oom_kill_disable": self._has("memory", "memory.oom_control"),
            "cpu_shares": self._has("cpu", "cpu.shares"),
            "cpu_cfs": self._has("cpu", "cpu.cfs_quota_us"),
            "cpuset": self._has("cpuset", "cpuset.cpus"),
            "pids": "pids" in self.mounts,
            # Docker looks at the mount root; BFQ's file only shows up in child groups.
            "blkio_weight": self._has("blkio", "blkio.weight"),
            "blkio_throttle": self._has("blkio", "blkio.throttle.read_bps_device"),
        }
        cpus = mems = ""
        if has["cpuset"]:
            cpus = self._read_first("cpuset", "cpuset.effective_cpus", "cpuset.cpus")
            mems = self._read_first("cpuset", "cpuset.effective_mems", "cpuset.mems")
        cpus = cpus or affinity_cpus()
        return HostInfo(cpus, mems or "0", frozenset(k for k, v in has.items() if v))

    def _read_first(self, ctrl: str, *files: str) -> str:
        for name in files:
            try:
                with open(os.path.join(self.mounts[ctrl], name)) as f:
                    return f.read().strip()
            except FileNotFoundError:
                continue
        return ""

    def _make(self, group: str, created: list[str]) -> dict[str, str]:
        """The group in every controller's hierarchy (co-mounted ones share a directory)."""
        for mount in dict.fromkeys(self.mounts.values()):
            self._make_levels(mount, group, created)
        return {ctrl: os.path.join(mount, group) for ctrl, mount in self.mounts.items()}

    def group_paths(self, group: str) -> dict[str, str]:
        return {ctrl: os.path.join(mount, group.strip("/")) for ctrl, mount in self.mounts.items()}

    def _made(self, path: str) -> None:
        cpuset = self.mounts.get("cpuset")
        if cpuset is not None and path.startswith(cpuset + "/"):
            self._inherit_cpuset(path)

    @staticmethod
    def _inherit_cpuset(path: str) -> None:
        """A new v1 cpuset group starts empty and refuses tasks until cpus/mems are set."""
        parent = os.path.dirname(path)
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(path, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(parent, name)) as f:
                write_value(os.path.join(path, name), f.read().strip())

    def _apply(self, paths: dict[str, str], res: Resources) -> None:
        def put(ctrl: str, name: str, value: int | str) -> None:
            write_value(os.path.join(paths[ctrl], name), str(value))

        if res.cpuset_cpus:
            put("cpuset", "cpuset.cpus", res.cpuset_cpus)
        if res.cpuset_mems:
            put("cpuset", "cpuset.mems", res.cpuset_mems)
        # A fresh group's limits are unlimited, so memory goes first, then memory+swap
        # (the kernel refuses memsw below the memory limit).
        if res.memory:
            put("memory", "memory.limit_in_bytes", res.memory)
        if res.memory_swap:
            put("memory", "memory.memsw.limit_in_bytes", res.memory_swap)
        if res.memory_reservation:
            put("memory", "memory.soft_limit_in_bytes", res.memory_reservation)
        if res.oom_kill_disable:
            put("memory", "memory.oom_control", 1)
        if res.cpu_shares:
            put("cpu", "cpu.shares", res.cpu_shares)
        quota, period = cfs_quota_period(res)
        if period:
            put("cpu", "cpu.cfs_period_us", period)
        if quota > 0:
            put("cpu", "cpu.cfs_quota_us", quota)
        if res.pids_limit > 0:
            put("pids", "pids.max", res.pids_limit)
        if res.blkio_weight:
            weight = "blkio.weight"
            if not os.path.exists(os.path.join(paths["blkio"], weight)):
                weight = "blkio.bfq.weight"
            put("blkio", weight, res.blkio_weight)
        for name, rates in (
            ("blkio.throttle.read_bps_device", res.blkio_device_read_bps),
            ("blkio.throttle.write_bps_device", res.blkio_device_write_bps),
            ("blkio.throttle.read_iops_device", res.blkio_device_read_iops),
            ("blkio.throttle.write_iops_device", res.blkio_device_write_iops),
        ):
            for rate in rates:
                put("blkio", name, f"{device_number(rate.path)} {rate.rate}")

    @staticmethod
    def _dirs(paths: dict[str, str]) -> list[str]:
        return list(dict.fromkeys(paths.values()))

    def attach(self, paths: dict[str, str], pid: int) -> None:
        for path in self._dirs(paths):
            try:
                write_value(os.path.join(path, "cgroup.procs"), str(pid))
            except CgroupError as err:
                raise BoxError(str(err)) from None

    def pids(self, paths: dict[str, str]) -> list[int]:
        return sorted({pid for d in self._dirs(paths) for pid in read_pids(f"{d}/cgroup.procs")})

    def oom_kills(self, paths: dict[str, str]) -> int:
        if "memory" not in paths:
            return 0
        return read_counter(os.path.join(paths["memory"], "memory.oom_control"), "oom_kill")

    def oom_events(self, paths: dict[str, str]) -> int:
        """An eventfd registered through ``cgroup.event_control`` on
        ``memory.oom_control``: the kernel signals it each time the group runs out of
        memory, just before its OOM killer picks a victim (runc's notify_linux.go)."""
        mem = paths.get("memory")
        if not mem:
            raise OSError(2, "no memory cgroup")
        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            cfd = os.open(os.path.join(mem, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:  # the kernel holds what it needs: the control file can be closed
                write_value(os.path.join(mem, "cgroup.event_control"), f"{efd} {cfd}")
            finally:
                os.close(cfd)
        except CgroupError as err:
            os.close(efd)
            raise OSError(str(err)) from None
        except BaseException:
            os.close(efd)
            raise
        return efd

    def destroy(self, paths: dict[str, str]) -> None:
        # The common end (PID 1 exited and the pid namespace took the rest with it): the
        # groups are empty, and rmdir is the one check needed (16 cgroup.procs reads
        # less at the end of each `box run`). EBUSY means someone is left: kill below.
        try:
            remove_group(self._dirs(paths))
            return
        except BoxError:
            pass
        dirs = [d for d in self._dirs(paths) if os.path.isdir(d)]
        procs = [os.path.join(d, "cgroup.procs") for d in dirs]
        freezer = paths.get("freezer")
        if freezer and os.path.isdir(freezer) and self.pids(paths):
            # Frozen, nothing can fork while we kill; the kills land on thaw.
            state = os.path.join(freezer, "freezer.state")
            try:
                write_value(state, "FROZEN")
                try:
                    self._wait_frozen(state)
                    kill_all(procs)
                finally:
                    write_value(state, "THAWED")
            except CgroupError as err:
                raise translate(err) from None
        left = kill_until_empty(procs)
        if left:
            raise BoxError(f"cannot empty cgroup {dirs[0]}: pids {left} survive SIGKILL")
        remove_group(dirs)

    def freeze(self, paths: dict[str, str], frozen: bool) -> None:
        if "freezer" not in paths:
            raise BoxError("the freezer cgroup controller is not mounted")
        state = os.path.join(paths["freezer"], "freezer.state")
        try:
            write_value(state, "FROZEN" if frozen else "THAWED")
            if frozen:
                self._wait_frozen(state, 5.0)
        except CgroupError as err:
            raise translate(err) from None

    def frozen(self, paths: dict[str, str]) -> bool:
        try:
            with open(os.path.join(paths.get("freezer", ""), "freezer.state")) as f:
                return f.read().strip() == "FROZEN"
        except (FileNotFoundError, NotADirectoryError):
            return False

    def update(self, paths: dict[str, str], res: Resources, fields: frozenset[str]) -> None:
        def put(ctrl: str, name: str, value: int | str) -> None:
            write_value(os.path.join(paths[ctrl], name), str(value))

        if "cpuset_cpus" in fields:
            put("cpuset", "cpuset.cpus", res.cpuset_cpus)
        if "cpuset_mems" in fields:
            put("cpuset", "cpuset.mems", res.cpuset_mems)
        if fields & {"memory", "memory_swap"}:
            self._update_memory(paths["memory"], res)
        if "memory_reservation" in fields:
            put("memory", "memory.soft_limit_in_bytes", res.memory_reservation or -1)
        if "cpu_shares" in fields and res.cpu_shares:
            put("cpu", "cpu.shares", res.cpu_shares)
        if fields & {"nano_cpus", "cpu_period", "cpu_quota"}:
            quota, period = cfs_quota_period(res)
            put("cpu", "cpu.cfs_quota_us", -1)  # any period is valid while unlimited
            if period:
                put("cpu", "cpu.cfs_period_us", period)
            if quota > 0:
                put("cpu", "cpu.cfs_quota_us", quota)
        if "pids_limit" in fields:
            put("pids", "pids.max", res.pids_limit if res.pids_limit > 0 else "max")
        if "blkio_weight" in fields and res.blkio_weight:
            weight = "blkio.weight"
            if not os.path.exists(os.path.join(paths["blkio"], weight)):
                weight = "blkio.bfq.weight"
            put("blkio", weight, res.blkio_weight)

    @staticmethod
    def _update_memory(path: str, res: Resources) -> None:
        """runc's setMemoryAndSwap: memory and memory+swap in the order the kernel
        accepts (memsw may never be below memory); EBUSY from a limit below the usage
        becomes runc's message."""
        memory = res.memory if res.memory > 0 else -1
        swap = res.memory_swap if res.memory_swap else 0
        has_swap = os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes"))

        def set_memory() -> None:
            limit = os.path.join(path, "memory.limit_in_bytes")
            try:
                write_value(limit, str(memory))
            except CgroupError as err:
                if "busy" not in str(err):
                    raise
                usage = read_counter_file(os.path.join(path, "memory.usage_in_bytes"))
                peak = read_counter_file(os.path.join(path, "memory.max_usage_in_bytes"))
                raise BoxError(f"unable to set memory limit to {memory} (current usage: "
                               f"{usage}, peak usage: {peak})") from None

        def set_swap() -> None:
            if has_swap and swap:
                write_value(os.path.join(path, "memory.memsw.limit_in_bytes"), str(swap))

        current = read_counter_file(os.path.join(path, "memory.limit_in_bytes"))
        if swap == -1 or (swap and current < swap):
            set_swap()
            set_memory()
        else:
            set_memory()
            set_swap()

    @staticmethod
    def _wait_frozen(state: str, timeout: float = 1.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(state) as f:
                if f.read().strip() == "FROZEN":
                    return
            time.sleep(0.005)
